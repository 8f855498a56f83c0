// ImageVAE: the continuous image tokenizer of Transfusion — a KL-regularised convolutional
// autoencoder (LDM's AutoencoderKL, shrunk) whose latents are scaled to unit variance for
// diffusion. Not adversarial or perceptual: trained with an L1/MSE pixel loss and a small KL.
// Legend: N images, C image channels, H×W pixels, L latent channels, h×w = H/f × W/f.
import Foundation
import NN
import Tensors

/// A variational autoencoder from images (N, C, H, W) in [-1, 1] to latents (N, L, H/f, W/f).
///
/// ```swift
/// let vae = ImageVAE(.init(channels: 32, latentChannels: 8, downsample: 4), rng: RNG(seed: 0))
/// let (total, recon, kl) = vae.loss(images, rng: rng)   // train on `total`
/// vae.calibrateLatentScale(images)                      // after training: unit-variance latents
/// let z = vae.encode(images)                            // (N, 8, H/4, W/4)
/// let back = vae.decode(z)                              // (N, 3, H, W)
/// ```
public final class ImageVAE: Module {
    public struct Config: Codable, Equatable, Sendable {
        /// Width of the first level; level i has `channels · channelMultipliers[i]`.
        public var channels: Int
        /// One multiplier per level (log2(downsample / patchSize) + 1 of them); nil: [1, 2, 2, …].
        public var channelMultipliers: [Int]?
        /// p: the encoder folds p×p pixel patches into channels before its first conv and the
        /// decoder unfolds them after its last (1: plain full-resolution convs).
        public var patchSize: Int
        /// L, the channels of the latent grid.
        public var latentChannels: Int
        /// f, the spatial downsampling factor (a power of two; 4 or 8 for images).
        public var downsample: Int
        /// GroupNorm groups in every ResBlock (must divide every width).
        public var groups: Int
        /// β of the loss: total = reconstruction + β·KL, both means over elements.
        public var klWeight: Float
        public var reconstruction: ReconstructionLoss
        public var imageChannels: Int
        /// Latents are multiplied by this in `encode` and divided in `decode`; set from data by
        /// `calibrateLatentScale` (diffusers calls it `scaling_factor`) and saved with the config.
        public var latentScale: Float

        public init(channels: Int = 64, channelMultipliers: [Int]? = nil, patchSize: Int = 1, latentChannels: Int = 8,
                    downsample: Int = 4, groups: Int = 8, klWeight: Float = 1e-4,
                    reconstruction: ReconstructionLoss = .l1, imageChannels: Int = 3, latentScale: Float = 1) {
            self.channels = channels
            self.channelMultipliers = channelMultipliers
            self.patchSize = patchSize
            self.latentChannels = latentChannels
            self.downsample = downsample
            self.groups = groups
            self.klWeight = klWeight
            self.reconstruction = reconstruction
            self.imageChannels = imageChannels
            self.latentScale = latentScale
        }

        /// Widths of the resolution levels, full resolution first.
        public var widths: [Int] {
            backboneWidths(channels: channels, downsample: downsample, patchSize: patchSize,
                           multipliers: channelMultipliers)
        }
    }

    /// The architecture and the calibrated latent scale.
    public private(set) var config: Config
    public let encoder: ConvEncoder
    public let decoder: ConvDecoder

    public init(_ config: Config = Config(), rng: RNG) {
        precondition(config.latentChannels > 0 && config.klWeight >= 0 && config.latentScale > 0,
                     "ImageVAE: latentChannels, klWeight and latentScale must be positive")
        let widths = config.widths
        self.config = config
        encoder = ConvEncoder(imageChannels: config.imageChannels, widths: widths,
                              outChannels: 2 * config.latentChannels, groups: config.groups,
                              patchSize: config.patchSize, rng: rng)
        decoder = ConvDecoder(inChannels: config.latentChannels, widths: widths,
                              imageChannels: config.imageChannels, groups: config.groups,
                              patchSize: config.patchSize, rng: rng)
        // The posterior starts narrow, so the decoder sees the means through little noise from the
        // first step (with log σ² ≈ 0, Adam moves the bias ~lr per step: thousands of CPU steps).
        if let bias = encoder.convOut.bias {
            for c in config.latentChannels..<(2 * config.latentChannels) { bias.data[c] = Self.initialLogVariance }
        }
    }

    /// The encoder's initial log-variance bias: σ ≈ 0.05.
    public static let initialLogVariance: Float = -6

    public var latentScale: Float { config.latentScale }

    /// The latent grid's shape for images of `height` × `width`: [L, h, w].
    public func latentShape(height: Int, width: Int) -> [Int] {
        precondition(height % config.downsample == 0 && width % config.downsample == 0,
                     "ImageVAE: \(height)×\(width) images do not divide by the downsampling \(config.downsample)")
        return [config.latentChannels, height / config.downsample, width / config.downsample]
    }

    // MARK: - Posterior

