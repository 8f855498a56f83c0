// Checks for the spatial ops in Conv.swift: conv2d against a direct convolution loop, and
// finite-difference gradients of conv2d, upsampling, pooling, channelAffine and groupNorm.
// Not a speed test: shapes are tiny so the file runs in a few seconds.
import Foundation
import Testing
import Tensors
import TestSupport

/// Direct convolution: y[n, o, r, q] = b[o] + Σ_{c,i,j} x[n, c, r·s − p + i, q·s − p + j]·w[o, c, i, j].
private func naiveConv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride s: Int, padding p: Int) -> [Float] {
    let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
    let oh = (h + 2 * p - kh) / s + 1, ow = (wd + 2 * p - kw) / s + 1
    let xs = x.scalars, ws = w.scalars, bs = b?.scalars
    var y = [Float](repeating: 0, count: n * o * oh * ow)
    for ni in 0..<n { for oc in 0..<o { for r in 0..<oh { for q in 0..<ow {
        var acc = Double(bs?[oc] ?? 0)
        for ci in 0..<c { for i in 0..<kh { for j in 0..<kw {
            let ih = r * s - p + i, iw = q * s - p + j
            guard ih >= 0 && ih < h && iw >= 0 && iw < wd else { continue }
            acc += Double(xs[((ni * c + ci) * h + ih) * wd + iw]) * Double(ws[((oc * c + ci) * kh + i) * kw + j])
        } } }
        y[((ni * o + oc) * oh + r) * ow + q] = Float(acc)
    } } } }
    return y
}

/// One conv2d configuration: input (N, C, H, W), weight (O, C, k, k).
private struct ConvCase: CustomStringConvertible, Sendable {
    let n, c, h, w, o, kh, kw, stride, padding: Int
    let bias: Bool
    var description: String {
        "x(\(n),\(c),\(h),\(w)) w(\(o),\(c),\(kh),\(kw)) s\(stride) p\(padding)\(bias ? " +b" : "")"
    }
}

private let convCases: [ConvCase] = [
    ConvCase(n: 2, c: 3, h: 5, w: 5, o: 4, kh: 3, kw: 3, stride: 1, padding: 0, bias: true),
    ConvCase(n: 2, c: 3, h: 5, w: 5, o: 4, kh: 3, kw: 3, stride: 1, padding: 1, bias: false),
    ConvCase(n: 2, c: 2, h: 6, w: 7, o: 3, kh: 3, kw: 3, stride: 2, padding: 1, bias: true),
    ConvCase(n: 1, c: 2, h: 7, w: 6, o: 3, kh: 3, kw: 3, stride: 2, padding: 0, bias: false),
    ConvCase(n: 3, c: 2, h: 4, w: 6, o: 3, kh: 2, kw: 3, stride: 1, padding: 1, bias: true),
    ConvCase(n: 2, c: 4, h: 3, w: 5, o: 3, kh: 1, kw: 1, stride: 1, padding: 0, bias: true),   // pointwise
    ConvCase(n: 2, c: 3, h: 5, w: 4, o: 2, kh: 1, kw: 1, stride: 2, padding: 1, bias: false),  // 1×1, im2col
    ConvCase(n: 2, c: 2, h: 4, w: 4, o: 2, kh: 4, kw: 4, stride: 4, padding: 0, bias: true),   // patchify
    // Several small images per GEMM (column matrices side by side), a partial last group too.
    ConvCase(n: 7, c: 3, h: 4, w: 4, o: 5, kh: 3, kw: 3, stride: 1, padding: 1, bias: true),
    ConvCase(n: 5, c: 2, h: 5, w: 4, o: 3, kh: 3, kw: 3, stride: 2, padding: 1, bias: false),
    ConvCase(n: 6, c: 4, h: 3, w: 3, o: 3, kh: 1, kw: 1, stride: 1, padding: 0, bias: true),   // pointwise, grouped
]

@Suite struct ConvTests {
    // MARK: - conv2d

    @Test(arguments: convCases)
    fileprivate func conv2dMatchesDirectLoop(_ k: ConvCase) {
        let x = randomInput([k.n, k.c, k.h, k.w], seed: 1)
        let w = randomInput([k.o, k.c, k.kh, k.kw], seed: 2)
        let b = k.bias ? randomInput([k.o], seed: 3) : nil
        let y = withoutGrad { conv2d(x, w, b, stride: k.stride, padding: k.padding) }
        let oh = (k.h + 2 * k.padding - k.kh) / k.stride + 1, ow = (k.w + 2 * k.padding - k.kw) / k.stride + 1
        #expect(y.shape == [k.n, k.o, oh, ow])
        expectClose(y.scalars, naiveConv2d(x, w, b, stride: k.stride, padding: k.padding))
    }

    @Test(arguments: convCases)
    fileprivate func conv2dGradients(_ k: ConvCase) {
        let x = randomInput([k.n, k.c, k.h, k.w], seed: 4)
        let w = randomInput([k.o, k.c, k.kh, k.kw], seed: 5)
        var inputs = [x, w]
        if k.bias { inputs.append(randomInput([k.o], seed: 6)) }
        gradCheck(inputs) { t in conv2d(t[0], t[1], t.count > 2 ? t[2] : nil, stride: k.stride, padding: k.padding) }
    }

