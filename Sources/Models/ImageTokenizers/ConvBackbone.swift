// The convolutional encoder/decoder pair shared by ImageVAE and VQTokenizer (the LDM autoencoder
// layout, shrunk): ResBlocks with GroupNorm, stride-2 downsampling, nearest-neighbour upsampling.
// Not a model: no latent distribution, no quantiser, no loss. Legend: N images, C image channels,
// H×W image, h×w = H/f × W/f latent grid for downsampling factor f = 2^(levels − 1).
import NN
import Tensors

/// What makes a backbone unbuildable (the conditions ``backboneWidths(channels:downsample:patchSize:multipliers:)``
/// and the conv stacks check), for configs read from files; nil when it builds.
public func backboneProblem(channels: Int, downsample: Int, patchSize: Int, multipliers: [Int]?, groups: Int) -> String? {
    guard downsample >= 1 && downsample & (downsample - 1) == 0 else { return "downsample \(downsample) must be a power of two" }
    guard patchSize >= 1 && patchSize & (patchSize - 1) == 0 && patchSize <= downsample else {
        return "patch size \(patchSize) must be a power of two ≤ downsample \(downsample)"
    }
    let levels = (downsample / patchSize).trailingZeroBitCount + 1
    let m = multipliers ?? [1] + Array(repeating: 2, count: levels - 1)
    guard m.count == levels else { return "\(m.count) channel multipliers for \(levels) levels" }
    guard channels > 0 && m.allSatisfy({ $0 > 0 }) && groups > 0 else { return "channels, multipliers and groups must be positive" }
    guard m.allSatisfy({ (channels * $0) % groups == 0 }) else { return "widths \(m.map { channels * $0 }) must divide into \(groups) groups" }
    return nil
}

/// Widths of the resolution levels, from the stem's resolution down: `channels · multipliers[i]`.
/// There are log2(downsample / patchSize) + 1 levels; `multipliers` defaults to [1, 2, 2, …].
public func backboneWidths(channels: Int, downsample: Int, patchSize: Int = 1, multipliers: [Int]?) -> [Int] {
    precondition(downsample >= 1 && downsample & (downsample - 1) == 0,
                 "backbone: downsample \(downsample) must be a power of two (4 or 8 for images)")
    precondition(patchSize >= 1 && patchSize & (patchSize - 1) == 0 && patchSize <= downsample,
                 "backbone: patch size \(patchSize) must be a power of two ≤ downsample \(downsample)")
    let levels = (downsample / patchSize).trailingZeroBitCount + 1
    let m = multipliers ?? [1] + Array(repeating: 2, count: levels - 1)
    precondition(m.count == levels,
                 "backbone: \(m.count) channel multipliers for \(levels) levels "
                 + "(downsample \(downsample), patch \(patchSize))")
    precondition(channels > 0 && m.allSatisfy { $0 > 0 }, "backbone: widths must be positive")
    return m.map { channels * $0 }
}

