// The diffusion process: noising statistics, per-row timesteps, exact target conversions for the
// ε, v and flow targets, the loss and its gradient, and timestep sampling with Transfusion's cap.
import Diffusion
import Foundation
import Tensors
import TestSupport
import Testing

/// Mean and (population) variance of each row of a (N, D) tensor, in Double.
func rowMoments(_ x: Tensor) -> [(mean: Double, variance: Double)] {
    let d = x.dim(1), v = x.scalars
    return (0..<x.dim(0)).map { i in
        let row = v[(i * d)..<((i + 1) * d)].map(Double.init)
        let m = row.reduce(0, +) / Double(d)
        return (m, row.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(d))
    }
}

@Suite struct GaussianDiffusionTests {
    static let processes: [GaussianDiffusion] = [
        GaussianDiffusion(schedule: .cosine(), target: .eps),
        GaussianDiffusion(schedule: .linear(), target: .v),
        GaussianDiffusion(flow: FlowSchedule()),
    ]

    @Test(arguments: processes)
    func qSampleStatistics(diffusion: GaussianDiffusion) {
        // Rows of a constant c noised at their own t: each row of x_t is N(a_t·c, s_t²).
        // D = 40 000 samples per row: SE(mean) = s/200, SE(var) = s²·√(2/D) ≈ 0.7 %·s²; 5 SE allowed.
        let d = 40_000, c: Float = 1.5
        let t: [Float] = diffusion.schedule == nil ? [0, 0.1, 0.5, 0.9, 1] : [0, 100, 500, 900, 999]
        let x0 = Tensor.full([t.count, d], c)
        let xt = diffusion.qSample(x0: x0, t: t, noise: RNG(seed: 7).normal(x0.shape))
        for (i, m) in rowMoments(xt).enumerated() {
            let (a, s) = diffusion.coefficients(t[i])
            #expect(abs(m.mean - a * Double(c)) <= 5 * s / Double(d).squareRoot() + 1e-6, "row \(i) mean")
            #expect(abs(m.variance - s * s) <= 5 * s * s * (2 / Double(d)).squareRoot() + 1e-9, "row \(i) variance")
        }
    }

    @Test func qSampleIsPerRow() {
        // Each row equals the single-row noising at its own timestep.
        let diffusion = GaussianDiffusion()
        let x0 = RNG(seed: 1).normal([3, 4, 5]), noise = RNG(seed: 2).normal([3, 4, 5])
        let t: [Float] = [10, 500, 990]
        let xt = diffusion.qSample(x0: x0, t: t, noise: noise)
        for i in 0..<3 {
            let (a, s) = diffusion.coefficients(t[i])
            let row = x0.slice(axis: 0, i..<(i + 1)) * Float(a) + noise.slice(axis: 0, i..<(i + 1)) * Float(s)
            expectClose(xt.slice(axis: 0, i..<(i + 1)).scalars, row.scalars, atol: 1e-6, rtol: 1e-6)
        }
    }

    @Test(arguments: processes)
    func conversionsRoundTrip(diffusion: GaussianDiffusion) {
        // From the true target, predictX0 and predictEps give back x0 and ε. For ε the division
        // by a_t = √ᾱ_t amplifies rounding, so ε rows stay at t ≤ 900 (a ≥ 0.15).
        let t: [Float]
        switch diffusion.target {
        case .eps: t = [0, 1, 250, 500, 750, 900]
        case .v: t = [0, 1, 250, 500, 750, 999]
        case .flow: t = [0, 0.001, 0.25, 0.5, 0.75, 1]
        }
        let x0 = RNG(seed: 3).normal([t.count, 7, 3]), noise = RNG(seed: 4).normal([t.count, 7, 3])
        let xt = diffusion.qSample(x0: x0, t: t, noise: noise)
        let target = diffusion.trainingTarget(x0: x0, noise: noise, t: t)
        expectClose(diffusion.predictX0(xt: xt, t: t, prediction: target).scalars, x0.scalars, atol: 1e-5, rtol: 1e-5)
        expectClose(diffusion.predictEps(xt: xt, t: t, prediction: target).scalars, noise.scalars, atol: 1e-5, rtol: 1e-5)
    }