    /// Gradient for the weight alone (a first layer whose input needs none), and for x alone.
    @Test func conv2dPartialGradients() {
        let x = randomInput([2, 2, 5, 5], seed: 7), w = randomInput([3, 2, 3, 3], seed: 8)
        let b = randomInput([3], seed: 9)
        x.requiresGrad = false
        gradCheck([w, b]) { t in conv2d(x, t[0], t[1], padding: 1) }
        x.requiresGrad = true
        w.requiresGrad = false
        b.requiresGrad = false
        gradCheck([x]) { t in conv2d(t[0], w, b, stride: 2, padding: 1) }
    }

    /// A batch big enough to go one image per thread gives what each image gives alone (one
    /// image runs the serial schedule): outputs and dX per image, dW and db summed.
    @Test func conv2dBatchMatchesSingleImages() {
        let n = max(3, Parallel.threads + 1)
        let x = randomInput([n, 3, 6, 5], seed: 10), w = randomInput([4, 3, 3, 3], seed: 11)
        let b = randomInput([4], seed: 12)
        let seed = RNG(seed: 13).uniform([n, 4, 3, 3], lo: -1, hi: 1)
        let y = conv2d(x, w, b, stride: 2, padding: 1)
        y.backward(seed)
        let (gxBatch, gwBatch, gbBatch) = (x.grad!.scalars, w.grad!.scalars, b.grad!.scalars)
        w.grad = nil; b.grad = nil
        var ys: [Float] = [], gxs: [Float] = []
        for i in 0..<n {
            let xi = x.detached().slice(axis: 0, i..<(i + 1))
            xi.requiresGrad = true
            let yi = conv2d(xi, w, b, stride: 2, padding: 1)
            yi.backward(seed.slice(axis: 0, i..<(i + 1)))
            ys += yi.scalars
            gxs += xi.grad!.scalars
        }
        expectClose(y.scalars, ys)
        expectClose(gxBatch, gxs)
        expectClose(gwBatch, w.grad!.scalars, atol: 1e-4)
        expectClose(gbBatch, b.grad!.scalars, atol: 1e-4)
    }

    // MARK: - Resampling

    @Test func upsampleForwardAndGradient() {
        let x = Tensor([1, 2, 3, 4], shape: [1, 1, 2, 2])
        let y = x.upsampledNearest(scale: 2)
        #expect(y.shape == [1, 1, 4, 4])
        expectClose(y.scalars, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        gradCheck([randomInput([2, 3, 3, 2], seed: 14)]) { $0[0].upsampledNearest(scale: 2) }
        gradCheck([randomInput([1, 2, 2, 3], seed: 15)]) { $0[0].upsampledNearest(scale: 3) }
    }

    @Test func avgPoolForwardAndGradient() {
        let x = Tensor((0..<16).map(Float.init), shape: [1, 1, 4, 4])
        let y = x.avgPooled(2)
        #expect(y.shape == [1, 1, 2, 2])
        expectClose(y.scalars, [2.5, 4.5, 10.5, 12.5])
        gradCheck([randomInput([2, 3, 4, 6], seed: 16)]) { $0[0].avgPooled(2) }
        gradCheck([randomInput([1, 2, 6, 3], seed: 17)]) { $0[0].avgPooled(3) }
    }

    /// Pooling undoes upsampling exactly.
    @Test func avgPoolInvertsUpsample() {
        let x = randomInput([2, 3, 3, 5], seed: 18)
        expectClose(x.upsampledNearest(scale: 2).avgPooled(2).scalars, x.scalars)
    }

    // MARK: - channelAffine and groupNorm

    @Test func channelAffineMatchesBroadcast() {
        let x = randomInput([2, 3, 4, 5], seed: 19), s = randomInput([3], seed: 20), b = randomInput([3], seed: 21)
        let y = withoutGrad { channelAffine(x, scale: s, shift: b) }
        let ref = withoutGrad { x * s.reshaped([1, 3, 1, 1]) + b.reshaped([1, 3, 1, 1]) }
        expectClose(y.scalars, ref.scalars)
    }

    @Test func channelAffineGradients() {
        let x = randomInput([2, 3, 4, 5], seed: 22), s = randomInput([3], seed: 23), b = randomInput([3], seed: 24)
        gradCheck([x, s, b]) { t in channelAffine(t[0], scale: t[1], shift: t[2]) }
        gradCheck([x, s]) { t in channelAffine(t[0], scale: t[1], shift: nil) }
        gradCheck([x, b]) { t in channelAffine(t[0], scale: nil, shift: t[1]) }
        let x3 = randomInput([3, 4, 7], seed: 25), s3 = randomInput([4], seed: 26)
        gradCheck([x3, s3]) { t in channelAffine(t[0], scale: t[1], shift: nil) }
    }

    @Test func groupNormGradients() {
        let x = randomInput([2, 4, 3, 3], seed: 27)
        let w = randomInput([4], seed: 28, lo: 0.5, hi: 1.5), b = randomInput([4], seed: 29)
        gradCheck([x, w, b]) { t in groupNorm(t[0], groups: 2, weight: t[1], bias: t[2]) }
        gradCheck([x]) { t in groupNorm(t[0], groups: 2, weight: nil, bias: nil) }
        gradCheck([x, w]) { t in groupNorm(t[0], groups: 4, weight: t[1], bias: nil) }
    }
}
