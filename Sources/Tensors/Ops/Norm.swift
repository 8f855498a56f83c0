// Normalisation layers as fused ops: RMSNorm and LayerNorm over the last axis, GroupNorm over
// (C/G, H, W) groups of an NCHW tensor. Forward keeps the per-row inverse RMS/std; backward is
// one pass per row plus per-thread partial sums for the affine gradients.
import Foundation

/// Rows split into one chunk per thread, with a scratch accumulator per chunk for dγ/dβ.
private func rowChunks(_ rows: Int) -> Int { Swift.min(Parallel.threads, Swift.max(1, rows / 16)) }

/// RMSNorm over the last axis: y = x / √(mean(x²) + ε) · γ.
public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float = 1e-6) -> Tensor {
    let d = x.dim(-1), rows = x.count / Swift.max(d, 1)
    if let weight { precondition(weight.shape == [d], "rmsNorm: weight \(weight.shape) must be [\(d)]") }
    let out = Tensor.empty(x.shape), inv = Tensor.empty([rows])
    let px = x.data, py = out.data, pr = inv.data, pw = weight?.data
    Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { r in
        for i in r {
            let row = px + i * d
            let ri = 1 / (vdot(row, row, d) / Float(d) + eps).squareRoot()
            pr[i] = ri
            let rv = V8(repeating: ri)
            if let pw { vmap2Serial(row, pw, py + i * d, d) { $0 * rv * $1 } }
            else { vmap2Serial(row, row, py + i * d, d) { x, _ in x * rv } }
        }
    }
    let xd = x.detached(), wd = weight?.detached(), invd = inv
    var inputs = [x]; if let weight { inputs.append(weight) }
    return out.recorded(inputs) { g in
        let pr = invd.data
        // x̂ = x·r, h = g⊙γ:  dx = r·(h − x̂·mean(h⊙x̂)),  dγ = Σ_rows g⊙x̂
        let gx = Tensor.empty(xd.shape)
        let chunks = rowChunks(rows)
        let partial = Tensor.zeros([chunks, d])
        let px = xd.data, pg = g.data, pgx = gx.data, pw = wd?.data, pp = partial.data
        Parallel.forEach(chunks) { c in
            let h = UnsafeMutablePointer<Float>.allocate(capacity: d); defer { h.deallocate() }
            let acc = pp + c * d
            for i in (rows * c / chunks)..<(rows * (c + 1) / chunks) {
                let xr = px + i * d, gr = pg + i * d, ri = pr[i], rv = V8(repeating: ri)
                if let pw { vmap2Serial(gr, pw, h, d) { $0 * $1 } } else { h.update(from: gr, count: d) }
                let m = V8(repeating: vdot(h, xr, d) * ri * ri / Float(d))  // mean(h⊙x̂)·r
                vmap2Serial(h, xr, pgx + i * d, d) { h, x in rv * (h - x * m) }
                if pw != nil { vmap2Serial(gr, xr, h, d) { g, x in g * x * rv }; vmap2Serial(acc, h, acc, d) { $0 + $1 } }
            }
        }
        let gw: Tensor? = wd == nil ? nil : partial.sum(axes: [0])
        return wd == nil ? [gx] : [gx, gw]
    }
}

/// LayerNorm over the last axis: y = (x − μ)/√(σ² + ε) · γ + β.
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let d = x.dim(-1), rows = x.count / Swift.max(d, 1)
    if let weight { precondition(weight.shape == [d], "layerNorm: weight \(weight.shape) must be [\(d)]") }
    if let bias { precondition(bias.shape == [d], "layerNorm: bias \(bias.shape) must be [\(d)]") }
    let xhat = Tensor.empty(x.shape), inv = Tensor.empty([rows])
    let px = x.data, ph = xhat.data, pr = inv.data
    Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { r in
        for i in r {
            let row = px + i * d
            let mu = vsum(row, d) / Float(d)
            let mv = V8(repeating: mu)
            vmap2Serial(row, row, ph + i * d, d) { x, _ in x - mv }
            let ri = 1 / (vdot(ph + i * d, ph + i * d, d) / Float(d) + eps).squareRoot()
            pr[i] = ri
            let rv = V8(repeating: ri)
            vmap2Serial(ph + i * d, ph + i * d, ph + i * d, d) { x, _ in x * rv }
        }
    }
    let out = Tensor.empty(x.shape)
    let py = out.data, pw = weight?.data, pb = bias?.data
    Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { r in
        for i in r {
            let src = ph + i * d, dst = py + i * d
            for j in 0..<d { dst[j] = src[j] * (pw?[j] ?? 1) + (pb?[j] ?? 0) }
        }
    }
    let xh = xhat.detached(), wd = weight?.detached(), invd = inv
    var inputs = [x]; if let weight { inputs.append(weight) }; if let bias { inputs.append(bias) }
    return out.recorded(inputs) { g in
        let pr = invd.data
        // h = g⊙γ:  dx = r·(h − mean(h) − x̂·mean(h⊙x̂)),  dγ = Σ g⊙x̂,  dβ = Σ g
        let gx = Tensor.empty(xh.shape)
        let pg = g.data, ph = xh.data, pgx = gx.data, pw = wd?.data
        Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { r in
            let h = UnsafeMutablePointer<Float>.allocate(capacity: d); defer { h.deallocate() }
            for i in r {
                let gr = pg + i * d, xr = ph + i * d
                if let pw { vmap2Serial(gr, pw, h, d) { $0 * $1 } } else { h.update(from: gr, count: d) }
                let mh = V8(repeating: vsum(h, d) / Float(d)), mhx = V8(repeating: vdot(h, xr, d) / Float(d))
                let rv = V8(repeating: pr[i])
                vmap2Serial(h, xr, pgx + i * d, d) { h, x in rv * (h - mh - x * mhx) }
            }
        }
        var grads: [Tensor?] = [gx]
        if wd != nil { grads.append((g * xh).reshaped([rows, d]).sum(axes: [0])) }
        if bias != nil { grads.append(g.reshaped([rows, d]).sum(axes: [0])) }
        return grads
    }
}

/// GroupNorm of x (N, C, …spatial) in `groups` groups of channels, with per-channel γ, β.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    precondition(x.rank >= 2, "groupNorm: input must be (N, C, …), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], hw = x.count / Swift.max(n * c, 1)
    precondition(groups > 0 && c % groups == 0, "groupNorm: \(c) channels do not split into \(groups) groups")
    if let weight { precondition(weight.shape == [c], "groupNorm: weight \(weight.shape) must be [\(c)]") }
    if let bias { precondition(bias.shape == [c], "groupNorm: bias \(bias.shape) must be [\(c)]") }
    // Normalise each (sample, group) as a LayerNorm row of (C/G)·HW elements, then apply γ, β.
    let xhat = layerNorm(x.reshaped([n * groups, (c / groups) * hw]), weight: nil, bias: nil, eps: eps).reshaped(x.shape)
    guard weight != nil || bias != nil else { return xhat }
    return channelAffine(xhat, scale: weight, shift: bias)
}
