// Autoregressive text decoding with a KV cache: greedy, temperature, top-k and top-p (nucleus)
// sampling. Not diffusion sampling (Diffusion/) and not batching of different prompts.
import Foundation
import Tensors

/// How the next token is chosen from logits.
public struct SamplingOptions: Sendable {
    public var temperature: Float = 1
    public var topK: Int = 0         // 0 = off
    public var topP: Float = 1       // 1 = off
    public var greedy: Bool { temperature <= 0 }

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1) {
        self.temperature = temperature; self.topK = topK; self.topP = topP
    }

    /// Picks an id from one row of logits.
    public func pick(_ logits: UnsafePointer<Float>, count: Int, rng: RNG) -> Int32 {
        if greedy {
            var best = 0
            for i in 1..<count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var order = Array(0..<count)
        let scaled = (0..<count).map { logits[$0] / temperature }
        order.sort { scaled[$0] > scaled[$1] }
        if topK > 0 { order = Array(order.prefix(topK)) }
        let m = scaled[order[0]]
        var probs = order.map { Foundation.exp(Double(scaled[$0] - m)) }
        let z = probs.reduce(0, +)
        probs = probs.map { $0 / z }
        if topP < 1 {
            var acc = 0.0, keep = 0
            while keep < probs.count { acc += probs[keep]; keep += 1; if acc >= Double(topP) { break } }
            order = Array(order.prefix(keep)); probs = Array(probs.prefix(keep))
            let z2 = probs.reduce(0, +); probs = probs.map { $0 / z2 }
        }
        var u = Double(rng.nextFloat()), i = 0
        while i < probs.count - 1 && u >= probs[i] { u -= probs[i]; i += 1 }
        return Int32(order[i])
    }
}

extension SamplingOptions {
    /// Picks an id from row `row` of `logits` (R, V) (or (V)). Prefer this to `pick(_:count:rng:)`
    /// with a tensor's `data`: it keeps the tensor alive while its buffer is read. A tensor used
    /// only for its pointer may be released as soon as the pointer is taken; small buffers go back
    /// to malloc, whose free list then overwrites the first floats (ids 0…3, EOS among them).
    public func pick(_ logits: Tensor, row: Int = 0, rng: RNG) -> Int32 {
        let v = logits.dim(-1)
        precondition(row >= 0 && (row + 1) * v <= logits.count, "pick: row \(row) of \(logits.shape)")
        return withExtendedLifetime(logits) { pick(logits.data + row * v, count: v, rng: rng) }
    }
}

extension DecoderLM {
    /// Continues `prompt` by up to `maxTokens` ids, stopping after any id in `stop`.
    ///
    /// ```swift
    /// let ids = model.generate(prompt: [bos] + tok.encode("a red"), maxTokens: 20,
    ///                          options: SamplingOptions(temperature: 0.8, topK: 40), stop: [eos], rng: RNG(seed: 1))
    /// ```
    public func generate(prompt: [Int32], maxTokens: Int, options: SamplingOptions, stop: Set<Int32> = [],
                         rng: RNG) -> [Int32] {
        precondition(!prompt.isEmpty, "generate: empty prompt")
        return withoutGrad {
            let cache = KVCache(layers: decoder.config.layers)
            var out: [Int32] = []
            var next = prompt
            for _ in 0..<maxTokens {
                let start = cache.length, n = next.count
                let logits = self(Tensor(ints: next, shape: [1, n]), mask: .causal(batch: 1, queries: n, keys: start + n),
                                  positions: Tensor(ints: (start..<(start + n)).map { Int32($0) }), cache: cache)
                let id = options.pick(logits.reshaped([n, vocab]), row: n - 1, rng: rng)
                out.append(id)
                if stop.contains(id) { break }
                next = [id]
            }
            return out
        }
    }
}
