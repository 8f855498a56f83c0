// The multi-scale VQ tokenizer of VAR (Tian et al. 2024, arXiv 2404.02905, Sec. 3.2 and Alg. 1–2):
// the VQTokenizer's encoder and decoder with a residual quantiser over a pyramid of scales. Each
// scale quantises, with the one shared codebook, what the upsampled coarser scales left
// unexplained: the encoder output is area-downsampled to the scale, its nearest codes are looked
// up, upsampled bilinearly back to the full grid and subtracted. The decoder reads the sum.
// Not VAR's transformer (a family of its own), not its φ refinement convolutions.
// Legend: N images, D code dimension, h×h the full code grid, s×s one scale's grid, K codes.
import Foundation
import NN
import Tensors

/// Images (N, C, H, W) in [-1, 1] ↔ one code map per scale, (N, s, s) for each s in `scales`.
///
/// ```swift
/// let msvq = MultiScaleVQTokenizer(.init(base: .init(codebookSize: 512, codeDim: 8, ema: true),
///                                        scales: [1, 2, 3, 4, 6, 8]), rng: RNG(seed: 0))
/// let l = msvq.loss(images, rng: rng)      // train on l.total
/// let maps = msvq.encode(images)           // [(N,1,1), (N,2,2), …, (N,8,8)]
/// let back = msvq.decode(maps)             // (N, 3, H, W); decode(maps.prefix(3)) is coarser
/// ```
public final class MultiScaleVQTokenizer: Module {
    public struct Config: Codable, Equatable, Sendable {
        /// Encoder, decoder, codebook and losses (its `downsample` sets the full grid).
        public var base: VQTokenizer.Config
        /// Sides of the code maps, ascending, the last the full grid (e.g. 1, 2, 3, 4, 6, 8).
        public var scales: [Int]

        public init(base: VQTokenizer.Config = .init(), scales: [Int] = [1, 2, 3, 4, 6, 8]) {
            self.base = base; self.scales = scales
        }

        /// What makes the config unusable, or nil.
        public var problem: String? {
            guard let first = scales.first, first >= 1 else { return "scales must be a non-empty list of sides ≥ 1" }
            if zip(scales, scales.dropFirst()).contains(where: { $0 >= $1 }) { return "scales \(scales) must ascend" }
            return nil
        }

        /// Code positions of one image: Σ s² over the scales.
        public var tokensPerImage: Int { scales.map { $0 * $0 }.reduce(0, +) }
    }

    public let config: Config
    public let encoder: ConvEncoder
    public let quantizer: VectorQuantizer
    public let decoder: ConvDecoder

    public init(_ config: Config = Config(), rng: RNG) {
        precondition(config.problem == nil, "MultiScaleVQTokenizer: \(config.problem!)")
        let b = config.base, widths = b.widths
        self.config = config
        encoder = ConvEncoder(imageChannels: b.imageChannels, widths: widths, outChannels: b.codeDim, groups: b.groups,
                              patchSize: b.patchSize, rng: rng)
        quantizer = VectorQuantizer(codes: b.codebookSize, dim: b.codeDim, beta: b.commitmentWeight, ema: b.ema,
                                    emaDecay: b.emaDecay, restartAfterSteps: b.restartAfterSteps, rng: rng)
        decoder = ConvDecoder(inChannels: b.codeDim, widths: widths, imageChannels: b.imageChannels, groups: b.groups,
                              patchSize: b.patchSize, rng: rng)
    }

    /// The full code grid's side for square images of side `size`; it must be the last scale.
    func gridSide(_ size: Int) -> Int {
        precondition(size % config.base.downsample == 0 && size / config.base.downsample == config.scales.last!,
                     "MultiScaleVQTokenizer: \(size)-pixel images give a \(size / config.base.downsample)-code grid, "
                     + "but the last scale is \(config.scales.last!)")
        return size / config.base.downsample
    }

    // MARK: - The residual pyramid

