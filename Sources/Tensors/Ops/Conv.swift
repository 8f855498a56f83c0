// Spatial ops on NCHW tensors: conv2d (im2col + one GEMM per image), nearest upsampling, k×k
// average pooling, and the per-channel affine y = x·γ[c] + β[c]. Not cuDNN: no dilation, groups,
// or Winograd/FFT paths; the GEMM does the work. Legend: N images, C input channels, O output
// channels, H×W input, OH×OW output, kH×kW kernel, K = C·kH·kW, P = OH·OW.
import Foundation

// MARK: - im2col geometry

/// Shapes of one convolution and the im2col/col2im copies between an image (C, H, W) and its
/// column matrix (K, P), row k = (c·kH + i)·kW + j, column p = oh·OW + ow.
struct ConvGeometry {
    let c, h, w, kh, kw, stride, pad, oh, ow: Int
    var k: Int { c * kh * kw }
    var p: Int { oh * ow }
    /// 1×1, stride 1, no padding: the image already is its column matrix.
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && pad == 0 }

    /// cols (K, P) ← patches of image (C, H, W); out-of-image taps read 0. Rows of `cols` are
    /// `ld` ≥ P apart, so several images can fill one wide column matrix side by side. With
    /// padding, the image is first copied into a zero-bordered (C, H + 2·pad, W + 2·pad) buffer,
    /// so every row of taps is a plain (strided) run without bounds checks: the rows of small
    /// images are only a few floats, where per-row branches and memcpy calls cost more than the copy.
    func im2col(_ x: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, ld: Int? = nil) {
        let ld = ld ?? p
        let hp = h + 2 * pad, wp = w + 2 * pad
        var buffer: UnsafeMutablePointer<Float>? = nil
        defer { buffer?.deallocate() }
        let src0: UnsafePointer<Float>
        if pad == 0 {
            src0 = x
        } else {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: c * hp * wp)
            for ci in 0..<c {
                let plane = b + ci * hp * wp
                plane.update(repeating: 0, count: pad * wp)                          // top border
                (plane + (h + pad) * wp).update(repeating: 0, count: pad * wp)       // bottom border
                for r in 0..<h {
                    let row = plane + (r + pad) * wp
                    for q in 0..<pad { row[q] = 0; row[wp - 1 - q] = 0 }             // side borders
                    copyRun(x + (ci * h + r) * w, row + pad, w)
                }
            }
            buffer = b
            src0 = UnsafePointer(b)
        }
        for ci in 0..<c {
            for i in 0..<kh {
                for j in 0..<kw {
                    let row = cols + ((ci * kh + i) * kw + j) * ld
                    for r in 0..<oh {
                        let src = src0 + (ci * hp + r * stride + i) * wp + j, dst = row + r * ow
                        if stride == 1 { copyRun(src, dst, ow) } else { for q in 0..<ow { dst[q] = src[q * stride] } }
                    }
                }
            }
        }
    }

    /// image (C, H, W) += the column matrix (K, P) scattered back to its taps (adjoint of im2col);
    /// rows of `cols` are `ld` apart. With padding the taps are summed in a zero-bordered buffer
    /// first and its interior added to the image.
    func col2im(_ cols: UnsafePointer<Float>, _ x: UnsafeMutablePointer<Float>, ld: Int? = nil) {
        let ld = ld ?? p
        let hp = h + 2 * pad, wp = w + 2 * pad
        var buffer: UnsafeMutablePointer<Float>? = nil
        let dst0: UnsafeMutablePointer<Float>
        if pad == 0 {
            dst0 = x
        } else {
            let b = UnsafeMutablePointer<Float>.allocate(capacity: c * hp * wp)
            b.initialize(repeating: 0, count: c * hp * wp)
            buffer = b
            dst0 = b
        }
        for ci in 0..<c {
            for i in 0..<kh {
                for j in 0..<kw {
                    let row = cols + ((ci * kh + i) * kw + j) * ld
                    for r in 0..<oh {
                        let dst = dst0 + (ci * hp + r * stride + i) * wp + j, src = row + r * ow
                        if stride == 1 { addRun(src, dst, ow) } else { for q in 0..<ow { dst[q * stride] += src[q] } }
                    }
                }
            }
        }
        if let b = buffer {
            for ci in 0..<c {
                for r in 0..<h { addRun(b + (ci * hp + r + pad) * wp + pad, x + (ci * h + r) * w, w) }
            }
            b.deallocate()
        }
    }
}

