// The Transfusion task: both loss parts fall on ShapesWorld; the data mixture follows the recipe
// (image-first pairs with capped timesteps, caption dropout, causal-span ablation); resume is
// bit-identical; samples are written and a finished run loads back for `fusion sample`.
import Data
import Foundation
import Media
@testable import Models
import NN
import Tensors
import Testing
import Text
@testable import Training

/// A tiny VAE (random weights, latent scale calibrated) saved to a temporary file.
private let tinyVAEPath: String = {
    let vae = ImageVAE(.init(channels: 8, latentChannels: 4, downsample: 4, groups: 4), rng: RNG(seed: 5))
    let world = ShapesWorld(seed: 9)
    vae.calibrateLatentScale(imageBatch((0..<16).map {
        Media.Image(width: 32, height: 32, channels: 3, pixels: world.example($0).pixels)
    }))
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-vae-\(UUID().uuidString).safetensors").path
    try! vae.save(to: path)
    return path
}()

private func transfusionRecipe(steps: Int, diffusion: String = "{}", extra: String = "", overrides: [String] = []) throws
    -> Recipe {
    try Recipe.parse("""
        name: tf
        seed: 4
        model: {kind: transfusion, preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tinyVAEPath)}
        diffusion: \(diffusion)
        data: {tokenizer_vocab: 300, seq_len: 64, pool: 64}
        optimizer: {lr: 3.0e-3, warmup_steps: 2}
        train: {steps: \(steps), batch_size: 4, log_every: 1, checkpoint_every: 2, keep_checkpoints: 2\(extra)}
        eval: {every: 0, batches: 1, documents: 64}
        sample: {every: 0, max_tokens: 4, prompts: ["a red circle"]}
        """, file: "transfusion-test.yaml", overrides: overrides)
}

private func trainRows(_ recipe: Recipe, _ run: RunDirectory, limit: Int? = nil, fresh: Bool = false) throws
    -> (TransfusionTask, [String]) {
    let task = try TransfusionTask(recipe: recipe, run: run)
    let trainer = try Trainer(recipe: recipe, task: task, run: run)
    trainer.stepLimit = limit
    var rows: [String] = []
    trainer.onRow = { rows.append(deterministic($0)) }
    try trainer.train(fresh: fresh)
    return (task, rows)
}

@Suite(.serialized) struct TransfusionTaskTests {
    @Test func bothLossesFall() throws {
        let recipe = try transfusionRecipe(steps: 40)
        let run = scratchRun()
        let task = try TransfusionTask(recipe: recipe, run: run)
        let trainer = try Trainer(recipe: recipe, task: task, run: run)
        var text: [Double] = [], image: [Double] = []
        trainer.onRow = { row in
            if case .double(let t) = row["loss_text"] ?? .int(0), case .double(let i) = row["loss_image"] ?? .int(0),
               row["kind"] == nil {
                text.append(t); image.append(i)
            }
        }
        try trainer.train(fresh: true)
        #expect(text.count == 40)
        func mean(_ xs: ArraySlice<Double>) -> Double { xs.reduce(0, +) / Double(xs.count) }
        #expect(mean(text.suffix(5)) < 0.7 * mean(text.prefix(5)), "text loss \(text.prefix(5)) → \(text.suffix(5))")
        #expect(mean(image.suffix(5)) < 0.9 * mean(image.prefix(5)), "image loss \(image.prefix(5)) → \(image.suffix(5))")
    }

    @Test func imageFirstPairsHaveCappedNoiseAndDroppedCaptionsAreGone() throws {
        let recipe = try transfusionRecipe(steps: 1, diffusion: "{image_first: 1.0, image_first_max_t: 100}")
        let task = try TransfusionTask(recipe: recipe, run: scratchRun())
        let b = try task.batch(task.world, firstRow: 0, rows: 4, rng: RNG(seed: 1), training: true)
        #expect(!b.input.spans[.image]!.timesteps.isEmpty && b.input.spans[.image]!.timesteps.allSatisfy { $0 <= 100 })
        let ids = b.input.ids.intScalars, t = recipe.data.seqLen
        for start in b.input.spans[.image]!.starts {                  // BOS BOI [span]: the image comes first
            #expect(ids[start - 1] == SpecialTokens.boi && ids[start - 2] == SpecialTokens.bos)
        }
        let dropped = try transfusionRecipe(steps: 1, diffusion: "{image_first: 0.0, caption_dropout: 1.0}")
        let task2 = try TransfusionTask(recipe: dropped, run: scratchRun())
        let b2 = try task2.batch(task2.world, firstRow: 0, rows: 2, rng: RNG(seed: 1), training: true)
        // Every document is BOS BOI [span] EOI EOS: the only text targets are BOS→BOI and EOI→EOS.
        let targets = b2.targets.intScalars.filter { $0 >= 0 }
        #expect(Set(targets) == [SpecialTokens.boi, SpecialTokens.eos])
        #expect(b2.input.ids.count == 2 * t)
    }

