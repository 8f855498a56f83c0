// Euler integration of the flow ODE dx/dt = v(x, t) from t = 1 (noise) to t = 0 (data), for the
// straight flow path. Not for discrete schedules (DDIMSampler) and no higher-order or SDE solvers.
import Foundation
import Tensors

/// The explicit Euler solver of rectified flow / flow matching over `steps` equal time steps.
///
/// On the straight path this is DDIM with η = 0 written in time: with x̂0 = x_t − t·v̂ and
/// ε̂ = x_t + (1 − t)·v̂, the step x_t + (t' − t)·v̂ equals (1 − t')·x̂0 + t'·ε̂.
///
/// ```swift
/// let sampler = EulerSampler(GaussianDiffusion(flow: FlowSchedule()), steps: 100)
/// let x0 = sampler.sample(shape: [4, 16, 8], rng: RNG(seed: 0)) { xt, t in network(xt, t) }
/// ```
public struct EulerSampler: Sampler {
    public let diffusion: GaussianDiffusion
    /// The integration nodes, from 1 down to 0.
    public let times: [Float]

    /// `steps` equal steps from t = 1 to t = 0.
    public init(_ diffusion: GaussianDiffusion, steps: Int = 50) {
        guard case .flow(let flow) = diffusion.process else { fatalError("EulerSampler: needs the flow path") }
        self.init(diffusion, times: flow.timeGrid(steps))
    }

    /// Any strictly decreasing nodes in [0, 1] (e.g. a shifted or non-uniform grid).
    public init(_ diffusion: GaussianDiffusion, times: [Float]) {
        guard case .flow = diffusion.process else { fatalError("EulerSampler: needs the flow path") }
        precondition(times.count >= 2, "EulerSampler: at least two nodes")
        precondition(times.allSatisfy { $0 >= 0 && $0 <= 1 }, "EulerSampler: nodes outside [0, 1]")
        precondition(zip(times, times.dropFirst()).allSatisfy { $0 > $1 }, "EulerSampler: nodes must strictly decrease")
        self.diffusion = diffusion
        self.times = times
    }

    public func sample(from noise: Tensor, rng: RNG, model: Denoiser) -> Tensor {
        let n = noise.dim(0)
        return withoutGrad {
            var x = noise
            for (t, next) in zip(times, times.dropFirst()) {
                // 1. the velocity v̂ = E[ε − x0 | x_t]: the model's flow prediction at (x_t, t)
                let velocity = model(x, rowTimesteps(t, n))
                // 2. x_{t'} = x_t + (t' − t)·v̂   (explicit Euler on dx/dt = v, t' < t)
                x = x + velocity * (next - t)
            }
            return x
        }
    }
}
