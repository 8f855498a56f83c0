// Speech in the Chameleon baseline: audio codes sit above the image codes, the loss splits into
// text, image and audio parts that add up to the whole, sampled speech codes are audio codes (cached
// equal to uncached), and transcripts are text ids only. Old configs read without audio codes.
import Foundation
import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

/// Text ids 0..<20, image codes 20..<32, audio codes 32..<40; 3 codes per audio span.
private func speaking() -> Chameleon {
    let m = Chameleon(ChameleonConfig(textVocab: 20, codebookSize: 12, gridSize: 2,
                                      decoder: DecoderConfig(dim: 16, layers: 2, heads: 2, qkNorm: true),
                                      audioCodebookSize: 8, audioLength: 3),
                      rng: RNG(seed: 1))
    m.initialise(rng: RNG(seed: 2))
    return m
}

@Suite struct ChameleonAudioTests {
    @Test func audioTokensSitAboveTheImageCodes() {
        let m = speaking()
        #expect(m.config.vocab == 40 && m.config.hasAudio)
        #expect(m.audioTokens(codes: [0, 7, 2]) == [SpecialTokens.boa, 32, 39, 34, SpecialTokens.eoa])
    }

    @Test func lossPartsAddUpToTheWhole() {
        let m = speaking()
        let ids: [Int32] = [SpecialTokens.bos, 10] + m.imageTokens(codes: [1, 2, 3, 4]) + m.audioTokens(codes: [5, 6, 7])
            + [SpecialTokens.eos]
        let targets = Array(ids.dropFirst()) + [-1]
        let x = Tensor(ints: ids, shape: [1, ids.count]), y = Tensor(ints: targets, shape: [1, ids.count])
        let mask = AttentionMask.causal(batch: 1, queries: ids.count)
        let positions = Tensor(ints: (0..<ids.count).map { Int32($0) })
        let l = m.loss(x, targets: y, mask: mask, positions: positions)
        // EOI and EOA close spans of codes: scored in the total, left out of the text part.
        let markers: Set<Int32> = [SpecialTokens.eoi, SpecialTokens.eoa]
        let text = targets.filter { $0 >= 0 && $0 < 20 && !markers.contains($0) }.count
        let image = targets.filter { $0 >= 20 && $0 < 32 }.count, audio = targets.filter { $0 >= 32 }.count
        #expect(text == 4 && image == 4 && audio == 3)
        let closing = m.loss(x, targets: Tensor(ints: targets.map { markers.contains($0) ? $0 : -1 }, shape: [1, ids.count]),
                             mask: mask, positions: positions).total.item
        let whole = (Float(text) * l.text + 2 * closing + Float(image) * l.spans[.image]! + Float(audio) * l.spans[.audio]!) / Float(text + 2 + image + audio)
        #expect(abs(l.total.item - whole) < 1e-5)
    }

    @Test func sampledSpeechCodesAreAudioCodesAndCachedEqualsUncached() {
        let m = speaking()
        let prompt: [Int32] = [SpecialTokens.bos, 7, 8]
        let codes = m.sampleSpeechCodes(prompt: prompt, count: 2, options: SamplingOptions(temperature: 0), rng: RNG(seed: 3))
        #expect(codes.shape == [2, 3] && codes.intScalars.allSatisfy { $0 >= 0 && $0 < 8 })
        // Greedy over the audio logits, recomputed from scratch at every position.
        var seq = prompt + [SpecialTokens.boa], expected: [Int32] = []
        for _ in 0..<3 {
            let logits = withoutGrad {
                m.lm(Tensor(ints: seq, shape: [1, seq.count]), mask: .causal(batch: 1, queries: seq.count),
                     positions: Tensor(ints: (0..<seq.count).map { Int32($0) }))
            }.scalars
            let audio = Array(logits[((seq.count - 1) * 40 + 32)..<(seq.count * 40)])
            let best = Int32(audio.indices.max { audio[$0] < audio[$1] }!)
            expected.append(best)
            seq.append(32 + best)
        }
        #expect(Array(codes.intScalars[0..<3]) == expected && Array(codes.intScalars[3..<6]) == expected)
    }

    @Test func transcriptsAreTextOnlyAndOldConfigsHaveNoAudio() throws {
        let m = speaking()
        let ids = m.transcribe(codes: [1, 2, 3], maxTokens: 6, options: SamplingOptions(temperature: 1), rng: RNG(seed: 4))
        #expect(!ids.isEmpty && ids.count <= 6 && ids.allSatisfy { $0 >= Int32(SpecialTokens.count) && $0 < 20 })
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(m.config)) as! [String: Any]
        old["audioCodebookSize"] = nil; old["audioLength"] = nil
        let config = try JSONDecoder().decode(ChameleonConfig.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(!config.hasAudio && config.vocab == 32)
    }
}