    @Test func causalSpansSwitchReachesTheMask() throws {
        for causal in [false, true] {
            let recipe = try transfusionRecipe(steps: 1, diffusion: "{causal_spans: \(causal)}")
            let task = try TransfusionTask(recipe: recipe, run: scratchRun())
            let b = try task.batch(task.world, firstRow: 0, rows: 1, rng: RNG(seed: 2), training: true)
            let start = b.input.spans[.image]!.starts[0]
            // The span's first patch sees its second patch only with bidirectional spans.
            #expect(b.input.mask.allows(batch: 0, query: start, key: start + 1) == !causal)
        }
    }

    @Test func resumeIsBitIdentical() throws {
        let recipe = try transfusionRecipe(steps: 4, extra: ", ema_decay: 0.9")
        let (straight, rowsA) = try trainRows(recipe, scratchRun(), fresh: true)
        let run = scratchRun()
        let (_, first) = try trainRows(recipe, run, limit: 2, fresh: true)
        let (resumed, second) = try trainRows(recipe, run)
        #expect(first + second == rowsA)
        for ((n, a), (_, b)) in zip(straight.model.namedParameters(), resumed.model.namedParameters()) {
            #expect(a.scalars == b.scalars, "weights of \(n) differ after resume")
        }
    }

    @Test func samplesAreWrittenAndTheRunLoadsBack() throws {
        var recipe = try transfusionRecipe(steps: 2)
        recipe.diffusion.sampleSteps = 3
        let run = scratchRun()
        _ = try trainRows(recipe, run, fresh: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: run.samplesURL.path).sorted()
        #expect(files == ["step-00000002.png", "step-00000002.txt"])
        let loaded = try TransfusionRun(path: run.url.path)
        #expect(loaded.checkpoint.lastPathComponent == "step-00000002")
        let latents = loaded.model.sampleImages(prompt: loaded.prompt("a red circle"), count: 2,
                                                options: try loaded.imageOptions(steps: 2), rng: RNG(seed: 1))
        #expect(loaded.decode(latents).shape == [2, 3, 32, 32])
        #expect(throws: RunError.self) { try TransfusionRun(path: run.url.appendingPathComponent("nope").path) }
    }

    @Test func anExportedRunSamplesLikeTheRun() throws {
        var recipe = try transfusionRecipe(steps: 2, extra: ", ema_decay: 0.9")
        recipe.diffusion.sampleSteps = 3
        let run = scratchRun()
        _ = try trainRows(recipe, run, fresh: true)
        let out = run.url.deletingLastPathComponent().appendingPathComponent("exported-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try ModelExport.export(run: run.url.path, to: out.path)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out.path))
        #expect(files.isSuperset(of: ["model.safetensors", "config.json", "trained.json", "recipe.yaml", "vae.safetensors"]))
        #expect(!files.contains("optimizer.safetensors") && !files.contains("state.json"))
        // The training pool's encodings stay in the run: an export of a long run carried 134 MB of them.
        #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("encoded-latents.safetensors").path))
        #expect(!files.contains { $0.hasPrefix("encoded-") }, "\(files.sorted())")
        let original = try TransfusionRun(path: run.url.path), exported = try TransfusionRun(path: out.path)
        func sample(_ r: TransfusionRun) throws -> [Float] {
            r.model.sampleImages(prompt: r.prompt("a red circle"), count: 1, options: try r.imageOptions(steps: 3),
                                 rng: RNG(seed: 2)).scalars
        }
        let a = try sample(original), b = try sample(exported)
        let err = zip(a, b).map { abs($0 - $1) }.max()!
        #expect(err < 0.02, "float16 export changes samples by \(err)")
    }

    @Test func docsPerRowFixesThePairsInEveryRow() throws {
        var recipe = try transfusionRecipe(steps: 1)
        recipe.data.seqLen = 256
        let auto = try TransfusionTask(recipe: recipe, run: scratchRun())
        recipe.data.docsPerRow = 2
        let fixed = try TransfusionTask(recipe: recipe, run: scratchRun())
        #expect(auto.docsPerRow > 2 && fixed.docsPerRow == 2)
        let loss = try fixed.loss(microBatch: 0, rng: RNG(seed: 1))
        #expect(loss.examples == 2 * recipe.train.batchSize)
    }

    /// A seed replicate changes the weights and the training data, not the measurement: runs that
    /// differ in seed alone train the same BPE and score the very same held-out documents (seed 0's,
    /// as before), so their losses per token compare. Before, both moved with the seed.
    @Test func aSeedReplicateIsScoredOnTheSameDocumentsWithTheSameTokenizer() throws {
        let runs = (scratchRun(), scratchRun())
        let a = try TransfusionTask(recipe: try transfusionRecipe(steps: 1, overrides: ["seed=0"]), run: runs.0)
        let b = try TransfusionTask(recipe: try transfusionRecipe(steps: 1, overrides: ["seed=1"]), run: runs.1)
        let text = "a big red circle left of two small blue squares"
        #expect(a.tokenizer.encode(text) == b.tokenizer.encode(text))
        let docs = (0..<64).map { (a.pairs.heldOutDocument($0), b.pairs.heldOutDocument($0)) }
        #expect(docs.allSatisfy { $0.index == $1.index && $0.imageFirst == $1.imageFirst && $0.caption == $1.caption })
        #expect(try a.heldOutBatches().map(\.input.ids.intScalars) == b.heldOutBatches().map(\.input.ids.intScalars))
        // What they train on differs.
        #expect(a.world.caption(0) != b.world.caption(0) || a.world.caption(1) != b.world.caption(1))
    }
}

/// The Transfusion model shipped in checkpoints/shapes-tiny still loads and samples with the
/// current code (its weights, config and tokenizer formats are part of the project's interface).
@Suite struct ShippedCheckpointTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("checkpoints/shapes-tiny").path

