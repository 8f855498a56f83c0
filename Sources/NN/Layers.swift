// Basic layers: Linear, Embedding, and the normalisation layers over the fused ops in Tensors.
// Not initialisation policy for whole models: models re-initialise what they need.
import Tensors

/// y = x·Wᵀ + b, W stored (out, in) as PyTorch does. Initialised U(±1/√in) like `nn.Linear`.
public final class Linear: Module {
    public let weight: Tensor
    public let bias: Tensor?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, rng: RNG) {
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = parameter(rng.draw([outFeatures, inFeatures], .uniform(lo: -bound, hi: bound)))
        self.bias = bias ? parameter(rng.draw([outFeatures], .uniform(lo: -bound, hi: bound))) : nil
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor { linear(x, weight, bias) }
}

/// A lookup table of `count` vectors of size `dim`, initialised N(0, std²).
public final class Embedding: Module {
    public let weight: Tensor

    public init(_ count: Int, _ dim: Int, std: Float = 1, rng: RNG) {
        weight = parameter(rng.draw([count, dim], .normal(mean: 0, std: std)))
    }

    /// Int32 ids (any shape) → (ids.shape…, dim).
    public func callAsFunction(_ ids: Tensor) -> Tensor { embedding(weight, ids) }
}

public final class RMSNorm: Module {
    public let weight: Tensor
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-6) {
        weight = parameter(Tensor.ones([dim]))
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { rmsNorm(x, weight: weight, eps: eps) }
}

public final class LayerNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let eps: Float

    public init(_ dim: Int, eps: Float = 1e-5, affine: Bool = true) {
        weight = affine ? parameter(Tensor.ones([dim])) : nil
        bias = affine ? parameter(Tensor.zeros([dim])) : nil
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

public final class GroupNorm: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let groups: Int
    public let eps: Float

    public init(groups: Int, channels: Int, eps: Float = 1e-5) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels not divisible into \(groups) groups")
        weight = parameter(Tensor.ones([channels]))
        bias = parameter(Tensor.zeros([channels]))
        self.groups = groups
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps) }
}
