// DDIM sampling (Song et al. 2021) over any decreasing subsequence of timesteps, deterministic at
// η = 0, with optional x̂0 clipping. Not the inversion x0 → x_T (DDIMInversion).
import Foundation
import Tensors

/// DDIM: x_prev = √ᾱ_prev·x̂0 + √(1 − ᾱ_prev − σ²)·ε̂ + σ·z with σ = η·σ_DDPM.
/// η = 0 is the deterministic ODE sampler; η = 1 is DDPM ancestral sampling with β̃.
///
/// ```swift
/// let sampler = DDIMSampler(GaussianDiffusion(), steps: 50)              // η = 0
/// let x0 = sampler.sample(shape: [4, 16, 8], rng: RNG(seed: 0)) { xt, t in network(xt, t) }
/// ```
public struct DDIMSampler: Sampler {
    public let diffusion: GaussianDiffusion
    /// The visited timesteps, highest first.
    public let timesteps: [Int]
    /// Noise scale η: 0 deterministic, 1 as DDPM.
    public let eta: Double
    /// Clamp x̂0 to [−clip, clip] (and recompute ε̂ from it) at every step; nil: no clipping.
    public let clipX0: Float?

    /// `steps` evenly spaced timesteps.
    public init(_ diffusion: GaussianDiffusion, steps: Int = 50, eta: Double = 0, clipX0: Float? = nil) {
        guard let schedule = diffusion.schedule else { fatalError("DDIMSampler: needs a discrete schedule") }
        self.init(diffusion, timesteps: schedule.spacedTimesteps(steps), eta: eta, clipX0: clipX0)
    }

    /// Any strictly decreasing subsequence of 0..<T.
    public init(_ diffusion: GaussianDiffusion, timesteps: [Int], eta: Double = 0, clipX0: Float? = nil) {
        guard let schedule = diffusion.schedule else { fatalError("DDIMSampler: needs a discrete schedule") }
        checkTimesteps(timesteps, schedule, "DDIMSampler")
        precondition(eta >= 0, "DDIMSampler: η must be ≥ 0")
        self.diffusion = diffusion
        self.timesteps = timesteps
        self.eta = eta
        self.clipX0 = clipX0
    }

    public func sample(from noise: Tensor, rng: RNG, model: Denoiser) -> Tensor {
        let n = noise.dim(0)
        return withoutGrad {
            var x = noise
            for (i, t) in timesteps.enumerated() {
                let prev = i + 1 < timesteps.count ? timesteps[i + 1] : -1    // −1: clean data, ᾱ = 1
                let tt = rowTimesteps(Float(t), n)
                x = ddimStep(diffusion, x: x, t: t, tt: tt, prev: prev, prediction: model(x, tt), eta: eta, rng: rng,
                             clipX0: clipX0)
            }
            return x
        }
    }
}

/// One DDIM step from timestep `t` to `prev` (−1 for clean data). Run with increasing timesteps
/// and η = 0 it is the inversion step (DDIMInversion).
///
/// Why clip: with ε-prediction, x̂0 = (x_t − s_t·ε̂)/a_t amplifies the model's error by 1/a_t,
/// about 2·10⁴ at the last step of the 1000-step cosine schedule (ᾱ ≈ 2·10⁻⁹), which a coarse
/// sampler carries into the next x. Clamping x̂0 to the data's range bounds that error.
func ddimStep(_ diffusion: GaussianDiffusion, x: Tensor, t: Int, tt: [Float], prev: Int,
              prediction: Tensor, eta: Double, rng: RNG?, clipX0: Float? = nil) -> Tensor {
    let schedule = diffusion.schedule!
    // 1. ᾱ_t and ᾱ_prev (Song et al. write α for our ᾱ)
    let alphaBar = schedule.alphaBar(t), alphaBarPrev = schedule.alphaBar(prev)
    // 2. x̂0 and ε̂ from the prediction (Ho et al. eq. 15; Salimans & Ho App. D for v); with
    //    clipping, ε̂ = (x_t − √ᾱ_t·x̂0)/√(1 − ᾱ_t) from the clamped x̂0
    var x0 = diffusion.predictX0(xt: x, t: tt, prediction: prediction)
    var eps = diffusion.predictEps(xt: x, t: tt, prediction: prediction)
    if let clip = clipX0 {
        x0 = x0.clamped(-clip, clip)
        eps = (x - x0 * Float(alphaBar.squareRoot())) * Float(1 / (1 - alphaBar).squareRoot())
    }
    // 3. σ_t(η) = η·√((1 − ᾱ_prev)/(1 − ᾱ_t))·√(1 − ᾱ_t/ᾱ_prev)                    (eq. 16)
    let sigma = eta > 0 ? eta * ((1 - alphaBarPrev) / (1 - alphaBar) * (1 - alphaBar / alphaBarPrev)).squareRoot() : 0
    // 4. the direction pointing to x_t: √(1 − ᾱ_prev − σ²)·ε̂
    let direction = eps * Float(max(0, 1 - alphaBarPrev - sigma * sigma).squareRoot())
    // 5. x_prev = √ᾱ_prev·x̂0 + direction + σ·z                                        (eq. 12)
    let mean = x0 * Float(alphaBarPrev.squareRoot()) + direction
    guard sigma > 0, let rng else { return mean }
    return mean + rng.normal(x.shape) * Float(sigma)
}
