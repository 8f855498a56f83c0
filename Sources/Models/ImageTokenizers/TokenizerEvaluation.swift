// What the image tokenizers (ImageVAE, VQTokenizer) share for training and inspection: the
// `ImageTokenizer` protocol (loss with named parts, reconstruction, FLOPs), image batching,
// held-out PSNR and code usage, and the originals-over-reconstructions grid. Not a training loop:
// the recipe trainer runs tokenizers through ImageTokenizerTask (Sources/Training).
import Foundation
import Media
import NN
import Tensors

/// What training, evaluation and checkpointing need from an image tokenizer.
public protocol ImageTokenizer: Module {
    associatedtype Config: Codable
    var config: Config { get }
    /// The scalar to back-propagate and its named parts (for logging) on images (N, C, H, W).
    func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)])
    /// Images (N, C, H, W) in [-1, 1] through the tokenizer and back.
    func reconstruct(_ images: Tensor) -> Tensor
    /// Forward FLOPs of encoding and decoding one H×W image (convolutions only).
    func forwardFlops(height: Int, width: Int) -> Double
    /// What makes `config` unbuildable (for configs read from files), or nil.
    static func problem(_ config: Config) -> String?
}

extension ImageVAE: ImageTokenizer {
    /// Parts: "recon" (pixel loss) and "kl" (unweighted KL per latent element).
    public func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)]) {
        let l = loss(images, rng: rng)
        return (l.total, [("recon", l.reconstruction.item), ("kl", l.kl.item)])
    }

    public func forwardFlops(height: Int, width: Int) -> Double {
        encoder.forwardFlops(height: height, width: width) + decoder.forwardFlops(height: height, width: width)
    }
}

extension VQTokenizer: ImageTokenizer {
    /// Parts: "recon", "codebook", "commit" (unweighted) and "active_codes" (codes chosen in this
    /// batch; in a data-parallel run, in the whole batch the ranks share).
    public func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)]) {
        let l = loss(images, rng: rng)
        let active = quantizer.batchShare != nil && isTraining ? quantizer.activeCodes
            : CodebookUsage(ids: l.ids, codebookSize: config.codebookSize).used
        return (l.total, [("recon", l.reconstruction.item), ("codebook", l.codebook.item),
                          ("commit", l.commitment.item), ("active_codes", Float(active))])
    }

    public func forwardFlops(height: Int, width: Int) -> Double {
        let grid = gridShape(height: height, width: width)
        let search = 2 * Double(grid[0] * grid[1] * config.codebookSize * config.codeDim)
        return encoder.forwardFlops(height: height, width: width) + search
            + decoder.forwardFlops(height: height, width: width)
    }
}

extension MultiScaleVQTokenizer: ImageTokenizer {
    /// Parts as the VQTokenizer's: "recon", "codebook", "commit" (unweighted) and "active_codes"
    /// (codes chosen in this batch, at any scale).
    public func trainingLoss(_ images: Tensor, rng: RNG) -> (total: Tensor, parts: [(String, Float)]) {
        let l = loss(images, rng: rng)
        let active = CodebookUsage(ids: Tensor(ints: l.ids.flatMap(\.intScalars)), codebookSize: config.base.codebookSize).used
        return (l.total, [("recon", l.reconstruction.item), ("codebook", l.codebook.item),
                          ("commit", l.commitment.item), ("active_codes", Float(active))])
    }

    /// The VQ backbone's convolutions and a nearest-code search at every scale (the resizes are
    /// small products, left out).
    public func forwardFlops(height: Int, width: Int) -> Double {
        let search = 2 * Double(config.tokensPerImage * config.base.codebookSize * config.base.codeDim)
        return encoder.forwardFlops(height: height, width: width) + search + decoder.forwardFlops(height: height, width: width)
    }

    public static func problem(_ c: Config) -> String? { VQTokenizer.problem(c.base) ?? c.problem }
}

// MARK: - Batches

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

/// Reconstructs `images` (N, C, H, W) in chunks without recording gradients, clamped to [-1, 1].
/// The model's train/eval mode is left as it is.
public func reconstructImages<M: ImageTokenizer>(_ model: M, _ images: Tensor, chunk: Int = 64) -> Tensor {
    var out: [Float] = []
    out.reserveCapacity(images.count)
    for lo in stride(from: 0, to: images.dim(0), by: chunk) {
        let hi = min(lo + chunk, images.dim(0))
        let part = withoutGrad { model.reconstruct(images.slice(axis: 0, lo..<hi)) }   // (n, C, H, W)
        out += part.scalars.map { min(max($0, -1), 1) }
    }
    return Tensor(out, shape: images.shape)
}