    /// The diagonal Gaussian posterior of unscaled latents: mean and log-variance, each (N, L, h, w).
    public func posterior(_ images: Tensor) -> (mean: Tensor, logvar: Tensor) {
        _ = latentShape(height: images.dim(2), width: images.dim(3))
        let moments = encoder(images)                                               // (N, 2L, h, w)
        let parts = moments.split(axis: 1, sizes: [config.latentChannels, config.latentChannels])
        return (parts[0], parts[1].clamped(min: -30))                              // (N, L, h, w) each
    }

    /// z = μ + σ·ε with ε ~ N(0, I), σ = exp(logvar / 2) (the reparameterisation trick).
    public func sample(mean: Tensor, logvar: Tensor, rng: RNG) -> Tensor {
        mean + (logvar * 0.5).exp() * rng.normal(mean.shape)
    }

    // MARK: - Encode / decode

    /// Images (N, C, H, W) in [-1, 1] → scaled latents (N, L, H/f, W/f): the posterior mean, or a
    /// posterior sample when `rng` is given, times `latentScale`.
    public func encode(_ images: Tensor, rng: RNG? = nil) -> Tensor {
        let (mean, logvar) = posterior(images)
        let z = rng.map { sample(mean: mean, logvar: logvar, rng: $0) } ?? mean
        return z * config.latentScale
    }

    /// Scaled latents (N, L, h, w) → images (N, C, h·f, w·f), nominally in [-1, 1] (unclamped).
    public func decode(_ latents: Tensor) -> Tensor {
        precondition(latents.rank == 4 && latents.dim(1) == config.latentChannels,
                     "ImageVAE.decode: latents must be (N, \(config.latentChannels), h, w), got \(latents.shape)")
        return decoder(latents * (1 / config.latentScale))
    }

    /// decode(encode(images)) through the posterior mean.
    public func reconstruct(_ images: Tensor) -> Tensor { decode(encode(images)) }

    // MARK: - Loss

    /// total = reconstruction(decode(z), images) + β·KL(q(z|x) ‖ N(0, I)), with z a posterior
    /// sample; the KL is 0.5·mean(μ² + σ² − 1 − log σ²) over latent elements. The latent scale
    /// plays no part (training sees unscaled latents).
    public func loss(_ images: Tensor, rng: RNG) -> (total: Tensor, reconstruction: Tensor, kl: Tensor) {
        let shape = [images.dim(0)] + latentShape(height: images.dim(2), width: images.dim(3))
        return loss(images, noise: rng.normal(shape))
    }

    /// The loss with the reparameterisation noise ε (N, L, h, w) given: z = μ + σ·ε.
    public func loss(_ images: Tensor, noise: Tensor) -> (total: Tensor, reconstruction: Tensor, kl: Tensor) {
        let (mean, logvar) = posterior(images)
        precondition(noise.shape == mean.shape, "ImageVAE.loss: noise \(noise.shape) for latents \(mean.shape)")
        let z = mean + (logvar * 0.5).exp() * noise
        let recon = config.reconstruction(decoder(z), images)
        let kl = ((mean.square() + logvar.exp() - logvar) - 1).mean() * 0.5
        return (recon + kl * config.klWeight, recon, kl)
    }

    // MARK: - Latent scale

    /// Sets `latentScale` to 1/std of the unscaled latents of `images` (posterior means, or
    /// samples when `rng` is given, matching how `encode` will be called), so encoded latents
    /// have unit variance. Returns the new scale. Runs without recording gradients. Without `rng`
    /// the images are encoded `chunk` at a time, so calibrating on many images needs one chunk's
    /// activations, with the same sums as one pass.
    @discardableResult
    public func calibrateLatentScale(_ images: Tensor, rng: RNG? = nil, chunk: Int = 64) -> Float {
        let std = withoutGrad { () -> Double in
            if let rng {
                let (mean, logvar) = posterior(images)
                return standardDeviation(sample(mean: mean, logvar: logvar, rng: rng))
            }
            var moments = RunningMoments()
            let chunk = max(chunk, 1)
            for lo in stride(from: 0, to: images.dim(0), by: chunk) {
                moments.add(posterior(images.slice(axis: 0, lo..<min(lo + chunk, images.dim(0)))).mean)
            }
            return moments.standardDeviation
        }
        precondition(std > 0 && std.isFinite, "ImageVAE.calibrateLatentScale: latents have std \(std)")
        config.latentScale = Float(1 / std)
        return config.latentScale
    }
}

/// The standard deviation of all elements of `x`, in Double.
func standardDeviation(_ x: Tensor) -> Double {
    var moments = RunningMoments()
    moments.add(x)
    return moments.standardDeviation
}

/// Sums of values and squares in Double, added tensor by tensor in element order.
struct RunningMoments {
    var n = 0, s = 0.0, s2 = 0.0

    mutating func add(_ x: Tensor) {
        let p = x.data
        for i in 0..<x.count { let v = Double(p[i]); s += v; s2 += v * v }
        n += x.count
    }

    var standardDeviation: Double {
        let m = s / Double(max(n, 1))
        return max(s2 / Double(max(n, 1)) - m * m, 0).squareRoot()
    }
}
