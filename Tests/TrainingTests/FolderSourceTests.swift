// Every image–text family (Transfusion, Chameleon, VAR) trains on a user's folder (here procedural textures, nothing Fusion's
// ShapesWorld makes): documents carry the folder's captions and images, the tokenizer is trained
// on its training captions, every training row is read once per epoch in an order that is a
// function of the step, both families score the same held-out rows, and what needs ShapesWorld
// ground truth is refused by key. Through the binary: train, then sample.
import Data
import Foundation
import Media
@testable import Models
import NN
import Tensors
import Testing
import TestSupport
import Text
@testable import Training

/// A texture folder of `count` images, written once per process.
private let textureFolder: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-textures-\(UUID().uuidString)").path
    try! Textures(seed: 11).writeFolder(examples: 0..<120, to: path)
    return path
}()

/// A recipe of `kind` on the texture folder over a random image tokenizer saved to a temporary file.
private func folderRecipe(_ kind: String, overrides: [String] = []) throws -> Recipe {
    let tokenizer = try randomImageTokenizer(for: kind)
    return try Recipe.parse("""
        name: \(kind)-folder
        seed: 4
        model: {kind: \(kind), preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tokenizer)}
        data: {source: folder, path: \(textureFolder), image_size: 32, tokenizer_vocab: 300, seq_len: 160, docs_per_row: 2}
        train: {steps: 1, batch_size: 4}
        eval: {every: 0, documents: 1024}
        """, file: "\(kind).yaml", overrides: overrides)
}

