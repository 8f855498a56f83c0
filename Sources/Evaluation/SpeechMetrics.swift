// Scores of generated and transcribed speech: word error rate (Levenshtein distance over words,
// divided by the reference's length) and the mean squared distance between two log-mel
// spectrograms in normalised units. Not a recogniser: transcripts come from the model.
import Foundation

/// Word error rate of `hypothesis` against `reference`: (substitutions + insertions + deletions) /
/// reference words, after lower-casing and splitting on anything that is not a letter or digit.
/// 0 is a perfect transcript; it can exceed 1 when the hypothesis is much longer.
///
/// ```swift
/// wordErrorRate("a red circle", reference: "a red square")   // 1/3
/// ```
public func wordErrorRate(_ hypothesis: String, reference: String) -> Double {
    func words(_ s: String) -> [Substring] {
        s.lowercased().split { !($0.isLetter || $0.isNumber) }
    }
    let h = words(hypothesis), r = words(reference)
    guard !r.isEmpty else { return h.isEmpty ? 0 : 1 }
    var previous = Array(0...h.count), current = previous
    for i in 1...r.count {
        current[0] = i
        for j in stride(from: 1, through: h.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r[i - 1] == h[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return Double(previous[h.count]) / Double(r.count)
}

/// Mean squared difference between two spectrograms of the same shape (e.g. normalised log-mel
/// patches, where 1 is one standard deviation of the data per bin).
public func spectralDistance(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count && !a.isEmpty, "spectralDistance: \(a.count) vs \(b.count) values")
    var s = 0.0
    for i in a.indices { let e = Double(a[i] - b[i]); s += e * e }
    return s / Double(a.count)
}

/// Per-clip speech scores, averaged into metrics rows by `SpeechEvalReport`.
public struct SpeechEvalItem: Sendable {
    public var text: String
    /// The model's transcript of the reference speech (espeak-ng's, or a folder's recording).
    public var transcript: String
    /// The model's transcript of its own generated speech (through the waveform written to WAV).
    public var selfTranscript: String
    /// Spectral distance of the generated speech to the reference, and of another caption's
    /// reference to this one (what unrelated speech scores).
    public var distance: Double
    public var baselineDistance: Double

    public init(text: String, transcript: String, selfTranscript: String, distance: Double, baselineDistance: Double) {
        self.text = text; self.transcript = transcript; self.selfTranscript = selfTranscript
        self.distance = distance; self.baselineDistance = baselineDistance
    }
}

/// Speech evaluation over held-out spoken captions.
public struct SpeechEvalReport: Sendable, CustomStringConvertible {
    public var items: [SpeechEvalItem]

    public init(items: [SpeechEvalItem]) { self.items = items }

    func exact(_ a: String, _ b: String) -> Double { wordErrorRate(a, reference: b) == 0 ? 1 : 0 }

    /// Each per-clip score of the metrics rows, by name.
    var scores: [(String, (SpeechEvalItem) -> Double)] {
        [
            ("speech_transcribe_exact", { exact($0.transcript, $0.text) }),
            ("speech_transcribe_word_acc", { max(0, 1 - wordErrorRate($0.transcript, reference: $0.text)) }),
            ("speech_self_exact", { exact($0.selfTranscript, $0.text) }),
            ("speech_self_word_acc", { max(0, 1 - wordErrorRate($0.selfTranscript, reference: $0.text)) }),
            ("speech_mel_distance", \.distance),
            ("speech_mel_distance_unrelated", \.baselineDistance),
        ]
    }

    /// `speech_*` entries for metrics rows: transcription exact-match rate and word accuracy
    /// (1 − WER, floored at 0) on reference speech and on the model's own, and spectral distances,
    /// each with its standard error over clips (`…_se`: sample standard deviation / √n, 0 for one clip).
    public var metrics: [String: Double] {
        var out: [String: Double] = [:]
        for (name, score) in scores {
            let (mean, standardError) = items.isEmpty ? (0, 0) : meanAndStandardError(items.map(score))
            out[name] = mean
            out[name + "_se"] = standardError
        }
        return out
    }

    public var description: String {
        let m = metrics
        func pct(_ k: String) -> String { String(format: "%5.1f%% ± %.1f", 100 * (m[k] ?? 0), 100 * (m[k + "_se"] ?? 0)) }
        var lines = [
            "clips                         \(items.count)",
            "transcription (reference)     exact \(pct("speech_transcribe_exact"))  word accuracy \(pct("speech_transcribe_word_acc"))",
            "transcription (own speech)    exact \(pct("speech_self_exact"))  word accuracy \(pct("speech_self_word_acc"))",
            String(format: "mel distance to reference     %.3f ± %.3f  (another caption's speech: %.3f)",
                   m["speech_mel_distance"] ?? 0, m["speech_mel_distance_se"] ?? 0, m["speech_mel_distance_unrelated"] ?? 0),
        ]
        for item in items.prefix(6) {
            lines.append("  \"\(item.text)\" → heard \"\(item.transcript)\", own speech heard \"\(item.selfTranscript)\"")
        }
        return lines.joined(separator: "\n")
    }
}
