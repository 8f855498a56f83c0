// Diffusion timestep conditioning: sinusoidal features of t (as in DDPM/DiT) and the MLP that
// turns them into a conditioning vector. Not a noise schedule (that lives in Diffusion).
import Foundation
import Tensors

/// Sinusoidal features of timesteps `t` (N values) → (N, dim): [cos(t·f₀…), sin(t·f₀…)] with
/// fᵢ = maxPeriod^(−i/(dim/2)) (DiT's `timestep_embedding`).
public func timestepFeatures(_ t: [Float], dim: Int, maxPeriod: Float = 10000) -> Tensor {
    precondition(dim % 2 == 0, "timestepFeatures: dim \(dim) must be even")
    let half = dim / 2
    var out = [Float](repeating: 0, count: t.count * dim)
    for (n, tv) in t.enumerated() {
        for i in 0..<half {
            let a = Double(tv) * Foundation.exp(-Foundation.log(Double(maxPeriod)) * Double(i) / Double(half))
            out[n * dim + i] = Float(Foundation.cos(a))
            out[n * dim + half + i] = Float(Foundation.sin(a))
        }
    }
    return Tensor(out, shape: [t.count, dim])
}

/// t → Linear → SiLU → Linear: (N) timesteps to (N, dim) conditioning vectors.
public final class TimestepEmbedding: Module {
    public let fc1: Linear
    public let fc2: Linear
    let features: Int

    public init(dim: Int, features: Int = 256, rng: RNG) {
        self.features = features
        fc1 = Linear(features, dim, rng: rng)
        fc2 = Linear(dim, dim, rng: rng)
    }

    public func callAsFunction(_ t: [Float]) -> Tensor {
        fc2(fc1(timestepFeatures(t, dim: features)).silu())
    }
}
