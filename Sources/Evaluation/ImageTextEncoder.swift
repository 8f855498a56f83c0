// ImageTextEncoder: a small CLIP-style pair of encoders trained contrastively on a folder's (or
// ShapesWorld's) captioned images — images and captions mapped to one unit sphere where a caption
// lies near its image. Its image side is the feature space of the folder Fréchet distance and both
// sides give a CLIP-score-like alignment of generated images with their prompts: evaluation that
// needs no ShapesWorld ground truth. The network, its loss, embeddings and checkpoint file; not
// the training loop (Models/Classifiers/ContrastiveTask.swift) nor the suite (Models/ImageText/FolderEvaluation.swift).
// Legend: N pairs, S image side, C base channels, E embedding width, L caption tokens, D text width.
import Data
import Foundation
import Media
import NN
import Tensors

/// The encoder pair's size.
public struct ImageTextEncoderConfig: Codable, Equatable, Sendable {
    /// Input side (32 or 64; 64 is average-pooled to 32 first).
    public var imageSize: Int
    /// Width of the first conv; the next two are 2C and 4C.
    public var channels: Int
    /// E, the width of the shared embedding space.
    public var embedding: Int
    /// The text tower: a bidirectional transformer over the caption's BPE ids.
    public var vocab: Int
    public var text: DecoderConfig
    /// L, the caption tokens read (longer captions are cut).
    public var contextLength: Int
    /// τ: similarities are divided by it in the contrastive loss.
    public var temperature: Float

    public init(imageSize: Int = 32, channels: Int = 32, embedding: Int = 64, vocab: Int, text: DecoderConfig,
                contextLength: Int = 48, temperature: Float = 0.07) {
        self.imageSize = imageSize; self.channels = channels; self.embedding = embedding; self.vocab = vocab
        self.text = text; self.contextLength = contextLength; self.temperature = temperature
    }
}

/// Image tower: the eval classifier's conv stages (``ShapesClassifier/trunk(_:_:_:_:)``, 32 → 4)
/// and a linear map to E;
/// text tower: token embeddings, a bidirectional transformer, the mean over the caption's
/// positions and a linear map to E. Both outputs are L2-normalised. Trained with the symmetric
/// InfoNCE loss of CLIP (Radford et al. 2021) at a fixed temperature.
///
/// ```swift
/// let enc = try ImageTextEncoder.load(from: "runs/clip-textures/encoder.safetensors")
/// let score = enc.alignment(images: generated, captions: prompts.map(tokenizer.encode))   // cosines
/// ```
public final class ImageTextEncoder: Module {
    public let config: ImageTextEncoderConfig
    public let conv1: Conv2d
    public let conv2: Conv2d
    public let conv3: Conv2d
    public let imageProjection: Linear
    public let tokens: Embedding
    public let encoder: Decoder
    public let textProjection: Linear

    /// The file name a contrastive run exports.
    public static let fileName = "encoder.safetensors"

    public init(_ config: ImageTextEncoderConfig, rng: RNG) {
        precondition(config.imageSize == 32 || config.imageSize == 64, "ImageTextEncoder: image size 32 or 64, got \(config.imageSize)")
        self.config = config
        let c = config.channels
        conv1 = Conv2d(3, c, kernel: 3, rng: rng)
        conv2 = Conv2d(c, 2 * c, kernel: 3, rng: rng)
        conv3 = Conv2d(2 * c, 4 * c, kernel: 3, rng: rng)
        imageProjection = Linear(4 * c * 16, config.embedding, rng: rng)
        tokens = Embedding(config.vocab, config.text.dim, std: 0.02, rng: rng)
        encoder = Decoder(config.text, rng: rng)
        textProjection = Linear(config.text.dim, config.embedding, rng: rng)
        encoder.initialise(rng: rng)
    }

    /// Rows of `x` (N, E) scaled to unit length.
    static func normalised(_ x: Tensor) -> Tensor {
        x * ((x * x).sum(axes: [1], keepDims: true) + 1e-12).rsqrt()
    }

    /// Unit embeddings (N, E) of images (N, 3, S, S) in [-1, 1].
    public func imageEmbeddings(_ x: Tensor) -> Tensor {
        Self.normalised(imageProjection(ShapesClassifier.trunk(x, conv1, conv2, conv3)))
    }

    /// Unit embeddings (N, E) of captions (BPE ids, cut to L; an empty caption reads as one pad
    /// token). Each caption is one document whose tokens all see each other.
    public func textEmbeddings(_ captions: [[Int32]]) -> Tensor {
        let n = captions.count, l = max(1, min(config.contextLength, captions.map(\.count).max() ?? 1))
        var ids: [Int32] = [], docs: [[Int32]] = [], spans: [[Int32]] = [], weights: [Float] = [], positions: [Int32] = []
        for caption in captions {
            let kept = Array(caption.prefix(l))
            let real = max(kept.count, 1)
            ids += (kept.isEmpty ? [0] : kept) + [Int32](repeating: 0, count: l - real)
            // The caption is document 0 and span 0 (bidirectional); padding a document of its own.
            docs.append([Int32](repeating: 0, count: real) + [Int32](repeating: 1, count: l - real))
            spans.append([Int32](repeating: 0, count: real) + [Int32](repeating: 1, count: l - real))
            weights += [Float](repeating: 1 / Float(real), count: real) + [Float](repeating: 0, count: l - real)
            positions += (0..<l).map(Int32.init)
        }
        let mask = try! AttentionMask(documents: docs, spans: spans)   // well-formed by construction
        let h = encoder(tokens(Tensor(ints: ids, shape: [n, l])), mask: mask, positions: Tensor(ints: positions))  // (N, L, D)
        let pooled = (h * Tensor(weights, shape: [n, l, 1])).sum(axes: [1])                                       // (N, D)
        return Self.normalised(textProjection(pooled))
    }

