// `fusion data shapes | textures | edits | speech | tokenizer`: writes built-in data to folders.
import ArgumentParser
import Data
import Foundation
import Text
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Write ShapesWorld images, textures, edit triplets, spoken captions or a tokenizer to disk.",
        subcommands: [Shapes.self, TexturesCommand.self, Edits.self, SpeechCommand.self, Tokenizer.self])

    struct Shapes: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ShapesWorld images + metadata.jsonl (file_name, text) in the imagefolder convention.",
            discussion: "Example:\n  fusion data shapes --out data/shapes --count 1000 --seed 0")
        @Option(help: "Output folder.") var out: String
        @Option(parsing: .unconditional, help: "Number of examples.") var count = 1000
        @Option(parsing: .unconditional, help: "Generator seed.") var seed: UInt64 = 0
        @Option(parsing: .unconditional, help: "Image size (32 or 64).") var size = 32
        func run() throws {
            try reportingErrors("data shapes") {
                try checkCount(count, flag: "--count")
                try checkImageSize(size)
                let counter = CountProgress("image", total: count)
                try ShapesWorld(seed: seed, imageSize: size).writeFolder(examples: 0..<count, to: out) { counter.update($0) }
                counter.finish()
                print("wrote \(count) images and metadata.jsonl to \(out)")
            }
        }
    }

    struct TexturesCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "textures",
            abstract: "Captioned textures (stripes, checks, dots, rings; varied sizes) + metadata.jsonl: a folder that is not ShapesWorld.",
            discussion: "Example:\n  fusion data textures --out data/textures --count 1000 --seed 0")
        @Option(help: "Output folder.") var out: String
        @Option(parsing: .unconditional, help: "Number of examples.") var count = 1000
        @Option(parsing: .unconditional, help: "Edit triplets (recolourings) written beside them.") var edits = 0
        @Option(parsing: .unconditional, help: "Generator seed.") var seed: UInt64 = 0
        func run() throws {
            try reportingErrors("data textures") {
                try checkCount(count, flag: "--count")
                guard edits >= 0 else { throw ValidationError("--edits must be ≥ 0, got \(edits)") }
                let counter = CountProgress("row", total: count + edits)
                try Textures(seed: seed).writeFolder(examples: 0..<count, edits: 0..<edits, to: out) { counter.update($0) }
                counter.finish()
                print("wrote \(count) images\(edits > 0 ? ", \(edits) edit triplets" : "") and metadata.jsonl to \(out)")
            }
        }
    }

    struct Edits: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "ShapesWorld edit triplets: source/target PNGs + metadata.jsonl (source_file, instruction, target_file).",
            discussion: "Example:\n  fusion data edits --out data/edits --count 500 --seed 0")
        @Option(help: "Output folder.") var out: String
        @Option(parsing: .unconditional, help: "Number of triplets.") var count = 500
        @Option(parsing: .unconditional, help: "Generator seed.") var seed: UInt64 = 0
        @Option(parsing: .unconditional, help: "Image size (32 or 64).") var size = 32
        func run() throws {
            try reportingErrors("data edits") {
                try checkCount(count, flag: "--count")
                try checkImageSize(size)
                let counter = CountProgress("triplet", total: count)
                try ShapesWorld(seed: seed, imageSize: size).writeEditFolder(edits: 0..<count, to: out) { counter.update($0) }
                counter.finish()
                print("wrote \(count) edit triplets and metadata.jsonl to \(out)")
            }
        }
    }

    struct SpeechCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "speech",
            abstract: "Speak each caption of an imagefolder with espeak-ng into 16 kHz WAV files.",
            discussion: "Example:\n  fusion data speech --from data/shapes --out data/speech --limit 200 \\\n    --vary-voice")
        @Option(name: .customLong("from"), help: "Imagefolder whose captions are spoken.") var source: String
        @Option(help: "Output folder.") var out: String
        @Option(parsing: .unconditional, help: "Speak at most this many captions.") var limit: Int?
        @Option(parsing: .unconditional, help: "Sample rate in Hz.") var rate = 16000
        @Flag(help: "Give each clip its own speaking rate (130–230 words/minute) and pitch (25–75), drawn from --seed, so that equal captions are different recordings.")
        var varyVoice = false
        @Option(parsing: .unconditional, help: "Seed of the voices with --vary-voice.") var seed: UInt64 = 0
        func run() throws {
            try reportingErrors("data speech") {
                guard (1000...384_000).contains(rate) else { throw ValidationError("--rate must be 1000…384000 Hz (e.g. 16000), got \(rate)") }
                if let limit { try checkCount(limit, flag: "--limit") }
                var counter: CountProgress?
                let n = try Speech.speakFolder(from: source, to: out, sampleRate: rate, limit: limit,
                                               varyingVoice: varyVoice ? seed : nil) { done, total in
                    if counter == nil { counter = CountProgress("clip", total: total) }
                    counter?.update(done)
                }
                counter?.finish()
                print("wrote \(n) WAV files and metadata.jsonl to \(out)")
            }
        }
    }

    struct Tokenizer: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a byte-level BPE tokenizer on ShapesWorld text or a text file (one document per line).",
            discussion: "Example:\n  fusion data tokenizer --out tokenizer.json --vocab 512")
        @Option(help: "Output JSON file.") var out: String
        @Option(parsing: .unconditional, help: "Vocabulary size (including 7 special tokens and 256 bytes).") var vocab = 512
        @Option(help: "A text file to train on instead of ShapesWorld captions.") var corpus: String?
        @Option(parsing: .unconditional, help: "ShapesWorld examples to read when no corpus is given.") var count = 2000
        @Option(parsing: .unconditional, help: "Generator seed.") var seed: UInt64 = 0
        func run() throws {
            try reportingErrors("data tokenizer") { try write() }
        }

        func write() throws {
            let base = SpecialTokens.count + 256
            guard vocab >= base else {
                throw ValidationError("--vocab must be at least \(base) (7 special tokens + 256 bytes; e.g. 512), got \(vocab)")
            }
            try checkCount(count, flag: "--count")
            let text: [String]
            if let corpus {
                guard let s = try? String(contentsOfFile: corpus, encoding: .utf8) else {
                    throw ValidationError("\(corpus): cannot read as UTF-8 text")
                }
                text = s.split(separator: "\n").map(String.init)
            } else {
                let w = ShapesWorld(seed: seed)
                text = (0..<count).flatMap { i -> [String] in
                    let e = w.example(i); return [e.caption] + e.questions.map { $0.question + " " + $0.answer }
                }
            }
            let tok = BPETokenizer.train(corpus: text, vocabSize: vocab)
            try tok.save(to: out)
            let bytes = text.prefix(500).reduce(0) { $0 + $1.utf8.count }
            let tokens = text.prefix(500).reduce(0) { $0 + tok.encode($1).count }
            print(String(format: "wrote %@: %d tokens; %.2f bytes per token on the first 500 lines", out, tok.vocabSize, Double(bytes) / Double(max(tokens, 1))))
        }
    }
}

/// Throws unless `value` (the value of `flag`) is positive.
func checkCount(_ value: Int, flag: String) throws {
    guard value > 0 else { throw ValidationError("\(flag) must be a positive number, got \(value)") }
}

/// Throws unless `size` is an image size ShapesWorld can draw.
func checkImageSize(_ size: Int) throws {
    guard (24...1024).contains(size) else { throw ValidationError("--size must be 24…1024 (ShapesWorld uses 32 or 64), got \(size)") }
}
