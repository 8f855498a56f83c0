// Matmul/linear, softmax, losses and normalisation: gradient checks plus forward references.
import Foundation
import Testing
import Tensors
import TestSupport

@Suite struct MatmulTests {
    @Test func matmulAllTransposes() {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = randomInput(ta ? [4, 3] : [3, 4], seed: 1), b = randomInput(tb ? [5, 4] : [4, 5], seed: 2)
            gradCheck([a, b]) { matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }
        }
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([1, 0, 0, 1, 1, 1], shape: [3, 2])
        #expect(matmul(a, b).scalars == [4, 5, 10, 11])
    }

    @Test func batchedAndFoldedMatmul() {
        let a = randomInput([2, 3, 4], seed: 3), b = randomInput([2, 4, 2], seed: 4), w = randomInput([4, 5], seed: 5)
        gradCheck([a, b]) { matmul($0[0], $0[1]) }
        gradCheck([a, b]) { matmul($0[0], $0[1].transposed(), transposeB: true) }
        gradCheck([a, w]) { matmul($0[0], $0[1]) }  // 2-D right operand: folded rows
    }

    @Test func linearMatchesMatmulPlusBias() {
        let x = randomInput([2, 3, 4], seed: 6), w = randomInput([5, 4], seed: 7), bias = randomInput([5], seed: 8)
        gradCheck([x, w, bias]) { linear($0[0], $0[1], $0[2]) }
        gradCheck([x, w]) { linear($0[0], $0[1]) }
        expectClose(linear(x, w, bias).scalars, (matmul(x, w, transposeB: true) + bias).scalars, atol: 1e-6)
    }

    @Test func largeGemmAgainstNaive() {
        let m = 67, n = 129, k = 93
        let a = RNG(seed: 9).normal([m, k]), b = RNG(seed: 10).normal([k, n])
        let c = matmul(a, b).scalars
        for (i, j) in [(0, 0), (66, 128), (31, 64), (5, 100)] {
            var s = 0.0
            for p in 0..<k { s += Double(a.data[i * k + p]) * Double(b.data[p * n + j]) }
            #expect(abs(Double(c[i * n + j]) - s) < 1e-4)
        }
    }
}

@Suite struct SoftmaxLossTests {
    @Test func softmaxAndLogSoftmax() {
        let x = randomInput([3, 7], seed: 11, lo: -3, hi: 3)
        gradCheck([x]) { $0[0].softmax() }
        gradCheck([x]) { $0[0].logSoftmax() }
        gradCheck([x]) { $0[0].softmax(axis: 0) }
        let p = Tensor([1, 2, 3]).softmax().scalars
        let e = [1.0, 2.0, 3.0].map { Foundation.exp($0) }, z = e.reduce(0, +)
        expectClose(p, e.map { Float($0 / z) }, atol: 1e-7)
        expectClose(Tensor([1, 2, 3]).logSoftmax().scalars, e.map { Float(Foundation.log($0 / z)) }, atol: 1e-6)
    }

    @Test func crossEntropyMatchesComposite() {
        let logits = randomInput([2, 3, 6], seed: 12, lo: -2, hi: 2)
        let targets = Tensor(ints: [1, 5, -1, 0, 2, -1], shape: [2, 3])
        gradCheck([logits]) { crossEntropy($0[0], targets, ignoreIndex: -1) }
        gradCheck([logits]) { crossEntropy($0[0], targets, ignoreIndex: -1, zLoss: 0.1) }
        // Composite: −mean over valid rows of log-softmax at the target, + z·mean(lse²) over valid rows.
        let ls = logits.logSoftmax().scalars, x = logits.scalars
        var ce = 0.0, z = 0.0, n = 0.0
        for (r, t) in targets.intScalars.enumerated() where t >= 0 {
            ce -= Double(ls[r * 6 + Int(t)]); n += 1
            let lse = Double(x[r * 6]) - Double(ls[r * 6]); z += lse * lse
        }
        #expect(abs(Double(crossEntropy(logits, targets, ignoreIndex: -1).item) - ce / n) < 1e-5)
        #expect(abs(Double(crossEntropy(logits, targets, ignoreIndex: -1, zLoss: 0.1).item) - (ce + 0.1 * z) / n) < 1e-5)
        #expect(crossEntropy(logits, Tensor(ints: [Int32](repeating: -1, count: 6), shape: [2, 3]), ignoreIndex: -1).item == 0)
    }

