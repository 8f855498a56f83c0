// VQTokenizer: the discrete image tokenizer of the Chameleon baseline — the ImageVAE backbone
// with a vector quantiser between encoder and decoder (VQ-VAE). Not VQGAN: no adversarial or
// perceptual loss. Legend: N images, C image channels, H×W pixels, D code dimension,
// h×w = H/f × W/f code grid, K codebook size.
import Foundation
import NN
import Tensors

/// A vector-quantised autoencoder's loss terms and the batch's codes (`Codes`: the code ids
/// (N, h, w), or one map per scale for the multi-scale tokenizer).
public struct QuantizedLoss<Codes> {
    /// reconstruction + codebook + β·commitment: what to back-propagate.
    public var total: Tensor
    public var reconstruction: Tensor
    public var codebook: Tensor
    public var commitment: Tensor
    public var ids: Codes
}

/// Images (N, C, H, W) in [-1, 1] ↔ code ids (N, H/f, W/f) in 0..<K.
///
/// ```swift
/// let vq = VQTokenizer(.init(channels: 32, codebookSize: 512, codeDim: 8), rng: RNG(seed: 0))
/// let l = vq.loss(images, rng: rng)        // train on l.total
/// let ids = vq.encode(images)              // Int32 (N, H/4, W/4)
/// let back = vq.decode(ids)                // (N, 3, H, W)
/// print(vq.codebookUsage(images))          // "412/512 codes used (80.5%), perplexity 301.2"
/// ```
public final class VQTokenizer: Module {
    public struct Config: Codable, Equatable, Sendable {
        /// Width of the first level; level i has `channels · channelMultipliers[i]`.
        public var channels: Int
        /// One multiplier per level (log2(downsample / patchSize) + 1 of them); nil: [1, 2, 2, …].
        public var channelMultipliers: [Int]?
        /// p: the encoder folds p×p pixel patches into channels before its first conv and the
        /// decoder unfolds them after its last (1: plain full-resolution convs).
        public var patchSize: Int
        /// f, the spatial downsampling factor (a power of two; 4 or 8 for images).
        public var downsample: Int
        public var groups: Int
        /// K, the number of codes (the image vocabulary of the token model).
        public var codebookSize: Int
        /// D, the dimension of each code vector.
        public var codeDim: Int
        /// β, the commitment loss weight (0.25 in VQ-VAE).
        public var commitmentWeight: Float
        /// Update the codebook by exponential moving averages instead of the codebook loss.
        public var ema: Bool
        public var emaDecay: Float
        /// Restart codes unused for this many training steps (0 disables restarts).
        public var restartAfterSteps: Int
        public var reconstruction: ReconstructionLoss
        public var imageChannels: Int

        public init(channels: Int = 64, channelMultipliers: [Int]? = nil, patchSize: Int = 1, downsample: Int = 4,
                    groups: Int = 8,
                    codebookSize: Int = 512, codeDim: Int = 8, commitmentWeight: Float = 0.25, ema: Bool = false,
                    emaDecay: Float = 0.99, restartAfterSteps: Int = 32, reconstruction: ReconstructionLoss = .l1,
                    imageChannels: Int = 3) {
            self.channels = channels
            self.channelMultipliers = channelMultipliers
            self.patchSize = patchSize
            self.downsample = downsample
            self.groups = groups
            self.codebookSize = codebookSize
            self.codeDim = codeDim
            self.commitmentWeight = commitmentWeight
            self.ema = ema
            self.emaDecay = emaDecay
            self.restartAfterSteps = restartAfterSteps
            self.reconstruction = reconstruction
            self.imageChannels = imageChannels
        }

        public var widths: [Int] {
            backboneWidths(channels: channels, downsample: downsample, patchSize: patchSize,
                           multipliers: channelMultipliers)
        }
    }

    public let config: Config
    public let encoder: ConvEncoder
    public let quantizer: VectorQuantizer
    public let decoder: ConvDecoder

    public init(_ config: Config = Config(), rng: RNG) {
        let widths = config.widths
        self.config = config
        encoder = ConvEncoder(imageChannels: config.imageChannels, widths: widths, outChannels: config.codeDim,
                              groups: config.groups, patchSize: config.patchSize, rng: rng)
        quantizer = VectorQuantizer(codes: config.codebookSize, dim: config.codeDim, beta: config.commitmentWeight,
                                    ema: config.ema, emaDecay: config.emaDecay,
                                    restartAfterSteps: config.restartAfterSteps, rng: rng)
        decoder = ConvDecoder(inChannels: config.codeDim, widths: widths, imageChannels: config.imageChannels,
                              groups: config.groups, patchSize: config.patchSize, rng: rng)
    }

    /// The code grid's shape for images of `height` × `width`: [h, w].
    public func gridShape(height: Int, width: Int) -> [Int] {
        precondition(height % config.downsample == 0 && width % config.downsample == 0,
                     "VQTokenizer: \(height)×\(width) images do not divide by the downsampling \(config.downsample)")
        return [height / config.downsample, width / config.downsample]
    }

    // MARK: - Encode / decode

    /// Images (N, C, H, W) in [-1, 1] → code ids, Int32 (N, H/f, W/f).
    public func encode(_ images: Tensor) -> Tensor {
        _ = gridShape(height: images.dim(2), width: images.dim(3))
        return withoutGrad {
            let z = encoder(images)                                             // (N, D, h, w)
            let (n, d, h, w) = (z.dim(0), z.dim(1), z.dim(2), z.dim(3))
            let flat = z.permuted([0, 2, 3, 1]).reshaped([n * h * w, d])        // (M, D)
            return quantizer.nearestCodes(flat).reshaped([n, h, w])
        }
    }

    /// Code ids (N, h, w) → images (N, C, h·f, w·f), nominally in [-1, 1] (unclamped).
    public func decode(_ ids: Tensor) -> Tensor {
        precondition(ids.rank == 3 && ids.dtype == .int32,
                     "VQTokenizer.decode: ids must be Int32 (N, h, w), got \(ids.shape)")
        let zq = quantizer.lookup(ids).permuted([0, 3, 1, 2])                   // (N, D, h, w)
        return decoder(zq)
    }

    /// decode(encode(images)).
    public func reconstruct(_ images: Tensor) -> Tensor { decode(encode(images)) }

    // MARK: - Loss

    public typealias Loss = QuantizedLoss<Tensor>

    /// The VQ-VAE loss of a batch (eq. 3 of van den Oord et al.): reconstruction through the
    /// straight-through quantiser, codebook loss ‖sg(z_e) − z_q‖² (absent with EMA) and β·‖z_e −
    /// sg(z_q)‖². In training mode it also advances the quantiser's state (EMA, restarts).
    public func loss(_ images: Tensor, rng: RNG) -> Loss {
        let z = encoder(images)                                                 // (N, D, h, w)
        let q = quantizer(z, rng: rng)
        let recon = config.reconstruction(decoder(q.quantized), images)
        return Loss(total: recon + q.loss, reconstruction: recon, codebook: q.codebookLoss,
                    commitment: q.commitmentLoss, ids: q.ids)
    }

    // MARK: - Usage

    /// How many codes the encodings of `images` use, and the codebook perplexity.
    public func codebookUsage(_ images: Tensor) -> CodebookUsage {
        CodebookUsage(ids: encode(images), codebookSize: config.codebookSize)
    }
}
