// Samplers against closed forms. For Gaussian data x0 ~ N(μ, σ²) the optimal denoiser is affine
// in x_t, so each sampler's output law is computable exactly: DDPM, DDIM and Euler must match it
// to Monte-Carlo error, and it must sit near N(μ, σ²). A point mass comes back exactly; DDIM
// inversion round-trips within its first-order error.
import Diffusion
import Foundation
import Tensors
import TestSupport
import Testing

/// Data x0 ~ N(μ_j, σ_j²), independent per column j of an (N, D) batch, and its exact denoiser.
///
/// With x_t = a·x0 + s·ε the pair (x0, x_t) is jointly Gaussian: Var(x_t) = a²σ² + s² and
/// Cov(x0, x_t) = a·σ², so
///   E[x0 | x_t] = μ + a·σ²/(a²σ² + s²)·(x_t − a·μ) = k·x_t + c,
///   E[ε | x_t]  = (x_t − a·E[x0 | x_t])/s,
/// and the optimal ε, v or velocity prediction is the target built from these two (every target
/// is linear in (x0, ε), and the MSE minimiser is the conditional mean).
struct GaussianData {
    let mean: [Double]
    let std: [Double]
    var columns: Int { mean.count }

    /// k and c of E[x0 | x_t] = k·x_t + c for column j at scales (a, s).
    func posterior(_ j: Int, _ a: Double, _ s: Double) -> (gain: Double, offset: Double) {
        let v = std[j] * std[j]
        let k = a * v / (a * a * v + s * s)
        return (k, mean[j] * (1 - k * a))
    }

    /// `n` draws of x0, (n, D).
    func draw(_ n: Int, rng: RNG) -> Tensor {
        let z = rng.normal([n, columns]).scalars
        return Tensor(z.enumerated().map { i, v in Float(mean[i % columns] + std[i % columns] * Double(v)) },
                      shape: [n, columns])
    }

    /// The optimal model for `diffusion`'s target, computed in Double.
    func model(_ diffusion: GaussianDiffusion) -> Denoiser {
        return { xt, t in
            let cols = columns, x = xt.scalars
            var x0 = [Float](repeating: 0, count: x.count), eps = x0
            var scales = (signal: 0.0, noise: 0.0)
            for i in 0..<xt.dim(0) {
                if i == 0 || t[i] != t[i - 1] { scales = diffusion.coefficients(t[i]) }
                let (a, s) = scales
                for j in 0..<cols {
                    let (k, c) = posterior(j, a, s)
                    let xij = Double(x[i * cols + j]), x0Hat = k * xij + c
                    x0[i * cols + j] = Float(x0Hat)
                    eps[i * cols + j] = Float((xij - a * x0Hat) / s)
                }
            }
            return diffusion.trainingTarget(x0: Tensor(x0, shape: xt.shape), noise: Tensor(eps, shape: xt.shape), t: t)
        }
    }

    // MARK: - Exact output laws

    /// Mean and variance of column j after DDIM(η) from x_T ~ N(0, 1) with the exact model. Each
    /// step is affine plus fresh noise: with x̂0 = k·x + c and ε̂ = ((1 − a·k)·x − a·c)/s,
    /// x_prev = a_prev·x̂0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z = A·x + B + σ·z, so m ← A·m + B and
    /// v ← A²·v + σ². At η = 1 this is DDPM's β̃ step (Song et al. 2021, Sec. 4.1), written
    /// independently of DDPMSampler's eq. 11 form, so it predicts DDPM as well.
    func ddimLaw(_ schedule: NoiseSchedule, _ timesteps: [Int], eta: Double, _ j: Int) -> (mean: Double, variance: Double) {
        var m = 0.0, v = 1.0
        for (i, t) in timesteps.enumerated() {
            let abT = schedule.alphaBar(t), abP = i + 1 < timesteps.count ? schedule.alphaBar(timesteps[i + 1]) : 1
            let a = abT.squareRoot(), s = (1 - abT).squareRoot(), aP = abP.squareRoot()
            let sigma = eta * ((1 - abP) / (1 - abT) * (1 - abT / abP)).squareRoot()
            let d = max(0, 1 - abP - sigma * sigma).squareRoot()
            let (k, c) = posterior(j, a, s)
            let gain = aP * k + d * (1 - a * k) / s, shift = aP * c - d * a * c / s
            (m, v) = (gain * m + shift, gain * gain * v + sigma * sigma)
        }
        return (m, v)
    }

