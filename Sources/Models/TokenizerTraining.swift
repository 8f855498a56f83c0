// A self-contained training loop for the image tokenizers (ImageVAE, VQTokenizer): AdamW with
// warmup + cosine decay, images generated on the fly by index, held-out PSNR (and code usage),
// a PNG grid of originals over reconstructions and an optional safetensors checkpoint.
// Not the recipe trainer (Sources/Training): no resume, no metrics files, no recipe parsing.
import Foundation
import Media
import NN
import Tensors

/// What the tokenizer training loop needs from a model.
public protocol ImageTokenizer: Module {
    associatedtype Config: Codable
    var config: Config { get }
    /// The scalar to back-propagate and its named parts (for logging) on images (N, C, H, W).
    func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)])
    /// Images (N, C, H, W) in [-1, 1] through the tokenizer and back.
    func reconstruct(_ images: Tensor) -> Tensor
}

extension ImageVAE: ImageTokenizer {
    public func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)]) {
        let l = loss(images, rng: rng)
        return (l.total, [("recon", l.reconstruction.item), ("kl", l.kl.item)])
    }
}

extension VQTokenizer: ImageTokenizer {
    public func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)]) {
        let l = loss(images, rng: rng)
        return (l.total, [("recon", l.reconstruction.item), ("codebook", l.codebook.item),
                          ("commit", l.commitment.item), ("active", Float(quantizer.recentlyUsedCodes(within: 1)))])
    }
}

/// Settings of `trainImageTokenizer`.
public struct TokenizerTrainingOptions: Codable, Equatable, Sendable {
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    public var warmupSteps: Int
    /// The cosine schedule ends at learningRate · minLRRatio.
    public var minLRRatio: Float
    public var weightDecay: Float
    /// Global gradient-norm clip (0 disables).
    public var gradClip: Float
    /// Seeds the model-side randomness (posterior samples, code restarts).
    public var seed: UInt64
    /// Print a log line every this many steps (0: never).
    public var logEvery: Int

    public init(steps: Int = 1000, batchSize: Int = 32, learningRate: Float = 2e-3, warmupSteps: Int = 50,
                minLRRatio: Float = 0.05, weightDecay: Float = 0, gradClip: Float = 1, seed: UInt64 = 0,
                logEvery: Int = 50) {
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.minLRRatio = minLRRatio
        self.weightDecay = weightDecay
        self.gradClip = gradClip
        self.seed = seed
        self.logEvery = logEvery
    }
}

/// Held-out reconstruction quality.
public struct TokenizerEvaluation: Sendable, CustomStringConvertible {
    public var images: Int
    /// Mean over images of each image's PSNR (dB).
    public var meanPSNR: Double
    /// PSNR of the mean squared error over all held-out pixels (dB; ≤ meanPSNR).
    public var pooledPSNR: Double
    /// Code usage over the held-out encodings (VQ only).
    public var usage: CodebookUsage?

    public var description: String {
        String(format: "PSNR %.2f dB (mean of %d images; pooled %.2f dB)", meanPSNR, images, pooledPSNR)
            + (usage.map { ", \($0)" } ?? "")
    }
}

public struct TokenizerTrainingReport: Sendable {
    public var steps: Int
    public var seconds: Double
    /// (step, total loss) every `logEvery` steps and at the end.
    public var losses: [(step: Int, loss: Float)]
    public var evaluation: TokenizerEvaluation
    /// The calibrated latent scale (VAE only).
    public var latentScale: Float?
}

/// Stacks images (all C×H×W) into (N, C, H, W) with values in [-1, 1].
public func imageBatch(_ images: [Image]) -> Tensor {
    precondition(!images.isEmpty, "imageBatch: no images")
    let first = images[0].toTensorCHW()
    let per = first.count
    let out = Tensor.empty([images.count] + first.shape)
    for (k, image) in images.enumerated() {
        let t = k == 0 ? first : image.toTensorCHW()
        precondition(t.shape == first.shape, "imageBatch: image \(k) is \(t.shape), expected \(first.shape)")
        withExtendedLifetime(t) { (out.data + k * per).update(from: t.data, count: per) }
    }
    return out
}

/// Reconstructs `images` in chunks (eval mode, no gradients) and returns them clamped to [-1, 1].
private func reconstructAll<M: ImageTokenizer>(_ model: M, _ images: Tensor, chunk: Int = 64) -> [Float] {
    var out: [Float] = []
    out.reserveCapacity(images.count)
    for lo in stride(from: 0, to: images.dim(0), by: chunk) {
        let hi = min(lo + chunk, images.dim(0))
        let part = withoutGrad { model.reconstruct(images.slice(axis: 0, lo..<hi)) }
        out += part.scalars.map { min(max($0, -1), 1) }
    }
    return out
}