    /// The pyramid of `z` (N, D, h, h): each scale's code ids (N, s, s) and the sum of the
    /// upsampled code maps f̂ after each scale (f̂ after all of them last). In training mode the
    /// codebook's state (EMA, idle counters, restarts) then advances once, on every scale's
    /// residual vectors together: one update per step, as the single-scale tokenizer's, so the
    /// EMA's decay and `restart_after_steps` mean the same, and no scale's statistics pull the
    /// shared codebook away from the others' between updates.
    func pyramid(_ z: Tensor, rng: RNG?) -> (ids: [Tensor], partial: [Tensor]) {
        let h = z.dim(2)
        var rest = z.detached(), sum: Tensor? = nil
        var ids: [Tensor] = [], partial: [Tensor] = [], seen: [(vectors: Tensor, ids: Tensor)] = []
        defer {
            if let rng, isTraining, !seen.isEmpty {
                quantizer.updateState(vectors: concat(seen.map(\.vectors), axis: 0), ids: concat(seen.map(\.ids), axis: 0), rng: rng)
            }
        }
        for s in config.scales {
            let codes = withoutGrad { () -> Tensor in
                let down = resize(rest, to: s)                                                   // (N, D, s, s)
                let n = down.dim(0), vectors = down.permuted([0, 2, 3, 1]).reshaped([n * s * s, down.dim(1)])
                let flat = quantizer.nearestCodes(vectors)                                       // (N·s·s)
                if rng != nil && isTraining { seen.append((vectors, flat)) }
                return flat.reshaped([n, s, s])
            }
            let up = upsampled(codes, to: h)                                                     // (N, D, h, h)
            sum = sum.map { $0 + up } ?? up
            rest = withoutGrad { rest - up }
            ids.append(codes)
            partial.append(sum!)
        }
        return (ids, partial)
    }

    /// Code ids (N, s, s) → their code vectors upsampled to the full grid, (N, D, h, h).
    func upsampled(_ codes: Tensor, to h: Int) -> Tensor {
        resize(quantizer.lookup(codes).permuted([0, 3, 1, 2]), to: h)
    }

    // MARK: - Encode / decode

    /// Images (N, C, H, H) → one Int32 code map per scale, (N, s, s).
    public func encode(_ images: Tensor) -> [Tensor] {
        _ = gridSide(images.dim(2))
        return withoutGrad { pyramid(encoder(images), rng: nil).ids }
    }

    /// The first k ≤ scales.count code maps → images: the decoder reads the sum of their
    /// upsampled code vectors (fewer maps: a coarser image).
    public func decode<S: Collection>(_ maps: S) -> Tensor where S.Element == Tensor {
        precondition(!maps.isEmpty && maps.count <= config.scales.count, "MultiScaleVQTokenizer.decode: 1…\(config.scales.count) maps")
        let h = config.scales.last!
        var sum: Tensor? = nil
        for (map, s) in zip(maps, config.scales) {
            precondition(map.rank == 3 && map.dim(1) == s && map.dim(2) == s && map.dtype == .int32,
                         "MultiScaleVQTokenizer.decode: the \(s)×\(s) scale needs Int32 ids (N, \(s), \(s)), got \(map.shape)")
            let up = upsampled(map, to: h)
            sum = sum.map { $0 + up } ?? up
        }
        return decoder(sum!)
    }

    /// decode(encode(images)).
    public func reconstruct(_ images: Tensor) -> Tensor { decode(encode(images)) }

    // MARK: - Next-scale inputs (what VAR's decoder reads)

    /// f̂ (N, D, h, h) with the code map `codes` (N, s, s) added: `partial` plus the map's code
    /// vectors upsampled to the full grid (nil `partial`: the first scale's alone).
    public func accumulate(_ partial: Tensor?, codes: Tensor) -> Tensor {
        let up = upsampled(codes, to: config.scales.last!)
        return partial.map { $0 + up } ?? up
    }

    /// The input rows of scale `k`'s block: the coarser scales' sum `partial` (N, D, h, h)
    /// area-downsampled to the scale, row-major, (N, s², D); zeros for the first scale, which
    /// nothing precedes (VAR, Alg. 1: the next autoregressive input).
    public func blockInput(_ partial: Tensor?, scale k: Int, count n: Int) -> Tensor {
        let s = config.scales[k], d = config.base.codeDim
        guard k > 0, let partial else { return Tensor.zeros([n, s * s, d]) }
        return resize(partial, to: s).permuted([0, 2, 3, 1]).reshaped([n, s * s, d])
    }

