// Edit fine-tuning and `fusion edit` inputs: edit documents lay out a clean, unscored source span
// and a noised target; init_from starts from a run's weights and names bad paths and mismatched
// models; the edit recipe keys validate; bad edit inputs give errors naming the flag or file.
import Data
import Foundation
import Media
@testable import Models
import NN
import Tensors
import TestSupport
import Testing
import Text
@testable import Training

/// A tiny VAE (random weights, latent scale calibrated) saved to a temporary file.
private let editVAEPath: String = {
    let vae = ImageVAE(.init(channels: 8, latentChannels: 4, downsample: 4, groups: 4), rng: RNG(seed: 5))
    let world = ShapesWorld(seed: 9)
    vae.calibrateLatentScale(imageBatch((0..<16).map {
        Media.Image(width: 32, height: 32, channels: 3, pixels: world.example($0).pixels)
    }))
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-edit-vae-\(UUID().uuidString).safetensors").path
    try! vae.save(to: path)
    return path
}()

private func editRecipe(model: String = "image_tokenizer: \(editVAEPath)", data: String = "", train: String = "")
    throws -> Recipe {
    try Recipe.parse("""
        name: edit
        seed: 4
        model: {kind: transfusion, preset: nano, dim: 32, layers: 2, heads: 2, \(model)}
        diffusion: {target: flow, sampler: euler}
        data: {tokenizer_vocab: 300, seq_len: 96, pool: 64\(data)}
        optimizer: {lr: 3.0e-3, warmup_steps: 2}
        train: {steps: 2, batch_size: 2, log_every: 1, checkpoint_every: 2\(train)}
        eval: {every: 0, batches: 1, documents: 64}
        sample: {every: 0, max_tokens: 4, prompts: ["a red circle"]}
        """, file: "edit-test.yaml")
}

private func temporaryFile(_ name: String, _ bytes: [UInt8]) -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-\(UUID().uuidString)-\(name)").path
    FileManager.default.createFile(atPath: path, contents: Foundation.Data(bytes))
    return path
}

@Suite(.serialized) struct EditTrainingTests {
    @Test func editDocumentsHaveACleanUnscoredSourceAndANoisedTarget() throws {
        let recipe = try editRecipe(data: ", edit_fraction: 1.0")
        let task = try TransfusionTask(recipe: recipe, run: scratchRun())
        var recipeNoDrop = recipe
        recipeNoDrop.diffusion.instructionDropout = 0; recipeNoDrop.diffusion.sourceDropout = 0
        let plain = try TransfusionTask(recipe: recipeNoDrop, run: scratchRun())
        let b = try plain.batch(plain.world, firstRow: 0, rows: 2, rng: RNG(seed: 1), training: true)
        let ids = b.input.ids.intScalars, starts = b.input.spans[.image]!.starts
        let scored = try #require(b.spanTargets[.image]!.scored)
        #expect(starts.count == 2 * b.examples && scored == Array(stride(from: 1, to: starts.count, by: 2)))
        let c = plain.transfusion.config, per = c.latentChannels * c.latentSize * c.latentSize
        let z = b.input.spans[.image]!.values.scalars
        for k in stride(from: 0, to: starts.count, by: 2) {
            // BOS BOI [source] EOI instruction… BOI [target]: the source at t = 0 holds the clean latents.
            #expect(ids[starts[k] - 2] == SpecialTokens.bos && ids[starts[k] - 1] == SpecialTokens.boi)
            #expect(ids[starts[k] + c.patchesPerImage] == SpecialTokens.eoi && ids[starts[k + 1] - 1] == SpecialTokens.boi)
            #expect(b.input.spans[.image]!.timesteps[k] == 0)
            let row = starts[k] / recipe.data.seqLen
            let candidates = Array((row * plain.docsPerRow)..<((row + 1) * plain.docsPerRow))
            let source = Array(z[(k * per)..<((k + 1) * per)])
            let matches = try plain.editLatents(plain.world, candidates, cached: false).filter { pair in
                zip(pair[..<per], source).allSatisfy { abs($0 - $1) < 1e-4 }
            }
            #expect(matches.count == 1, "span \(k) holds the clean source latents of one of its row's triplets")
        }
        #expect(b.spanTargets[.image]!.values.dim(0) == scored.count)
        // The loss runs and only target spans are scored.
        let loss = try task.loss(microBatch: 0, rng: RNG(seed: 2))
        #expect(loss.total.item.isFinite && loss.parts["loss_image"]! > 0)
    }

    @Test func initFromStartsFromTheRunsWeightsAndNamesBadPaths() throws {
        let baseRun = scratchRun()
        let base = try editRecipe(train: ", ema_decay: 0.5")
        let trainer = try Trainer(recipe: base, task: try TransfusionTask(recipe: base, run: baseRun), run: baseRun)
        try trainer.train(fresh: true)
        let loaded = try TransfusionRun(path: baseRun.url.path)
        let tuned = try editRecipe(model: "patch_size: 2", data: ", edit_fraction: 0.5", train: ", init_from: \(baseRun.url.path)")
        let run = scratchRun()
        let task = try TransfusionTask(recipe: tuned, run: run)
        for (name, w) in task.transfusion.namedParameters() {
            #expect(w.scalars == loaded.model.stateDict()[name]!.scalars, "\(name) is not the run's (EMA) weight")
        }
        #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("vae.safetensors").path))
        #expect(task.tokenizer.vocabSize == loaded.tokenizer.vocabSize)
        let missing = try editRecipe(model: "patch_size: 2", train: ", init_from: /nonexistent/run")
        let error = try #require(throws: RecipeError.self) { try TransfusionTask(recipe: missing, run: scratchRun()) }
        #expect("\(error)".contains("train.init_from") && "\(error)".contains("/nonexistent/run"))
        let wider = try editRecipe(model: "patch_size: 4", train: ", init_from: \(baseRun.url.path)")
        let mismatch = try #require(throws: RecipeError.self) { try TransfusionTask(recipe: wider, run: scratchRun()) }
        #expect("\(mismatch)".contains("different model"))
        let both = try editRecipe(train: ", init_from: \(baseRun.url.path)")
        #expect(throws: RecipeError.self) { try TransfusionTask(recipe: both, run: scratchRun()) }
    }