    @Test func shapesTinyLoadsAndSamplesAnImageOfThePromptsColour() throws {
        let run = try TransfusionRun(path: Self.path)
        let latents = run.model.sampleImages(prompt: run.prompt("a large red circle"), count: 2,
                                             options: try run.imageOptions(steps: 20), rng: RNG(seed: 0))
        let images = run.decode(latents)
        #expect(images.shape == [2, 3, 32, 32])
        // Mean colour over the brightest-red pixels: a red object is there (background is dark).
        let px = images.scalars, plane = 32 * 32
        var red = 0
        for n in 0..<2 {
            for i in 0..<plane {
                let r = px[n * 3 * plane + i], g = px[n * 3 * plane + plane + i], b = px[n * 3 * plane + 2 * plane + i]
                if r > 0.3 && g < 0 && b < 0 { red += 1 }
            }
        }
        #expect(red > 20, "only \(red) red pixels in two samples of 'a large red circle'")
    }

    /// Greedy captions end with EOS. They used to run to `maxTokens` ("… on a black background on a
    /// black background on a"): the logits tensor was released as soon as its pointer was taken, its
    /// small buffer went back to malloc, and the free list overwrote ids 0…3, EOS among them.
    @Test func captionsOfHeldOutImagesEnd() throws {
        let run = try TransfusionRun(path: Self.path)
        let world = ShapesWorld(seed: 77)
        for i in 0..<3 {
            let image = Media.Image(width: 32, height: 32, channels: 3, pixels: world.example(i).pixels)
            let ids = run.model.caption(latents: run.encode(imageBatch([image])), maxTokens: 48,
                                        options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
            #expect(!ids.isEmpty && ids.count < 48, "caption \(i) did not end: \(run.tokenizer.decode(ids))")
        }
    }

    /// checkpoints/speech-tiny (the export of recipes/any-to-any-shapes.yaml) still hears espeak-ng's
    /// speech and speaks a span of the run's length.
    @Test func speechTinyTranscribesSpokenCaptionsAndSpeaks() throws {
        let path = URL(fileURLWithPath: Self.path).deletingLastPathComponent().appendingPathComponent("speech-tiny").path
        let run = try SpeakingRun(path: path)
        #expect(run.kind == .transfusion && run.spoken.length == 48)
        var right = 0
        let phrases = ["two red circles", "a yellow triangle", "three blue squares and a red ring"]
        for text in phrases {
            let clip = try Speech.speak(text, sampleRate: 8000, wordsPerMinute: 220)
            if run.transcribe(clip) == text { right += 1 }
        }
        #expect(right >= 2, "speech-tiny transcribed \(right) of \(phrases.count) spoken captions exactly")
        let speech = run.speak("two red circles", rng: RNG(seed: 1))
        #expect(speech.patches.shape == [1, 48, 128] && speech.audio.sampleRate == 8000)
    }

    @Test func aHandEditedConfigIsAnErrorNotATrap() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-edited-\(UUID().uuidString)")
        try FileManager.default.copyItem(atPath: Self.path, toPath: dir.path)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("config.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        try text.replacingOccurrences(of: "\"heads\" : 4", with: "\"heads\" : 3").write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try TransfusionRun(path: dir.path)
            Issue.record("an edited config loaded")
        } catch {
            #expect("\(error)".contains("config.json") && "\(error)".contains("not divisible by heads 3"), "\(error)")
        }
    }
}

