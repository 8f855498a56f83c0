// Word error rate and spectral distance: the numbers speech evaluation reports.
import Evaluation
import Testing

@Suite struct SpeechMetricsTests {
    @Test func wordErrorRateCountsEditsOverReferenceWords() {
        #expect(wordErrorRate("a red circle", reference: "a red circle") == 0)
        #expect(wordErrorRate("A red, circle.", reference: "a red circle") == 0)          // case and punctuation
        #expect(abs(wordErrorRate("a red square", reference: "a red circle") - 1.0 / 3) < 1e-12)   // substitution
        #expect(abs(wordErrorRate("a circle", reference: "a red circle") - 1.0 / 3) < 1e-12)       // deletion
        #expect(abs(wordErrorRate("two a red circle", reference: "a red circle") - 1.0 / 3) < 1e-12)  // insertion
        #expect(wordErrorRate("", reference: "a red circle") == 1)
        #expect(wordErrorRate("one two three four five six", reference: "a red circle") == 2)
        #expect(wordErrorRate("", reference: "") == 0)
    }

    @Test func reportAveragesExactAndWordAccuracy() {
        let items = [
            SpeechEvalItem(text: "a red circle", transcript: "a red circle", selfTranscript: "a blue circle",
                           distance: 0.5, baselineDistance: 1.5),
            SpeechEvalItem(text: "two blue squares", transcript: "two squares", selfTranscript: "two blue squares",
                           distance: 1.5, baselineDistance: 2.5),
        ]
        let m = SpeechEvalReport(items: items).metrics
        #expect(m["speech_transcribe_exact"] == 0.5 && m["speech_self_exact"] == 0.5)
        #expect(abs(m["speech_transcribe_word_acc"]! - (1 + 2.0 / 3) / 2) < 1e-12)
        #expect(abs(m["speech_self_word_acc"]! - (2.0 / 3 + 1) / 2) < 1e-12)
        #expect(m["speech_mel_distance"] == 1 && m["speech_mel_distance_unrelated"] == 2)
        // Standard errors over clips: sample sd / √n (own word accuracy 2/3 and 1: 1/6).
        #expect(abs(m["speech_self_word_acc_se"]! - 1.0 / 6) < 1e-12 && abs(m["speech_mel_distance_se"]! - 0.5) < 1e-12)
        #expect(m["speech_transcribe_exact_se"] == 0.5 && SpeechEvalReport(items: [items[0]]).metrics["speech_self_exact_se"] == 0)
        #expect(spectralDistance([0, 1, 2], [0, 1, 4]) == 4.0 / 3)
    }
}
