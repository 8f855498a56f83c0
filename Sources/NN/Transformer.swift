// The shared decoder: multi-head self-attention (RoPE, optional QK-norm, any AttentionMask),
// a SwiGLU MLP, pre-norm blocks and the block stack. Dimension legend: B batch, T positions,
// d model width, H heads, D = d/H head size. Not a model: embeddings and heads live in Models.
import Foundation
import Tensors

/// Sizes and switches of a decoder stack (saved in checkpoint configs).
public struct DecoderConfig: Codable, Equatable, Sendable {
    public var dim: Int
    public var layers: Int
    public var heads: Int
    /// SwiGLU hidden width (the reference benchmark uses 4·dim).
    public var mlpHidden: Int
    public var qkNorm: Bool
    public var ropeBase: Float
    public var normEps: Float

    public init(dim: Int, layers: Int, heads: Int, mlpHidden: Int? = nil, qkNorm: Bool = false,
                ropeBase: Float = 10000, normEps: Float = 1e-6) {
        precondition(dim % heads == 0, "DecoderConfig: dim \(dim) is not divisible by heads \(heads)")
        self.dim = dim; self.layers = layers; self.heads = heads
        self.mlpHidden = mlpHidden ?? 4 * dim
        self.qkNorm = qkNorm; self.ropeBase = ropeBase; self.normEps = normEps
    }

    /// What makes the config unbuildable (a config decoded from a hand-edited file skips `init`'s
    /// checks), or nil.
    public var problem: String? {
        if dim <= 0 || layers <= 0 || heads <= 0 || mlpHidden <= 0 {
            return "decoder sizes must be positive (dim \(dim), layers \(layers), heads \(heads), mlpHidden \(mlpHidden))"
        }
        if dim % heads != 0 { return "decoder dim \(dim) is not divisible by heads \(heads)" }
        if (dim / heads) % 2 != 0 { return "decoder head width \(dim / heads) must be even (rotary embeddings rotate pairs)" }
        return nil
    }

    public var headDim: Int { dim / heads }

    /// Parameters of the stack (without embeddings or heads).
    public var parameterCount: Int {
        let attn = 4 * dim * dim + (qkNorm ? 2 * headDim : 0)
        let mlp = 3 * dim * mlpHidden
        return layers * (attn + mlp + 2 * dim) + dim
    }

    /// Analytic training FLOPs (forward + backward = 3× forward) for `tokens` positions whose
    /// attention sees on average `attended` keys: 6·N·tokens for the matmuls plus
    /// 3·(2·2·attended·dim) per token per layer for QKᵀ and PV.
    public func trainingFlops(tokens: Int, attended: Double) -> Double {
        let matmul = 6.0 * Double(layers * (4 * dim * dim + 3 * dim * mlpHidden)) * Double(tokens)
        let attn = 3.0 * 4.0 * attended * Double(dim) * Double(layers) * Double(tokens)
        return matmul + attn
    }
}

/// Cached keys and values of every layer, for incremental decoding.
public final class KVCache {
    public internal(set) var keys: [Tensor?]
    public internal(set) var values: [Tensor?]

    public init(layers: Int) {
        keys = Array(repeating: nil, count: layers)
        values = Array(repeating: nil, count: layers)
    }

    /// Positions already cached.
    public var length: Int { keys.first??.shape[1] ?? 0 }

    /// Holds what `other` holds, replacing what this cache held; the two then grow and truncate
    /// apart (cached tensors are shared, never written in place). E.g. to sample a span after a
    /// generation's context without extending the generation's own cache.
    public func copy(from other: KVCache) {
        precondition(keys.count == other.keys.count, "KVCache.copy: \(other.keys.count) layers into \(keys.count)")
        keys = other.keys
        values = other.values
    }

    /// Drops everything after the first `n` positions (e.g. to re-run a diffusion span).
    public func truncate(to n: Int) {
        for i in keys.indices {
            keys[i] = keys[i].map { $0.shape[1] > n ? $0.slice(axis: 1, 0..<n) : $0 }
            values[i] = values[i].map { $0.shape[1] > n ? $0.slice(axis: 1, 0..<n) : $0 }
        }
    }

    /// The rows of `caches` in one cache, each left-padded with zeros to the longest, and where
    /// each row's own positions begin (its padding before that must be masked out by the
    /// queries, which then see one contiguous range). For batching prefixes of different
    /// lengths, such as classifier-free guidance's conditional and unconditional prompts.
    public static func stacking(_ caches: [KVCache]) -> (cache: KVCache, starts: [Int]) {
        let layers = caches[0].keys.count, longest = caches.map(\.length).max()!
        let stacked = KVCache(layers: layers)
        func padded(_ t: Tensor) -> Tensor {
            let pad = longest - t.shape[1]
            if pad == 0 { return t }
            var shape = t.shape
            shape[1] = pad
            return concat([Tensor.zeros(shape), t], axis: 1)
        }
        for l in 0..<layers {
            stacked.keys[l] = concat(caches.map { padded($0.keys[l]!) }, axis: 0)
            stacked.values[l] = concat(caches.map { padded($0.values[l]!) }, axis: 0)
        }
        let starts = caches.flatMap { c in Array(repeating: longest - c.length, count: c.keys[0]!.shape[0]) }
        return (stacked, starts)
    }

    /// The RoPE positions (B·n) of `n` new tokens per row after a stacked cache whose row r begins
    /// at `starts[r]`: each row continues its own prefix, not the padded length.
    public func positions(continuing starts: [Int], count n: Int) -> Tensor {
        Tensor(ints: starts.flatMap { s in (0..<n).map { Int32(length - s + $0) } })
    }

