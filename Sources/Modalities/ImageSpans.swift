// Image-latent spans (paper, Sec. 3.2): the VAE latents of one image as (latentSize/patch)² patch
// positions, in through a linear patch layer or U-Net down blocks, out through the mirror image,
// each patch with a learned in-span position. Also the patch layout helpers and the U-Net.
import Data
import NN
import Tensors

/// An adapter for image spans: values are latents (n, C, s, s), a span is (s/p)² patches. Its
/// layers keep the checkpoint keys they had as Transfusion's own: `spanPosition`, `patchIn`,
/// `patchOut`, `unet`.
public final class ImageSpans: Module, SpanAdapter {
    public let latentChannels: Int
    public let latentSize: Int
    public let patchSize: Int
    /// Learned position of each patch inside its span (np, d), added to the patch embedding.
    @Key public var position: Tensor
    @Key public var input: Linear
    @Key public var output: Linear
    @Key public var unet: PatchUNet?
    /// With `unet_linear`: a linear embedding of each raw latent patch, added to the U-Net's rows.
    @Key public var direct: Linear?

    /// Layers for a decoder of width `width`, drawn from `rng` in the order position, U-Net (with
    /// that patchifier), input, output, direct (with `unet_linear`).
    public init(latentChannels: Int, latentSize: Int, patchSize: Int, patchifier: SpanPatchifier, unetChannels: Int,
                width: Int, rng: RNG) {
        precondition(latentSize % patchSize == 0 && patchSize.nonzeroBitCount == 1,
                     "ImageSpans: patch size \(patchSize) must be a power of 2 dividing the latent size \(latentSize)")
        self.latentChannels = latentChannels; self.latentSize = latentSize; self.patchSize = patchSize
        let grid = latentSize / patchSize
        _position = Key(wrappedValue: parameter(rng.draw([grid * grid, width], .normal(mean: 0, std: 0.02))), "spanPosition")
        let inner: Int
        switch patchifier {
        case .linear:
            _unet = Key(wrappedValue: nil, "unet")
            inner = latentChannels * patchSize * patchSize
        case .unet, .unetLinear:
            _unet = Key(wrappedValue: PatchUNet(latentChannels: latentChannels, channels: unetChannels,
                                                levels: patchSize.trailingZeroBitCount, timeDim: width, rng: rng), "unet")
            inner = unetChannels
        }
        _input = Key(wrappedValue: Linear(inner, width, rng: rng), "patchIn")
        _output = Key(wrappedValue: Linear(width, inner, rng: rng), "patchOut")
        _direct = Key(wrappedValue: patchifier == .unetLinear
                      ? Linear(latentChannels * patchSize * patchSize, width, rng: rng) : nil, "patchDirect")
    }

    public var modality: Modality { .image }
    /// Patches per side of a span.
    public var gridSize: Int { latentSize / patchSize }
    public var length: Int { gridSize * gridSize }
    public var valueShape: [Int] { [latentChannels, latentSize, latentSize] }

    public func embed(_ values: Tensor, time: Tensor) -> (rows: Tensor, context: SpanContext) {
        check(values)
        let (n, d) = (values.dim(0), position.dim(1))
        var context = SpanContext(count: n, time: time)
        let tokens: Tensor                                                              // (n·np, in)
        if let unet {
            let (grid, skips) = unet.down(values, t: time)
            context.skips = skips
            tokens = gridToPatches(grid)
        } else {
            tokens = patchify(values, patchSize)
        }
        var rows = input(tokens)
        if let direct { rows = rows + direct(patchify(values, patchSize)) }
        let patches = rows.reshaped([n, length, d]) + time.reshaped([n, 1, d]) + position
        return (patches.reshaped([n * length, d]), context)
    }

    public func predict(_ rows: Tensor, context: SpanContext) -> Tensor {
        let out = output(rows)                                                          // (n·np, out)
        if let unet { return unet.up(patchesToGrid(out, n: context.count, grid: gridSize), skips: context.skips, t: context.time) }
        return unpatchify(out, n: context.count, channels: latentChannels, grid: gridSize, patch: patchSize)
    }

    public func zeroOutput() {
        zero(output.weight, output.bias)
        unet?.zeroOutput()
    }

