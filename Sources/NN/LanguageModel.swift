// DecoderLM: token embedding → Decoder → LM head. The text-only model of the parity fixtures,
// the reference benchmark step and text recipes; multimodal models wrap the same Decoder.
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
