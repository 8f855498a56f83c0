// Normalisation layers as fused ops: RMSNorm and LayerNorm over the last axis, QK-norm inside a
// packed QKV projection, GroupNorm over (C/G, H, W) groups of an NCHW tensor. Forward keeps the
// per-row inverse RMS/std; backward is one pass per row plus per-thread partial sums for the
// affine gradients.
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

/// QK-norm (Dehghani et al. 2023) inside a packed (…, 3·H·D) projection: RMSNorm over each head's
/// query vector with `qWeight` (D) and over each key vector with `kWeight` (D); values pass
/// through. The fused form of split → rmsNorm(q), rmsNorm(k) → concat (tested against it), so
/// RoPE and attention can keep reading the packed layout.
public func qkNorm(packed qkv: Tensor, heads h: Int, qWeight: Tensor, kWeight: Tensor, eps: Float = 1e-6) -> Tensor {
    let c = qkv.dim(-1), rows = qkv.count / Swift.max(c, 1)
    precondition(h > 0 && c % (3 * h) == 0, "qkNorm(packed:): last dimension \(c) is not 3·H·D for \(h) heads")
    let d = c / (3 * h), normed = 2 * h
    precondition(qWeight.shape == [d] && kWeight.shape == [d], "qkNorm(packed:): weights \(qWeight.shape), \(kWeight.shape) must be [\(d)]")
    let out = Tensor.empty(qkv.shape), inv = Tensor.empty([rows, normed])
    let px = qkv.data, py = out.data, pr = inv.data, pq = qWeight.data, pk = kWeight.data
    Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(c, 1))) { r in
        for i in r {
            for j in 0..<normed {
                let row = px + i * c + j * d
                let ri = 1 / (vdot(row, row, d) / Float(d) + eps).squareRoot()
                pr[i * normed + j] = ri
                let rv = V8(repeating: ri)
                vmap2Serial(row, j < h ? pq : pk, py + i * c + j * d, d) { $0 * rv * $1 }
            }
            (py + i * c + normed * d).update(from: px + i * c + normed * d, count: h * d)
        }
    }
    let xd = qkv.detached(), qd = qWeight.detached(), kd = kWeight.detached(), invd = inv
    let needW = qWeight.tracksGrad || kWeight.tracksGrad
    return out.recorded([qkv, qWeight, kWeight]) { g in
        let pr = invd.data
        // per vector, x̂ = x·r, u = g⊙γ:  dx = r·(u − x̂·mean(u⊙x̂)),  dγ = Σ g⊙x̂ (queries, keys apart)
        let gx = Tensor.empty(xd.shape)
        let chunks = Swift.min(Parallel.threads, Swift.max(1, rows / 16))
        let partial = Tensor.zeros([chunks, 2, d])
        let px = xd.data, pg = g.data, pgx = gx.data, pp = partial.data, pq = qd.data, pk = kd.data
        Parallel.forEach(chunks) { ch in
            let u = UnsafeMutablePointer<Float>.allocate(capacity: d); defer { u.deallocate() }
            for i in (rows * ch / chunks)..<(rows * (ch + 1) / chunks) {
                for j in 0..<normed {
                    let o = i * c + j * d, xr = px + o, gr = pg + o, ri = pr[i * normed + j], rv = V8(repeating: ri)
                    vmap2Serial(gr, j < h ? pq : pk, u, d) { $0 * $1 }
                    let m = V8(repeating: vdot(u, xr, d) * ri * ri / Float(d))
                    vmap2Serial(u, xr, pgx + o, d) { u, x in rv * (u - x * m) }
                    if needW {
                        let acc = pp + (ch * 2 + (j < h ? 0 : 1)) * d
                        var q = 0
                        while q + 8 <= d { store8(load8(acc + q).addingProduct(load8(gr + q) * load8(xr + q), rv), acc + q); q += 8 }
                        while q < d { acc[q] += gr[q] * xr[q] * ri; q += 1 }
                    }
                }
                (pgx + i * c + normed * d).update(from: pg + i * c + normed * d, count: h * d)
            }
        }
        if !needW { return [gx, nil, nil] }
        let sums = partial.sum(axes: [0])                                       // (2, D)
        return [gx, sums.slice(axis: 0, 0..<1).reshaped([d]), sums.slice(axis: 0, 1..<2).reshaped([d])]
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
    // Without γ, β the output is x̂ itself (GroupNorm applies its per-channel affine apart).
    let out = weight == nil && bias == nil ? xhat.detached() : Tensor.empty(x.shape)
    if weight != nil || bias != nil {
        let py = out.data, pw = weight?.data, pb = bias?.data
        Parallel.forRange(rows, grain: Swift.max(1, 8192 / Swift.max(d, 1))) { r in
            for i in r {
                let src = ph + i * d, dst = py + i * d
                switch (pw, pb) {
                case let (w?, b?): vmap2Serial(src, w, dst, d) { $0 * $1 }; vmap2Serial(dst, b, dst, d) { $0 + $1 }
                case let (w?, nil): vmap2Serial(src, w, dst, d) { $0 * $1 }
                case let (nil, b?): vmap2Serial(src, b, dst, d) { $0 + $1 }
                case (nil, nil): break
                }
            }
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
