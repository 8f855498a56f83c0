// Optimizers as per-parameter updates (AdamW with decoupled weight decay, SGD with momentum),
// global gradient-norm clipping, learning-rate schedules as (step) -> lr closures, and an EMA of
// weights. Updates run outside autograd, in place, vectorised. Not a parameter-group system:
// each parameter simply decays or not.
import Foundation
import Tensors

/// Names of the parameters that should get weight decay by default: matrices and conv kernels,
/// but not norms, biases or embedding tables.
public func defaultDecayNames(_ model: Module) -> Set<String> {
    let embeddingWeights = Set(model.namedModules().filter { $0.1 is Embedding }.map { $0.0.isEmpty ? "weight" : $0.0 + ".weight" })
    return Set(model.namedParameters().filter { $0.1.rank >= 2 && !embeddingWeights.contains($0.0) }.map(\.0))
}

/// Scales all gradients so their global L2 norm is at most `maxNorm` (PyTorch's
/// clip_grad_norm_: coefficient maxNorm / (norm + 1e-6)). Returns the norm before clipping.
@discardableResult
public func clipGradNorm(_ params: [Tensor], maxNorm: Float) -> Float {
    var total = 0.0
    for p in params { if let g = p.grad { total += Double(g.squaredNorm()) } }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    if maxNorm > 0 && coef < 1 { for p in params { p.grad?.scaleInPlace(coef) } }
    return norm
}

extension Tensor {
    /// Σ x², accumulated in Double over chunks.
    public func squaredNorm() -> Float {
        var s = 0.0
        var i = 0
        let p = data
        while i < count {
            let n = Swift.min(8192, count - i)
            var a = SIMD8<Float>()
            var j = 0
            while j + 8 <= n {
                let v = UnsafeRawPointer(p + i + j).loadUnaligned(as: SIMD8<Float>.self)
                a = a.addingProduct(v, v); j += 8
            }
            var part = a.sum()
            while j < n { part += p[i + j] * p[i + j]; j += 1 }
            s += Double(part)
            i += n
        }
        return Float(s)
    }
}

/// AdamW (Loshchilov & Hutter), matching torch.optim.AdamW step for step:
/// p ← p·(1 − lr·λ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
public final class AdamW {
    public let names: [String]
    public let params: [Tensor]
    public var lr: Float
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var step = 0
    let decays: [Bool]
    var m: [Tensor], v: [Tensor]

    public init(_ named: [(String, Tensor)], lr: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0.01, decay: Set<String>? = nil) {
        names = named.map(\.0); params = named.map(\.1)
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        decays = names.map { decay?.contains($0) ?? true }
        m = params.map { Tensor.zeros($0.shape) }
        v = params.map { Tensor.zeros($0.shape) }
    }

    /// AdamW over a model's parameters with `defaultDecayNames`.
    public convenience init(model: Module, lr: Float, beta1: Float = 0.9, beta2: Float = 0.999,
                            eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.init(model.namedParameters(), lr: lr, beta1: beta1, beta2: beta2, eps: eps,
                  weightDecay: weightDecay, decay: defaultDecayNames(model))
    }

    /// One update from the parameters' current gradients (parameters without one are skipped).
    public func update() {
        step += 1
        let bc1 = 1 - Foundation.pow(Double(beta1), Double(step))
        let bc2 = 1 - Foundation.pow(Double(beta2), Double(step))
        let stepSize = Float(Double(lr) / bc1), invSqrtBc2 = Float(1 / bc2.squareRoot())
        for i in params.indices {
            guard let g = params[i].grad else { continue }
            let shrink = decays[i] ? 1 - lr * weightDecay : 1
            adamwKernel(params[i].data, g.data, m[i].data, v[i].data, params[i].count,
                        b1: beta1, b2: beta2, eps: eps, shrink: shrink, stepSize: stepSize, invSqrtBc2: invSqrtBc2)
        }
    }

    // MARK: State

    /// Moments by "<param>.exp_avg" / "<param>.exp_avg_sq" (PyTorch's names), plus the step.
    public func state() -> (tensors: [String: Tensor], step: Int) {
        var t: [String: Tensor] = [:]
        for (i, n) in names.enumerated() { t[n + ".exp_avg"] = m[i]; t[n + ".exp_avg_sq"] = v[i] }
        return (t, step)
    }

    public func load(tensors: [String: Tensor], step: Int) throws {
        for (i, n) in names.enumerated() {
            guard let a = tensors[n + ".exp_avg"], let b = tensors[n + ".exp_avg_sq"] else {
                throw Module.LoadError.missing([n + ".exp_avg"])
            }
            guard a.shape == m[i].shape, b.shape == v[i].shape else {
                throw Module.LoadError.shape(n + ".exp_avg", expected: m[i].shape, got: a.shape)
            }
            m[i].assign(a); v[i].assign(b)
        }
        self.step = step
    }
}