    /// Teacher forcing for a pyramid of code maps (one (N, s, s) per scale): every block's input
    /// rows in scale order, (N, Σ s², D), and the full map f̂ after the last scale, (N, h², D):
    /// what an image read as context shows the decoder.
    public func nextScaleInputs(_ maps: [Tensor]) -> (blocks: Tensor, full: Tensor) {
        precondition(maps.count == config.scales.count, "MultiScaleVQTokenizer: \(maps.count) code maps for \(config.scales.count) scales")
        return withoutGrad {
            let n = maps[0].dim(0), h = config.scales.last!
            var partial: Tensor? = nil, blocks: [Tensor] = []
            for (k, map) in maps.enumerated() {
                blocks.append(blockInput(partial, scale: k, count: n))
                partial = accumulate(partial, codes: map)
            }
            return (concat(blocks, axis: 1), partial!.permuted([0, 2, 3, 1]).reshaped([n, h * h, config.base.codeDim]))
        }
    }

    // MARK: - Loss

    /// The loss terms and the batch's code maps, one per scale.
    public typealias Loss = QuantizedLoss<[Tensor]>

    /// VQ-VAE's loss over the pyramid: reconstruction through the straight-through estimate
    /// z + sg(f̂ − z), codebook loss ‖f̂ − sg(z)‖² (absent with EMA) and β·‖z − sg(f̂)‖², where f̂ is
    /// the sum of every scale's upsampled codes.
    public func loss(_ images: Tensor, rng: RNG) -> Loss {
        _ = gridSide(images.dim(2))
        let z = encoder(images)                                                              // (N, D, h, h)
        let (ids, partial) = pyramid(z, rng: rng)
        let fHat = partial.last!
        let commitment = mse(z, fHat.detached())
        let codebook = quantizer.usesEMA ? Tensor.zeros([]) : mse(fHat, z.detached())
        let quantized = z + (fHat - z).detached()
        let recon = config.base.reconstruction(decoder(quantized), images)
        return Loss(total: recon + codebook + commitment * config.base.commitmentWeight, reconstruction: recon,
                    codebook: codebook, commitment: commitment, ids: ids)
    }

    /// ‖z − f̂_k‖² / ‖z‖² after each scale k for images (N, C, H, H): how much of the encoder's
    /// output the first k scales explain (the residual property: it falls with k).
    public func residualFractions(_ images: Tensor) -> [Double] {
        withoutGrad {
            let z = encoder(images)
            let norm = Double(mse(z, Tensor.zeros(z.shape)).item)
            return pyramid(z, rng: nil).partial.map { Double(mse(z, $0).item) / norm }
        }
    }
}

// MARK: - Resizing

/// x (N, C, h, h) resized to (N, C, m, m): area averaging when shrinking (PyTorch's mode="area",
/// adaptive average pooling), bilinear when growing (half-pixel centres, align_corners=False); separable, as two products with an
/// (m, h) interpolation matrix, so gradients flow through it.
public func resize(_ x: Tensor, to m: Int) -> Tensor {
    precondition(x.rank == 4 && x.dim(2) == x.dim(3), "resize: x must be (N, C, h, h), got \(x.shape)")
    let h = x.dim(2)
    guard m != h else { return x }
    let r = Tensor(interpolationMatrix(from: h, to: m), shape: [m, h])
    let rows = matmul(x, r, transposeB: true)                                   // (N, C, h, m): along the width
    return matmul(rows.transposed(-2, -1), r, transposeB: true).transposed(-2, -1)   // (N, C, m, m)
}

/// The (m, n) matrix that resizes a length-n signal to length m as PyTorch's F.interpolate does:
/// mode "area" (adaptive average pooling) for m < n, "bilinear" with align_corners=False for m > n.
public func interpolationMatrix(from n: Int, to m: Int) -> [Float] {
    precondition(n > 0 && m > 0, "interpolationMatrix: sizes must be positive (\(n) → \(m))")
    var a = [Float](repeating: 0, count: m * n)
    if m == n {
        for i in 0..<n { a[i * n + i] = 1 }
    } else if m < n {
        // Adaptive average pooling (PyTorch's mode="area"): inputs ⌊i·n/m⌋ ..< ⌈(i+1)·n/m⌉, equally.
        for i in 0..<m {
            let lo = i * n / m, hi = ((i + 1) * n + m - 1) / m
            for j in lo..<hi { a[i * n + j] = 1 / Float(hi - lo) }
        }
    } else {
        let scale = Double(n) / Double(m)
        for i in 0..<m {
            let src = min(max((Double(i) + 0.5) * scale - 0.5, 0), Double(n - 1))
            let j0 = Int(src.rounded(.down)), j1 = min(j0 + 1, n - 1), w = src - Double(j0)
            a[i * n + j0] += Float(1 - w)
            a[i * n + j1] += Float(w)
        }
    }
    return a
}
