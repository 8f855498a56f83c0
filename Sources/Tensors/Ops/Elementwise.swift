// Elementwise ops: broadcasting arithmetic, scalar arithmetic, and unary math, each forward with
// its backward beside it. Not for reductions (Reduce.swift) or activations (Activation.swift).
import Foundation

// MARK: - Binary, broadcasting

enum BinaryOp { case add, sub, mul, div }

@inline(__always) private func apply(_ op: BinaryOp, _ x: V8, _ y: V8) -> V8 {
    switch op {
    case .add: return x + y
    case .sub: return x - y
    case .mul: return x * y
    case .div: return x / y
    }
}

/// Runs the elementwise kernel of `op` for broadcasting inputs into `out`.
private func binaryKernel(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ out: Tensor) {
    let pa = a.data, pb = b.data, po = out.data, n = out.count
    switch (broadcastPattern(big: out.shape, small: a.shape), broadcastPattern(big: out.shape, small: b.shape)) {
    case (.same, .same):
        switch op {
        case .add: vmap2(pa, pb, po, n) { $0 + $1 }
        case .sub: vmap2(pa, pb, po, n) { $0 - $1 }
        case .mul: vmap2(pa, pb, po, n) { $0 * $1 }
        case .div: vmap2(pa, pb, po, n) { $0 / $1 }
        }
    case (.same, .scalar):
        let s = V8(repeating: pb[0])
        switch op {
        case .add: vmap(pa, po, n) { $0 + s }
        case .sub: vmap(pa, po, n) { $0 - s }
        case .mul: vmap(pa, po, n) { $0 * s }
        case .div: vmap(pa, po, n) { $0 / s }
        }
    case (.scalar, .same):
        let s = V8(repeating: pa[0])
        vmap(pb, po, n) { apply(op, s, $0) }
    case (.same, .rows(let inner)):
        Parallel.forEach(n / inner) { r in
            vmap2Serial(pa + r * inner, pb, po + r * inner, inner) { apply(op, $0, $1) }
        }
    case (.rows(let inner), .same):
        Parallel.forEach(n / inner) { r in
            vmap2Serial(pa, pb + r * inner, po + r * inner, inner) { apply(op, $0, $1) }
        }
    default:
        // General broadcast: walk the output index with per-input strides.
        let sa = broadcastStrides(a.shape, to: out.shape), sb = broadcastStrides(b.shape, to: out.shape)
        let shape = out.shape, r = shape.count
        var idx = [Int](repeating: 0, count: r)
        var ia = 0, ib = 0
        for i in 0..<n {
            let x = pa[ia], y = pb[ib]
            switch op {
            case .add: po[i] = x + y
            case .sub: po[i] = x - y
            case .mul: po[i] = x * y
            case .div: po[i] = x / y
            }
            var d = r - 1
            while d >= 0 {
                idx[d] += 1; ia += sa[d]; ib += sb[d]
                if idx[d] < shape[d] { break }
                ia -= sa[d] * shape[d]; ib -= sb[d] * shape[d]; idx[d] = 0
                d -= 1
            }
        }
    }
}

/// Single-threaded y = f(a, b) for use inside an outer parallel loop.
@inline(__always)
func vmap2Serial(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                 _ n: Int, _ f: (V8, V8) -> V8) {
    var i = 0
    while i + 8 <= n { store8(f(load8(a + i), load8(b + i)), y + i); i += 8 }
    if i < n { storePartial(f(loadPartial(a + i, n - i), loadPartial(b + i, n - i)), y + i, n - i) }
}

private func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, _ name: String) -> Tensor {
    precondition(a.dtype == .float32 && b.dtype == .float32, "\(name): float tensors expected")
    let out = Tensor.empty(broadcastShape(a.shape, b.shape, op: name))
    binaryKernel(op, a, b, out)
    let ad = a.detached(), bd = b.detached()
    let needA = a.tracksGrad, needB = b.tracksGrad
    return out.recorded([a, b]) { g in
        switch op {
        case .add:
            return [needA ? g.summed(to: ad.shape) : nil, needB ? g.summed(to: bd.shape) : nil]
        case .sub:
            return [needA ? g.summed(to: ad.shape) : nil, needB ? (-g).summed(to: bd.shape) : nil]
        case .mul:
            return [needA ? (g * bd).summed(to: ad.shape) : nil, needB ? (g * ad).summed(to: bd.shape) : nil]
        case .div:
            let ga = needA ? (g / bd).summed(to: ad.shape) : nil
            let gb = needB ? (-(g * ad) / (bd * bd)).summed(to: bd.shape) : nil
            return [ga, gb]
        }
    }
}

public func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b, "add") }
public func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b, "sub") }
public func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b, "mul") }
public func / (a: Tensor, b: Tensor) -> Tensor { binary(.div, a, b, "div") }

