// The image tokenizer task (model.kind vae, vq or msvq): trains an ImageVAE, a VQTokenizer or a
// MultiScaleVQTokenizer on
// ShapesWorld (or a folder's images), evaluates held-out PSNR and code usage, writes grids of
// originals over reconstructions, and exports runs/<name>/tokenizer.safetensors at each checkpoint.
// Not the models (Models/) nor the recipe section (RecipeTokenizer.swift).
import Collective
import Data
import Foundation
import Media
import Training
import NN
import Tensors

/// Trains the image tokenizer a recipe describes.
///
/// Micro-batch i holds images i·B ..< (i+1)·B of the training stream (ShapesWorld with the recipe
/// seed, or the folder's training images in a fixed shuffled order, cycled), so a run and its
/// resume see the same data. Held-out images are `eval.batches · train.batch_size` images from a
/// ShapesWorld with another seed (or the folder's last images, at most a tenth of them).
///
/// The exported tokenizer holds the trained weights, not `train.ema_decay`'s average (which only
/// the run's checkpoints keep). A VQ run's per-code idle counters are not checkpointed, so a
/// resumed VQ run restarts dead codes a little later than an uninterrupted one would. Both train
/// data-parallel under mpirun.
///
/// ```sh
/// fusion train recipes/vae-shapes.yaml     # → runs/vae-shapes/tokenizer.safetensors
/// ```
public final class ImageTokenizerTask: TrainingTask {
    /// The ImageVAE, VQTokenizer or MultiScaleVQTokenizer being trained.
    public let tokenizer: any ImageTokenizer
    public var model: Module { tokenizer }
    public let flopsPerMicroBatch: Double
    /// Held-out images (N, C, H, W) in [-1, 1].
    public let heldOut: Tensor
    let recipe: Recipe
    let trainImage: (Int) -> Image
    let sampleImages: [Image]

    /// What `checkpointConfig` writes: the kind and the model config.
    struct Config<C: Codable>: Codable {
        var kind: String
        var config: C
    }

    /// The file name of the exported tokenizer inside the run folder.
    public static let fileName = "tokenizer.safetensors"

