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

/// The one KV-cached decoding loop every text decoder runs (DecoderLM.generate, Transfusion's
/// captions and transcripts, Chameleon's): from `logits`, the next-token logits after the
/// prefilled prefix, it picks up to `maxTokens` ids with `pick` (given the logits and the ids
/// picked so far), ends at an id for which `stop` holds (kept in the output when `keepStop`), and
/// feeds each other id back through `step`, which extends the cache and returns the next logits.
public func decodeLoop(from logits: Tensor, maxTokens: Int, keepStop: Bool, stop: (Int32) -> Bool,
                       pick: (Tensor, [Int32]) -> Int32, step: (Int32) -> Tensor) -> [Int32] {
    var logits = logits, out: [Int32] = []
    for i in 0..<maxTokens {
        let id = pick(logits, out)
        if stop(id) {
            if keepStop { out.append(id) }
            break
        }
        out.append(id)
        if i + 1 < maxTokens { logits = step(id) }
    }
    return out
}