/// Speech documents in the Transfusion task: the kinds `data.speech_mix` asks for, laid out with
/// BOA … EOA spans of the run's audio codec; noise capped for speech read before text; an audio
/// loss that falls; a run that loads back with its codec and speaks, transcribes and exports.
@Suite(.serialized) struct SpeechDocumentTests {
    func recipe(mix: String, steps: Int = 1, extra: String = "", fraction: Double = 1) throws -> Recipe {
        try transfusionRecipe(steps: steps, diffusion: "{image_first_max_t: 100, sample_steps: 2}", extra: extra,
                              overrides: ["data.speech_fraction=\(fraction)", "data.speech_mix=\(mix)", "data.audio_patches=8",
                                          "data.pool=16", "data.seq_len=48"])
    }

    /// Data-parallel shares of a batch with every kind of speech document (audio spans scored,
    /// speech read first given clean) add up to the whole batch's loss, parts and gradient; each
    /// share synthesises and encodes only its own rows' speech and images.
    @Test func speechRowSharesAddUpToTheFullBatchGradient() throws {
        let task = try TransfusionTask(recipe: try recipe(mix: "[1, 1, 1]", fraction: 0.5), run: scratchRun())
        let whole = try task.batch(task.world, firstRow: 0, rows: 4, rng: RNG(seed: 1), training: true)
        #expect(whole.input.count(.audio) > 0 && whole.input.count(.image) > 0)
        for split in [[0..<2, 2..<4], [0..<1, 1..<4]] { try DataParallelTests().expectSharesAddUp(task, microBatch: 0, split: split) }
    }

