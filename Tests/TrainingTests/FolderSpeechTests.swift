// Speech documents from a folder of recordings (`data.speech`): both image–text families read the
// folder's `.wav` rows and transcripts — here tone sequences written by a test helper, neither
// ShapesWorld nor espeak-ng — split like images, their training recordings read once per epoch,
// held-out recordings scored and never trained on; each bad recipe or row is an error naming its
// key or its file and line.
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

/// Clip `i` of a tone folder: two or three tones named low, mid or high (250, 500, 1000 Hz, 0.12 s
/// each with 0.03 s of silence after), at 8 kHz, and its transcript.
func toneClip(_ i: Int) -> (audio: Audio, text: String) {
    let names = ["low", "mid", "high"], hertz: [Float] = [250, 500, 1000], rate = 8000
    var rng = SplitMix64(seed: 0x7013, stream: 0, index: i)
    let words = (0..<(2 + Int(rng.next() % 2))).map { _ in Int(rng.next() % 3) }
    var samples: [Float] = []
    for w in words {
        samples += (0..<(rate * 12 / 100)).map { 0.5 * sin(2 * Float.pi * hertz[w] * Float($0) / Float(rate)) }
        samples += [Float](repeating: 0, count: rate * 3 / 100)
    }
    return (Audio(sampleRate: rate, samples: samples), words.map { names[$0] }.joined(separator: " "))
}

/// A folder of `count` tone clips (tone-NNN.wav) with `extra` metadata lines appended.
func writeToneFolder(count: Int, extra: [String] = []) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-tones-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    var lines: [String] = []
    for i in 0..<count {
        let (audio, text) = toneClip(i)
        let name = String(format: "tone-%03d.wav", i)
        try AudioFile.write(audio, to: (path as NSString).appendingPathComponent(name))
        lines.append("{\"file_name\": \"\(name)\", \"text\": \"\(text)\"}")
    }
    try ((lines + extra).joined(separator: "\n") + "\n").write(toFile: (path as NSString).appendingPathComponent("metadata.jsonl"),
                                                               atomically: true, encoding: .utf8)
    return path
}

private let toneFolder: String = { try! writeToneFolder(count: 60) }()

private let imageFolder: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-textures-\(UUID().uuidString)").path
    try! Textures(seed: 12).writeFolder(examples: 0..<40, to: path)
    return path
}()

/// A recipe of `kind` on the texture folder with half of its documents speech from `speech`.
private func speechRecipe(_ kind: String, speech: String? = toneFolder, overrides: [String] = []) throws -> Recipe {
    let tokenizer = try randomImageTokenizer(for: kind)
    return try Recipe.parse("""
        name: \(kind)-speech-folder
        seed: 5
        model: {kind: \(kind), preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tokenizer)}
        data: {source: folder, path: \(imageFolder), image_size: 32, held_out: 0.2, tokenizer_vocab: 300, seq_len: 96, docs_per_row: 2,
               speech_fraction: 0.5, speech_mix: [1, 1, 0], audio_patches: 8, audio_codebook: 16\(speech.map { ", speech: \($0)" } ?? "")}
        diffusion: {sample_steps: 2}
        train: {steps: 1, batch_size: 4}
        eval: {every: 0, documents: 64, speech: 2}
        """, file: "\(kind).yaml", overrides: overrides)
}