/// PSNR (and code usage) of `model` on held-out images; restores the model's train mode.
public func evaluateImageTokenizer<M: ImageTokenizer>(_ model: M, heldOut: [Image]) -> TokenizerEvaluation {
    let wasTraining = model.isTraining
    model.eval()
    defer { model.train(wasTraining) }
    let x = imageBatch(heldOut)
    let recon = reconstructAll(model, x).map { ($0 + 1) / 2 }
    let reference = x.scalars.map { ($0 + 1) / 2 }
    let perImage = psnr(recon, reference, images: heldOut.count)
    let pooledMSE = zip(recon, reference).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) } / Double(recon.count)
    var usage: CodebookUsage? = nil
    if let vq = model as? VQTokenizer {
        let ids = (stride(from: 0, to: x.dim(0), by: 64).map { lo in
            vq.encode(x.slice(axis: 0, lo..<min(lo + 64, x.dim(0)))).intScalars
        }).flatMap { $0 }
        usage = CodebookUsage(ids: Tensor(ints: ids), codebookSize: vq.config.codebookSize)
    }
    return TokenizerEvaluation(images: heldOut.count, meanPSNR: perImage.reduce(0, +) / Double(perImage.count),
                               pooledPSNR: 10 * log10(1 / max(pooledMSE, 1e-12)), usage: usage)
}

/// Trains `model` on images `trainImage(i)` for i = 0, 1, 2, … (batch `s` holds indices
/// s·batchSize ..< (s+1)·batchSize, so a run is a pure function of its settings), evaluates it on
/// `heldOut`, calibrates a VAE's latent scale on the next training images, and optionally writes
/// `gridPath` (rows of originals over their reconstructions) and a checkpoint at
/// `checkpointPath` (safetensors with the JSON config under metadata key "config").
///
/// ```swift
/// let world = ShapesWorld(seed: 1), test = ShapesWorld(seed: 2)      // from the Data module
/// let vae = ImageVAE(.init(channels: 32), rng: RNG(seed: 0))
/// let report = try trainImageTokenizer(vae, trainImage: { Image(width: 32, height: 32, channels: 3,
///     pixels: world.example($0).pixels) }, heldOut: (0..<256).map { … test … },
///     options: .init(steps: 600), gridPath: "vae.png")
/// print(report.evaluation)   // "PSNR 31.2 dB (mean of 256 images; …)"
/// ```
@discardableResult
public func trainImageTokenizer<M: ImageTokenizer>(
    _ model: M, trainImage: (Int) -> Image, heldOut: [Image], options: TokenizerTrainingOptions,
    gridPath: String? = nil, checkpointPath: String? = nil, log: (String) -> Void = { print($0) }
) throws -> TokenizerTrainingReport {
    let rng = RNG(seed: options.seed)
    let optimizer = AdamW(model: model, lr: options.learningRate, weightDecay: options.weightDecay)
    let schedule = LRSchedule.make(peak: options.learningRate, warmup: options.warmupSteps, total: options.steps,
                                   decay: .cosine, minRatio: options.minLRRatio)
    let params = model.parameters()
    func batch(_ s: Int) -> Tensor {
        imageBatch((0..<options.batchSize).map { trainImage(s * options.batchSize + $0) })
    }
    model.train()
    var losses: [(step: Int, loss: Float)] = []
    let start = Date()
    for step in 0..<options.steps {
        let x = batch(step)
        let (total, parts) = model.trainingLoss(x, rng: rng)
        model.zeroGrad()
        total.backward()
        let norm = options.gradClip > 0 ? clipGradNorm(params, maxNorm: options.gradClip) : 0
        optimizer.lr = schedule(step)
        optimizer.update()
        let last = step == options.steps - 1
        if options.logEvery > 0 && (step % options.logEvery == 0 || last) {
            losses.append((step, total.item))
            let partText = parts.map { String(format: "%@ %.4g", $0.0, $0.1) }.joined(separator: " ")
            log(String(format: "step %5d  loss %.5f  %@  lr %.2e  grad %.3f  %.1fs", step, total.item, partText,
                       optimizer.lr, norm, Date().timeIntervalSince(start)))
        }
    }
    let seconds = Date().timeIntervalSince(start)

    var latentScale: Float? = nil
    if let vae = model as? ImageVAE {
        let calib = (0..<4).map { batch(options.steps + $0) }
        latentScale = vae.calibrateLatentScale(concat(calib, axis: 0))
    }
    let evaluation = evaluateImageTokenizer(model, heldOut: heldOut)
    log("held-out: \(evaluation)" + (latentScale.map { String(format: ", latent scale %.4f", $0) } ?? ""))

    if let gridPath {
        let shown = Array(heldOut.prefix(16))
        let recon = reconstructAll(model, imageBatch(shown))
        let per = recon.count / shown.count
        let decoded = (0..<shown.count).map { k in
            Image(chw: Tensor(Array(recon[(k * per)..<((k + 1) * per)]), shape: shown[k].toTensorCHW().shape))
        }
        var cells: [Image] = []
        for lo in stride(from: 0, to: shown.count, by: 8) {
            let hi = min(lo + 8, shown.count)
            cells += shown[lo..<hi] + decoded[lo..<hi]
        }
        try PNG.write(Image.grid(cells, columns: min(8, shown.count), padding: 2, background: 0.5), to: gridPath)
    }
    if let checkpointPath { try model.save(to: checkpointPath) }
    return TokenizerTrainingReport(steps: options.steps, seconds: seconds, losses: losses, evaluation: evaluation,
                                   latentScale: latentScale)
}