    @Test func editRecipeKeysValidate() throws {
        let r = try editRecipe(data: ", edit_fraction: 0.25")
        #expect(r.data.editFraction == 0.25 && r.diffusion.instructionDropout == 0.1 && r.eval.edits == 0)
        let error = try #require(throws: RecipeError.self) { try editRecipe(data: ", edit_fraction: 1.5") }
        #expect("\(error)".contains("data.edit_fraction") && "\(error)".contains("edit-test.yaml"))
        let refused = try #require(throws: RecipeError.self) {
            try ImageCaptionPairs(recipe: r, run: scratchRun(), family: .lm)
        }
        #expect("\(refused)".contains("data.edit_fraction"))
    }

    @Test func chameleonEditDocumentsGiveTheSourceCodesAndPredictTheTarget() throws {
        let vq = VQTokenizer(.init(channels: 8, downsample: 4, groups: 4, codebookSize: 16, codeDim: 4), rng: RNG(seed: 0))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-vq-\(UUID().uuidString).safetensors").path
        try vq.save(to: path)
        var recipe = try editRecipe(model: "image_tokenizer: \(path)", data: ", edit_fraction: 1.0")
        recipe.model.kind = .chameleon
        recipe.data.seqLen = 160                              // 64 codes per image: an edit needs 2·66 + 3
        recipe.diffusion.instructionDropout = 0; recipe.diffusion.sourceDropout = 0
        let task = try ChameleonTask(recipe: recipe, run: scratchRun())
        let b = try task.batch(task.world, firstRow: 0, rows: 1, rng: RNG(seed: 1), training: true)
        let ids = b.ids.intScalars, targets = b.targets.intScalars, per = task.chameleon.config.tokensPerImage
        let text = Int32(task.chameleon.config.textVocab)
        // BOS BOI source EOI instruction… BOI target EOI EOS: the source codes are inputs, not targets.
        #expect(ids[0] == SpecialTokens.bos && ids[1] == SpecialTokens.boi && ids[per + 2] == SpecialTokens.eoi)
        #expect(ids[2..<(per + 2)].allSatisfy { $0 >= text })
        #expect(targets[1...per].allSatisfy { $0 == -1 } && targets[0] == SpecialTokens.boi)
        let targetBOI = try #require((per + 3..<ids.count).first { ids[$0] == SpecialTokens.boi })
        #expect(targets[targetBOI..<(targetBOI + per)].allSatisfy { $0 >= text }, "the target codes are predicted")
        let codes = try task.editCodes(task.world, [0], cached: false)[0]
        #expect(codes.count == 2 * per)
        let edited = task.chameleon.sampleEdit(source: Array(codes[..<per]), instruction: [40, 41], count: 2,
                                               options: SamplingOptions(temperature: 1), cfgScale: 2, rng: RNG(seed: 3))
        #expect(edited.shape == [2, task.chameleon.config.gridSize, task.chameleon.config.gridSize])
    }

    @Test func badEditInputsNameTheFlagOrFile() throws {
        #expect(throws: EditInputError.missingImage("/no/such.png")) { try EditRequest.loadImage("/no/such.png", size: 32) }
        let text = temporaryFile("picture.jpg", Array("not an image".utf8))
        #expect(throws: EditInputError.notPNG(text)) { try EditRequest.loadImage(text, size: 32) }
        #expect(throws: EditInputError.emptyInstruction) { try EditRequest(method: .instruction, instruction: "  ") }
        let noSource = try #require(throws: EditInputError.self) {
            try EditRequest(method: .inversion, prompt: "a blue square")
        }
        #expect(noSource.description.contains("--source-prompt"))
        let noPrompt = try #require(throws: EditInputError.self) {
            try EditRequest(method: .inversion, sourcePrompt: "a red square")
        }
        #expect(noPrompt.description.contains("--prompt"))
        #expect(EditInputError.missingImage("x.png").description == "--image x.png: no such file")
        let ok = try EditRequest(method: .instruction, instruction: " make the square blue ")
        #expect(ok.instruction == "make the square blue")
    }

    @Test func otherSizesAreResizedWithANote() throws {
        let big = Media.Image(width: 64, height: 64, channels: 3, pixels: ShapesWorld(seed: 1, imageSize: 64).example(0).pixels)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-\(UUID().uuidString).png").path
        try PNG.write(big, to: path)
        let (image, note) = try EditRequest.loadImage(path, size: 32)
        #expect(image.width == 32 && image.height == 32 && image.channels == 3)
        #expect(note?.contains("64×64") == true && note?.contains("32×32") == true)
        let small = Media.Image(width: 32, height: 32, channels: 3, pixels: ShapesWorld(seed: 1).example(0).pixels)
        try PNG.write(small, to: path)
        #expect(try EditRequest.loadImage(path, size: 32).note == nil)
    }
}