/// Pixel-unshuffle: (N, C, H, W) → (N, C·p², H/p, W/p), channel c·p² + i·p + j holding pixel
/// (i, j) of each p×p patch (PyTorch's `pixel_unshuffle` order).
public func spaceToDepth(_ x: Tensor, _ p: Int) -> Tensor {
    if p == 1 { return x }
    let (n, c, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    precondition(h % p == 0 && w % p == 0, "spaceToDepth: \(h)×\(w) does not split into \(p)×\(p) patches")
    return x.reshaped([n, c, h / p, p, w / p, p])       // (N, C, H/p, i, W/p, j)
        .permuted([0, 1, 3, 5, 2, 4])                    // (N, C, i, j, H/p, W/p)
        .reshaped([n, c * p * p, h / p, w / p])
}

/// Pixel-shuffle, the inverse of `spaceToDepth`: (N, C·p², h, w) → (N, C, h·p, w·p).
public func depthToSpace(_ x: Tensor, _ p: Int) -> Tensor {
    if p == 1 { return x }
    let (n, cp, h, w) = (x.dim(0), x.dim(1), x.dim(2), x.dim(3))
    precondition(cp % (p * p) == 0, "depthToSpace: \(cp) channels do not fold into \(p)×\(p) patches")
    return x.reshaped([n, cp / (p * p), p, p, h, w])     // (N, C, i, j, h, w)
        .permuted([0, 1, 4, 2, 5, 3])                    // (N, C, h, i, w, j)
        .reshaped([n, cp / (p * p), h * p, w * p])
}

/// Nearest-neighbour ×2 upsampling followed by a 3×3 convolution.
public final class Upsample: Module {
    public let conv: Conv2d

    public init(_ inChannels: Int, _ outChannels: Int, rng: RNG) {
        conv = Conv2d(inChannels, outChannels, kernel: 3, rng: rng)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { conv(x.upsampledNearest(scale: 2)) }
}

/// Image (N, C, H, W) → feature map (N, outChannels, H/f, W/f).
///
/// A stem folds p×p pixel patches into channels (when `patchSize` p > 1) and applies a 3×3 conv;
/// then per level i (resolution H/(p·2^i), width `widths[i]`) a ResBlock, and a stride-2 3×3 conv
/// except at the last level; then a middle ResBlock, GroupNorm, SiLU and a 3×3 output conv.
public final class ConvEncoder: Module {
    public let convIn: Conv2d
    public let down: [DownBlock]
    public let last: ResBlock
    public let mid: ResBlock
    public let normOut: GroupNorm
    public let convOut: Conv2d
    public let patchSize: Int

    public init(imageChannels: Int, widths: [Int], outChannels: Int, groups: Int, patchSize: Int = 1, rng: RNG) {
        precondition(widths.allSatisfy { $0 % groups == 0 },
                     "ConvEncoder: widths \(widths) must divide into \(groups) groups")
        self.patchSize = patchSize
        convIn = Conv2d(imageChannels * patchSize * patchSize, widths[0], kernel: 3, rng: rng)
        var blocks: [DownBlock] = []
        for i in 0..<(widths.count - 1) {
            blocks.append(DownBlock(widths[max(i - 1, 0)], widths[i], groups: groups, rng: rng))
        }
        down = blocks
        last = ResBlock(widths[max(widths.count - 2, 0)], widths[widths.count - 1], groups: groups, rng: rng)
        mid = ResBlock(widths[widths.count - 1], widths[widths.count - 1], groups: groups, rng: rng)
        normOut = GroupNorm(groups: groups, channels: widths[widths.count - 1])
        convOut = Conv2d(widths[widths.count - 1], outChannels, kernel: 3, rng: rng)
    }

    /// The spatial downsampling factor f.
    public var downsample: Int { patchSize << down.count }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = convIn(spaceToDepth(x, patchSize))   // (N, w0, H/p, W/p)
        for block in down { h = block(h).0 }         // (N, w_i, H/(p·2^(i+1)), W/(p·2^(i+1)))
        h = mid(last(h))                         // (N, w_last, h, w)
        return convOut(normOut(h).silu())        // (N, outChannels, h, w)
    }
}

/// Feature map (N, inChannels, h, w) → image (N, C, h·f, w·f), the encoder's mirror: per level i
/// from the lowest up, a ResBlock to `widths[i]`, then (above level 0) nearest ×2 and a 3×3 conv
/// to `widths[i − 1]`; a 3×3 output conv, unfolded from p×p patches when `patchSize` p > 1. The
/// output is unbounded (targets live in [-1, 1]).
public final class ConvDecoder: Module {
    public let convIn: Conv2d
    public let mid: ResBlock
    public let blocks: [ResBlock]   // lowest resolution first
    public let ups: [Upsample]      // ups[j] follows blocks[j]
    public let normOut: GroupNorm
    public let convOut: Conv2d
    public let patchSize: Int

    public init(inChannels: Int, widths: [Int], imageChannels: Int, groups: Int, patchSize: Int = 1, rng: RNG) {
        precondition(widths.allSatisfy { $0 % groups == 0 },
                     "ConvDecoder: widths \(widths) must divide into \(groups) groups")
        self.patchSize = patchSize
        let top = widths[widths.count - 1]
        convIn = Conv2d(inChannels, top, kernel: 3, rng: rng)
        mid = ResBlock(top, top, groups: groups, rng: rng)
        var blocks: [ResBlock] = [], ups: [Upsample] = []
        for i in stride(from: widths.count - 1, through: 0, by: -1) {
            blocks.append(ResBlock(widths[i], widths[i], groups: groups, rng: rng))
            if i > 0 { ups.append(Upsample(widths[i], widths[i - 1], rng: rng)) }
        }
        self.blocks = blocks
        self.ups = ups
        normOut = GroupNorm(groups: groups, channels: widths[0])
        convOut = Conv2d(widths[0], imageChannels * patchSize * patchSize, kernel: 3, rng: rng)
    }

    public func callAsFunction(_ z: Tensor) -> Tensor {
        var h = mid(convIn(z))                   // (N, w_last, h, w)
        for (j, block) in blocks.enumerated() {
            h = block(h)
            if j < ups.count { h = ups[j](h) }   // doubles H, W; width → next level's
        }
        return depthToSpace(convOut(normOut(h).silu()), patchSize)   // (N, C, H, W)
    }
}

// MARK: - FLOPs

/// Multiply-adds ×2 of a convolution producing `pixels` output positions.
func convFlops(_ conv: Conv2d, pixels: Int) -> Double {
    2 * Double(conv.weight.count) * Double(pixels)
}

/// The convolutions of a ResBlock at `pixels` positions (norms and activations are not counted).
func resBlockFlops(_ block: ResBlock, pixels: Int) -> Double {
    convFlops(block.conv1, pixels: pixels) + convFlops(block.conv2, pixels: pixels)
        + (block.skip.map { convFlops($0, pixels: pixels) } ?? 0)
}

extension ConvEncoder {
    /// Forward FLOPs of one H×W image (convolutions only).
    public func forwardFlops(height: Int, width: Int) -> Double {
        var pixels = (height / patchSize) * (width / patchSize)
        var total = convFlops(convIn, pixels: pixels)
        for block in down {
            total += resBlockFlops(block.res, pixels: pixels)
            pixels /= 4
            total += block.down.map { convFlops($0, pixels: pixels) } ?? 0
        }
        return total + resBlockFlops(last, pixels: pixels) + resBlockFlops(mid, pixels: pixels)
            + convFlops(convOut, pixels: pixels)
    }
}

extension ConvDecoder {
    /// Forward FLOPs of decoding to one H×W image (convolutions only).
    public func forwardFlops(height: Int, width: Int) -> Double {
        var pixels = (height / patchSize) * (width / patchSize) >> (2 * ups.count)
        var total = convFlops(convIn, pixels: pixels) + resBlockFlops(mid, pixels: pixels)
        for (j, block) in blocks.enumerated() {
            total += resBlockFlops(block, pixels: pixels)
            if j < ups.count { pixels *= 4; total += convFlops(ups[j].conv, pixels: pixels) }
        }
        return total + convFlops(convOut, pixels: pixels)
    }
}