    /// Mean and variance of column j after Euler on the flow path from x_1 ~ N(0, 1): with
    /// a = 1 − t, s = t the velocity ε̂ − x̂0 = ((1 − a·k)/s − k)·x − (a/s + 1)·c is affine, and
    /// x ← x + Δ·v̂ maps m ← m + Δ·v̂(m), v ← (1 + Δ·slope)²·v.
    func eulerLaw(_ times: [Float], _ j: Int) -> (mean: Double, variance: Double) {
        var m = 0.0, v = 1.0
        for (t, next) in zip(times.map(Double.init), times.dropFirst().map(Double.init)) {
            let a = 1 - t, s = t, delta = next - t
            let (k, c) = posterior(j, a, s)
            let slope = (1 - a * k) / s - k, shift = -(a / s + 1) * c
            (m, v) = (m + delta * (slope * m + shift), (1 + delta * slope) * (1 + delta * slope) * v)
        }
        return (m, v)
    }
}

/// Column means and (unbiased) variances of an (N, D) batch, in Double.
func columnMoments(_ x: Tensor) -> [(mean: Double, variance: Double)] {
    let n = x.dim(0), d = x.dim(1), v = x.scalars
    return (0..<d).map { j in
        let col = (0..<n).map { Double(v[$0 * d + j]) }
        let m = col.reduce(0, +) / Double(n)
        return (m, col.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1))
    }
}

@Suite struct SamplerTests {
    /// Two columns: N(1.5, 0.5²) and N(−0.5, 1.2²).
    let data = GaussianData(mean: [1.5, -0.5], std: [0.5, 1.2])
    /// Samples per column. The outputs are exactly Gaussian (affine maps of Gaussian noise), so
    /// SE(mean) = √(v/n) and SE(variance) = v·√(2/(n − 1)) ≈ 0.78 % of v at n = 32 768.
    let n = 32_768