// MARK: - Scalar

public func + (a: Tensor, s: Float) -> Tensor {
    let out = Tensor.empty(a.shape)
    let v = V8(repeating: s)
    vmap(a.data, out.data, a.count) { $0 + v }
    return out.recorded([a]) { g in [g] }
}
public func + (s: Float, a: Tensor) -> Tensor { a + s }
public func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
public func - (s: Float, a: Tensor) -> Tensor { (-a) + s }

public func * (a: Tensor, s: Float) -> Tensor {
    let out = Tensor.empty(a.shape)
    let v = V8(repeating: s)
    vmap(a.data, out.data, a.count) { $0 * v }
    return out.recorded([a]) { g in [g * s] }
}
public func * (s: Float, a: Tensor) -> Tensor { a * s }
public func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }

public prefix func - (a: Tensor) -> Tensor { a * -1 }

// MARK: - Unary math

extension Tensor {
    /// Applies a vectorised `forward`, recording `backward(g, x, y)` for the input gradient.
    @inline(__always)
    func unary(_ forward: (V8) -> V8, _ backward: @escaping (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let out = Tensor.empty(shape)
        vmap(data, out.data, count, forward)
        let x = detached(), y = out.detached()
        return out.recorded([self]) { g in [backward(g, x, y)] }
    }

    public func exp() -> Tensor {
        unary(vexp) { g, _, y in g * y }
    }

    public func log() -> Tensor {
        let out = Tensor.empty(shape)
        let x = data, y = out.data
        Parallel.forRange(count, grain: 1 << 14) { r in for i in r { y[i] = Foundation.log(x[i]) } }
        let xd = detached()
        return out.recorded([self]) { g in [g / xd] }
    }

    public func sqrt() -> Tensor {
        unary({ $0.squareRoot() }) { g, _, y in g * 0.5 / y }
    }

    public func rsqrt() -> Tensor {
        unary({ 1 / $0.squareRoot() }) { g, _, y in g * (y * y * y) * -0.5 }
    }

    public func square() -> Tensor {
        unary({ $0 * $0 }) { g, x, _ in g * x * 2 }
    }

    public func tanh() -> Tensor {
        unary(vtanh) { g, _, y in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, y.data, out.data, g.count) { g, y in g * (1 - y * y) }
            return out
        }
    }

    public func sigmoid() -> Tensor {
        unary(vsigmoid) { g, _, y in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, y.data, out.data, g.count) { g, y in g * y * (1 - y) }
            return out
        }
    }

    public func relu() -> Tensor {
        unary({ vmax($0, V8()) }) { g, x, _ in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, x.data, out.data, g.count) { g, x in g.replacing(with: 0, where: x .<= 0) }
            return out
        }
    }

    /// Elementwise maximum with a scalar floor (no gradient where clamped).
    public func clamped(min lo: Float) -> Tensor {
        let l = V8(repeating: lo)
        return unary({ vmax($0, l) }) { g, x, _ in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, x.data, out.data, g.count) { g, x in g.replacing(with: 0, where: x .< l) }
            return out
        }
    }

    /// Elementwise clamp to [lo, hi] (no gradient where clamped).
    public func clamped(_ lo: Float, _ hi: Float) -> Tensor {
        precondition(lo <= hi, "clamped: lo \(lo) > hi \(hi)")
        let l = V8(repeating: lo), h = V8(repeating: hi)
        return unary({ vmin(vmax($0, l), h) }) { g, x, _ in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, x.data, out.data, g.count) { g, x in g.replacing(with: 0, where: (x .< l) .| (x .> h)) }
            return out
        }
    }
}

// MARK: - In place (outside autograd)

extension Tensor {
    /// self += other (same shape). For gradient accumulation and optimizers; not recorded.
    public func addInPlace(_ other: Tensor, scale: Float = 1) {
        precondition(shape == other.shape, "addInPlace: \(shape) vs \(other.shape)")
        let s = V8(repeating: scale)
        if scale == 1 { vmap2(data, other.data, data, count) { $0 + $1 } }
        else { vmap2(data, other.data, data, count) { $0.addingProduct($1, s) } }
    }

    /// self *= s. Not recorded.
    public func scaleInPlace(_ s: Float) {
        let v = V8(repeating: s)
        vmap(data, data, count) { $0 * v }
    }

    /// Overwrites the elements with `value`. Not recorded.
    public func fill(_ value: Float) {
        if value == 0 { memset(storage.raw, 0, count * 4) } else { data.update(repeating: value, count: count) }
    }

    /// Copies `other`'s values into this tensor's storage (same element count). Not recorded.
    public func assign(_ other: Tensor) {
        precondition(count == other.count, "assign: \(count) elements vs \(other.count)")
        memcpy(storage.raw, other.storage.raw, count * 4)
    }
}