@Suite(.serialized) struct FolderSourceTests {
    @Test func everyImageTextFamilyTrainsOnTheFolderAndScoresItsHeldOutRows() throws {
        let train = try FolderImageCaptions(folder: textureFolder, imageSize: 32, split: .train)
        let held = try FolderImageCaptions(folder: textureFolder, imageSize: 32, split: .heldOut)
        var heldOutDocuments: [[String]] = []
        for kind in ["transfusion", "chameleon", "var"] {
            let run = scratchRun()
            let recipe = try folderRecipe(kind)
            let probe = try ImageTextTaskProbe(kind: kind, recipe: recipe, run: run)
            let pairs = probe.pairs, loss = try probe.task.loss(microBatch: 0, rng: RNG(seed: 1))
            let metrics = try probe.task.evaluate(step: 0, rng: RNG(seed: 0))
            let documents = try probe.heldOutDocuments()
            // The tokenizer was trained on the folder's training captions and saved in the run.
            #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("tokenizer.json").path))
            #expect(pairs.tokenizer.encode(" stripes").count == 1 && pairs.tokenizer.encode(" circle").count > 1,
                    "a folder word is one token, a ShapesWorld word is not: \(pairs.tokenizer.encode(" stripes"))")
            // One epoch reads every training row once; the next epoch again, in another order.
            let n = train.rows.count
            let epoch0 = (0..<n).map(pairs.trainingIndex), epoch1 = (n..<(2 * n)).map(pairs.trainingIndex)
            #expect(epoch0.sorted() == Array(0..<n) && epoch1.sorted() == Array(0..<n) && epoch0 != epoch1)
            // Training documents carry the folder's captions.
            let docs = try pairs.documents(pairs.world, row: 0, perRow: 2, imageLength: 16, training: true, rng: RNG(seed: 3))
            for doc in docs where !doc.caption.isEmpty {
                #expect(doc.caption == pairs.tokenizer.encode(train.caption(doc.index)))
            }
            #expect(loss.total.item.isFinite && loss.examples > 0)
            // Every held-out row is scored (eval.documents is more than the folder holds), with its caption.
            #expect(documents.count == held.rows.count && metrics["documents"] == Double(held.rows.count), "\(metrics)")
            #expect(documents.allSatisfy { $0.caption == pairs.tokenizer.encode(held.caption($0.index)) })
            for name in ["loss_text", "loss_caption", "loss_prior", "loss_image"] {
                #expect(metrics[name].map { $0.isFinite && $0 > 0 } == true, "\(kind) \(name): \(metrics)")
            }
            heldOutDocuments.append(documents.map { "\($0.index) \($0.imageFirst)" })
        }
        #expect(heldOutDocuments[0] == heldOutDocuments[1] && heldOutDocuments[0] == heldOutDocuments[2],
                "every family scores the same held-out documents")
    }

    @Test func whatNeedsShapesWorldTruthIsRefusedByKey() throws {
        // (Speech from a folder of recordings is FolderSpeechTests'.)
        for key in ["eval.shapes_eval=8", "eval.edits=4"] {
            let recipe = try folderRecipe("chameleon", overrides: [key])
            let error = #expect(throws: RecipeError.self) { try ChameleonTask(recipe: recipe, run: scratchRun()) }
            let path = String(key.split(separator: "=")[0])
            #expect(error?.description.contains(path) == true && error?.description.contains("data.source folder") == true,
                    "\(key): \(String(describing: error))")
        }
    }

    @Test func anImageSizeTheTokenizerCannotTakeIsARecipeError() throws {
        // The folder reader makes any size; the image tokenizer must divide it (it used to trap).
        for kind in ["transfusion", "chameleon"] {
            let recipe = try folderRecipe(kind, overrides: ["data.image_size=30"])
            let error = #expect(throws: RecipeError.self) {
                _ = kind == "transfusion" ? try TransfusionTask(recipe: recipe, run: scratchRun()) as TrainingTask
                                          : try ChameleonTask(recipe: recipe, run: scratchRun())
            }
            #expect(error?.description.contains("'data.image_size' 30 does not divide by the") == true, "\(String(describing: error))")
        }
    }

    @Test func theEncodingsAreKeptInTheRunAndReadBackOnResume() throws {
        for kind in ["transfusion", "chameleon"] {
            let run = scratchRun()
            let recipe = try folderRecipe(kind, overrides: ["train.steps=2", "train.checkpoint_every=2", "eval.every=0"])
            let task: TrainingTask = kind == "transfusion" ? try TransfusionTask(recipe: recipe, run: run) : try ChameleonTask(recipe: recipe, run: run)
            try Trainer(recipe: recipe, task: task, run: run).train(fresh: true)
            let name = kind == "transfusion" ? "latents" : "codes"
            #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("encoded-\(name).safetensors").path))
            // A new task on the run starts with exactly what the first one encoded, which encoding afresh matches.
            if kind == "transfusion" {
                let (first, again) = (task as! TransfusionTask, try TransfusionTask(recipe: recipe, run: run))
                #expect(!first.latentCache.isEmpty && again.latentCache == first.latentCache)
                let i = first.latentCache.keys.min()!
                // (Within rounding: a batch of one image runs other GEMM blocks than the chunk it was encoded in.)
                let fresh = try again.latents(again.world, [i], cached: false).scalars
                #expect(zip(fresh, again.latentCache[i]!).allSatisfy { abs($0 - $1) < 1e-4 })
            } else {
                let (first, again) = (task as! ChameleonTask, try ChameleonTask(recipe: recipe, run: run))
                #expect(!first.codeCache.isEmpty && again.codeCache == first.codeCache)
                let i = first.codeCache.keys.min()!
                #expect(try again.codes(again.world, [i], cached: false)[0] == again.codeCache[i]!)
            }
            // Another data section does not read it.
            var other = recipe
            other.data.heldOut = 0.2
            if kind == "transfusion" { #expect(try TransfusionTask(recipe: other, run: run).latentCache.isEmpty) }
            else { #expect(try ChameleonTask(recipe: other, run: run).codeCache.isEmpty) }
        }
    }

    /// … and a VAR run keeps its code pyramids the same way.
    @Test func aVARRunKeepsItsPyramidsAndReadsThemBackOnResume() throws {
        let run = scratchRun()
        let recipe = try folderRecipe("var", overrides: ["train.steps=2", "train.checkpoint_every=2", "eval.every=0"])
        let first = try VARTask(recipe: recipe, run: run)
        try Trainer(recipe: recipe, task: first, run: run).train(fresh: true)
        #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("encoded-pyramids.safetensors").path))
        let again = try VARTask(recipe: recipe, run: run)
        #expect(!first.codeCache.isEmpty && again.codeCache == first.codeCache)
        let i = first.codeCache.keys.min()!
        #expect(try again.codes(again.world, [i], cached: false)[0] == again.codeCache[i]!)
        #expect(again.codeCache[i]!.count == 1 + 4 + 9 + 16, "every scale's codes, coarsest first")
        var other = recipe
        other.data.heldOut = 0.2
        #expect(try VARTask(recipe: other, run: run).codeCache.isEmpty)
    }

    @Test func aFolderWithEditRowsMixesEditsIntoBothFamilies() throws {
        // Without edit rows, edits are refused by key.
        let none = #expect(throws: RecipeError.self) {
            try TransfusionTask(recipe: try folderRecipe("transfusion", overrides: ["data.edit_fraction=0.3"]), run: scratchRun())
        }
        #expect(none?.description.contains("data.edit_fraction") == true && none?.description.contains("0 training and 0 held-out edit rows") == true,
                "\(String(describing: none))")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-tex-edits-\(UUID().uuidString)").path
        let textures = Textures(seed: 12)
        try textures.writeFolder(examples: 0..<120, edits: 0..<80, to: folder)
        let train = try FolderImageCaptions(folder: folder, imageSize: 32, split: .train)
        let held = try FolderImageCaptions(folder: folder, imageSize: 32, split: .heldOut)
        #expect(train.edits.count + held.edits.count == 80 && !held.edits.isEmpty)
        #expect(held.edits.allSatisfy { FolderImageCaptions.isHeldOut($0.sourceFile, fraction: 0.1) }, "edits split by their source")
        for kind in ["transfusion", "chameleon"] {
            let recipe = try folderRecipe(kind, overrides: ["data.path=\(folder)", "data.edit_fraction=0.3", "eval.documents=64"])
            let samples = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-edit-samples-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: samples, withIntermediateDirectories: true)
            let probe = try ImageTextTaskProbe(kind: kind, recipe: recipe, run: scratchRun())
            let task = probe.task, pairs = probe.pairs
            let docs = try probe.trainingDocuments(16, RNG(seed: 1)), heldDocs = try probe.heldOutDocuments()
            let loss = try task.loss(microBatch: 0, rng: RNG(seed: 1))
            // The sample grid shows held-out folder edits: source | target | the model's edit, a row each.
            _ = try task.writeSamples(step: 1, to: samples, rng: RNG(seed: 0))
            let grid = try PNG.read(samples.appendingPathComponent("edits-step-00000001.png").path)
            #expect(grid.width == 3 * 32 + 4 * 2 && grid.height == min(8, held.edits.count) * 34 + 2, "\(kind): \(grid.width)×\(grid.height)")
            let edits = docs.filter { $0.edit != nil }
            #expect(!edits.isEmpty && edits.allSatisfy { $0.index < train.edits.count }, "\(kind): training edits")
            for doc in edits where !doc.edit!.instruction.isEmpty {
                #expect(doc.edit!.instruction == pairs.tokenizer.encode(train.editInstruction(doc.index)))
            }
            let heldEdits = heldDocs.filter { $0.edit != nil }
            #expect(!heldEdits.isEmpty && heldEdits.allSatisfy { $0.edit!.instruction == pairs.tokenizer.encode(held.editInstruction($0.index)) })
            #expect(loss.total.item.isFinite, "\(kind)")
        }
    }

    @Test func theBinaryTrainsAndSamplesAFolderRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-folder-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let recipe = try folderRecipe("transfusion")
        let yaml = """
            name: folder-cli
            seed: 0
            model: {kind: transfusion, preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(recipe.model.imageTokenizer!)}
            diffusion: {target: flow, sampler: euler, sample_steps: 4}
            data: {source: folder, path: \(textureFolder), image_size: 32, tokenizer_vocab: 300, seq_len: 112}
            train: {steps: 4, batch_size: 4, log_every: 2, checkpoint_every: 4}
            eval: {every: 4, documents: 16}
            """
        try yaml.write(to: dir.appendingPathComponent("folder.yaml"), atomically: true, encoding: .utf8)
        let trained = try FusionBinary.run(["train", "folder.yaml", "--runs", "runs"], in: dir)
        let log = trained.stdout + trained.stderr
        #expect(trained.status == 0 && log.contains("eval @4:") && log.contains("loss_caption"), "\(log)")
        let sampled = try FusionBinary.run(["sample", "--checkpoint", "runs/folder-cli", "--prompt", "blue checks on white",
                                            "--num", "2", "--out", "s.png"], in: dir)
        #expect(sampled.status == 0, "\(sampled.stdout + sampled.stderr)")
        let image = try PNG.read(dir.appendingPathComponent("s.png").path)
        #expect(image.width > 32 && image.height >= 32)
        // The folder suite, in the space of an encoder trained on the same folder.
        try """
            name: folder-clip
            model: {kind: clip, preset: nano, dim: 16}
            data: {source: folder, path: \(textureFolder), image_size: 32, tokenizer_vocab: 300, seq_len: 32}
            train: {steps: 3, batch_size: 8, checkpoint_every: 3}
            """.write(to: dir.appendingPathComponent("clip.yaml"), atomically: true, encoding: .utf8)
        let clip = try FusionBinary.run(["train", "clip.yaml", "--runs", "runs"], in: dir)
        #expect(clip.status == 0 && clip.stdout.contains("acc_retrieval"), "\(clip.stdout + clip.stderr)")
        let eval = try FusionBinary.run(["eval", "--checkpoint", "runs/folder-cli", "--suite", "folder", "--encoder",
                                         "runs/folder-clip/encoder.safetensors", "--count", "6", "--json", "folder.json"], in: dir)
        let out = eval.stdout + eval.stderr
        #expect(eval.status == 0 && out.contains("alignment (cosine)") && out.contains("caption retrieval") && out.contains("(6 images each)"), "\(out)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("folder.json"))) as? [String: Any]
        #expect(json?["images"] as? Int == 6 && json?["fd"] != nil)
        let missing = try FusionBinary.run(["eval", "--checkpoint", "runs/folder-cli", "--suite", "folder"], in: dir)
        #expect(missing.status != 0 && missing.stderr.contains("--suite folder needs --encoder"), "\(missing.stderr)")
    }

    /// The VAR chain on a folder through the binary: a multi-scale VQ tokenizer trained on the
    /// folder's training images, a VAR run on its pyramids, then a sample and a caption.
    @Test func theBinaryTrainsAMultiScaleTokenizerAndAVARRunOnAFolder() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-folder-var-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            name: t
            model: {kind: msvq}
            data: {source: folder, path: \(textureFolder), image_size: 32}
            tokenizer: {channels: 16, channel_multipliers: [1], patch_size: 4, downsample: 4, groups: 4, codebook_size: 32, code_dim: 4, ema: false}
            train: {steps: 2, batch_size: 4, checkpoint_every: 2}
            eval: {every: 2, batches: 1}
            """.write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        try """
            name: v
            model: {kind: var, preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: runs/t/tokenizer.safetensors}
            data: {source: folder, path: \(textureFolder), image_size: 32, tokenizer_vocab: 300, seq_len: 160}
            train: {steps: 3, batch_size: 2, checkpoint_every: 3}
            eval: {every: 3, documents: 8}
            """.write(to: dir.appendingPathComponent("v.yaml"), atomically: true, encoding: .utf8)
        let tokenizer = try FusionBinary.run(["train", "t.yaml", "--runs", "runs"], in: dir)
        #expect(tokenizer.status == 0 && tokenizer.stdout.contains("psnr") && tokenizer.stdout.contains("code_usage"),
                "\(tokenizer.stdout + tokenizer.stderr)")
        let trained = try FusionBinary.run(["train", "v.yaml", "--runs", "runs"], in: dir)
        #expect(trained.status == 0 && (trained.stdout + trained.stderr).contains("loss_image"), "\(trained.stdout + trained.stderr)")
        let sampled = try FusionBinary.run(["sample", "--checkpoint", "runs/v", "--prompt", "blue checks on white", "--num", "2",
                                            "--out", "s.png"], in: dir)
        #expect(sampled.status == 0 && FileManager.default.fileExists(atPath: dir.appendingPathComponent("s.png").path),
                "\(sampled.stdout + sampled.stderr)")
        // Any 32×32 image to caption (the folder's textures are 40×32, resized when trained on).
        #expect(try FusionBinary.run(["data", "shapes", "--out", "d", "--count", "1"], in: dir).status == 0)
        let captioned = try FusionBinary.run(["caption", "--checkpoint", "runs/v", "--image", "d/000000.png"], in: dir)
        #expect(captioned.status == 0, "\(captioned.stdout + captioned.stderr)")
    }
}