// MARK: - Evaluation

/// Held-out reconstruction quality.
public struct TokenizerEvaluation: Sendable, CustomStringConvertible {
    public var images: Int
    /// Mean over images of each image's PSNR (dB).
    public var meanPSNR: Double
    /// PSNR of the mean squared error over all held-out pixels (dB; ≤ meanPSNR).
    public var pooledPSNR: Double
    /// Code usage over the held-out encodings (VQ and multi-scale VQ: every scale's codes).
    public var usage: CodebookUsage?

    public var description: String {
        String(format: "PSNR %.2f dB (mean of %d images; pooled %.2f dB)", meanPSNR, images, pooledPSNR)
            + (usage.map { ", \($0)" } ?? "")
    }

    /// The figures as metrics: psnr, psnr_pooled, and for VQ code_usage (percent) and perplexity.
    public var metrics: [String: Double] {
        var m = ["psnr": meanPSNR, "psnr_pooled": pooledPSNR]
        if let usage { m["code_usage"] = 100 * usage.fraction; m["perplexity"] = usage.perplexity }
        return m
    }
}

/// PSNR (and code usage) of `model` on held-out images (N, C, H, W) in [-1, 1], in eval mode;
/// restores the model's train mode.
///
/// ```swift
/// let e = evaluateImageTokenizer(vae, heldOut: imageBatch(testImages))
/// print(e)   // "PSNR 31.2 dB (mean of 256 images; pooled 30.4 dB)"
/// ```
public func evaluateImageTokenizer<M: ImageTokenizer>(_ model: M, heldOut x: Tensor) -> TokenizerEvaluation {
    return model.inferring {
        let n = x.dim(0)
        let recon = reconstructImages(model, x).scalars.map { ($0 + 1) / 2 }
        let reference = x.scalars.map { ($0 + 1) / 2 }
        let perImage = psnr(recon, reference, images: n)
        var se = 0.0
        for i in recon.indices { let d = Double(recon[i] - reference[i]); se += d * d }
        let pooledMSE = se / Double(recon.count)
        // Every code id of the held-out images, encoded 64 at a time by `encode`.
        func codes(_ encode: (Tensor) -> [Int32]) -> Tensor {
            Tensor(ints: stride(from: 0, to: n, by: 64).flatMap { lo in encode(x.slice(axis: 0, lo..<min(lo + 64, n))) })
        }
        var usage: CodebookUsage? = nil
        if let vq = model as? VQTokenizer {
            usage = CodebookUsage(ids: codes { vq.encode($0).intScalars }, codebookSize: vq.config.codebookSize)
        } else if let msvq = model as? MultiScaleVQTokenizer {
            usage = CodebookUsage(ids: codes { msvq.encode($0).flatMap(\.intScalars) }, codebookSize: msvq.config.base.codebookSize)
        }
        return TokenizerEvaluation(images: n, meanPSNR: perImage.reduce(0, +) / Double(n),
                                   pooledPSNR: 10 * log10(1 / max(pooledMSE, 1e-12)), usage: usage)
    }
}

/// A sheet for people to look at: rows of up to `columns` originals, each row followed by the
/// same images' reconstructions, on a grey background. Runs in eval mode; restores train mode.
public func reconstructionGrid<M: ImageTokenizer>(_ model: M, images: [Image], columns: Int = 8) -> Image {
    precondition(!images.isEmpty && columns > 0, "reconstructionGrid: no images")
    return model.inferring {
        let x = imageBatch(images)                                         // (N, C, H, W)
        let recon = reconstructImages(model, x)
        let per = x.count / images.count
        let decoded = (0..<images.count).map { k in
            Image(chw: Tensor(Array(recon.scalars[(k * per)..<((k + 1) * per)]), shape: Array(x.shape.dropFirst())))
        }
        var cells: [Image] = []
        for lo in stride(from: 0, to: images.count, by: columns) {
            let hi = min(lo + columns, images.count)
            cells += images[lo..<hi] + decoded[lo..<hi]
            // A short last row still lines its reconstructions up under the originals.
            if hi - lo < columns && images.count > columns {
                let blank = Image(width: images[0].width, height: images[0].height, channels: images[0].channels, fill: 0.5)
                cells.insert(contentsOf: Array(repeating: blank, count: columns - (hi - lo)), at: cells.count - (hi - lo))
            }
        }
        return Image.grid(cells, columns: min(columns, images.count), padding: 2, background: 0.5)
    }
}
