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

    /// Speaks `text` with espeak-ng and returns mono audio at `sampleRate`.
    public static func speak(_ text: String, sampleRate: Int = 16000, voice: String = "en-us", wordsPerMinute: Int = 160) throws -> Audio {
        guard let espeak else { throw SpeechError.espeakMissing }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-speak-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: espeak)
        p.arguments = ["-v", voice, "-s", String(wordsPerMinute), "-w", tmp.path, "--", text]
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

    /// Speaks the caption of every image row of the imagefolder `source` into `out`
    /// (NNNNNN.wav + metadata.jsonl rows with `file_name`, `text` and `image_file`).
    /// Returns the number of files written.
    @discardableResult
    public static func speakFolder(from source: String, to out: String, sampleRate: Int = 16000, limit: Int? = nil,
                                   progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> Int {
        let meta = try FolderMetadata(folder: source)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var lines: [String] = []
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for (i, pair) in meta.pairs.prefix(limit ?? Int.max).enumerated() {
            let audio = try speak(pair.text, sampleRate: sampleRate)
            let name = String(format: "%06d.wav", i)
            try AudioFile.write(audio, to: (out as NSString).appendingPathComponent(name))
            let row = ["file_name": name, "text": pair.text, "image_file": pair.fileName]
            lines.append(String(data: try enc.encode(row), encoding: .utf8)!)
            progress?(lines.count, min(meta.pairs.count, limit ?? Int.max))
        }
        let url = URL(fileURLWithPath: (out as NSString).appendingPathComponent(FolderMetadata.fileName))
        try (lines.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return lines.count
    }
}
