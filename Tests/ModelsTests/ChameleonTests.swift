// The Chameleon baseline: image codes live above the text vocabulary, the loss splits into text
// and image parts that add up to the whole, sampling only ever emits codes (with and without
// guidance, cached equal to uncached), and captions only ever contain text ids.
import Foundation
import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

private func tiny() -> Chameleon {
    let m = Chameleon(ChameleonConfig(textVocab: 20, codebookSize: 12, gridSize: 2,
                                      decoder: DecoderConfig(dim: 16, layers: 2, heads: 2, qkNorm: true)),
                      rng: RNG(seed: 1))
    m.initialise(rng: RNG(seed: 2))
    return m
}

@Suite struct ChameleonTests {
    @Test func imageTokensSitAboveTheTextVocabulary() {
        let m = tiny()
        #expect(m.imageTokens(codes: [0, 5, 11, 3]) == [SpecialTokens.boi, 20, 25, 31, 23, SpecialTokens.eoi])
        #expect(m.config.vocab == 32 && m.config.tokensPerImage == 4)
    }

    @Test func lossPartsSplitTheTargetsAndGradientsCheck() {
        let m = tiny()
        let ids: [Int32] = [SpecialTokens.bos, 10, 11] + m.imageTokens(codes: [1, 2, 3, 4]) + [SpecialTokens.eos]
        let targets = Array(ids.dropFirst()) + [-1]
        let x = Tensor(ints: ids, shape: [1, ids.count]), y = Tensor(ints: targets, shape: [1, ids.count])
        let mask = AttentionMask.causal(batch: 1, queries: ids.count)
        let positions = Tensor(ints: (0..<ids.count).map { Int32($0) })
        let l = m.loss(x, targets: y, mask: mask, positions: positions)
        // The mean over all 9 targets = (4 text · text CE + EOI's CE + 4 image · image CE) / 9: the
        // text part leaves EOI out (Transfusion never predicts it), the image part is the 4 codes.
        func only(_ keep: (Int32) -> Bool) -> Float {
            m.loss(x, targets: Tensor(ints: targets.map { $0 >= 0 && keep($0) ? $0 : -1 }, shape: [1, ids.count]),
                   mask: mask, positions: positions).total.item
        }
        let textCount = targets.filter { $0 >= 0 && $0 < 20 && $0 != SpecialTokens.eoi }.count, imageCount = targets.filter { $0 >= 20 }.count
        #expect(textCount == 4 && imageCount == 4)
        #expect(abs(l.text - only { $0 < 20 && $0 != SpecialTokens.eoi }) < 1e-5 && abs(l.spans[.image]! - only { $0 >= 20 }) < 1e-5)
        #expect(abs(l.total.item - (Float(textCount) * l.text + only { $0 == SpecialTokens.eoi } + Float(imageCount) * l.spans[.image]!) / 9) < 1e-5)
        gradCheck([m.lm.embed.weight]) { _ in m.loss(x, targets: y, mask: mask, positions: positions).total }
    }

    @Test(arguments: [Float(1), 3])
    func sampledCodesAreCodesAndCachedEqualsUncached(cfg: Float) {
        let m = tiny()
        let prompt: [Int32] = [SpecialTokens.bos, 7, 8]
        let codes = m.sampleCodes(prompt: prompt, count: 3, options: SamplingOptions(temperature: 0), cfgScale: cfg,
                                  rng: RNG(seed: 3))
        #expect(codes.shape == [3, 2, 2])
        #expect(codes.intScalars.allSatisfy { $0 >= 0 && $0 < 12 })
        // Greedy decoding recomputed from scratch at every position gives the same codes.
        var seq = prompt + [SpecialTokens.boi], uncond: [Int32] = [SpecialTokens.bos, SpecialTokens.boi]
        var expected: [Int32] = []
        for _ in 0..<4 {
            func last(_ s: [Int32]) -> [Float] {
                let logits = withoutGrad {
                    m.lm(Tensor(ints: s, shape: [1, s.count]), mask: .causal(batch: 1, queries: s.count),
                         positions: Tensor(ints: (0..<s.count).map { Int32($0) }))
                }.scalars
                return Array(logits[((s.count - 1) * 32 + 20)..<(s.count * 32)])
            }
            let c = last(seq), u = last(uncond)
            let guided = cfg > 1 ? zip(c, u).map { $1 + cfg * ($0 - $1) } : c
            let best = Int32(guided.indices.max { guided[$0] < guided[$1] }!)
            expected.append(best)
            seq.append(20 + best); uncond.append(20 + best)
        }
        #expect(Array(codes.intScalars.prefix(4)) == expected)
    }

    /// Free generation opens images: after BOI the codes are sampled as a span, the cache takes
    /// `BOI codes EOI`, and text goes on; a span that would pass the context ends it before BOI.
    @Test func generateSamplesTheImagesItOpensAndGoesOn() throws {
        let m = tiny()
        let prompt: [Int32] = [SpecialTokens.bos, 7, 8]
        let text = SamplingOptions(temperature: 3), codes = SamplingOptions(temperature: 1)
        // Near-uniform text over 20 ids: some seed opens an image and writes text after it.
        let found = (0..<200).lazy.map { seed in
            (seed, m.generate(prompt: prompt, maxTokens: 24, text: text, codes: codes, cfgScale: 2, rng: RNG(seed: UInt64(seed))))
        }.first { _, segments in
            segments.count >= 3 && { if case .image = segments[1] { return true } else { return false } }()
        }
        let (seed, segments) = try #require(found, "no seed of 200 opened an image")
        guard case .text(let before) = segments[0], case .image(let image) = segments[1], case .text(let after) = segments[2] else {
            Issue.record("segments \(segments)"); return
        }
        #expect(before.last == SpecialTokens.boi && before.dropLast().allSatisfy { $0 < 20 && $0 != SpecialTokens.eos })
        #expect(image.shape == [1, 2, 2] && image.intScalars.allSatisfy { $0 >= 0 && $0 < 12 })
        #expect(after.first == SpecialTokens.eoi && after.allSatisfy { $0 < 20 })
        // The same seed with room for the prompt and the text before BOI, but not the image: it stops there.
        let room = prompt.count + before.count - 1 + 1 + 4
        let short = m.generate(prompt: prompt, maxTokens: 24, text: text, codes: codes, cfgScale: 2, maxPositions: room,
                               rng: RNG(seed: UInt64(seed)))
        #expect(short.count == (before.count > 1 ? 1 : 0))
        if case .text(let ids) = short.first { #expect(ids == Array(before.dropLast())) }
    }

    @Test func captionsAreText() {
        let m = tiny()
        let ids = m.caption(codes: [1, 2, 3, 4], maxTokens: 6, options: SamplingOptions(temperature: 1), rng: RNG(seed: 4))
        #expect(ids.count <= 6 && ids.allSatisfy { $0 < 20 })
    }
}
