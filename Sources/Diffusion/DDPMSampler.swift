// DDPM ancestral sampling (Ho et al. 2020, Algorithm 2) with the posterior variance β̃, over all T
// steps or a respaced subset, with optional x̂0 clipping. Not deterministic (DDIMSampler) and no
// learned variances.
import Foundation
import Tensors

/// Ancestral sampling: x_{t−1} ~ N(μ_θ(x_t, t), β̃_t·I), with the model's prediction turned
/// into ε̂ whatever the target.
///
/// With fewer steps than T it visits a subsequence S and uses the respaced
/// β_t = 1 − ᾱ_t/ᾱ_prev between kept steps (Nichol & Dhariwal 2021, Sec. 4).
///
/// ```swift
/// let sampler = DDPMSampler(GaussianDiffusion(schedule: .linear()))      // all 1000 steps
/// let x0 = sampler.sample(shape: [8, 2], rng: RNG(seed: 1)) { xt, t in network(xt, t) }
/// ```
public struct DDPMSampler: Sampler {
    public let diffusion: GaussianDiffusion
    /// The visited timesteps, highest first.
    public let timesteps: [Int]
    /// Clamp x̂0 to [−clip, clip] and take the posterior mean from it (eq. 7); nil: the ε form.
    public let clipX0: Float?

    /// `steps` evenly spaced timesteps (all T by default).
    public init(_ diffusion: GaussianDiffusion, steps: Int? = nil, clipX0: Float? = nil) {
        guard let schedule = diffusion.schedule else { fatalError("DDPMSampler: needs a discrete schedule") }
        self.init(diffusion, timesteps: schedule.spacedTimesteps(steps ?? schedule.steps), clipX0: clipX0)
    }

    /// Any strictly decreasing subsequence of 0..<T.
    public init(_ diffusion: GaussianDiffusion, timesteps: [Int], clipX0: Float? = nil) {
        guard let schedule = diffusion.schedule else { fatalError("DDPMSampler: needs a discrete schedule") }
        checkTimesteps(timesteps, schedule, "DDPMSampler")
        self.diffusion = diffusion
        self.timesteps = timesteps
        self.clipX0 = clipX0
    }

    public func sample(from noise: Tensor, rng: RNG, model: Denoiser) -> Tensor {
        let schedule = diffusion.schedule!
        let n = noise.dim(0)
        return withoutGrad {
            var x = noise
            for (i, t) in timesteps.enumerated() {
                let prev = i + 1 < timesteps.count ? timesteps[i + 1] : -1    // −1: clean data, ᾱ = 1
                // 1. ᾱ_t, ᾱ_prev and the (respaced) β_t = 1 − ᾱ_t/ᾱ_prev, α_t = 1 − β_t
                let alphaBar = schedule.alphaBar(t), alphaBarPrev = schedule.alphaBar(prev)
                let beta = 1 - alphaBar / alphaBarPrev, alpha = 1 - beta
                // 2. ε̂ from the prediction (Ho et al. eq. 15 for x̂0; Salimans & Ho App. D for v)
                let tt = rowTimesteps(Float(t), n)
                let prediction = model(x, tt)
                let mean: Tensor
                if let clip = clipX0 {
                    // 3'. μ = √ᾱ_prev·β_t/(1 − ᾱ_t)·clamp(x̂0) + √α_t·(1 − ᾱ_prev)/(1 − ᾱ_t)·x_t   (eq. 7)
                    let x0 = diffusion.predictX0(xt: x, t: tt, prediction: prediction).clamped(-clip, clip)
                    mean = x0 * Float(alphaBarPrev.squareRoot() * beta / (1 - alphaBar))
                        + x * Float(alpha.squareRoot() * (1 - alphaBarPrev) / (1 - alphaBar))
                } else {
                    // 3. mean μ_θ = (x_t − β_t/√(1 − ᾱ_t)·ε̂)/√α_t                   (eq. 11)
                    let eps = diffusion.predictEps(xt: x, t: tt, prediction: prediction)
                    mean = (x - eps * Float(beta / (1 - alphaBar).squareRoot())) * Float(1 / alpha.squareRoot())
                }
                // 4. posterior variance β̃_t = (1 − ᾱ_prev)/(1 − ᾱ_t)·β_t; 0 at the last step (eq. 7)
                let variance = (1 - alphaBarPrev) / (1 - alphaBar) * beta
                // 5. x_prev = μ_θ + √β̃_t·z, z ~ N(0, I)                          (Algorithm 2)
                x = variance > 0 ? mean + rng.normal(x.shape) * Float(variance.squareRoot()) : mean
            }
            return x
        }
    }
}

/// Checks that `timesteps` is a non-empty strictly decreasing subsequence of 0..<T.
func checkTimesteps(_ timesteps: [Int], _ schedule: NoiseSchedule, _ who: String) {
    precondition(!timesteps.isEmpty, "\(who): no timesteps")
    precondition(timesteps.allSatisfy { $0 >= 0 && $0 < schedule.steps }, "\(who): timesteps outside 0..<\(schedule.steps)")
    precondition(zip(timesteps, timesteps.dropFirst()).allSatisfy { $0 > $1 }, "\(who): timesteps must strictly decrease")
}
