// The VAR family's model: parity with the float64 PyTorch twin (Tests/Fixtures/make_var_reference.py:
// code vectors from a codebook and code maps, the block-causal forward, the loss parts and every
// parameter gradient), the next-scale inputs, and the KV-cached samplers against the full
// sequence: greedy codes, guided and unguided, are the argmax of a teacher-forced forward over
// the codes they produced, and a cached caption is the full sequence's greedy continuation.
import Data
import Foundation
@testable import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

@Suite struct VARTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/var_reference.safetensors")

    /// The twin's sizes: 24 text ids, 6 codes of dimension 3, scales 1, 2, 4.
    static func twinConfig() -> VARConfig {
        VARConfig(textVocab: 24, codebookSize: 6, codeDim: 3, scales: [1, 2, 4],
                  decoder: DecoderConfig(dim: 32, layers: 2, heads: 4, mlpHidden: 48, qkNorm: true))
    }

    /// A tokenizer whose codebook and scales are the model's (16×16 images, 4× down: a 4×4 grid).
    static func tokenizer(_ config: VARConfig, seed: UInt64 = 0) -> MultiScaleVQTokenizer {
        MultiScaleVQTokenizer(.init(base: .init(channels: 8, downsample: 4, groups: 4, codebookSize: config.codebookSize,
                                                codeDim: config.codeDim, ema: true),
                                    scales: config.scales), rng: RNG(seed: seed))
    }

    /// `model` with weights drawn as the twin draws them (norm gains 1 + 0.1·N(0, 1), other
    /// vectors 0.1·N(0, 1), matrices N(0, 0.25 / fan-in)), so an untrained model's argmax varies.
    static func randomised(_ model: VAR, seed: UInt64) -> VAR {
        let rng = RNG(seed: seed)
        for (name, p) in model.namedParameters() {
            let n = rng.normal(p.shape)
            if p.rank == 1 { p.assign(name.hasSuffix("Norm.weight") || name.hasSuffix("norm.weight") ? n * 0.1 + 1 : n * 0.1) }
            else { p.assign(n * (0.5 / Float(p.dim(-1)).squareRoot())) }
        }
        return model
    }

    @Test func forwardLossAndGradientsMatchPyTorch() throws {
        let fixture = try Safetensors.read(Self.fixture).tensors
        func get(_ name: String) throws -> Tensor {
            guard let t = fixture[name] else { throw FixtureError(description: "var_reference.safetensors has no tensor \(name)") }
            return t
        }
        let config = Self.twinConfig()
        let model = VAR(config, rng: RNG(seed: 0))
        let weights = Dictionary(uniqueKeysWithValues: fixture.filter { $0.key.hasPrefix("weight.") }
            .map { (String($0.key.dropFirst(7)), $0.value) })
        try model.load(weights)
        let msvq = Self.tokenizer(config)
        msvq.quantizer.codebook.assign(try get("codebook"))

        // The code vectors: a generated image's blocks, then an image read as context.
        let maps = try (0..<2).map { i in try (0..<3).map { k in try get("maps.\(i).\(k)").reshaped([1, config.scales[k], config.scales[k]]) } }
        let blocks = msvq.nextScaleInputs(maps[0]).blocks.reshaped([config.blockPositions, 3])
        let context = msvq.nextScaleInputs(maps[1]).full.reshaped([config.contextPositions, 3])
        let vectors = concat([blocks, context], axis: 0)
        expectClose(vectors.scalars, try get("vectors").scalars, atol: 1e-6)

        let mask = try AttentionMask(documents: try get("documents").intScalars.chunked(32), spans: try get("spans").intScalars.chunked(32))
        let input = VARInput(ids: try get("ids"), positions: try get("positions"), mask: mask,
                             images: [(4, .blocks), (32 + 2, .context)], vectors: vectors)
        let hidden = withoutGrad { model(input) }
        expectClose(hidden.scalars, try get("hidden").scalars, atol: 2e-5, rtol: 1e-4)

        let loss = model.loss(input, targets: try get("targets"), zLoss: 1e-3)
        expectClose([loss.total.item, loss.text, loss.image], try get("loss").scalars, atol: 1e-5, rtol: 1e-5)
        loss.total.backward()
        let params = model.namedParameters()
        #expect(params.count == weights.count)
        for (name, p) in params {
            guard let g = p.grad, let r = fixture["grad." + name] else { Issue.record("no gradient for \(name)"); continue }
            let scale = r.scalars.map(abs).max() ?? 0
            let worst = zip(g.scalars, r.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-5 + 1e-4 * scale, "\(name): max |Δ| \(worst), reference scale \(scale)")
        }
    }

    @Test func eachBlockReadsTheCoarserScalesSumAndTheContextTheWholePyramid() {
        let config = Self.twinConfig(), msvq = Self.tokenizer(config, seed: 3)
        let rng = RNG(seed: 4)
        let maps = config.scales.map { s in Tensor(ints: (0..<(2 * s * s)).map { _ in Int32(rng.nextInt(below: 6)) }, shape: [2, s, s]) }
        let (blocks, full) = msvq.nextScaleInputs(maps)
        #expect(blocks.shape == [2, config.blockPositions, 3] && full.shape == [2, 16, 3])
        let starts = config.blockStarts
        #expect(starts == [0, 1, 5])
        // The first block reads nothing; the last reads scales 1 and 2 summed at 4×4 (no resize).
        #expect(blocks.slice(axis: 1, 0..<1).scalars.allSatisfy { $0 == 0 })
        let coarse = withoutGrad { msvq.upsampled(maps[0], to: 4) + msvq.upsampled(maps[1], to: 4) }
        expectClose(blocks.slice(axis: 1, 5..<21).scalars, coarse.permuted([0, 2, 3, 1]).reshaped([2, 16, 3]).scalars, atol: 1e-6)
        // The full map is what the tokenizer's decoder reads: decode(maps) = decoder(full).
        let decoded = withoutGrad { msvq.decode(maps) }
        let fromFull = withoutGrad { msvq.decoder(full.reshaped([2, 4, 4, 3]).permuted([0, 3, 1, 2])) }
        expectClose(decoded.scalars, fromFull.scalars, atol: 1e-5)
    }

    /// Logits (rows, vocab) of a teacher-forced forward over `prompt` + BOI + the blocks of `maps`
    /// (one image), at the block positions.
    func blockLogits(_ model: VAR, _ msvq: MultiScaleVQTokenizer, prompt: [Int32], maps: [Tensor]) -> Tensor {
        let c = model.config, t = prompt.count + 1 + c.blockPositions
        let ids = prompt + [SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: c.blockPositions)
        var spans = [Int32](repeating: -1, count: prompt.count + 1)
        for (k, s) in c.scales.enumerated() { spans += [Int32](repeating: Int32(k), count: s * s) }
        let mask = try! AttentionMask(documents: [[Int32](repeating: 0, count: t)], spans: [spans])
        let input = VARInput(ids: Tensor(ints: ids, shape: [1, t]), positions: Tensor(ints: (0..<t).map(Int32.init)), mask: mask,
                             images: [(prompt.count + 1, .blocks)],
                             vectors: msvq.nextScaleInputs(maps).blocks.reshaped([c.blockPositions, c.codeDim]))
        let hidden = model.inferring { model(input) }
        return model.inferring { model.logits(hidden, rows: Array((prompt.count + 1)..<t)) }
    }

    func argmaxCodes(_ logits: Tensor, textVocab: Int) -> [Int32] {
        let v = logits.dim(1), x = logits.scalars
        return (0..<logits.dim(0)).map { r in
            let row = x[(r * v + textVocab)..<((r + 1) * v)]
            return Int32(row.indices.max { row[$0] < row[$1] }! - r * v - textVocab)
        }
    }

    @Test func cachedSamplingIsTheTeacherForcedArgmaxScaleByScale() {
        let config = Self.twinConfig()
        let model = Self.randomised(VAR(config, rng: RNG(seed: 5)), seed: 7), msvq = Self.tokenizer(config, seed: 6)
        let prompt: [Int32] = [SpecialTokens.bos, 10, 11, 12], greedy = SamplingOptions(temperature: 0)
        // Unguided: two images at once, each the argmax of its own teacher-forced forward.
        let maps = model.sampleCodes(prompt: prompt, count: 2, tokenizer: msvq, options: greedy, rng: RNG(seed: 8))
        #expect(maps.map(\.shape) == [[2, 1, 1], [2, 2, 2], [2, 4, 4]])
        for i in 0..<2 {
            let mine = maps.map { $0.slice(axis: 0, i..<(i + 1)) }
            let want = argmaxCodes(blockLogits(model, msvq, prompt: prompt, maps: mine), textVocab: config.textVocab)
            #expect(mine.flatMap(\.intScalars) == want, "image \(i)")
        }
        // Guided at 3 against BOS alone: l_u + 3 (l_c − l_u) of the two teacher-forced forwards.
        let guidedMaps = model.sampleCodes(prompt: prompt, count: 1, tokenizer: msvq, options: greedy, cfgScale: 3, rng: RNG(seed: 9))
        let cond = blockLogits(model, msvq, prompt: prompt, maps: guidedMaps)
        let uncond = blockLogits(model, msvq, prompt: [SpecialTokens.bos], maps: guidedMaps)
        let mixed = Tensor(zip(cond.scalars, uncond.scalars).map { c, u in u + 3 * (c - u) }, shape: cond.shape)
        #expect(guidedMaps.flatMap(\.intScalars) == argmaxCodes(mixed, textVocab: config.textVocab))
        #expect(guidedMaps.flatMap(\.intScalars) != maps.map { $0.slice(axis: 0, 0..<1) }.flatMap(\.intScalars),
                "guidance changes this untrained model's greedy codes")
    }

    @Test func aCachedCaptionIsTheFullSequencesGreedyContinuation() {
        let config = Self.twinConfig()
        let model = Self.randomised(VAR(config, rng: RNG(seed: 10)), seed: 12), msvq = Self.tokenizer(config, seed: 11)
        let rng = RNG(seed: 13)
        let maps = config.scales.map { s in Tensor(ints: (0..<(s * s)).map { _ in Int32(rng.nextInt(below: 6)) }, shape: [1, s, s]) }
        let words = model.caption(maps: maps, tokenizer: msvq, maxTokens: 6, options: SamplingOptions(temperature: 0), rng: RNG(seed: 14))
        #expect(!words.isEmpty)
        // Replay: BOS BOI [context] EOI words…, one full forward per word, greedy over the text ids.
        let full = msvq.nextScaleInputs(maps).full.reshaped([config.contextPositions, config.codeDim])
        var text: [Int32] = [SpecialTokens.eoi], replayed: [Int32] = []
        for _ in 0..<words.count {
            let ids = [SpecialTokens.bos, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: config.contextPositions) + text
            let t = ids.count
            let spans = [-1, -1] + [Int32](repeating: 0, count: config.contextPositions) + [Int32](repeating: -1, count: text.count)
            let input = VARInput(ids: Tensor(ints: ids, shape: [1, t]), positions: Tensor(ints: (0..<t).map(Int32.init)),
                                 mask: try! AttentionMask(documents: [[Int32](repeating: 0, count: t)], spans: [spans]),
                                 images: [(2, .context)], vectors: full)
            let logits = model.inferring { model.logits(model(input), rows: [t - 1]) }
            let next = SamplingOptions(temperature: 0).pickWord(logits, count: config.textVocab, allowEnd: !replayed.isEmpty, rng: rng)
            if next == SpecialTokens.eos { break }
            replayed.append(next); text.append(next)
        }
        #expect(words == replayed)
    }

    @Test func documentsGenerateOneSpanPerScaleOrReadTheFullMap() throws {
        let c = Self.twinConfig(), codes = (0..<21).map { Int32($0 % 6) }
        let seq = c.sequence(caption: [10, 11], codes: codes)
        // BOS 10 11 BOI [1 | 4 | 16] EOI EOS: text predicts text and BOI; each block position its code.
        #expect(seq.count == 4 + 21 + 2 && seq.tokens[3] == SpecialTokens.boi && seq.tokens[25] == SpecialTokens.eoi)
        #expect(seq.spans.map(\.start) == [4, 5, 9] && seq.spans.map(\.length) == [1, 4, 16] && seq.spans.map(\.index) == [0, 1, 2])
        #expect(Array(seq.spanIDs[4..<25]) == [0] + [Int32](repeating: 1, count: 4) + [Int32](repeating: 2, count: 16))
        #expect(Array(seq.targets[0..<4]) == [10, 11, SpecialTokens.boi, -1])
        #expect(Array(seq.targets[4..<25]) == codes.map { $0 + 24 } && seq.targets[25] == SpecialTokens.eos)
        // The mask of the packed document: causal across scales, bidirectional inside one.
        let row = try pack([seq], length: 32)
        let mask = try AttentionMask(documents: [row.documentIDs], spans: [row.spanIDs])
        #expect(mask.allows(batch: 0, query: 5, key: 8) && !mask.allows(batch: 0, query: 5, key: 9) && mask.allows(batch: 0, query: 9, key: 4))
        #expect(mask.allows(batch: 0, query: 4, key: 3) && !mask.allows(batch: 0, query: 4, key: 5))
        let read = c.contextSequence(caption: [12])
        #expect(read.tokens == [SpecialTokens.bos, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: 16)
                + [SpecialTokens.eoi, 12, SpecialTokens.eos])
        #expect(read.targets.filter { $0 >= 0 } == [SpecialTokens.boi, 12, SpecialTokens.eos] && read.spans.count == 1)
        let maps = c.maps([codes, codes.reversed()])
        #expect(maps.map(\.shape) == [[2, 1, 1], [2, 2, 2], [2, 4, 4]] && maps[2].intScalars.prefix(16) == codes[5...].prefix(16))
    }

    /// `generate` opens an image when the model picks BOI, draws it as `sampleCodes` would, and goes
    /// on with text after it. The model is made to pick BOI after the prompt and EOS after the
    /// image: with every block's output projection zeroed, the decoder's output at a position is
    /// the normed embedding of its input id, so a head row equal to that (× 100) wins there.
    @Test func generateOpensAnImageWhenBOIIsPickedAndContinuesAfterIt() {
        let config = Self.twinConfig()
        let model = Self.randomised(VAR(config, rng: RNG(seed: 15)), seed: 16), msvq = Self.tokenizer(config, seed: 17)
        for block in model.lm.decoder.blocks {
            block.attn.proj.weight.assign(Tensor.zeros(block.attn.proj.weight.shape))
            block.mlp.w2.weight.assign(Tensor.zeros(block.mlp.w2.weight.shape))
        }
        let d = config.decoder.dim, embed = model.lm.embed.weight.scalars, norm = model.lm.decoder.norm.weight.scalars
        func normed(_ id: Int32) -> [Float] {
            let row = Array(embed[(Int(id) * d)..<((Int(id) + 1) * d)])
            let rms = (row.map { $0 * $0 }.reduce(0, +) / Float(d) + 1e-6).squareRoot()
            return zip(row, norm).map { $0 / rms * $1 }
        }
        var head = model.lm.head.weight.scalars
        for (from, to) in [(Int32(12), SpecialTokens.boi), (SpecialTokens.eoi, SpecialTokens.eos)] {
            for (j, v) in normed(from).enumerated() { head[Int(to) * d + j] = 100 * v }
        }
        model.lm.head.weight.assign(Tensor(head, shape: model.lm.head.weight.shape))
        let prompt: [Int32] = [SpecialTokens.bos, 10, 11, 12], greedy = SamplingOptions(temperature: 0)
        let segments = model.generate(prompt: prompt, maxTokens: 8, text: greedy, codes: greedy, cfgScale: 2, tokenizer: msvq,
                                      rng: RNG(seed: 18))
        guard segments.count == 3, case .text(let before) = segments[0], case .image(let pixels) = segments[1],
              case .text(let after) = segments[2] else { Issue.record("segments: \(segments)"); return }
        #expect(before == [SpecialTokens.boi] && after == [SpecialTokens.eoi, SpecialTokens.eos])
        let maps = model.sampleCodes(prompt: prompt, count: 1, tokenizer: msvq, options: greedy, cfgScale: 2, rng: RNG(seed: 18))
        #expect(pixels.shape == [1, 3, 16, 16] && pixels.scalars == withoutGrad { msvq.decode(maps) }.scalars)
    }

    @Test func configsCountTheirPositionsAndRefuseBadScales() {
        let c = Self.twinConfig()
        #expect(c.blockPositions == 21 && c.contextPositions == 16 && c.vocab == 30)
        var bad = c
        bad.scales = [2, 2, 4]
        #expect(bad.problem?.contains("must ascend") == true)
        bad.scales = []
        #expect(bad.problem != nil)
        #expect(c.problem == nil)
    }
}

extension Array where Element == Int32 {
    fileprivate func chunked(_ n: Int) -> [[Int32]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}
