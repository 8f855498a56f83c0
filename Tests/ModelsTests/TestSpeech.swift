// Short clips for the AudioCodec tests: espeak-ng speech when it is installed (read back through
// libsndfile), otherwise voiced synthetic "syllables" (harmonic chirps under envelopes with gaps).
// ModelsTests does not depend on the Data module, so this stands in for Speech.speak.
import Foundation
import Media

enum TestSpeech {
    static let sentences = [
        "a red circle above a blue square",
        "two green triangles on the left",
        "the yellow square is small",
        "a purple disc moves to the right",
        "three orange shapes in a row",
        "is the cyan circle large",
    ]

    /// The espeak-ng executable; nil when missing or when FUSION_TEST_NO_ESPEAK is set (to try the fallback).
    static var espeak: String? {
        if ProcessInfo.processInfo.environment["FUSION_TEST_NO_ESPEAK"] != nil { return nil }
        return ["/usr/bin/espeak-ng", "/usr/local/bin/espeak-ng"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// `count` clips at 16 kHz: spoken sentences, or synthetic ones without espeak-ng.
    static func clips(_ count: Int) -> (clips: [Audio], spoken: Bool) {
        let spoken = (0..<count).compactMap { speak(sentences[$0 % sentences.count]) }
        if spoken.count == count { return (spoken, true) }
        return ((0..<count).map { synthetic($0) }, false)
    }

    static func speak(_ text: String) -> Audio? {
        guard let espeak else { return nil }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-test-\(UUID().uuidString).wav")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: espeak)
        p.arguments = ["-v", "en-us", "-s", "160", "-w", tmp.path, "--", text]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return try? AudioFile.read(tmp.path, sampleRate: 16_000)
    }

    /// About 1.5 s of voiced "syllables": a gliding fundamental with 6 harmonics under a raised-cosine
    /// envelope, separated by short silences; deterministic in `index`.
    static func synthetic(_ index: Int, sampleRate: Int = 16_000) -> Audio {
        let syllable = sampleRate / 5, gap = sampleRate / 20
        var samples: [Float] = []
        for s in 0..<6 {
            let f0 = 110 + 25 * Double((index * 7 + s * 3) % 6), glide = 1 + 0.1 * Double((index + s) % 3 - 1)
            var phase = 0.0
            for i in 0..<syllable {
                let t = Double(i) / Double(syllable)
                phase += 2 * Double.pi * f0 * (1 + (glide - 1) * t) / Double(sampleRate)
                var v = 0.0
                for h in 1...6 { v += sin(Double(h) * phase) / Double(h) }
                samples.append(Float(0.2 * v * 0.5 * (1 - cos(2 * Double.pi * t))))
            }
            samples.append(contentsOf: [Float](repeating: 0, count: gap))
        }
        return Audio(sampleRate: sampleRate, samples: samples)
    }
}