/// dst[0..<n] = src[0..<n], 8 lanes at a time (short runs: no memcpy call).
@inline(__always) private func copyRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var q = 0
    while q + 8 <= n { store8(load8(src + q), dst + q); q += 8 }
    while q < n { dst[q] = src[q]; q += 1 }
}

/// dst[0..<n] += src[0..<n].
@inline(__always) private func addRun(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
    var q = 0
    while q + 8 <= n { store8(load8(dst + q) + load8(src + q), dst + q); q += 8 }
    while q < n { dst[q] += src[q]; q += 1 }
}

/// Runs of images conv2d hands its own threads: one per thread (each GEMM single-threaded) once
/// the batch shares out evenly, else 1 (images in turn, OpenBLAS threading each GEMM). Measured on
/// a busy 2-core box, N=16, C=O=64, 32×32, 3×3, forward / backward: 58 / 126 ms one image per
/// thread vs 74 / 144 ms with threaded GEMMs; equal within noise for N=1 and 1×1 kernels.
private func imageChunks(_ n: Int) -> Int {
    n >= Parallel.threads ? Parallel.threads : 1
}

/// Runs `body(chunk, images)` over `n` images split into `chunks` contiguous runs, one per
/// thread with single-threaded BLAS when `chunks > 1`.
private func forImageChunks(_ n: Int, _ chunks: Int, _ body: (Int, Range<Int>) -> Void) {
    if chunks == 1 { body(0, 0..<n); return }
    Parallel.withSingleThreadedBLAS {
        Parallel.forEach(chunks) { c in body(c, (n * c / chunks)..<(n * (c + 1) / chunks)) }
    }
}

/// Images per GEMM: enough that group·P reaches ~256 columns, within one chunk's images.
private func imageGroup(p: Int, imagesPerChunk: Int) -> Int {
    Swift.max(1, Swift.min(imagesPerChunk, (256 + p - 1) / Swift.max(p, 1)))
}

// MARK: - conv2d