    /// The symmetric contrastive loss of matching pairs (image i with caption i; the captions of a
    /// batch should differ), and the share of images whose own caption is the most similar.
    public func loss(images: Tensor, captions: [[Int32]]) -> (total: Tensor, accuracy: Float) {
        let n = captions.count
        let logits = matmul(imageEmbeddings(images), textEmbeddings(captions), transposeB: true) * (1 / config.temperature)
        let labels = Tensor(ints: (0..<n).map(Int32.init))
        let total = (crossEntropy(logits, labels) + crossEntropy(logits.transposed(0, 1), labels)) * 0.5
        let values = logits.scalars
        let right = (0..<n).filter { i in
            let row = values[(i * n)..<((i + 1) * n)]
            return row.indices.max { row[$0] < row[$1] }! - i * n == i
        }.count
        return (total, Float(right) / Float(max(n, 1)))
    }

    /// Image embeddings of `images` (values in [0, 1]) in chunks of 128, without gradients.
    public func imageEmbeddings(_ images: [Image], chunk: Int = 128) -> [[Float]] {
        stride(from: 0, to: images.count, by: chunk).flatMap { lo in
            rows(withoutGrad { imageEmbeddings(ShapesClassifier.batch(Array(images[lo..<min(lo + chunk, images.count)]))) })
        }
    }

    /// Text embeddings of `captions` in chunks of 128, without gradients.
    public func textEmbeddings(_ captions: [[Int32]], chunk: Int = 128) -> [[Float]] {
        stride(from: 0, to: captions.count, by: chunk).flatMap { lo in
            rows(withoutGrad { textEmbeddings(Array(captions[lo..<min(lo + chunk, captions.count)])) })
        }
    }

    func rows(_ t: Tensor) -> [[Float]] {
        let d = t.dim(1), v = t.scalars
        return (0..<t.dim(0)).map { Array(v[($0 * d)..<(($0 + 1) * d)]) }
    }

    // MARK: - Checkpoint

    /// Writes weights and the JSON config (safetensors metadata "config") to `path`; `metadata`
    /// should carry the BPE tokenizer (`tokenizer`) the captions were encoded with.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(stateDict(), metadata: metadata.merging(["config": json]) { $1 }, to: URL(fileURLWithPath: path))
    }

    /// Reads a file written by `save(to:)`, and its metadata.
    public static func load(from path: String) throws -> (ImageTextEncoder, metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationError.file(path, "no such file (train one: a recipe with model.kind clip on the same data)")
        }
        let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: path))
        guard let json = metadata["config"],
              let config = try? JSONDecoder().decode(ImageTextEncoderConfig.self, from: Foundation.Data(json.utf8)) else {
            throw EvaluationError.file(path, "no ImageTextEncoder config in the safetensors metadata")
        }
        let model = ImageTextEncoder(config, rng: RNG(seed: 0))
        do { try model.load(tensors) } catch { throw EvaluationError.file(path, "\(error)") }
        model.eval()
        return (model, metadata)
    }
}

/// Alignment scores in a learned image–text space, with bootstrap standard errors.
public enum Alignment {
    /// The mean cosine of matching rows of two lists of unit vectors, and its standard error
    /// (the spread of per-pair cosines / √n).
    public static func meanCosine(_ a: [[Float]], _ b: [[Float]]) -> (mean: Double, se: Double) {
        precondition(a.count == b.count && !a.isEmpty, "Alignment.meanCosine: \(a.count) vs \(b.count) vectors")
        let c = zip(a, b).map { x, y in Double(zip(x, y).map { $0 * $1 }.reduce(0, +)) }
        let m = c.reduce(0, +) / Double(c.count)
        let v = c.count > 1 ? c.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(c.count - 1) : 0
        return (m, (v / Double(c.count)).squareRoot())
    }

    /// The Fréchet distance between two sets of features and its bootstrap standard error
    /// (`rounds` resamples of both sets with replacement, a fixed seed).
    public static func frechet(_ a: [[Float]], _ b: [[Float]], rounds: Int = 20, seed: UInt64 = 0xB007) -> (fd: Double, se: Double) {
        let fd = frechetDistance(a, b)
        var rng = SplitMix64(seed: seed, stream: 0xB007, index: 0)
        let draws = (0..<rounds).map { _ in
            frechetDistance((0..<a.count).map { _ in a[rng.int(in: 0...(a.count - 1))] },
                            (0..<b.count).map { _ in b[rng.int(in: 0...(b.count - 1))] })
        }
        let m = draws.reduce(0, +) / Double(rounds)
        let sd = (draws.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(max(rounds - 1, 1))).squareRoot()
        return (fd, sd)
    }
}