@Suite(.serialized) struct FolderSpeechTests {
    @Test func bothFamiliesTrainOnAFoldersRecordingsAndScoreItsHeldOutOnes() throws {
        let train = try FolderSpeech(folder: toneFolder, split: .train, heldOut: 0.2)
        let held = try FolderSpeech(folder: toneFolder, split: .heldOut, heldOut: 0.2)
        #expect(train.rows.count + held.rows.count == 60 && held.rows.count >= 2)
        #expect(Set(train.rows.map(\.fileName)).isDisjoint(with: held.rows.map(\.fileName)))
        for kind in ["transfusion", "chameleon"] {
            let run = scratchRun()
            let recipe = try speechRecipe(kind)
            let probe = try ImageTextTaskProbe(kind: kind, recipe: recipe, run: run)
            let task = probe.task, pairs = probe.pairs
            let spoken = try #require(pairs.spoken)
            // The codec was fitted on the folder's training recordings and saved in the run.
            #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent(SpokenCaptions.fileName).path))
            #expect(kind == "transfusion" || spoken.codec.quantizerTrained)
            // The tokenizer learned the transcripts' words too.
            #expect(pairs.tokenizer.encode(" high").count == 1, "\(pairs.tokenizer.encode(" high"))")
            // One epoch of speech documents reads every training recording once, the next in another order.
            let n = train.rows.count
            let epoch0 = (0..<n).map { pairs.speechIndex(.train, document: $0, index: 0) }
            let epoch1 = (n..<(2 * n)).map { pairs.speechIndex(.train, document: $0, index: 0) }
            #expect(epoch0.sorted() == Array(0..<n) && epoch1.sorted() == Array(0..<n) && epoch0 != epoch1)
            // Training speech documents carry a training recording's transcript and its patches.
            var seen = 0
            for row in 0..<8 {
                let docs = try pairs.documents(pairs.world, row: row, perRow: 2, imageLength: 16, training: true, rng: RNG(seed: UInt64(row)))
                for doc in docs where doc.speech != nil {
                    seen += 1
                    #expect(doc.speech != .fromImage)
                    if !doc.caption.isEmpty { #expect(doc.caption == pairs.tokenizer.encode(train.transcript(doc.index))) }
                }
            }
            #expect(seen > 0)
            let expected = spoken.fixedPatches(spoken.codec.encode(try AudioFile.read(
                (toneFolder as NSString).appendingPathComponent(train.rows[3].fileName), sampleRate: 8000)))
            #expect(try spoken.patches(pairs.speechSource(.train), [3], cached: false)[0] == expected)
            // A training step has an audio loss; the held-out speech documents are held-out recordings.
            let loss = try task.loss(microBatch: 0, rng: RNG(seed: 1))
            #expect(loss.total.item.isFinite && loss.parts["loss_audio"].map { $0 > 0 && $0.isFinite } == true, "\(loss.parts)")
            let heldOutSpeech = (0..<pairs.heldOut.count!).map(pairs.heldOutDocument).filter { $0.speech != nil }
            #expect(!heldOutSpeech.isEmpty)
            #expect(heldOutSpeech.allSatisfy { $0.index < held.rows.count && $0.caption == pairs.tokenizer.encode(held.transcript($0.index)) })
            // Eval rows score the held-out speech (eval.speech 2), and the held-out loss has its audio part.
            let metrics = try task.evaluate(step: 0, rng: RNG(seed: 0))
            #expect(metrics["speech_mel_distance"].map { $0 > 0 && $0.isFinite } == true, "\(kind): \(metrics)")
            #expect(metrics["speech_transcribe_word_acc"].map { (0...1).contains($0) } == true, "\(kind): \(metrics)")
            // Sample files speak held-out transcripts; no image is described aloud (the run never trained it).
            let dir = run.url.appendingPathComponent("samples")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            _ = try task.writeSamples(step: 0, to: dir, rng: RNG(seed: 2))
            let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            #expect(files.contains("speech-step-00000000-0.wav") && !files.contains("speech-step-00000000-2.wav"), "\(files)")
            let said = try String(contentsOf: dir.appendingPathComponent("speech-step-00000000.txt"), encoding: .utf8)
            #expect(said.contains(held.transcript(0)), "\(said)")
        }
    }

    @Test func theSpeechSuiteOfATrainedRunScoresItsFoldersHeldOutRecordings() throws {
        let run = scratchRun()
        let recipe = try speechRecipe("transfusion", overrides: ["train.checkpoint_every=1"])
        let task = try TransfusionTask(recipe: recipe, run: run)
        try Trainer(recipe: recipe, task: task, run: run).train(fresh: true)
        let speaking = try SpeakingRun(path: run.url.path, steps: 2)
        let heldOut = try speaking.heldOutSpeech(shapesSeed: 0)
        let held = try FolderSpeech(folder: toneFolder, split: .heldOut, heldOut: 0.2)
        #expect(heldOut.count == held.rows.count && heldOut.transcript(0) == held.transcript(0))
        // More clips asked for than the folder holds out: all but the last are scored (each against the next).
        let evaluation = speaking.evaluation(heldOut: heldOut)
        #expect(evaluation.scored(500) == held.rows.count - 1)
        let report = try evaluation.report(count: 500)
        #expect(report.items.count == held.rows.count - 1 && report.items[0].text == held.transcript(0))
    }

    @Test func speechRecipesThatCannotWorkAreErrorsNamingTheKey() throws {
        let cases: [(overrides: [String], speech: String?, key: String, says: String)] = [
            (["data.speech_fraction=0"], toneFolder, "data.speech", "data.speech_fraction is 0"),
            (["data.speech_mix=[1, 1, 1]"], toneFolder, "data.speech_mix", "image → speech"),
            ([], nil, "data.speech_fraction", "'speech: DIR'"),
            (["data.speech_fraction=0"], nil, "eval.speech", "no speech documents"),
            (["data.speech=\(imageFolder)"], toneFolder, "metadata.jsonl", "no audio rows"),
        ]
        for c in cases {
            for kind in ["transfusion", "chameleon"] {
                let recipe = try speechRecipe(kind, speech: c.speech, overrides: c.overrides)
                do {
                    _ = kind == "transfusion" ? try TransfusionTask(recipe: recipe, run: scratchRun()) as TrainingTask
                                              : try ChameleonTask(recipe: recipe, run: scratchRun())
                    Issue.record("\(kind) \(c.overrides) was accepted")
                } catch {
                    #expect("\(error)".contains(c.key) && "\(error)".contains(c.says), "\(kind) \(c.overrides): \(error)")
                }
            }
        }
    }

    @Test func badRecordingsAreErrorsNamingFileAndLineOrCountedSkips() throws {
        // Line 61: an empty transcript; line 62: a file that is not audio. Both land on some side of the split.
        let folder = try writeToneFolder(count: 60, extra: ["{\"file_name\": \"silent.wav\", \"text\": \" \"}",
                                                            "{\"file_name\": \"broken.wav\", \"text\": \"low\"}"])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try AudioFile.write(toneClip(0).audio, to: (folder as NSString).appendingPathComponent("silent.wav"))
        try "not a wave".write(toFile: (folder as NSString).appendingPathComponent("broken.wav"), atomically: true, encoding: .utf8)
        let metadata = (folder as NSString).appendingPathComponent("metadata.jsonl")
        do {
            _ = try TransfusionTask(recipe: try speechRecipe("transfusion", speech: folder), run: scratchRun())
            Issue.record("bad recordings were accepted")
        } catch {
            let text = "\(error)"
            #expect((text.contains("\(metadata):61: silent.wav: empty \"text\"") || text.contains("\(metadata):62: "))
                    && !text.contains("Fatal"), "\(text)")
        }
        // With data.skip_bad the two rows are left out and the rest train.
        let task = try TransfusionTask(recipe: try speechRecipe("transfusion", speech: folder, overrides: ["data.skip_bad=true"]),
                                       run: scratchRun())
        let sides = try #require(task.pairs.speech)
        #expect((sides.train.count ?? 0) + (sides.heldOut.count ?? 0) == 60)
        let skipped = (sides.train as! FolderSpeech).skipped + (sides.heldOut as! FolderSpeech).skipped
        #expect(skipped.count == 2 && skipped.contains { $0.contains(":62: ") && $0.contains("broken.wav") }, "\(skipped)")
    }
}