/// 2-D convolution (cross-correlation, as PyTorch) of x (N, C, H, W) with weight (O, C, kH, kW)
/// and optional bias (O), giving (N, O, OH, OW) with OH = (H + 2·padding − kH)/stride + 1.
///
/// ```swift
/// let x = RNG(seed: 0).normal([2, 3, 8, 8])
/// let w = RNG(seed: 1).normal([16, 3, 3, 3], std: 0.1)
/// let y = conv2d(x, w, nil, stride: 2, padding: 1)   // (2, 16, 4, 4)
/// ```
public func conv2d(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4, "conv2d: input must be (N, C, H, W), got \(x.shape)")
    precondition(weight.rank == 4 && weight.shape[1] == x.shape[1],
                 "conv2d: weight \(weight.shape) must be (O, \(x.shape[1]), kH, kW) for input \(x.shape)")
    precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride) must be ≥ 1 and padding \(padding) ≥ 0")
    let n = x.shape[0], o = weight.shape[0]
    let (c, h, w, kh, kw) = (x.shape[1], x.shape[2], x.shape[3], weight.shape[2], weight.shape[3])
    precondition(h + 2 * padding >= kh && w + 2 * padding >= kw,
                 "conv2d: kernel \(kh)×\(kw) exceeds padded input \(h + 2 * padding)×\(w + 2 * padding)")
    if let bias { precondition(bias.shape == [o], "conv2d: bias \(bias.shape) must be [\(o)]") }
    let geo = ConvGeometry(c: c, h: h, w: w, kh: kh, kw: kw, stride: stride, pad: padding,
                           oh: (h + 2 * padding - kh) / stride + 1, ow: (w + 2 * padding - kw) / stride + 1)
    let k = geo.k, p = geo.p, pointwise = geo.isPointwise
    let out = Tensor.empty([n, o, geo.oh, geo.ow])
    let chunks = imageChunks(n)
    // Small images are convolved `group` at a time: their column matrices side by side as one
    // (K, group·P) matrix, so each GEMM is wide enough to run near peak (an 8×8 latent alone is a
    // 64-column product). The result is scattered back to (N, O, P) rows.
    let group = imageGroup(p: p, imagesPerChunk: (n + chunks - 1) / chunks)
    let direct = group == 1 && pointwise
    let wide = group * p
    let scratch = Tensor.empty([direct ? 1 : chunks * k * wide])          // one column matrix per chunk
    let ybuf = Tensor.empty([group == 1 ? 1 : chunks * o * wide])        // one (O, group·P) product per chunk

    // y (O, group·P) = W (O, K) · cols (K, group·P) + b
    let px = x.data, pw = weight.data, pb = bias?.data, py = out.data, ps = scratch.data, pyb = ybuf.data
    forImageChunks(n, chunks) { ch, images in
        let cols = ps + ch * k * wide, yg = pyb + ch * o * wide
        for g0 in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
            let gn = Swift.min(group, images.upperBound - g0), ld = gn * p
            if gn == 1 && group == 1 {
                let xi = px + g0 * c * h * w, yi = py + g0 * o * p
                if let pb { for oc in 0..<o { (yi + oc * p).update(repeating: pb[oc], count: p) } }
                if !pointwise { geo.im2col(xi, cols) }
                sgemm(transA: false, transB: false, m: o, n: p, k: k, pw, lda: k, pointwise ? xi : cols, ldb: p,
                      beta: pb == nil ? 0 : 1, yi, ldc: p)
                continue
            }
            for j in 0..<gn { geo.im2col(px + (g0 + j) * c * h * w, cols + j * p, ld: ld) }
            sgemm(transA: false, transB: false, m: o, n: ld, k: k, pw, lda: k, cols, ldb: ld, yg, ldc: ld)
            for j in 0..<gn {
                let yi = py + (g0 + j) * o * p
                for oc in 0..<o {
                    let src = yg + oc * ld + j * p, dst = yi + oc * p
                    if let pb {
                        let bv = V8(repeating: pb[oc])
                        vmap2Serial(src, src, dst, p) { y, _ in y + bv }
                    } else {
                        dst.update(from: src, count: p)
                    }
                }
            }
        }
    }
    // The scratch buffers are used through their pointers only: they stay alive until the chunks are done.
    withExtendedLifetime((scratch, ybuf)) {}

    let needX = x.tracksGrad, needW = weight.tracksGrad, needB = bias?.tracksGrad ?? false
    let xd = needW ? x.detached() : nil, wd = needX ? weight.detached() : nil
    let wShape = weight.shape, hasBias = bias != nil
    var inputs = [x, weight]
    if let bias { inputs.append(bias) }
    return out.recorded(inputs) { g in
        let pg = g.data
        let gx = needX ? Tensor.zeros([n, c, h, w]) : nil
        let partial = needW ? Tensor.zeros([chunks, o, k]) : nil  // dW per chunk, summed below
        let scratch = Tensor.empty([direct ? 1 : chunks * k * wide])
        let gbuf = Tensor.empty([group == 1 ? 1 : chunks * o * wide])
        if needX || needW {
            let ps = scratch.data, pgb = gbuf.data
            forImageChunks(n, chunks) { ch, images in
                let buf = ps + ch * k * wide, gg = pgb + ch * o * wide
                for g0 in Swift.stride(from: images.lowerBound, to: images.upperBound, by: group) {
                    let gn = Swift.min(group, images.upperBound - g0), ld = gn * p
                    if gn == 1 && group == 1 {
                        let i = g0, gi = pg + i * o * p
                        if let xd, let partial {
                            // dW (O, K) += dY_n (O, P) · cols_nᵀ
                            let xi = xd.data + i * c * h * w
                            if !pointwise { geo.im2col(xi, buf) }
                            sgemm(transA: false, transB: true, m: o, n: k, k: p, gi, lda: p, pointwise ? xi : buf, ldb: p,
                                  beta: 1, partial.data + ch * o * k, ldc: k)
                        }
                        if let wd, let gx {
                            // dcols (K, P) = Wᵀ · dY_n, scattered back into dX_n
                            let dxi = gx.data + i * c * h * w
                            sgemm(transA: true, transB: false, m: k, n: p, k: o, wd.data, lda: k, gi, ldb: p,
                                  pointwise ? dxi : buf, ldc: p)
                            if !pointwise { geo.col2im(buf, dxi) }
                        }
                        continue
                    }
                    // dY of the group side by side: (O, gn·P)
                    for j in 0..<gn {
                        for oc in 0..<o { (gg + oc * ld + j * p).update(from: pg + ((g0 + j) * o + oc) * p, count: p) }
                    }
                    if let xd, let partial {
                        for j in 0..<gn { geo.im2col(xd.data + (g0 + j) * c * h * w, buf + j * p, ld: ld) }
                        sgemm(transA: false, transB: true, m: o, n: k, k: ld, gg, lda: ld, buf, ldb: ld,
                              beta: 1, partial.data + ch * o * k, ldc: k)
                    }
                    if let wd, let gx {
                        sgemm(transA: true, transB: false, m: k, n: ld, k: o, wd.data, lda: k, gg, ldb: ld, buf, ldc: ld)
                        for j in 0..<gn { geo.col2im(buf + j * p, gx.data + (g0 + j) * c * h * w, ld: ld) }
                    }
                }
            }
        }
        // As forward: the scratch buffers stay alive until the chunks are done.
        withExtendedLifetime((scratch, gbuf)) {}
        var gw: Tensor? = nil
        if let partial { gw = (chunks == 1 ? partial : partial.sum(axes: [0])).reshaped(wShape) }
        var gb: Tensor? = nil
        if needB {
            let t = Tensor.empty([o]), pt = t.data
            Parallel.forRange(o, grain: Swift.max(1, 32768 / Swift.max(n * p, 1))) { r in
                for oc in r {
                    var s: Float = 0
                    for i in 0..<n { s += vsum(pg + (i * o + oc) * p, p) }
                    pt[oc] = s
                }
            }
            gb = t
        }
        return hasBias ? [gx, gw, gb] : [gx, gw]
    }
}