    public init(recipe: Recipe) throws {
        self.recipe = recipe
        let d = recipe.data, size = d.imageSize
        let evalCount = max(recipe.eval.batches, 1) * recipe.train.batchSize
        var held: [Image]
        switch d.source {
        case .folder:
            guard let path = d.path else { throw RunError.io("data.path", "a folder source needs data.path") }
            // The split every family uses (FolderImageCaptions), so a tokenizer trained on a folder
            // never sees the images the models trained on it are scored on.
            let folder = try FolderDataset(folder: path, imageSize: size)
            let isHeld = folder.imagePairs.map { FolderImageCaptions.isHeldOut($0.fileName, fraction: Double(d.heldOut)) }
            let heldRows = zip(folder.imagePairs, isHeld).filter(\.1).map(\.0).prefix(evalCount)
            let trainRows = zip(folder.imagePairs, isHeld).filter { !$0.1 }.map(\.0)
            guard !trainRows.isEmpty, !heldRows.isEmpty else {
                throw RunError.io(path, "a tokenizer needs training and held-out images: of its \(folder.imagePairs.count) .png rows "
                                  + "\(heldRows.count) are held out (data.held_out \(d.heldOut), by file-name hash); "
                                  + (heldRows.isEmpty ? "add images or raise data.held_out" : "lower data.held_out"))
            }
            let train = try trainRows.map { try folder.image(named: $0.fileName) }
            held = try heldRows.map { try folder.image(named: $0.fileName) }
            var order = Array(train.indices), rng = SplitMix64(seed: recipe.seed, stream: 0x7015, index: 0)
            rng.shuffle(&order)
            trainImage = { train[order[$0 % order.count]] }
        case .shapes:
            guard size >= 24 else { throw RunError.io("data.image_size", "ShapesWorld images need at least 24 pixels a side, got \(size)") }
            let world = ShapesWorld(seed: recipe.seed, imageSize: size)
            trainImage = { Self.image(world, $0) }
            held = Self.shapesHeldOut(seed: recipe.seed, count: evalCount, imageSize: size)
        default:
            throw RunError.io("data.source", "model.kind \(recipe.model.kind) trains on images: use data.source shapes or folder")
        }
        heldOut = imageBatch(held)
        sampleImages = Array(held.prefix(16))

        let t = recipe.tokenizer
        guard size % t.downsample == 0 else {
            throw RunError.io("data.image_size", "\(size) is not a multiple of tokenizer.downsample \(t.downsample)")
        }
        let rng = RNG(seed: recipe.seed).split(0x70CE)
        switch recipe.model.kind {
        case .vae: tokenizer = ImageVAE(t.vaeConfig(), rng: rng)
        case .vq: tokenizer = VQTokenizer(t.vqConfig(), rng: rng)
        case .msvq:
            let config = t.msvqConfig(imageSize: size), grid = size / t.downsample
            if let problem = config.problem ?? (config.scales.last == grid ? nil
                : "the last scale must be the full \(grid)×\(grid) code grid (image_size / downsample), got \(config.scales.last!)") {
                throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "tokenizer.scales", message: problem)
            }
            tokenizer = MultiScaleVQTokenizer(config, rng: rng)
        default: preconditionFailure("ImageTokenizerTask: model.kind \(recipe.model.kind) is not a tokenizer")
        }
        tokenizer.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        flopsPerMicroBatch = 3 * Double(recipe.train.batchSize) * tokenizer.forwardFlops(height: size, width: size)
    }

    /// Image `index` of a ShapesWorld.
    static func image(_ world: ShapesWorld, _ index: Int) -> Image {
        let size = world.imageSize
        return Image(width: size, height: size, channels: 3, pixels: world.scene(index).render(imageSize: size))
    }

    /// The held-out ShapesWorld images of a run with recipe seed `seed` (a world of its own seed):
    /// what eval_psnr is measured on, and what `fusion vae eval` measures a tokenizer file on.
    public static func shapesHeldOut(seed: UInt64, count: Int, imageSize: Int = 32) -> [Image] {
        let test = ShapesWorld(seed: seed &+ 0x5EED_0F_E7A1, imageSize: imageSize)
        return (0..<count).map { image(test, $0) }
    }

    /// Latent (or code) positions per image: what `LossResult.tokens` counts (a pyramid's codes
    /// at every scale).
    var positionsPerImage: Int {
        if let msvq = tokenizer as? MultiScaleVQTokenizer { return msvq.config.tokensPerImage }
        let f = recipe.tokenizer.downsample, s = recipe.data.imageSize
        return (s / f) * (s / f)
    }

    /// Training images i·B ..< (i+1)·B as (B, C, H, W).
    func batch(_ index: Int) -> Tensor { batch(index, rows: 0..<recipe.train.batchSize) }

    /// Rows `rows` of training micro-batch `index` as (rows, C, H, W).
    func batch(_ index: Int, rows: Range<Int>) -> Tensor {
        let b = recipe.train.batchSize
        return imageBatch(rows.map { trainImage(index * b + $0) })
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        try loss(microBatch: index, rows: 0..<recipe.train.batchSize, rng: rng)
    }

    /// Rows `rows` of micro-batch `index`: one rank's share under data parallelism. A VAE row's
    /// reparameterisation noise is drawn from `rng.split(row)`, so a row's terms are the same
    /// whichever rank computes it, and the VAE's means (pixel loss, KL) weight by rows. A VQ
    /// tokenizer's quantiser updates batch statistics in the forward pass (the EMA codebook's
    /// counts and sums, dead-code restarts drawn from the batch): it splits only in a
    /// data-parallel run, where it sums them over the ranks (``joinDataParallel(rows:batchRows:communicator:)``);
    /// a multi-scale one does not split.
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        let images = batch(index, rows: rows)
        let total: Tensor, parts: [(String, Float)]
        if let vae = tokenizer as? ImageVAE {
            let latent = [1] + vae.latentShape(height: images.dim(2), width: images.dim(3))
            let noise = concat(rows.map { rng.split(UInt64($0)).normal(latent) }, axis: 0)
            let l = vae.loss(images, noise: noise)
            (total, parts) = (l.total, [("recon", l.reconstruction.item), ("kl", l.kl.item)])
        } else {
            let shared = (tokenizer as? VQTokenizer)?.quantizer.batchShare
            guard rows == 0..<recipe.train.batchSize || shared?.rows == rows else {
                throw DataParallelError.notShardable("a VQ tokenizer outside a data-parallel run (its quantiser's EMA codebook and dead-code restarts need the whole batch's statistics)")
            }
            (total, parts) = tokenizer.trainingLoss(images, rng: rng)
        }
        return LossResult(total: total, parts: Dictionary(uniqueKeysWithValues: parts), tokens: rows.count * positionsPerImage,
                          examples: rows.count, meanOver: rows.count)
    }

    /// A VQ quantiser sums its batch statistics over the ranks; a VAE needs nothing.
    public func joinDataParallel(rows: Range<Int>, batchRows: Int, communicator: Communicator) {
        guard let vq = tokenizer as? VQTokenizer else { return }
        vq.quantizer.batchShare = VectorQuantizer.BatchShare(rows: rows, batchRows: batchRows) { communicator.allreduceSum(&$0) }
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let vae = tokenizer as? ImageVAE { return try enc.encode(Config(kind: "vae", config: vae.config)) }
        if let msvq = tokenizer as? MultiScaleVQTokenizer { return try enc.encode(Config(kind: "msvq", config: msvq.config)) }
        return try enc.encode(Config(kind: "vq", config: (tokenizer as! VQTokenizer).config))
    }

    /// Held-out psnr and psnr_pooled (dB); for VQ also code_usage (%) and perplexity.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        evaluateImageTokenizer(tokenizer, heldOut: heldOut).metrics
    }

    /// samples/step-N.png: 16 held-out images, rows of originals over their reconstructions.
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        let url = dir.appendingPathComponent(String(format: "step-%08d.png", step))
        try PNG.write(reconstructionGrid(tokenizer, images: sampleImages), to: url.path)
        return "samples @\(step): \(url.path)"
    }

    /// Exports runs/<name>/tokenizer.safetensors, a VAE with its latent scale calibrated first.
    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        try exportTokenizer(to: run.url.appendingPathComponent(Self.fileName).path, step: step)
    }

    /// Writes the tokenizer (weights + JSON config) to `path`. A VAE's latent scale is set first
    /// from 256 training images (posterior means), so its latents have unit variance.
    public func exportTokenizer(to path: String, step: Int) throws {
        if let vae = tokenizer as? ImageVAE {
            vae.inferring {
                let b = recipe.train.batchSize
                let images = (0..<max(1, 256 / b)).map { batch($0) }            // (B, C, H, W) each
                vae.calibrateLatentScale(concat(images, axis: 0))
            }
        }
        try tokenizer.save(to: path, metadata: ["step": String(step), "recipe": recipe.name])
    }
}