    /// Checks samples against the sampler's exact law (4 SE: the sampler does what its equations
    /// say) and that law against N(μ, σ²) (`allowance`: its discretisation error, relative).
    func check(_ name: String, _ samples: Tensor, exact: [(mean: Double, variance: Double)], allowance: Double,
               sourceLocation: SourceLocation = #_sourceLocation) {
        for (j, got) in columnMoments(samples).enumerated() {
            let (mu, sigma2) = (data.mean[j], data.std[j] * data.std[j])
            let law = exact[j]
            let seMean = (law.variance / Double(n)).squareRoot()
            let seVar = law.variance * (2 / Double(n - 1)).squareRoot()
            print(String(format: "%@ column %d: mean %.4f (μ %.2f, exact law %.4f, |err| %.4f), "
                + "variance %.4f (σ² %.4f, exact law %.4f, rel err %+.2f%%)", name, j, got.mean, mu, law.mean,
                abs(got.mean - mu), got.variance, sigma2, law.variance, 100 * (got.variance / sigma2 - 1)))
            #expect(abs(got.mean - law.mean) <= 4 * seMean, "\(name) column \(j): mean vs exact law",
                    sourceLocation: sourceLocation)
            #expect(abs(got.variance - law.variance) <= 4 * seVar, "\(name) column \(j): variance vs exact law",
                    sourceLocation: sourceLocation)
            #expect(abs(law.mean - mu) <= 0.01 * data.std[j], "\(name) column \(j): law's mean vs μ",
                    sourceLocation: sourceLocation)
            #expect(abs(law.variance / sigma2 - 1) <= allowance, "\(name) column \(j): law's variance vs σ²",
                    sourceLocation: sourceLocation)
            // Together: the sample moments lie within 4 SE + the discretisation allowance of (μ, σ²).
        }
    }

    @Test func ddpmMatchesGaussianData() {
        // All 1000 steps of the cosine schedule. β̃ leaves out the posterior variance of x0 that
        // each step should add (O(β²) per step), so the law's variance is ~0.5–0.8 % low: 2 % allowed.
        let diffusion = GaussianDiffusion(schedule: .cosine(), target: .eps)
        let sampler = DDPMSampler(diffusion)
        let x = sampler.sample(shape: [n, 2], rng: RNG(seed: 21), model: data.model(diffusion))
        let exact = (0..<2).map { data.ddimLaw(diffusion.schedule!, sampler.timesteps, eta: 1, $0) }
        check("DDPM 1000", x, exact: exact, allowance: 0.02)
    }

    @Test(arguments: [DiffusionTarget.eps, .v])
    func ddimMatchesGaussianData(target: DiffusionTarget) {
        // 50 deterministic steps: a first-order ODE solver shrinks the variance by ~5–6 % here
        // (~2.5 % at 100 steps); 8 % allowed.
        let diffusion = GaussianDiffusion(schedule: .cosine(), target: target)
        let sampler = DDIMSampler(diffusion, steps: 50, eta: 0)
        let x = sampler.sample(shape: [n, 2], rng: RNG(seed: 22), model: data.model(diffusion))
        let exact = (0..<2).map { data.ddimLaw(diffusion.schedule!, sampler.timesteps, eta: 0, $0) }
        check("DDIM 50 \(target)", x, exact: exact, allowance: 0.08)
    }

    @Test func eulerMatchesGaussianData() {
        // 100 Euler steps on the straight path: the variance is ~2.5–3 % low; 4 % allowed.
        let diffusion = GaussianDiffusion(flow: FlowSchedule())
        let sampler = EulerSampler(diffusion, steps: 100)
        let x = sampler.sample(shape: [n, 2], rng: RNG(seed: 23), model: data.model(diffusion))
        let exact = (0..<2).map { data.eulerLaw(sampler.times, $0) }
        check("Euler 100", x, exact: exact, allowance: 0.04)
    }

    @Test func pointMassIsRecoveredExactly() {
        // σ = 0: E[x0 | x_t] = μ at every t, and each sampler's last step returns x̂0 itself.
        let point = GaussianData(mean: [0.7, -1.3], std: [0, 0])
        let cosine = GaussianDiffusion(schedule: .cosine(), target: .eps)
        let v = GaussianDiffusion(schedule: .linear(), target: .v)
        let flow = GaussianDiffusion(flow: FlowSchedule())
        let runs: [(String, any Sampler, GaussianDiffusion)] = [
            ("DDIM 50 ε", DDIMSampler(cosine, steps: 50), cosine),
            ("DDIM 50 v", DDIMSampler(v, steps: 50), v),
            ("DDIM [900, 500, 100, 0]", DDIMSampler(cosine, timesteps: [900, 500, 100, 0]), cosine),
            ("DDIM 20 η=0.5", DDIMSampler(cosine, steps: 20, eta: 0.5), cosine),
            ("DDPM 100", DDPMSampler(cosine, steps: 100), cosine),
            ("Euler 10", EulerSampler(flow, steps: 10), flow),
        ]
        for (name, sampler, diffusion) in runs {
            let x = sampler.sample(shape: [512, 2], rng: RNG(seed: 24), model: point.model(diffusion))
            let worst = zip(x.scalars, (0..<x.count).map { Float(point.mean[$0 % 2]) }).map { abs($0 - $1) }.max()!
            print("\(name): point mass recovered within \(worst)")
            #expect(worst <= 2e-6, "\(name): \(worst) from the point")
        }
    }

    @Test func clippingX0LeavesAnAccurateModelAloneAndBoundsAnInaccurateOne() {
        // On the 1000-step cosine schedule ᾱ_999 ≈ 2·10⁻⁹, so x̂0 = (x − s·ε̂)/a multiplies an ε̂
        // error by ~2·10⁴ at the first step; coarse samplers carry it into the image.
        let diffusion = GaussianDiffusion(schedule: .cosine(), target: .eps)
        let exact = data.model(diffusion)
        let inaccurate: Denoiser = { xt, t in exact(xt, t) + RNG(seed: UInt64(t[0]) + 1).normal(xt.shape) * 0.3 }
        let noise = RNG(seed: 28).normal([256, 2])
        let samplers: [(String, any Sampler, any Sampler)] = [
            ("DDIM 25", DDIMSampler(diffusion, steps: 25), DDIMSampler(diffusion, steps: 25, clipX0: 5)),
            ("DDPM 25", DDPMSampler(diffusion, steps: 25), DDPMSampler(diffusion, steps: 25, clipX0: 5)),
        ]
        for (name, plain, clipped) in samplers {
            let a = plain.sample(from: noise, rng: RNG(seed: 29), model: exact)
            let b = clipped.sample(from: noise, rng: RNG(seed: 29), model: exact)
            expectClose(a.scalars, b.scalars, atol: 1e-3, rtol: 1e-3)
            let wild = plain.sample(from: noise, rng: RNG(seed: 29), model: inaccurate).scalars.map(abs).max()!
            let tame = clipped.sample(from: noise, rng: RNG(seed: 29), model: inaccurate)
            print("\(name) with ε̂ error 0.3: max |x| \(wild) unclipped, \(tame.scalars.map(abs).max()!) clipped")
            #expect(wild > 20, "\(name): the unclipped sampler should blow up (max |x| \(wild))")
            #expect(tame.scalars.allSatisfy { abs($0) <= 5.5 })
            for (j, m) in columnMoments(tame).enumerated() {
                #expect(abs(m.mean - data.mean[j]) < 0.5, "\(name) column \(j): mean \(m.mean)")
            }
        }
    }

    @Test func ddimWithEtaOneIsDDPM() {
        // σ(η = 1) = √β̃ (eq. 16), and DDIM's mean equals eq. 11's: same noise, same draws.
        let diffusion = GaussianDiffusion(schedule: .linear(), target: .eps)
        let model = data.model(diffusion), noise = RNG(seed: 25).normal([64, 2])
        let ddim = DDIMSampler(diffusion, steps: 100, eta: 1).sample(from: noise, rng: RNG(seed: 26), model: model)
        let ddpm = DDPMSampler(diffusion, steps: 100).sample(from: noise, rng: RNG(seed: 26), model: model)
        expectClose(ddim.scalars, ddpm.scalars, atol: 1e-4, rtol: 1e-4)
    }

    @Test func targetsGiveTheSameTrajectory() {
        // The optimal ε and v models are one denoiser in two parameterisations: DDIM agrees.
        let eps = GaussianDiffusion(schedule: .cosine(), target: .eps)
        let v = GaussianDiffusion(schedule: .cosine(), target: .v)
        let noise = RNG(seed: 27).normal([64, 2])
        let a = DDIMSampler(eps, steps: 50).sample(from: noise, rng: RNG(seed: 0), model: data.model(eps))
        let b = DDIMSampler(v, steps: 50).sample(from: noise, rng: RNG(seed: 0), model: data.model(v))
        expectClose(a.scalars, b.scalars, atol: 1e-4, rtol: 1e-4)
    }

    @Test func ddimInversionRoundTrip() {
        // Invert data to x_T, sample back with the same 50 steps. The classic inversion evaluates
        // the model at x_prev instead of x_t: a first-order error (RMS 0.21σ and 0.06σ here; a
        // float64 model of the same recurrence gives the same), so 4× the steps must cut it at
        // least 2× (measured 3×). Three fixed-point refinements per step cut it ~4× more; what is
        // left comes from the noisiest step, where the iteration barely contracts.
        let diffusion = GaussianDiffusion(schedule: .cosine(), target: .eps)
        let model = data.model(diffusion)
        let x0 = data.draw(512, rng: RNG(seed: 28))
        func error(steps: Int, refinements: Int) -> [Double] {
            let xT = DDIMInversion(diffusion, steps: steps, refinements: refinements).invert(x0, model: model)
            let back = DDIMSampler(diffusion, steps: steps).sample(from: xT, rng: RNG(seed: 0), model: model)
            let diff = (back - x0).scalars
            return (0..<2).map { j in   // RMS error per column, relative to σ_j
                let sq = stride(from: j, to: diff.count, by: 2).map { Double(diff[$0]) * Double(diff[$0]) }
                return (sq.reduce(0, +) / Double(sq.count)).squareRoot() / data.std[j]
            }
        }
        let classic50 = error(steps: 50, refinements: 0)
        let classic200 = error(steps: 200, refinements: 0)
        let refined50 = error(steps: 50, refinements: 3)
        print("DDIM inversion RMS error / σ: 50 steps \(classic50), 200 steps \(classic200), "
            + "50 steps + 3 refinements \(refined50)")
        for j in 0..<2 {
            #expect(classic50[j] < 0.3, "column \(j): 50-step round trip")
            #expect(classic200[j] < 0.5 * classic50[j], "column \(j): 200 steps vs 50")
            #expect(refined50[j] < 0.08 && refined50[j] < 0.4 * classic50[j], "column \(j): refined round trip")
        }
    }

    @Test func flowInversionRoundTrip() {
        // Invert data to x_1 along the flow ODE, Euler-sample back on the same nodes. The classic
        // inversion evaluates the velocity at the lower node instead of the upper one: an O(1/steps)
        // error, so 4× the steps must cut it at least 2×; two fixed-point refinements per step solve
        // the implicit inverse step, leaving far less than the classic error.
        let diffusion = GaussianDiffusion(flow: FlowSchedule())
        // The closed form divides by t, so its t = 0 limit (E[ε | x_0] = 0) is taken just above 0;
        // the sampler never evaluates there, the classic inversion's first step does.
        let exact = data.model(diffusion)
        let model: Denoiser = { xt, t in exact(xt, t.map { max($0, 1e-6) }) }
        let x0 = data.draw(512, rng: RNG(seed: 29))
        func error(steps: Int, refinements: Int) -> Double {
            let noise = FlowInversion(diffusion, steps: steps, refinements: refinements).invert(x0, model: model)
            let back = EulerSampler(diffusion, steps: steps).sample(from: noise, rng: RNG(seed: 0), model: model)
            let diff = (back - x0).scalars
            return (diff.map { Double($0) * Double($0) }.reduce(0, +) / Double(diff.count)).squareRoot()
        }
        let classic50 = error(steps: 50, refinements: 0)
        let classic200 = error(steps: 200, refinements: 0)
        let refined50 = error(steps: 50, refinements: 2)
        print("flow inversion RMS error: 50 steps \(classic50), 200 steps \(classic200), 50 steps + 2 refinements \(refined50)")
        #expect(classic50 < 0.3, "50-step round trip")
        #expect(classic200 < 0.5 * classic50, "200 steps vs 50")
        #expect(refined50 < 0.2 * classic50, "refined round trip")
    }
}