// MARK: - Resampling

/// dst (planes, H·s, W·s) = scale · src (planes, H, W), each element repeated over an s×s block.
private func repeatBlocks(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                          rows: Int, w: Int, s: Int, scale: Float) {
    let wo = w * s
    Parallel.forRange(rows, grain: Swift.max(1, 16384 / Swift.max(wo * s, 1))) { r in
        for row in r {  // row = plane·H + ih
            let sr = src + row * w, d0 = dst + row * s * wo
            for iw in 0..<w {
                let v = sr[iw] * scale
                for t in 0..<s { d0[iw * s + t] = v }
            }
            for t in 1..<s { (d0 + t * wo).update(from: d0, count: wo) }
        }
    }
}

/// dst (planes, H, W) = scale · Σ over each k×k block of src (planes, H·k, W·k).
private func sumBlocks(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                       rows: Int, w: Int, k: Int, scale: Float) {
    let wi = w * k
    Parallel.forRange(rows, grain: Swift.max(1, 16384 / Swift.max(wi * k, 1))) { r in
        for row in r {  // row = plane·H + oh
            let d = dst + row * w, s0 = src + row * k * wi
            for ow in 0..<w {
                var acc: Float = 0
                for t in 0..<k {
                    let sr = s0 + t * wi + ow * k
                    for u in 0..<k { acc += sr[u] }
                }
                d[ow] = acc * scale
            }
        }
    }
}

extension Tensor {
    /// Nearest-neighbour upsampling of the last two axes by an integer factor:
    /// (…, H, W) → (…, H·scale, W·scale). Backward sums each scale×scale block.
    ///
    /// ```swift
    /// let y = x.upsampledNearest(scale: 2)   // (N, C, 8, 8) → (N, C, 16, 16)
    /// ```
    public func upsampledNearest(scale s: Int) -> Tensor {
        precondition(rank >= 2 && s >= 1, "upsampledNearest: needs (…, H, W) and scale ≥ 1, got \(shape), \(s)")
        let h = dim(-2), w = dim(-1), rows = count / Swift.max(w, 1)
        let out = Tensor.empty(Array(shape.dropLast(2)) + [h * s, w * s])
        repeatBlocks(data, out.data, rows: rows, w: w, s: s, scale: 1)
        let inShape = shape
        return out.recorded([self]) { g in
            let gx = Tensor.empty(inShape)
            sumBlocks(g.data, gx.data, rows: rows, w: w, k: s, scale: 1)
            return [gx]
        }
    }

