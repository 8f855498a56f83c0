// The Chameleon-style baseline (Chameleon Team 2024): the same decoder over one token stream in
// which images are VQ code ids appended to the text vocabulary. Purely causal attention and
// cross-entropy everywhere (QK-norm and z-loss for stability, set by the recipe). Image sampling
// decodes the code positions with classifier-free guidance in logit space. Not the VQ tokenizer.
import Foundation
import NN
import Tensors
import Text

/// Sizes of a Chameleon model: a text vocabulary followed by the image codebook.
public struct ChameleonConfig: Codable, Equatable, Sendable {
    public var textVocab: Int
    public var codebookSize: Int
    /// Side of the code grid of one image (e.g. 8 for a 32×32 image under a 4× VQ tokenizer).
    public var gridSize: Int
    public var decoder: DecoderConfig

    public init(textVocab: Int, codebookSize: Int, gridSize: Int, decoder: DecoderConfig) {
        self.textVocab = textVocab; self.codebookSize = codebookSize; self.gridSize = gridSize
        self.decoder = decoder
    }

    public var vocab: Int { textVocab + codebookSize }

    /// What makes the config unbuildable (see ``DecoderConfig/problem``), or nil.
    public var problem: String? {
        if let p = decoder.problem { return p }
        if textVocab <= 0 || codebookSize <= 0 || gridSize <= 0 {
            return "sizes must be positive (textVocab \(textVocab), codebookSize \(codebookSize), gridSize \(gridSize))"
        }
        return nil
    }
    /// Code positions of one image.
    public var tokensPerImage: Int { gridSize * gridSize }
    /// The token id of code `c`.
    public func token(code c: Int32) -> Int32 { Int32(textVocab) + c }
}

public final class Chameleon: Module {
    public let config: ChameleonConfig
    public let lm: DecoderLM

    public init(_ config: ChameleonConfig, rng: RNG) {
        self.config = config
        lm = DecoderLM(vocab: config.vocab, config: config.decoder, rng: rng)
    }

    public func initialise(rng: RNG) { lm.decoder.initialise(rng: rng) }

    /// Ids of one image's codes (row-major grid) framed by BOI … EOI.
    public func imageTokens(codes: [Int32]) -> [Int32] {
        precondition(codes.count == config.tokensPerImage, "Chameleon: \(codes.count) codes, expected \(config.tokensPerImage)")
        return [SpecialTokens.boi] + codes.map { config.token(code: $0) } + [SpecialTokens.eoi]
    }

    /// The LM loss over all targets and its text and image parts (targets ≥ textVocab are image
    /// codes). Returns (total with z-loss, text CE, image CE); a part with no targets is 0.
    public func loss(_ ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor, zLoss: Float = 0)
        -> (total: Tensor, text: Float, image: Float) {
        let logits = lm(ids, mask: mask, positions: positions)
        let total = crossEntropy(logits, targets, ignoreIndex: -1, zLoss: zLoss)
        // The parts are reported, not trained: recompute them without the tape.
        let (text, image) = withoutGrad { () -> (Float, Float) in
            let t = targets.intScalars, v = Int32(config.textVocab)
            let textTargets = Tensor(ints: t.map { $0 >= 0 && $0 < v ? $0 : -1 }, shape: targets.shape)
            let imageTargets = Tensor(ints: t.map { $0 >= v ? $0 : -1 }, shape: targets.shape)
            return (crossEntropy(logits, textTargets, ignoreIndex: -1).item,
                    crossEntropy(logits, imageTargets, ignoreIndex: -1).item)
        }
        return (total, text, image)
    }

