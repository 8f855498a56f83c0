// Convolutional building blocks: Conv2d, the ResNet block with GroupNorm and timestep
// conditioning, and U-Net down/up blocks (strided or pooled downsampling, nearest upsampling
// with skip connections). Used by the VAE/VQ backbones and Transfusion's U-Net patch adapter.
// Not a whole U-Net: models compose these.
import Tensors

/// 2-D convolution over (N, C, H, W), weights (out, in, k, k) as PyTorch stores them.
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                bias: Bool = true, rng: RNG) {
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        weight = parameter(rng.draw([outChannels, inChannels, kernel, kernel], .uniform(lo: -bound, hi: bound)))
        self.bias = bias ? parameter(rng.draw([outChannels], .uniform(lo: -bound, hi: bound))) : nil
        self.stride = stride
        self.padding = padding ?? kernel / 2
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv2d(x, weight, bias, stride: stride, padding: padding) }
}

/// GroupNorm → SiLU → Conv3×3 → (+ per-channel timestep shift) → GroupNorm → SiLU → Conv3×3,
/// plus the input (through a 1×1 conv when the channel count changes).
public final class ResBlock: Module {
    public let norm1: GroupNorm
    public let conv1: Conv2d
    public let temb: Linear?
    public let norm2: GroupNorm
    public let conv2: Conv2d
    public let skip: Conv2d?

    public init(_ inChannels: Int, _ outChannels: Int, timeDim: Int? = nil, groups: Int = 8, rng: RNG) {
        norm1 = GroupNorm(groups: min(groups, inChannels), channels: inChannels)
        conv1 = Conv2d(inChannels, outChannels, kernel: 3, rng: rng)
        temb = timeDim.map { Linear($0, outChannels, rng: rng) }
        norm2 = GroupNorm(groups: min(groups, outChannels), channels: outChannels)
        conv2 = Conv2d(outChannels, outChannels, kernel: 3, rng: rng)
        skip = inChannels == outChannels ? nil : Conv2d(inChannels, outChannels, kernel: 1, rng: rng)
    }

    /// x (N, C, H, W); `t` (N, timeDim) conditioning when the block has a timestep projection.
    public func callAsFunction(_ x: Tensor, t: Tensor? = nil) -> Tensor {
        var h = conv1(norm1(x).silu())
        if let temb, let t {
            let shift = temb(t.silu())                                   // (N, C_out)
            h = h + shift.reshaped([shift.shape[0], shift.shape[1], 1, 1])
        }
        h = conv2(norm2(h).silu())
        return (skip?(x) ?? x) + h
    }
}

/// ResBlock then halve the resolution (strided 3×3 conv, or 2×2 average pooling).
public final class DownBlock: Module {
    public let res: ResBlock
    public let down: Conv2d?
    let pooled: Bool

    public init(_ inChannels: Int, _ outChannels: Int, timeDim: Int? = nil, groups: Int = 8, pooled: Bool = false, rng: RNG) {
        res = ResBlock(inChannels, outChannels, timeDim: timeDim, groups: groups, rng: rng)
        down = pooled ? nil : Conv2d(outChannels, outChannels, kernel: 3, stride: 2, padding: 1, rng: rng)
        self.pooled = pooled
    }

    /// Returns the downsampled output and the pre-downsampling activation (the skip).
    public func callAsFunction(_ x: Tensor, t: Tensor? = nil) -> (Tensor, skip: Tensor) {
        let h = res(x, t: t)
        return (down?(h) ?? h.avgPooled(2), h)
    }
}

/// Double the resolution (nearest + 3×3 conv), concatenate the skip, then a ResBlock.
public final class UpBlock: Module {
    public let up: Conv2d
    public let res: ResBlock

    public init(_ inChannels: Int, skipChannels: Int, _ outChannels: Int, timeDim: Int? = nil, groups: Int = 8, rng: RNG) {
        up = Conv2d(inChannels, inChannels, kernel: 3, rng: rng)
        res = ResBlock(inChannels + skipChannels, outChannels, timeDim: timeDim, groups: groups, rng: rng)
    }

    public func callAsFunction(_ x: Tensor, skip: Tensor, t: Tensor? = nil) -> Tensor {
        let h = up(x.upsampledNearest(scale: 2))
        return res(concat([h, skip], axis: 1), t: t)
    }
}
