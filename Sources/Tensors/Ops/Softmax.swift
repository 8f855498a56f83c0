// Softmax and log-softmax along the last axis (other axes go through a transpose). One pass for
// the max, one for exp-and-sum, one to scale; the backward is one fused pass per row.
import Foundation

/// y = softmax(x) over a row of `n` floats; returns log Σ exp(x) (the row's logsumexp).
@inline(__always) @discardableResult
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    var mv = V8(repeating: -.infinity)
    var i = 0
    while i + 8 <= n { mv = vmax(mv, load8(x + i)); i += 8 }
    var m = mv.max()
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    if m == -.infinity { m = 0 }  // a fully masked row: all zeros out, lse = -inf
    let mb = V8(repeating: m)
    var sv = V8()
    i = 0
    while i + 8 <= n { let e = vexp(load8(x + i) - mb); store8(e, y + i); sv += e; i += 8 }
    var s = sv.sum()
    while i < n { let e = sexp(x[i] - m); y[i] = e; s += e; i += 1 }
    let inv = s > 0 ? 1 / s : 0
    let iv = V8(repeating: inv)
    i = 0
    while i + 8 <= n { store8(load8(y + i) * iv, y + i); i += 8 }
    while i < n { y[i] *= inv; i += 1 }
    return m + Foundation.log(s)
}

extension Tensor {
    /// Softmax along `axis` (default last).
    public func softmax(axis: Int = -1) -> Tensor {
        let a = normAxis(axis, rank, "softmax")
        if a != rank - 1 { return transposed(a, -1).softmax().transposed(a, -1) }
        let n = shape[rank - 1], rows = count / Swift.max(n, 1)
        let out = Tensor.empty(shape)
        let px = data, py = out.data
        Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
            for row in r { softmaxRow(px + row * n, py + row * n, n) }
        }
        let y = out.detached()
        return out.recorded([self]) { g in
            // dx = y ⊙ (g − Σ g⊙y)
            let gx = Tensor.empty(y.shape)
            let pg = g.data, py = y.data, pgx = gx.data
            Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
                for row in r {
                    let o = row * n
                    let d = V8(repeating: vdot(pg + o, py + o, n))
                    vmap2Serial(pg + o, py + o, pgx + o, n) { g, y in y * (g - d) }
                }
            }
            return [gx]
        }
    }

    /// log-softmax along `axis` (default last).
    public func logSoftmax(axis: Int = -1) -> Tensor {
        let a = normAxis(axis, rank, "logSoftmax")
        if a != rank - 1 { return transposed(a, -1).logSoftmax().transposed(a, -1) }
        let n = shape[rank - 1], rows = count / Swift.max(n, 1)
        let out = Tensor.empty(shape)
        let px = data, py = out.data
        Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
            for row in r {
                let lse = V8(repeating: softmaxRow(px + row * n, py + row * n, n))
                vmap2Serial(px + row * n, px + row * n, py + row * n, n) { x, _ in x - lse }
            }
        }
        let y = out.detached()
        return out.recorded([self]) { g in
            // dx = g − softmax(x)·Σg
            let gx = Tensor.empty(y.shape)
            let pg = g.data, py = y.data, pgx = gx.data
            Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(n, 1))) { r in
                for row in r {
                    let o = row * n
                    let s = V8(repeating: vsum(pg + o, n))
                    vmap2Serial(pg + o, py + o, pgx + o, n) { g, y in g - vexp(y) * s }
                }
            }
            return [gx]
        }
    }
}
