// Classifier-free guidance: scale 1 is the conditional prediction, 0 the unconditional one, other
// scales extrapolate; the batched denoiser makes one call on [cond; uncond] and agrees with two calls.
import Diffusion
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct GuidanceTests {
    let cond = RNG(seed: 31).normal([3, 4, 2]), uncond = RNG(seed: 32).normal([3, 4, 2])

    @Test func scales() {
        #expect(guided(cond: cond, uncond: uncond, scale: 1).scalars == cond.scalars)
        #expect(guided(cond: cond, uncond: uncond, scale: 0).scalars == uncond.scalars)
        let expected = zip(cond.scalars, uncond.scalars).map { c, u in u + 3.5 * (c - u) }
        expectClose(guided(cond: cond, uncond: uncond, scale: 3.5).scalars, expected, atol: 1e-6)
    }

    @Test func batchedDenoiserCallsOnceOnTheDoubledBatch() {
        // A fake model whose conditional rows return `cond` and unconditional rows `uncond`,
        // recording what it was called with.
        var calls: [(shape: [Int], t: [Float])] = []
        let (c, u) = (cond, uncond)
        let batched: Denoiser = { xx, tt in
            calls.append((xx.shape, tt))
            return concat([c, u], axis: 0)
        }
        let xt = RNG(seed: 33).normal([3, 4, 2]), t: [Float] = [5, 6, 7]
        for scale: Float in [0, 1, 2.5] {
            calls = []
            let out = guidedDenoiser(scale: scale, batched: batched)(xt, t)
            #expect(calls.count == 1)
            #expect(calls[0].shape == [6, 4, 2] && calls[0].t == [5, 6, 7, 5, 6, 7])
            let twoCalls = guidedDenoiser(scale: scale, cond: { _, _ in c }, uncond: { _, _ in u })(xt, t)
            expectClose(out.scalars, guided(cond: c, uncond: u, scale: scale).scalars, atol: 0, rtol: 0)
            expectClose(out.scalars, twoCalls.scalars, atol: 0, rtol: 0)
        }
        #expect(guidedDenoiser(scale: 1, batched: batched)(xt, t).scalars == cond.scalars)
        #expect(guidedDenoiser(scale: 0, batched: batched)(xt, t).scalars == uncond.scalars)
    }

    @Test func guidedSamplingWithScaleOneIsConditional() {
        // Through a sampler: guidance at scale 1 samples exactly as the conditional model.
        let diffusion = GaussianDiffusion()
        let condData = GaussianData(mean: [1], std: [0.5]), uncondData = GaussianData(mean: [-1], std: [1])
        let condModel = condData.model(diffusion), uncondModel = uncondData.model(diffusion)
        let batched: Denoiser = { xx, tt in
            let n = xx.dim(0) / 2
            let halves = xx.split(axis: 0, sizes: [n, n])
            return concat([condModel(halves[0], Array(tt[..<n])), uncondModel(halves[1], Array(tt[n...]))], axis: 0)
        }
        let noise = RNG(seed: 34).normal([16, 1]), sampler = DDIMSampler(diffusion, steps: 20)
        let guidedOne = sampler.sample(from: noise, rng: RNG(seed: 0), model: guidedDenoiser(scale: 1, batched: batched))
        let plain = sampler.sample(from: noise, rng: RNG(seed: 0), model: condModel)
        #expect(guidedOne.scalars == plain.scalars)
        let guidedZero = sampler.sample(from: noise, rng: RNG(seed: 0), model: guidedDenoiser(scale: 0, batched: batched))
        #expect(guidedZero.scalars == sampler.sample(from: noise, rng: RNG(seed: 0), model: uncondModel).scalars)
    }
}