    public func trainingFlops(spans: Int, dim d: Int) -> Double {
        var flops = 6 * Double(spans * length) * Double(d) * Double(input.inFeatures + output.outFeatures)
        if let unet { flops += 3 * Double(spans) * unet.forwardFlops(latentSize: latentSize) }
        if let direct { flops += 6 * Double(spans * length) * Double(d) * Double(direct.inFeatures) }
        return flops
    }
}

// MARK: - Patch layout

/// Latents (n, C, g·p, g·p) → patches (n·g·g, C·p·p) in row-major patch order.
public func patchify(_ x: Tensor, _ p: Int) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (gh, gw) = (h / p, w / p)
    return x.reshaped([n, c, gh, p, gw, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([n * gh * gw, c * p * p])
}

/// Patches (n·g·g, C·p·p) → latents (n, C, g·p, g·p); the inverse of `patchify`.
public func unpatchify(_ x: Tensor, n: Int, channels c: Int, grid g: Int, patch p: Int) -> Tensor {
    x.reshaped([n, g, g, c, p, p]).permuted([0, 3, 1, 4, 2, 5]).reshaped([n, c, g * p, g * p])
}

/// A feature grid (n, ch, g, g) → one row per grid cell (n·g·g, ch).
func gridToPatches(_ x: Tensor) -> Tensor {
    let (n, c, g) = (x.shape[0], x.shape[1], x.shape[2])
    return x.permuted([0, 2, 3, 1]).reshaped([n * g * x.shape[3], c])
}

/// Rows (n·g·g, ch) → a feature grid (n, ch, g, g).
func patchesToGrid(_ x: Tensor, n: Int, grid g: Int) -> Tensor {
    x.reshaped([n, g, g, x.dim(-1)]).permuted([0, 3, 1, 2])
}

/// The U-Net patchifier (paper, Sec. 3.2 / Fig. 3): a conv stem and `levels` down blocks take the
/// latents to the patch grid; up blocks with skips take the decoder's outputs back. Each block
/// is conditioned on the span's timestep embedding.
public final class PatchUNet: Module {
    public let stem: Conv2d
    public let downs: [DownBlock]
    public let ups: [UpBlock]
    public let outNorm: GroupNorm
    public let outConv: Conv2d
    let channels: Int

    public init(latentChannels: Int, channels: Int, levels: Int, timeDim: Int, groups: Int = 8, rng: RNG) {
        self.channels = channels
        stem = Conv2d(latentChannels, channels, kernel: 3, rng: rng)
        downs = (0..<levels).map { _ in DownBlock(channels, channels, timeDim: timeDim, groups: groups, rng: rng) }
        ups = (0..<levels).map { _ in UpBlock(channels, skipChannels: channels, channels, timeDim: timeDim, groups: groups,
                                              rng: rng) }
        outNorm = GroupNorm(groups: min(groups, channels), channels: channels)
        outConv = Conv2d(channels, latentChannels, kernel: 3, rng: rng)
    }

    public func zeroOutput() { zero(outConv.weight, outConv.bias) }

    /// Latents (n, C, h, w) → the patch grid (n, ch, h/p, w/p) and the skips, finest first.
    public func down(_ x: Tensor, t: Tensor) -> (Tensor, skips: [Tensor]) {
        var h = stem(x)
        var skips: [Tensor] = []
        for block in downs {
            let (next, skip) = block(h, t: t)
            skips.append(skip)
            h = next
        }
        return (h, skips)
    }

    /// The decoder's patch grid (n, ch, h/p, w/p) → predictions (n, C, h, w).
    public func up(_ x: Tensor, skips: [Tensor], t: Tensor) -> Tensor {
        var h = x
        for (block, skip) in zip(ups, skips.reversed()) { h = block(h, skip: skip, t: t) }
        return outConv(outNorm(h).silu())
    }

    /// Forward FLOPs of one image through the stem, down and up blocks (3×3 convs dominate).
    public func forwardFlops(latentSize: Int) -> Double {
        let c = Double(channels), k = 9.0
        var flops = 2 * k * Double(stem.weight.shape[1]) * c * Double(latentSize * latentSize) * 2   // stem + out conv
        var side = latentSize
        for _ in downs {
            let px = Double(side * side)
            flops += 2 * k * c * c * px * 2 + 2 * k * c * c * px / 4                          // res block + strided conv
            flops += 2 * k * c * c * px + 2 * k * (2 * c) * c * px + 2 * k * c * c * px       // up conv + res block
            side /= 2
        }
        return flops
    }
}
