// DecoderLM: token embedding → Decoder → LM head. The text-only model of the parity fixtures,
// the reference benchmark step and text recipes; multimodal models wrap the same Decoder.
import NN
import Tensors

public final class DecoderLM: Module {
    public let embed: Embedding
    public let decoder: Decoder
    public let head: Linear
    public let vocab: Int

    public init(vocab: Int, config: DecoderConfig, rng: RNG) {
        self.vocab = vocab
        embed = Embedding(vocab, config.dim, std: 0.02, rng: rng)
        decoder = Decoder(config, rng: rng)
        head = Linear(config.dim, vocab, bias: false, rng: rng)
    }

    /// Int32 ids (B, T) → logits (B, T, vocab).
    public func callAsFunction(_ ids: Tensor, mask: AttentionMask, positions: Tensor, cache: KVCache? = nil) -> Tensor {
        head(decoder(embed(ids), mask: mask, positions: positions, cache: cache))
    }

    /// Mean next-token cross-entropy (targets −1 are ignored) plus optional z-loss.
    public func loss(_ ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor, zLoss: Float = 0) -> Tensor {
        crossEntropy(self(ids, mask: mask, positions: positions), targets, ignoreIndex: -1, zLoss: zLoss)
    }

    /// Analytic training FLOPs of one step over `tokens` positions (causal: ~T/2 keys each).
    public func trainingFlops(tokens: Int, attended: Double) -> Double {
        decoder.config.trainingFlops(tokens: tokens, attended: attended)
            + 6.0 * Double(vocab * decoder.config.dim) * Double(tokens)
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
            // The last position's logits (1, vocab) after `ids` extend the cache.
            func step(_ ids: [Int32]) -> Tensor {
                let start = cache.length, n = ids.count
                let logits = self(Tensor(ints: ids, shape: [1, n]), mask: .causal(batch: 1, queries: n, keys: start + n),
                                  positions: Tensor(ints: (start..<(start + n)).map { Int32($0) }), cache: cache)
                return logits.reshaped([n, vocab]).slice(axis: 0, (n - 1)..<n)
            }
            return decodeLoop(from: step(prompt), maxTokens: maxTokens, keepStop: true, stop: { stop.contains($0) },
                              pick: { logits, _ in options.pick(logits, rng: rng) }, step: { step([$0]) })
        }
    }
}
