// VAR's multi-scale VQ tokenizer: the interpolation matrices (area down, bilinear up as PyTorch's
// align_corners=False), gradients through the resize, the code pyramid's shapes and round trip,
// and the residual property after a short training: every added scale explains more of the
// encoder's output.
import Foundation
@testable import Models
import NN
import Tensors
import TestSupport
import Testing

/// 16×16 images, 4× downsampling: a 4×4 grid, scales 1, 2, 3, 4.
private func tinyMultiScale(ema: Bool = true, seed: UInt64 = 0) -> MultiScaleVQTokenizer {
    MultiScaleVQTokenizer(.init(base: .init(channels: 8, downsample: 4, groups: 4, codebookSize: 32, codeDim: 4, ema: ema,
                                            restartAfterSteps: 8),
                                scales: [1, 2, 3, 4]), rng: RNG(seed: seed))
}

@Suite struct MultiScaleVQTokenizerTests {
    @Test func interpolationMatricesAverageAndBlend() {
        // Area (adaptive average pooling, as F.interpolate(..., mode="area")): 4 → 2 averages pairs;
        // 8 → 3 averages inputs 0-2, 2-5 and 5-7; rows sum to 1.
        #expect(interpolationMatrix(from: 4, to: 2) == [0.5, 0.5, 0, 0, 0, 0, 0.5, 0.5])
        let third = interpolationMatrix(from: 8, to: 3)
        let rows: [[Float]] = [[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1]]
        let counts: [Float] = [3, 4, 3]
        expectClose(third, zip(rows, counts).flatMap { row, n in row.map { $0 / n } }, atol: 1e-6)
        // Bilinear 2 → 4 with half-pixel centres (F.interpolate(..., mode="bilinear", align_corners=False)).
        #expect(interpolationMatrix(from: 2, to: 4) == [1, 0, 0.75, 0.25, 0.25, 0.75, 0, 1])
        for (n, m) in [(8, 3), (8, 6), (3, 8), (1, 8), (8, 1)] {
            let a = interpolationMatrix(from: n, to: m)
            for i in 0..<m { #expect(abs(a[(i * n)..<((i + 1) * n)].reduce(0, +) - 1) < 1e-6, "\(n) → \(m), row \(i)") }
        }
        // A constant map stays constant both ways.
        let ones = Tensor.ones([1, 2, 8, 8])
        expectClose(resize(ones, to: 3).scalars, [Float](repeating: 1, count: 18), atol: 1e-6)
        expectClose(resize(resize(ones, to: 3), to: 8).scalars, ones.scalars, atol: 1e-6)
    }

    @Test func resizeGradientsMatchFiniteDifferences() {
        let x = randomInput([1, 2, 4, 4], seed: 1)
        let w = RNG(seed: 2).normal([1, 2, 3, 3])
        gradCheck([x], rtol: 1e-2, atol: 1e-3) { xs in (resize(xs[0], to: 3) * w).sum() }
        let v = RNG(seed: 3).normal([1, 2, 6, 6])
        gradCheck([x], rtol: 1e-2, atol: 1e-3) { xs in (resize(xs[0], to: 6) * v).sum() }
    }

    @Test func thePyramidRoundTrips() {
        let msvq = tinyMultiScale()
        msvq.eval()
        let x = TestImages.batch(3, size: 16)
        let maps = msvq.encode(x)
        #expect(maps.map(\.shape) == [[3, 1, 1], [3, 2, 2], [3, 3, 3], [3, 4, 4]])
        #expect(msvq.config.tokensPerImage == 1 + 4 + 9 + 16)
        #expect(maps.allSatisfy { $0.intScalars.allSatisfy { $0 >= 0 && $0 < 32 } })
        let back = withoutGrad { msvq.decode(maps) }
        #expect(back.shape == [3, 3, 16, 16])
        expectClose(back.scalars, withoutGrad { msvq.reconstruct(x) }.scalars, atol: 1e-6)
        // The codes are those of the residuals: the first scale's is the nearest code to the mean.
        let z = withoutGrad { msvq.encoder(x) }
        let mean = withoutGrad { resize(z, to: 1) }.reshaped([3, 4])
        #expect(maps[0].intScalars == withoutGrad { msvq.quantizer.nearestCodes(mean) }.intScalars)
        // Fewer maps decode to a coarser image of the same size.
        #expect(withoutGrad { msvq.decode(maps.prefix(2)) }.shape == [3, 3, 16, 16])
    }

    /// The residual property (VAR's Alg. 1): once trained, each added scale lowers ‖z − f̂_k‖.
    @Test(arguments: [true, false])
    func eachScaleExplainsMoreOnceTrained(ema: Bool) {
        let msvq = tinyMultiScale(ema: ema, seed: 5)
        let x = TestImages.batch(8, size: 16)
        let rng = RNG(seed: 6)
        let (first, last) = trainBriefly(msvq, steps: 40) { msvq.loss(x, rng: rng) }
        #expect(last < 0.7 * first, "reconstruction loss \(first) → \(last)")
        msvq.eval()
        let fractions = msvq.residualFractions(x)
        #expect(fractions.count == 4)
        for (a, b) in zip(fractions, fractions.dropFirst()) { #expect(b < a, "residual fractions \(fractions)") }
        #expect(fractions.last! < 0.5 * fractions.first!, "residual fractions \(fractions)")
    }

    /// A training step advances the shared codebook once, on every scale's residuals together:
    /// after one step a code no scale chose has been idle one step (not one per scale), and the
    /// EMA statistics hold the whole pyramid's vectors.
    @Test func theCodebookAdvancesOncePerStepOverEveryScale() {
        let msvq = tinyMultiScale(ema: true, seed: 7)
        let x = TestImages.batch(2, size: 16)
        _ = msvq.loss(x, rng: RNG(seed: 8))
        let q = msvq.quantizer
        #expect(q.idleSteps.max() == 1 && q.idleSteps.min() == 0, "idle counters \(q.idleSteps)")
        // N_k ← 0.99·N_k + 0.01·n_k from a start of 1 per code: Σ N = 0.99·32 + 0.01·(2 · 30 vectors).
        let total = q.emaClusterSize!.scalars.reduce(0, +)
        #expect(abs(total - (0.99 * 32 + 0.01 * 60)) < 1e-3, "EMA cluster sizes sum to \(total)")
    }
}
