// What every sampler shares: the model closure it calls and the `Sampler` protocol a generation
// loop runs. Not a sampler itself (DDPMSampler, DDIMSampler, EulerSampler) and no guidance (Guidance).
import Foundation
import Tensors

/// Which diffusion sampler runs a span, by name (`diffusion.sampler`, `--sampler`).
public enum SpanSampler: String, Codable, Sendable, CaseIterable {
    case ddpm, ddim, euler
}

/// A model as samplers see it: the noisy batch x_t (N, …) and one timestep per row in, the
/// prediction (ε, v or velocity, per `GaussianDiffusion.target`) of the same shape out.
/// Timesteps are integer indices on a discrete schedule, times in [0, 1] on the flow path.
public typealias Denoiser = (_ xt: Tensor, _ t: [Float]) -> Tensor

/// A reverse process: from pure noise to a sample of x0.
///
/// ```swift
/// let sampler: any Sampler = DDIMSampler(GaussianDiffusion(), steps: 50)
/// let x0 = sampler.sample(shape: [4, 16, 8], rng: RNG(seed: 0)) { xt, t in network(xt, t) }
/// ```
public protocol Sampler {
    /// Runs the reverse process from `noise` (the batch at the highest noise level) to x0.
    /// `rng` supplies the fresh noise of stochastic steps; the model is called without autograd.
    func sample(from noise: Tensor, rng: RNG, model: Denoiser) -> Tensor
}

extension Sampler {
    /// Draws standard normal noise of `shape` from `rng`, then samples from it.
    public func sample(shape: [Int], rng: RNG, model: Denoiser) -> Tensor {
        sample(from: rng.normal(shape), rng: rng, model: model)
    }
}

/// The batch's timestep `t` repeated for each of its `n` rows.
@inline(__always)
func rowTimesteps(_ t: Float, _ n: Int) -> [Float] { [Float](repeating: t, count: n) }