    func append(layer: Int, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let kk = keys[layer].map { concat([$0, k], axis: 1) } ?? k
        let vv = values[layer].map { concat([$0, v], axis: 1) } ?? v
        keys[layer] = kk; values[layer] = vv
        return (kk, vv)
    }
}

/// Multi-head self-attention with a fused QKV projection, RoPE and optional QK-norm.
public final class SelfAttention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let qNorm: RMSNorm?
    public let kNorm: RMSNorm?
    let heads: Int
    let ropeBase: Float

    public init(_ config: DecoderConfig, rng: RNG) {
        qkv = Linear(config.dim, 3 * config.dim, bias: false, rng: rng)
        proj = Linear(config.dim, config.dim, bias: false, rng: rng)
        qNorm = config.qkNorm ? RMSNorm(config.headDim, eps: config.normEps) : nil
        kNorm = config.qkNorm ? RMSNorm(config.headDim, eps: config.normEps) : nil
        heads = config.heads
        ropeBase = config.ropeBase
    }

    /// x (B, T, d) → (B, T, d). With a cache, the new keys/values are appended first and `mask`
    /// ranges index the cached keys.
    public func callAsFunction(_ x: Tensor, mask: AttentionMask, positions: Tensor,
                               cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let (b, t, d) = (x.shape[0], x.shape[1], x.shape[2])
        if cache == nil {
            // Packed path: QK-norm, RoPE and attention read q, k, v in place from the (B, T, 3d)
            // projection, no split copies.
            var packed = qkv(x)
            if let qNorm, let kNorm {
                packed = qkNorm(packed: packed, heads: heads, qWeight: qNorm.weight, kWeight: kNorm.weight, eps: qNorm.eps)
            }
            packed = rope(packed: packed, heads: heads, positions: positions, base: ropeBase)
            return proj(attention(packed: packed, heads: heads, mask: mask))
        }
        let parts = qkv(x).split(axis: -1, sizes: [d, d, d])                  // 3 × (B, T, d)
        var q = parts[0].reshaped([b, t, heads, d / heads])                    // (B, T, H, D)
        var k = parts[1].reshaped([b, t, heads, d / heads])
        var v = parts[2].reshaped([b, t, heads, d / heads])
        if let qNorm, let kNorm { q = qNorm(q); k = kNorm(k) }
        q = rope(q, positions: positions, base: ropeBase)
        k = rope(k, positions: positions, base: ropeBase)
        if let cache { (k, v) = cache.append(layer: layer, k: k, v: v) }
        let y = attention(q, k, v, mask: mask)                                 // (B, T, H, D)
        return proj(y.reshaped([b, t, d]))
    }
}

/// SwiGLU MLP: w2(silu(x·W_gateᵀ) ⊙ x·W_upᵀ), gate and up fused in one (2h, d) projection.
public final class SwiGLU: Module {
    public let w13: Linear
    public let w2: Linear

    public init(dim: Int, hidden: Int, rng: RNG) {
        w13 = Linear(dim, 2 * hidden, bias: false, rng: rng)
        w2 = Linear(hidden, dim, bias: false, rng: rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { w2(swiglu(w13(x))) }
}

/// Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x)).
public final class DecoderBlock: Module {
    public let attnNorm: RMSNorm
    public let attn: SelfAttention
    public let mlpNorm: RMSNorm
    public let mlp: SwiGLU

    public init(_ config: DecoderConfig, rng: RNG) {
        attnNorm = RMSNorm(config.dim, eps: config.normEps)
        attn = SelfAttention(config, rng: rng)
        mlpNorm = RMSNorm(config.dim, eps: config.normEps)
        mlp = SwiGLU(dim: config.dim, hidden: config.mlpHidden, rng: rng)
    }

    public func callAsFunction(_ x: Tensor, mask: AttentionMask, positions: Tensor,
                               cache: KVCache? = nil, layer: Int = 0) -> Tensor {
        let h = x + attn(attnNorm(x), mask: mask, positions: positions, cache: cache, layer: layer)
        return h + mlp(mlpNorm(h))
    }
}

/// The block stack with a final RMSNorm: (B, T, d) → (B, T, d).
public final class Decoder: Module {
    public let blocks: [DecoderBlock]
    public let norm: RMSNorm
    public let config: DecoderConfig

    public init(_ config: DecoderConfig, rng: RNG) {
        self.config = config
        blocks = (0..<config.layers).map { _ in DecoderBlock(config, rng: rng) }
        norm = RMSNorm(config.dim, eps: config.normEps)
    }

    public func callAsFunction(_ x: Tensor, mask: AttentionMask, positions: Tensor, cache: KVCache? = nil) -> Tensor {
        var h = x
        for (i, block) in blocks.enumerated() { h = block(h, mask: mask, positions: positions, cache: cache, layer: i) }
        return norm(h)
    }

    /// GPT-2-style initialisation: N(0, 0.02²) for projections, with residual outputs scaled by
    /// 1/√(2·layers); norms at 1.
    public func initialise(rng: RNG) {
        let residualStd = 0.02 / Float(2 * config.layers).squareRoot()
        for block in blocks {
            for (lin, std) in [(block.attn.qkv, Float(0.02)), (block.attn.proj, residualStd),
                               (block.mlp.w13, 0.02), (block.mlp.w2, residualStd)] {
                rng.fill(lin.weight, .normal(mean: 0, std: std))
            }
        }
    }
}
