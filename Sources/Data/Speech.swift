// Spoken captions made locally with espeak-ng (no downloads): text → 16 kHz mono WAV through
// libsndfile, and a folder command that speaks every caption of an imagefolder. Not a speech
// model: espeak-ng is the reference voice for Fusion's audio experiments.
import Foundation
import Media

public enum SpeechError: Error, CustomStringConvertible {
    case espeakMissing
    case espeakFailed(String, Int32, String)

    public var description: String {
        switch self {
        case .espeakMissing:
            return "espeak-ng is not installed: run `make setup` (or apt-get install espeak-ng)"
        case .espeakFailed(let text, let code, let err):
            return "espeak-ng failed (exit \(code)) speaking \"\(text.prefix(40))\": \(err)"
        }
    }
}

public enum Speech {
    /// The espeak-ng executable, when installed.
    public static var espeak: String? {
        ["/usr/bin/espeak-ng", "/usr/local/bin/espeak-ng"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Speaks `text` with espeak-ng (`pitch` 0–99, 50 its default) and returns mono audio at `sampleRate`.
    public static func speak(_ text: String, sampleRate: Int = 16000, voice: String = "en-us", wordsPerMinute: Int = 160,
                             pitch: Int = 50) throws -> Audio {
        guard let espeak else { throw SpeechError.espeakMissing }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-speak-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: espeak)
        p.arguments = ["-v", voice, "-s", String(wordsPerMinute), "-p", String(pitch), "-w", tmp.path, "--", text]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let msg = String(data: err.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8) ?? ""
            throw SpeechError.espeakFailed(text, p.terminationStatus, msg)
        }
        return try AudioFile.read(tmp.path, sampleRate: sampleRate)
    }

    /// The speaking rates and pitches `speakFolder(varyingVoice:)` draws from.
    public static let variedRates = 130...230, variedPitches = 25...75

    /// Speaks the caption of every image row of the imagefolder `source` into `out`
    /// (NNNNNN.wav + metadata.jsonl rows with `file_name`, `text`, `image_file`, `wpm` and `pitch`):
    /// at 160 words a minute and pitch 50, or with `varyingVoice` (a seed) each clip at its own rate
    /// and pitch drawn from ``variedRates`` and ``variedPitches``, so that the same words are never
    /// the same waveform twice. Returns the number of files written.
    @discardableResult
    public static func speakFolder(from source: String, to out: String, sampleRate: Int = 16000, limit: Int? = nil,
                                   varyingVoice seed: UInt64? = nil,
                                   progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> Int {
        let meta = try FolderMetadata(folder: source)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var lines: [String] = []
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (i, pair) in meta.pairs.prefix(limit ?? Int.max).enumerated() {
            var (rate, pitch) = (160, 50)
            if let seed {
                var rng = SplitMix64(seed: seed, stream: 0x5BEEC4_0F, index: i)
                rate = variedRates.lowerBound + Int(rng.next() % UInt64(variedRates.count))
                pitch = variedPitches.lowerBound + Int(rng.next() % UInt64(variedPitches.count))
            }
            let audio = try speak(pair.text, sampleRate: sampleRate, wordsPerMinute: rate, pitch: pitch)
            let name = String(format: "%06d.wav", i)
            try AudioFile.write(audio, to: (out as NSString).appendingPathComponent(name))
            struct Row: Encodable {
                var file_name: String, text: String, image_file: String, wpm: Int, pitch: Int
            }
            let row = Row(file_name: name, text: pair.text, image_file: pair.fileName, wpm: rate, pitch: pitch)
            lines.append(String(data: try enc.encode(row), encoding: .utf8)!)
            progress?(lines.count, min(meta.pairs.count, limit ?? Int.max))
        }
        let url = URL(fileURLWithPath: (out as NSString).appendingPathComponent(FolderMetadata.fileName))
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return lines.count
    }
}