    @Test func targetsByHand() {
        let x0 = RNG(seed: 5).normal([2, 6]), noise = RNG(seed: 6).normal([2, 6])
        let flow = GaussianDiffusion(flow: FlowSchedule())
        expectClose(flow.trainingTarget(x0: x0, noise: noise, t: [0.3, 0.8]).scalars, (noise - x0).scalars)
        expectClose(flow.qSample(x0: x0, t: [0.3, 0.3], noise: noise).scalars, (x0 * 0.7 + noise * 0.3).scalars)
        let v = GaussianDiffusion(schedule: .cosine(), target: .v)
        let (a, s) = v.coefficients(400)
        expectClose(v.trainingTarget(x0: x0, noise: noise, t: [400, 400]).scalars,
                    (noise * Float(a) - x0 * Float(s)).scalars, atol: 1e-6)
        #expect(GaussianDiffusion().trainingTarget(x0: x0, noise: noise, t: [3, 4]) === noise)
    }

    @Test func lossAndGradient() {
        // L = mean((pred − target)²); the gradient reaches the prediction only, not x0.
        let diffusion = GaussianDiffusion(schedule: .cosine(), target: .v)
        let x0 = randomInput([4, 5], seed: 8), noise = RNG(seed: 9).normal([4, 5])
        let t: [Float] = [0, 300, 600, 999]
        let prediction = randomInput([4, 5], seed: 10)
        let loss = diffusion.loss(prediction: prediction, x0: x0, noise: noise, t: t)
        let target = diffusion.trainingTarget(x0: x0, noise: noise, t: t)
        let expected = zip(prediction.scalars, target.scalars).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / 20
        #expect(abs(Double(loss.item) - expected) < 1e-6)
        loss.backward()
        expectClose(prediction.grad!.scalars, ((prediction - target) * (2 / 20)).scalars, atol: 1e-6)
        #expect(x0.grad == nil)
        let perfect = diffusion.loss(prediction: target.detached(), x0: x0, noise: noise, t: t)
        #expect(perfect.item == 0)
    }

    @Test func timestepSampling() {
        let rng = RNG(seed: 11)
        let discrete = GaussianDiffusion()
        let all = discrete.sampleTimesteps(n: 20_000, rng: rng)
        #expect(all.allSatisfy { $0 >= 0 && $0 <= 999 && $0 == $0.rounded() })
        #expect(all.min() == 0 && all.max() == 999)
        // Uniform on 0...999: mean 499.5, SE = 288.7/√20000 ≈ 2; 5 SE allowed.
        let mean: Double = all.reduce(0.0) { $0 + Double($1) } / 20_000
        #expect(abs(mean - 499.5) < 10)
        // Transfusion's noise limit for image-first pairs: t ≤ 500, and 500 itself is reachable.
        let capped = discrete.sampleTimesteps(n: 20_000, rng: rng, maxT: 500)
        #expect(capped.allSatisfy { $0 >= 0 && $0 <= 500 } && capped.max() == 500)
        let flow = GaussianDiffusion(flow: FlowSchedule())
        let times = flow.sampleTimesteps(n: 20_000, rng: rng, maxT: 500)
        #expect(times.allSatisfy { $0 >= 0 && $0 < 0.5 } && times.max()! > 0.49)
        #expect(flow.sampleTimesteps(n: 1000, rng: rng).allSatisfy { $0 >= 0 && $0 < 1 })
    }
}

extension GaussianDiffusion: CustomTestStringConvertible {
    public var testDescription: String {
        switch process {
        case .discrete(let schedule): return "\(schedule.kind) \(target)"
        case .flow: return "flow"
        }
    }
}