private func adamwKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                         _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ n: Int,
                         b1: Float, b2: Float, eps: Float, shrink: Float, stepSize: Float, invSqrtBc2: Float) {
    typealias V = SIMD8<Float>
    @inline(__always) func ld(_ x: UnsafeMutablePointer<Float>, _ i: Int) -> V { UnsafeRawPointer(x + i).loadUnaligned(as: V.self) }
    @inline(__always) func st(_ x: UnsafeMutablePointer<Float>, _ i: Int, _ y: V) { UnsafeMutableRawPointer(x + i).storeBytes(of: y, as: V.self) }
    Parallel.forRange(n, grain: 1 << 15) { r in
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let gi = ld(g, i)
            let mi = b1 * ld(m, i) + (1 - b1) * gi
            let vi = b2 * ld(v, i) + (1 - b2) * gi * gi
            st(m, i, mi); st(v, i, vi)
            st(p, i, ld(p, i) * shrink - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps))
            i += 8
        }
        while i < r.upperBound {
            let gi = g[i]
            let mi = b1 * m[i] + (1 - b1) * gi
            let vi = b2 * v[i] + (1 - b2) * gi * gi
            m[i] = mi; v[i] = vi
            p[i] = p[i] * shrink - stepSize * mi / (vi.squareRoot() * invSqrtBc2 + eps)
            i += 1
        }
    }
}

/// SGD with momentum (PyTorch semantics: buf ← μ·buf + g; p ← p − lr·buf) and coupled L2 decay.
public final class SGD {
    public let params: [Tensor]
    public var lr: Float, momentum: Float, weightDecay: Float
    var buffers: [Tensor?]

    public init(_ params: [Tensor], lr: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.params = params; self.lr = lr; self.momentum = momentum; self.weightDecay = weightDecay
        buffers = Array(repeating: nil, count: params.count)
    }

    /// Momentum buffers by parameter index ("momentum.<i>").
    public func state() -> [String: Tensor] {
        var t: [String: Tensor] = [:]
        for (i, b) in buffers.enumerated() { if let b { t["momentum.\(i)"] = b } }
        return t
    }

    public func load(_ tensors: [String: Tensor]) {
        for i in buffers.indices { buffers[i] = tensors["momentum.\(i)"]?.copy() }
    }

    public func update() {
        for (i, p) in params.enumerated() {
            guard let g = p.grad else { continue }
            let d = weightDecay == 0 ? g.copy() : { let t = g.copy(); t.addInPlace(p, scale: weightDecay); return t }()
            if momentum != 0 {
                if let buf = buffers[i] { buf.scaleInPlace(momentum); buf.addInPlace(d) } else { buffers[i] = d.copy() }
                p.addInPlace(buffers[i]!, scale: -lr)
            } else {
                p.addInPlace(d, scale: -lr)
            }
        }
    }
}

/// Learning-rate schedules: closures from the (0-based) step to the learning rate.
public enum LRSchedule {
    public enum Decay: String, Codable, Sendable, CaseIterable { case cosine, linear, constant }

    /// Linear warmup from 0 over `warmup` steps to `peak`, then `decay` to `peak·minRatio` at
    /// `total` steps (held after).
    public static func make(peak: Float, warmup: Int, total: Int, decay: Decay = .cosine,
                            minRatio: Float = 0.1) -> @Sendable (Int) -> Float {
        return { step in
            if step < warmup { return peak * Float(step + 1) / Float(warmup) }
            let span = Swift.max(total - warmup, 1)
            let progress = Swift.min(Float(step - warmup) / Float(span), 1)
            let floor = peak * minRatio
            switch decay {
            case .constant: return peak
            case .linear: return floor + (peak - floor) * (1 - progress)
            case .cosine: return floor + (peak - floor) * 0.5 * (1 + Foundation.cos(Float.pi * progress))
            }
        }
    }
}

/// Exponential moving average of a model's parameters: s ← d·s + (1 − d)·p, with the decay warmed
/// up as d = min(decay, (1 + n)/(10 + n)) at update n (TensorFlow's `num_updates` habit). Without
/// the warm-up the average keeps decayⁿ of the random initial weights (0.999¹⁵⁰⁰ ≈ 22% after 1500
/// steps); with it the initialisation's share after n updates is Π (1 + k)/(10 + k) = 9!·n!/(n + 9)!
/// (below 10⁻⁹ after 100 updates), so the average is of trained weights however short the run.
public final class EMA {
    public let decay: Float
    public let names: [String]
    public let shadow: [Tensor]
    let params: [Tensor]
    /// Updates applied so far (restored with the shadow on resume: ``restore(_:updates:)``).
    public private(set) var updates = 0

    public init(_ model: Module, decay: Float = 0.999) {
        let named = model.namedParameters()
        self.decay = decay
        names = named.map(\.0); params = named.map(\.1)
        shadow = params.map { $0.copy() }
    }

    /// The decay update `n` (0-based) applies.
    public func decay(atUpdate n: Int) -> Float { min(decay, Float(1 + n) / Float(10 + n)) }

    public func update() {
        let d = decay(atUpdate: updates)
        for (s, p) in zip(shadow, params) {
            s.scaleInPlace(d)
            s.addInPlace(p, scale: 1 - d)
        }
        updates += 1
    }

    /// Sets the averaged weights from `state` (by name; names it lacks keep their values) and the
    /// count of updates they hold, so the warm-up continues where it stopped.
    public func restore(_ state: [String: Tensor], updates: Int) {
        for (n, s) in zip(names, shadow) { if let t = state[n] { s.assign(t) } }
        self.updates = updates
    }

    /// The averaged weights by parameter name.
    public func stateDict() -> [String: Tensor] { Dictionary(uniqueKeysWithValues: zip(names, shadow).map { ($0, $1) }) }
}
