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
            let row = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
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
}