    /// `count` images after `prompt` (BOS + caption ids; BOI is appended): each code position is
    /// sampled from the code logits only, guided as l_u + s·(l_c − l_u) against
    /// `unconditionalPrompt` when `cfgScale` > 1. Returns the code ids (count, grid, grid).
    public func sampleCodes(prompt: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                            unconditionalPrompt: [Int32] = [SpecialTokens.bos], rng: RNG) -> Tensor {
        precondition(count > 0 && !prompt.isEmpty, "sampleCodes: need a prompt and at least one image")
        return withoutGrad {
            let wasTraining = isTraining
            eval()
            defer { train(wasTraining) }
            let v = config.vocab, k = config.codebookSize, offset = config.textVocab
            let guided = cfgScale > 1
            let cond = KVCache(layers: config.decoder.layers), uncond = KVCache(layers: config.decoder.layers)
            var lastCond = step(Array(repeating: prompt + [SpecialTokens.boi], count: count), cache: cond)
            var lastUncond = guided
                ? step(Array(repeating: unconditionalPrompt + [SpecialTokens.boi], count: count), cache: uncond) : nil
            var codes = [Int32](repeating: 0, count: count * config.tokensPerImage)
            var row = [Float](repeating: 0, count: k)
            for j in 0..<config.tokensPerImage {
                for b in 0..<count {
                    let c = lastCond.data + b * v + offset
                    if let u = lastUncond?.data.advanced(by: b * v + offset) {
                        for i in 0..<k { row[i] = u[i] + cfgScale * (c[i] - u[i]) }
                    } else {
                        for i in 0..<k { row[i] = c[i] }
                    }
                    codes[b * config.tokensPerImage + j] = row.withUnsafeBufferPointer {
                        options.pick($0.baseAddress!, count: k, rng: rng)
                    }
                }
                if j == config.tokensPerImage - 1 { break }
                let next = (0..<count).map { [config.token(code: codes[$0 * config.tokensPerImage + j])] }
                lastCond = step(next, cache: cond)
                if guided { lastUncond = step(next, cache: uncond) }
            }
            return Tensor(ints: codes, shape: [count, config.gridSize, config.gridSize])
        }
    }

    /// `count` edits of the image with `source` codes following `instruction` (ids, no BOS): codes
    /// sampled after `BOS BOI source EOI instruction BOI`, guided against the instruction dropped
    /// (`BOS BOI source EOI BOI`, the layout of edit documents whose instruction was dropped).
    /// Returns the code ids (count, grid, grid).
    public func sampleEdit(source: [Int32], instruction: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                           rng: RNG) -> Tensor {
        let prefix = [SpecialTokens.bos] + imageTokens(codes: source)
        return sampleCodes(prompt: prefix + instruction, count: count, options: options, cfgScale: cfgScale,
                           unconditionalPrompt: prefix, rng: rng)
    }

    /// Text after an image: `BOS BOI codes EOI`, then decoding until EOS (image-first layout).
    public func caption(codes: [Int32], maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        withoutGrad {
            let wasTraining = isTraining
            eval()
            defer { train(wasTraining) }
            let cache = KVCache(layers: config.decoder.layers)
            var logits = step([[SpecialTokens.bos] + imageTokens(codes: codes)], cache: cache)
            var out: [Int32] = []
            for _ in 0..<maxTokens {
                // Text only: image codes are not words.
                let id = options.pick(logits.data, count: config.textVocab, rng: rng)
                if id == SpecialTokens.eos { break }
                out.append(id)
                logits = step([[id]], cache: cache)
            }
            return out
        }
    }

    /// Runs rows (equal lengths) after the cache; returns the last position's logits (B, vocab).
    func step(_ rows: [[Int32]], cache: KVCache) -> Tensor {
        let b = rows.count, n = rows[0].count, start = cache.length
        let logits = lm(Tensor(ints: rows.flatMap { $0 }, shape: [b, n]),
                        mask: .causal(batch: b, queries: n, keys: start + n),
                        positions: Tensor(ints: (start..<(start + n)).map { Int32($0) }), cache: cache)
        let v = config.vocab
        let out = Tensor.empty([b, v])
        for r in 0..<b { (out.data + r * v).update(from: logits.data + (r * n + n - 1) * v, count: v) }
        return out
    }

    /// Analytic training FLOPs of `tokens` positions seeing `attended` keys on average.
    public func trainingFlops(tokens: Int, attended: Double) -> Double {
        lm.trainingFlops(tokens: tokens, attended: attended)
    }
}