    @Test func meanSquaredError() {
        let a = randomInput([4, 3], seed: 13), b = randomInput([4, 3], seed: 14)
        gradCheck([a, b]) { mse($0[0], $0[1]) }
        #expect(abs(mse(a, b).item - (a - b).square().mean().item) < 1e-6)
    }
}

@Suite struct NormTests {
    @Test func rmsNormGradientsAndValues() {
        let x = randomInput([3, 8], seed: 15), w = randomInput([8], seed: 16, lo: 0.5, hi: 1.5)
        gradCheck([x, w]) { rmsNorm($0[0], weight: $0[1]) }
        gradCheck([x]) { rmsNorm($0[0], weight: nil) }
        let composite = x * ((x * x).mean(axes: [-1], keepDims: true) + 1e-6).rsqrt() * w
        expectClose(rmsNorm(x, weight: w).scalars, composite.scalars, atol: 1e-6)
    }

    /// The fused packed QK-norm against its composite: split, RMSNorm of q and k per head, concat;
    /// values, gradients of all three inputs, and a finite-difference check.
    @Test func packedQKNormMatchesComposite() {
        let (h, d) = (2, 4)
        let x = randomInput([2, 3, 3 * h * d], seed: 22), wq = randomInput([d], seed: 23, lo: 0.5, hi: 1.5)
        let wk = randomInput([d], seed: 24, lo: 0.5, hi: 1.5)
        gradCheck([x, wq, wk]) { qkNorm(packed: $0[0], heads: h, qWeight: $0[1], kWeight: $0[2]) }
        func composite(_ x: Tensor, _ wq: Tensor, _ wk: Tensor) -> Tensor {
            let parts = x.split(axis: -1, sizes: [h * d, h * d, h * d])          // 3 × (B, T, H·D)
            let q = rmsNorm(parts[0].reshaped([2, 3, h, d]), weight: wq).reshaped([2, 3, h * d])
            let k = rmsNorm(parts[1].reshaped([2, 3, h, d]), weight: wk).reshaped([2, 3, h * d])
            return concat([q, k, parts[2]], axis: -1)
        }
        let seed = RNG(seed: 25).uniform([2, 3, 3 * h * d], lo: -1, hi: 1)
        for t in [x, wq, wk] { t.grad = nil }
        let y = qkNorm(packed: x, heads: h, qWeight: wq, kWeight: wk)
        y.backward(seed)
        let (gx, gq, gk) = (x.grad!.scalars, wq.grad!.scalars, wk.grad!.scalars)
        for t in [x, wq, wk] { t.grad = nil }
        let c = composite(x, wq, wk)
        c.backward(seed)
        expectClose(y.scalars, c.scalars, atol: 1e-6)
        expectClose(gx, x.grad!.scalars, atol: 1e-5)
        expectClose(gq, wq.grad!.scalars, atol: 1e-5)
        expectClose(gk, wk.grad!.scalars, atol: 1e-5)
    }

    @Test func layerNormGradientsAndValues() {
        let x = randomInput([4, 6], seed: 17), w = randomInput([6], seed: 18), b = randomInput([6], seed: 19)
        gradCheck([x, w, b]) { layerNorm($0[0], weight: $0[1], bias: $0[2]) }
        gradCheck([x]) { layerNorm($0[0], weight: nil, bias: nil) }
        let mu = x.mean(axes: [-1], keepDims: true), c = x - mu
        let composite = c * ((c * c).mean(axes: [-1], keepDims: true) + 1e-5).rsqrt() * w + b
        expectClose(layerNorm(x, weight: w, bias: b).scalars, composite.scalars, atol: 1e-5)
    }

    @Test func manyRowsUseAllThreads() {
        // Large enough to take the parallel path in forward and backward.
        let x = randomInput([512, 64], seed: 20), w = randomInput([64], seed: 21)
        let y = rmsNorm(x, weight: w)
        (y * y).sum().backward()
        let x2 = x.detached(); x2.requiresGrad = true
        let w2 = w.detached(); w2.requiresGrad = true
        let c = x2 * ((x2 * x2).mean(axes: [-1], keepDims: true) + 1e-6).rsqrt() * w2
        (c * c).sum().backward()
        expectClose(w.grad!.scalars, w2.grad!.scalars, atol: 1e-2, rtol: 1e-4)
        expectClose(x.grad!.scalars, x2.grad!.scalars, atol: 1e-4, rtol: 1e-3)
    }
}