    /// Average pooling over non-overlapping k×k blocks of the last two axes (kernel = stride = k):
    /// (…, H, W) → (…, H/k, W/k); H and W must divide by k. Backward spreads g/k² over each block.
    ///
    /// ```swift
    /// let y = x.avgPooled(2)   // (N, C, 16, 16) → (N, C, 8, 8)
    /// ```
    public func avgPooled(_ k: Int) -> Tensor {
        precondition(rank >= 2 && k >= 1, "avgPooled: needs (…, H, W) and k ≥ 1, got \(shape), \(k)")
        let h = dim(-2), w = dim(-1)
        precondition(h % k == 0 && w % k == 0, "avgPooled: \(h)×\(w) does not split into \(k)×\(k) blocks")
        let wo = w / k, rows = count / Swift.max(w * k, 1), scale = 1 / Float(k * k)
        let out = Tensor.empty(Array(shape.dropLast(2)) + [h / k, wo])
        sumBlocks(data, out.data, rows: rows, w: wo, k: k, scale: scale)
        let inShape = shape
        return out.recorded([self]) { g in
            let gx = Tensor.empty(inShape)
            repeatBlocks(g.data, gx.data, rows: rows, w: wo, s: k, scale: scale)
            return [gx]
        }
    }
}

// MARK: - Per-channel affine

/// y = x·scale[c] + shift[c] for x (N, C, …) and scale, shift (C); either may be nil (1 and 0).
/// The affine tail of GroupNorm and of FiLM-style conditioning, without the generic broadcast.
///
/// ```swift
/// let y = channelAffine(x, scale: gamma, shift: beta)   // x (N, C, H, W), gamma/beta (C)
/// ```
public func channelAffine(_ x: Tensor, scale: Tensor?, shift: Tensor?) -> Tensor {
    precondition(x.rank >= 2, "channelAffine: input must be (N, C, …), got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], inner = x.count / Swift.max(n * c, 1)
    if let scale { precondition(scale.shape == [c], "channelAffine: scale \(scale.shape) must be [\(c)]") }
    if let shift { precondition(shift.shape == [c], "channelAffine: shift \(shift.shape) must be [\(c)]") }
    if scale == nil && shift == nil { return x }
    let out = Tensor.empty(x.shape)
    let px = x.data, py = out.data, ps = scale?.data, pb = shift?.data
    Parallel.forRange(n * c, grain: Swift.max(1, 32768 / Swift.max(inner, 1))) { r in
        for row in r {  // row = image·C + channel
            let ch = row % c
            let sv = V8(repeating: ps?[ch] ?? 1), bv = V8(repeating: pb?[ch] ?? 0)
            vmap2Serial(px + row * inner, px + row * inner, py + row * inner, inner) { x, _ in bv.addingProduct(x, sv) }
        }
    }

    let needX = x.tracksGrad, needScale = scale?.tracksGrad ?? false, needShift = shift?.tracksGrad ?? false
    let xd = needScale ? x.detached() : nil, sd = needX ? scale?.detached() : nil
    let hasScale = scale != nil, hasShift = shift != nil
    var inputs = [x]
    if let scale { inputs.append(scale) }
    if let shift { inputs.append(shift) }
    return out.recorded(inputs) { g in
        // dx = g·γ[c],  dγ[c] = Σ_{n, inner} g⊙x,  dβ[c] = Σ_{n, inner} g
        let gx = needX ? (sd == nil ? g : Tensor.empty(g.shape)) : nil
        let gs = needScale ? Tensor.empty([c]) : nil, gb = needShift ? Tensor.empty([c]) : nil
        let pg = g.data
        Parallel.forRange(c, grain: Swift.max(1, 32768 / Swift.max(n * inner, 1))) { r in
            for ch in r {
                var ds: Float = 0, db: Float = 0
                let sv = V8(repeating: sd?.data[ch] ?? 1)
                for i in 0..<n {
                    let off = (i * c + ch) * inner
                    if let xd { ds += vdot(pg + off, xd.data + off, inner) }
                    if needShift { db += vsum(pg + off, inner) }
                    if let gx, sd != nil { vmap2Serial(pg + off, pg + off, gx.data + off, inner) { g, _ in g * sv } }
                }
                gs?.data[ch] = ds
                gb?.data[ch] = db
            }
        }
        var grads: [Tensor?] = [gx]
        if hasScale { grads.append(gs) }
        if hasShift { grads.append(gb) }
        return grads
    }
}
