// Activations: SiLU, GELU (tanh form, as PyTorch's approximate="tanh") and the fused SwiGLU.
// Each is one vectorised pass forward and one backward; the fused SwiGLU is tested against
// its composite silu(gate) * up.

private let geluC = Float(0.7978845608028654)  // √(2/π)
private let geluK = Float(0.044715)

extension Tensor {
    /// x · σ(x).
    public func silu() -> Tensor {
        unary({ $0 * vsigmoid($0) }) { g, x, _ in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, x.data, out.data, g.count) { g, x in
                let s = vsigmoid(x)
                return g * s * (1 + x * (1 - s))
            }
            return out
        }
    }

    /// 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))).
    public func gelu() -> Tensor {
        unary({ x in 0.5 * x * (1 + vtanh(geluC * (x + geluK * x * x * x))) }) { g, x, _ in
            let out = Tensor.empty(g.shape)
            vmap2(g.data, x.data, out.data, g.count) { g, x in
                let x2 = x * x
                let t = vtanh(geluC * (x + geluK * x2 * x))
                let dt = (1 - t * t) * geluC * (1 + 3 * geluK * x2)
                return g * (0.5 * (1 + t) + 0.5 * x * dt)
            }
            return out
        }
    }
}

/// SwiGLU on a fused projection: `x` is (…, 2H) holding [gate | up]; returns (…, H) =
/// silu(gate) · up. One pass forward, one backward, no split copies.
public func swiglu(_ x: Tensor) -> Tensor {
    let h2 = x.dim(-1)
    precondition(h2 % 2 == 0, "swiglu: last dimension \(h2) must be even ([gate | up])")
    let h = h2 / 2, rows = x.count / h2
    let out = Tensor.empty(Array(x.shape.dropLast()) + [h])
    let px = x.data, py = out.data
    Parallel.forEach(rows) { r in
        let gate = px + r * h2, up = gate + h, y = py + r * h
        var i = 0
        while i + 8 <= h {
            let a = load8(gate + i)
            store8(a * vsigmoid(a) * load8(up + i), y + i)
            i += 8
        }
        while i < h { let a = gate[i]; y[i] = a / (1 + sexp(-a)) * up[i]; i += 1 }
    }
    let xd = x.detached()
    return out.recorded([x]) { g in
        let gx = Tensor.empty(xd.shape)
        let pg = g.data, px = xd.data, pgx = gx.data
        Parallel.forEach(rows) { r in
            let gate = px + r * h2, up = gate + h, gr = pg + r * h
            let dgate = pgx + r * h2, dup = dgate + h
            var i = 0
            while i + 8 <= h {
                let a = load8(gate + i), u = load8(up + i), gv = load8(gr + i)
                let s = vsigmoid(a)
                store8(gv * a * s, dup + i)
                store8(gv * u * s * (1 + a * (1 - s)), dgate + i)
                i += 8
            }
            while i < h {
                let a = gate[i], s = 1 / (1 + sexp(-a))
                dup[i] = gr[i] * a * s
                dgate[i] = gr[i] * up[i] * s * (1 + a * (1 - s))
                i += 1
            }
        }
        return [gx]
    }
}
