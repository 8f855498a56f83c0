// DDIM inversion: the deterministic DDIM update run with increasing timesteps, mapping data x0 to
// the noise x_T that DDIMSampler (η = 0, same steps) maps back. Not exact: see `refinements`.
import Foundation
import Tensors

/// Encodes x0 into x_T along the DDIM ODE (Song et al. 2021, Sec. 4.3), for editing or
/// reconstruction: `DDIMSampler(diffusion, steps: k).sample(from: invert(x0))` ≈ x0.
///
/// A sampling step from t to prev evaluates the model at (x_t, t); its inverse does not know x_t
/// yet, so the classic inversion evaluates it at (x_prev, t) instead, an O(1/steps) error per
/// step. `refinements` > 0 re-evaluates the model at the latest estimate of x_t and redoes the
/// step (the fixed-point inversion of Pan et al. 2023), shrinking that error where the fixed
/// point iteration contracts (everywhere but the very noisiest steps).
///
/// ```swift
/// let inversion = DDIMInversion(diffusion, steps: 50)
/// let xT = inversion.invert(x0) { xt, t in network(xt, t) }
/// let back = DDIMSampler(diffusion, steps: 50).sample(from: xT, rng: RNG(seed: 0)) { xt, t in network(xt, t) }
/// ```
public struct DDIMInversion {
    public let diffusion: GaussianDiffusion
    /// The visited timesteps, lowest first (a sampler's sequence reversed).
    public let timesteps: [Int]
    /// Extra model evaluations per step that refine the inverse step by fixed-point iteration.
    public let refinements: Int

    /// The reverse of `DDIMSampler(diffusion, steps: steps)`'s sequence.
    public init(_ diffusion: GaussianDiffusion, steps: Int = 50, refinements: Int = 0) {
        guard let schedule = diffusion.schedule else { fatalError("DDIMInversion: needs a discrete schedule") }
        self.init(diffusion, samplerTimesteps: schedule.spacedTimesteps(steps), refinements: refinements)
    }

    /// The reverse of a sampler's strictly decreasing `samplerTimesteps`.
    public init(_ diffusion: GaussianDiffusion, samplerTimesteps: [Int], refinements: Int = 0) {
        guard let schedule = diffusion.schedule else { fatalError("DDIMInversion: needs a discrete schedule") }
        checkTimesteps(samplerTimesteps, schedule, "DDIMInversion")
        precondition(refinements >= 0, "DDIMInversion: refinements must be ≥ 0")
        self.diffusion = diffusion
        self.timesteps = samplerTimesteps.reversed()
        self.refinements = refinements
    }

    /// x_T for data `x0` (N, …).
    public func invert(_ x0: Tensor, model: Denoiser) -> Tensor {
        let n = x0.dim(0)
        return withoutGrad {
            var x = x0
            var current = -1                                   // the level of x: −1 is clean data
            for next in timesteps {
                // 1. ε̂ at the target level `next`, evaluated on the current point: the classic
                //    inversion's stand-in for x_next, which is not known yet
                let tt = rowTimesteps(Float(next), n)
                var estimate = inverseStep(x, from: current, to: next, eps: predictedEps(at: x, tt, model))
                // 2. fixed-point refinement: ε̂ at the latest estimate of x_next, then redo the step
                for _ in 0..<refinements {
                    estimate = inverseStep(x, from: current, to: next, eps: predictedEps(at: estimate, tt, model))
                }
                x = estimate
                current = next
            }
            return x
        }
    }

    /// The model's prediction at `point`, converted to ε̂ with that same point.
    private func predictedEps(at point: Tensor, _ tt: [Float], _ model: Denoiser) -> Tensor {
        diffusion.predictEps(xt: point, t: tt, prediction: model(point, tt))
    }

    /// The DDIM step (Song et al. eq. 12 with σ = 0) run upwards, from `x` at level `current`
    /// to level `next`, with the noise estimate ε̂:
    ///
    /// 1. x̂0 = (x − √(1 − ᾱ_current)·ε̂)/√ᾱ_current                      (Ho et al. eq. 15)
    /// 2. x_next = √ᾱ_next·x̂0 + √(1 − ᾱ_next)·ε̂                         (eq. 12, σ = 0)
    private func inverseStep(_ x: Tensor, from current: Int, to next: Int, eps: Tensor) -> Tensor {
        let schedule = diffusion.schedule!
        let alphaBarCurrent = schedule.alphaBar(current), alphaBarNext = schedule.alphaBar(next)
        let x0 = (x - eps * Float((1 - alphaBarCurrent).squareRoot())) * Float(1 / alphaBarCurrent.squareRoot())
        return x0 * Float(alphaBarNext.squareRoot()) + eps * Float((1 - alphaBarNext).squareRoot())
    }
}