    @Test func everyKindOfSpeechDocumentIsLaidOutWithItsSpans() throws {
        let run = scratchRun()
        for (mix, kind) in [("[1, 0, 0]", "caption → speech"), ("[0, 1, 0]", "speech → caption"), ("[0, 0, 1]", "image → speech")] {
            let task = try TransfusionTask(recipe: try recipe(mix: mix), run: run)
            let b = try task.batch(task.world, firstRow: 0, rows: 2, rng: RNG(seed: 1), training: true)
            let ids = b.input.ids.intScalars
            let spoken = try #require(task.pairs.spoken)
            #expect(b.input.spans[.audio]?.values.shape == [b.input.spans[.audio]!.starts.count, 8, spoken.patchDim], "\(kind)")
            #expect(b.spanTargets[.audio]?.values.shape == b.input.spans[.audio]?.values.shape)
            #expect(!b.input.spans[.audio]!.starts.isEmpty)
            for start in b.input.spans[.audio]!.starts {
                #expect(ids[start - 1] == SpecialTokens.boa && ids[start + 8] == SpecialTokens.eoa, "\(kind)")
                // Speech read before its words (speech → caption) comes right after BOS, noise-limited.
                if mix == "[0, 1, 0]" { #expect(ids[start - 2] == SpecialTokens.bos) }
                if mix == "[0, 0, 1]" { #expect(ids[start - 2] == SpecialTokens.eoi) }
            }
            if mix == "[0, 1, 0]" { #expect(b.input.spans[.audio]!.timesteps.allSatisfy { $0 <= 100 }) }
            // Images only in image → speech documents, one per document, noise-limited too.
            #expect(b.input.count(.image) == (mix == "[0, 0, 1]" ? b.input.spans[.audio]!.starts.count : 0), "\(kind)")
            if mix == "[0, 0, 1]" { #expect(b.input.spans[.image]!.timesteps.allSatisfy { $0 <= 100 }) }
            // The words spoken are the text of caption → speech and speech → caption documents.
            if mix != "[0, 0, 1]" {
                let words = Set(task.tokenizer.encode(task.pairs.speechSource(.train).transcript(0)))
                #expect(words.isSubset(of: Set(ids)), "\(kind)")
            }
        }
    }

    @Test func audioLossFallsAndTheRunSpeaksAndTranscribesAfterExport() throws {
        let r = try recipe(mix: "[2, 2, 1]", steps: 30, extra: ", ema_decay: 0.9", fraction: 0.5)
        let run = scratchRun()
        let task = try TransfusionTask(recipe: r, run: run)
        let trainer = try Trainer(recipe: r, task: task, run: run)
        var audio: [Double] = []
        trainer.onRow = { row in
            if case .double(let a) = row["loss_audio"] ?? .int(0), row["kind"] == nil { audio.append(a) }
        }
        try trainer.train(fresh: true)
        #expect(audio.count == 30)
        func mean(_ xs: ArraySlice<Double>) -> Double { xs.reduce(0, +) / Double(xs.count) }
        #expect(mean(audio.suffix(5)) < 0.8 * mean(audio.prefix(5)), "audio loss \(audio.prefix(5)) → \(audio.suffix(5))")
        // Eval rows score speech: transcription and mel distance.
        let metrics = try task.speechEvalMetrics(count: 2)
        #expect(metrics["speech_mel_distance"].map { $0 > 0 && $0.isFinite } == true)
        #expect(metrics["speech_transcribe_word_acc"].map { (0...1).contains($0) } == true)

        let out = run.url.deletingLastPathComponent().appendingPathComponent("exported-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        try ModelExport.export(run: run.url.path, to: out.path)
        let loaded = try TransfusionRun(path: out.path)
        let spoken = try #require(loaded.spoken)
        #expect(spoken.codec.config == task.pairs.spoken!.codec.config && spoken.length == 8)
        let patches = loaded.model.sampleSpeech(prompt: loaded.prompt("a red circle"), count: 1,
                                                options: try loaded.imageOptions(steps: 2), rng: RNG(seed: 1))
        let wav = spoken.waveform(patches)
        #expect(wav.sampleRate == 8000 && wav.samples.count == (8 * 4 - 1) * 128)
        // The WAV round trip (written, read back, re-encoded) gives back the span's shape.
        let path = run.url.appendingPathComponent("speech.wav").path
        try AudioFile.write(wav, to: path)
        let back = spoken.span(try AudioFile.read(path, sampleRate: 8000))
        #expect(back.shape == [1, 8, spoken.patchDim])
        _ = loaded.model.transcribe(patches: back, maxTokens: 3, options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
    }

    @Test func chameleonSpeechDocumentsAreAudioCodesBetweenBOAAndEOA() throws {
        let vq = VQTokenizer(.init(channels: 8, downsample: 8, groups: 4, codebookSize: 16, codeDim: 4), rng: RNG(seed: 0))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-vq-\(UUID().uuidString).safetensors").path
        try vq.save(to: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var r = try recipe(mix: "[1, 1, 1]", extra: ", ema_decay: 0.9")
        r.model.kind = .chameleon; r.model.imageTokenizer = path; r.data.audioCodebook = 16
        let run = scratchRun()
        let task = try ChameleonTask(recipe: r, run: run)
        let c = task.chameleon.config
        #expect(c.hasAudio && c.audioLength == 8 && c.audioCodebookSize == 16)
        #expect(task.pairs.spoken!.codec.quantizerTrained)
        let b = try task.batch(task.world, firstRow: 0, rows: 2, rng: RNG(seed: 1), training: true)
        let ids = b.ids.intScalars, targets = b.targets.intScalars
        let audio = Int32(c.textVocab + c.codebookSize)
        let opens = ids.indices.filter { ids[$0] == SpecialTokens.boa }
        #expect(!opens.isEmpty)
        for i in opens {
            // BOA, 8 audio codes (each one predicted by the position before), EOA.
            #expect(ids[(i + 1)...(i + 8)].allSatisfy { $0 >= audio } && ids[i + 9] == SpecialTokens.eoa)
            #expect(targets[i..<(i + 8)].allSatisfy { $0 >= audio })
        }
        let loss = try task.loss(microBatch: 0, rng: RNG(seed: 2))
        #expect(loss.parts["loss_audio"].map { $0 > 0 && $0.isFinite } == true)
        // A checkpoint loads back with the quantised codec, and speech evaluation runs on it.
        let trainer = try Trainer(recipe: r, task: task, run: run)
        try trainer.train(fresh: true)
        let loaded = try ChameleonRun(path: run.url.path)
        #expect(loaded.spoken?.codec.quantizerTrained == true && loaded.spoken?.length == 8)
        let metrics = try task.speechEvaluation!.report(count: 1).metrics
        #expect(metrics["speech_mel_distance"].map { $0.isFinite } == true)
    }

    @Test func aSpeechMixWithoutThreeWeightsIsARecipeError() throws {
        do {
            _ = try TransfusionTask(recipe: try recipe(mix: "[1, 1]"), run: scratchRun())
            Issue.record("a two-weight speech_mix was accepted")
        } catch {
            #expect("\(error)".contains("data.speech_mix"), "\(error)")
        }
    }
}
