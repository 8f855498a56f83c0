// Spoken captions: espeak-ng output read back through libsndfile and soxi, with durations in
// the range expected for the words spoken.
import Data
import Foundation
import Media
import Testing

@Suite struct SpeechTests {
    @Test func speaksCaptionsIntoReadableWavs() throws {
        guard Speech.espeak != nil else { print("espeak-ng not installed: skipped"); return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-speech-\(UUID().uuidString)").path
        let images = dir + "/images", speech = dir + "/speech"
        try ShapesWorld(seed: 4).writeFolder(examples: 0..<5, to: images)
        #expect(try Speech.speakFolder(from: images, to: speech) == 5)
        let meta = try String(contentsOfFile: speech + "/metadata.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(meta.count == 5)
        for line in meta {
            let row = try JSONDecoder().decode([String: StringOrInt].self, from: Data(line.utf8)).compactMapValues(\.string)
            let audio = try AudioFile.read(speech + "/" + row["file_name"]!)
            #expect(audio.sampleRate == 16000)
            let seconds = Double(audio.samples.count) / 16000
            let words = row["text"]!.split(separator: " ").count
            // espeak-ng at 160 words/minute: ~0.375 s a word, plus leading/trailing silence.
            #expect(seconds > 0.2 * Double(words) && seconds < 0.8 * Double(words) + 1.0, "\(seconds) s for \(words) words")
            #expect(audio.samples.map(abs).max()! > 0.05, "silent audio")
        }
        // soxi (from sox) reads the files too.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["soxi", "-r", speech + "/000000.wav"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        if (try? p.run()) != nil {
            p.waitUntilExit()
            if p.terminationStatus == 0 {
                let rate = String(data: out.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8)!
                #expect(rate.trimmingCharacters(in: .whitespacesAndNewlines) == "16000")
            } else { print("soxi unavailable: skipped") }
        }
    }

    @Test func aVariedVoiceSpeaksEachClipAtItsOwnRateAndPitch() throws {
        guard Speech.espeak != nil else { print("espeak-ng not installed: skipped"); return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-voices-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ShapesWorld(seed: 4).writeFolder(examples: 0..<6, to: dir + "/images")
        #expect(try Speech.speakFolder(from: dir + "/images", to: dir + "/speech", sampleRate: 8000, varyingVoice: 3) == 6)
        struct Row: Decodable { var text: String, wpm: Int, pitch: Int }
        let rows = try String(contentsOfFile: dir + "/speech/metadata.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Row.self, from: Data($0.utf8))
        }
        let rates = rows.map(\.wpm), pitches = rows.map(\.pitch)
        #expect(rates.allSatisfy(Speech.variedRates.contains) && pitches.allSatisfy(Speech.variedPitches.contains))
        #expect(Set(rates).count > 1 && Set(pitches).count > 1, "\(rates) \(pitches)")
        // The folder reads as recordings; a clip is espeak-ng at its row's rate and pitch.
        let held = try FolderSpeech(folder: dir + "/speech", split: .train, heldOut: 0)
        #expect(held.count == 6)
        let again = try Speech.speak(rows[0].text, sampleRate: 8000, wordsPerMinute: rates[0], pitch: pitches[0])
        #expect(try held.speech(0, sampleRate: 8000).samples.count == again.samples.count)
        // The same words faster are shorter.
        let slow = try Speech.speak("two red circles", sampleRate: 8000, wordsPerMinute: 130)
        let fast = try Speech.speak("two red circles", sampleRate: 8000, wordsPerMinute: 230)
        #expect(fast.samples.count < slow.samples.count * 3 / 4)
    }
}

/// A metadata value: the text keys, or a number (`wpm`, `pitch`).
private enum StringOrInt: Decodable {
    case string(String), int(Int)
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .string(s) } else { self = .int(try c.decode(Int.self)) }
    }
    var string: String? { if case .string(let s) = self { return s } else { return nil } }
}
