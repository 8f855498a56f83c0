// ShapesClassifier: a small conv net trained on ShapesWorld attributes (per grid cell: colour,
// shape, size or empty; and the background), whose penultimate layer is the feature space of the
// Fréchet distance (FID's Inception role). Its labels, loss, accuracy, feature extraction and
// checkpoint file. Not the training loop (Models/Classifiers/ClassifierTask.swift).
// Legend: N images, S image side, C base channels, F features.
import Data
import Foundation
import Media
import NN
import Tensors

/// The classifier's size.
public struct ShapesClassifierConfig: Codable, Equatable, Sendable {
    /// Input side (32 or 64; 64 is average-pooled to 32 first).
    public var imageSize: Int
    /// Width of the first conv; the next two are 2C and 4C.
    public var channels: Int
    /// Width of the penultimate (feature) layer.
    public var features: Int

    public init(imageSize: Int = 32, channels: Int = 32, features: Int = 64) {
        self.imageSize = imageSize; self.channels = channels; self.features = features
    }
}

/// Three 3×3 conv + ReLU + 2×2 average-pool stages (32 → 16 → 8 → 4), a linear layer to F
/// features (ReLU), and a linear head with per cell 9 colour (empty + 8), 7 shape (empty + 6) and
/// 3 size (empty + 2) logits, plus 2 background logits.
///
/// ```swift
/// let net = try ShapesClassifier.load(from: "runs/eval-classifier/classifier.safetensors")
/// let fd = frechetDistance(net.features(realImages), net.features(generatedImages))
/// ```
public final class ShapesClassifier: Module {
    public let config: ShapesClassifierConfig
    public let conv1: Conv2d
    public let conv2: Conv2d
    public let conv3: Conv2d
    public let fc: Linear
    public let head: Linear

    static let cellLogits = 9 + 7 + 3
    /// The file name a classifier run exports.
    public static let fileName = "classifier.safetensors"

    public init(_ config: ShapesClassifierConfig = .init(), rng: RNG) {
        precondition(config.imageSize == 32 || config.imageSize == 64, "ShapesClassifier: image size 32 or 64, got \(config.imageSize)")
        self.config = config
        let c = config.channels
        conv1 = Conv2d(3, c, kernel: 3, rng: rng)
        conv2 = Conv2d(c, 2 * c, kernel: 3, rng: rng)
        conv3 = Conv2d(2 * c, 4 * c, kernel: 3, rng: rng)
        fc = Linear(4 * c * 16, config.features, rng: rng)
        head = Linear(config.features, 9 * Self.cellLogits + 2, rng: rng)
    }

    /// Features (N, F) of images (N, 3, S, S) in [-1, 1].
    public func features(_ x: Tensor) -> Tensor {
        fc(Self.trunk(x, conv1, conv2, conv3)).relu()                     // (N, F)
    }

    /// The conv stages this network and ImageTextEncoder share: a 64-pixel input average-pooled to
    /// 32, then three 3×3 conv + ReLU + 2×2 average-pool stages (C, 2C, 4C channels), flattened:
    /// (N, 3, S, S) → (N, 4C·16).
    static func trunk(_ x: Tensor, _ conv1: Conv2d, _ conv2: Conv2d, _ conv3: Conv2d) -> Tensor {
        var h = x.dim(2) == 64 ? x.avgPooled(2) : x                      // (N, 3, 32, 32)
        h = conv1(h).relu().avgPooled(2)                                  // (N, C, 16, 16)
        h = conv2(h).relu().avgPooled(2)                                  // (N, 2C, 8, 8)
        h = conv3(h).relu().avgPooled(2)                                  // (N, 4C, 4, 4)
        return h.reshaped([x.dim(0), h.count / x.dim(0)])
    }

    /// Forward FLOPs of ``trunk(_:_:_:_:)`` per 32×32 image with base width `c` (2·in·out·9 per output pixel).
    public static func trunkFlops(channels c: Double) -> Double {
        2 * 9 * (3 * c * 1024 + c * 2 * c * 256 + 2 * c * 4 * c * 64)
    }

    /// Logits (N, 9·19 + 2).
    public func callAsFunction(_ x: Tensor) -> Tensor { head(features(x)) }

    // MARK: - Labels and loss

    /// Targets of scenes: per cell (N·9) colour, shape and size classes (0: empty), and the background (N).
    public static func targets(_ scenes: [Scene]) -> (colour: Tensor, shape: Tensor, size: Tensor, background: Tensor) {
        var colour: [Int32] = [], shape: [Int32] = [], size: [Int32] = []
        for scene in scenes {
            for cell in GridCell.all {
                let o = scene.object(in: cell)
                colour.append(o.map { Int32($0.colour.rawValue + 1) } ?? 0)
                shape.append(o.map { Int32($0.shape.rawValue + 1) } ?? 0)
                size.append(o.map { Int32($0.size.rawValue + 1) } ?? 0)
            }
        }
        return (Tensor(ints: colour), Tensor(ints: shape), Tensor(ints: size),
                Tensor(ints: scenes.map { Int32($0.background.rawValue) }))
    }

    /// The four heads' logits: colour (N·9, 9), shape (N·9, 7), size (N·9, 3), background (N, 2).
    func heads(_ logits: Tensor) -> [Tensor] {
        let n = logits.dim(0)
        let cells = logits.slice(axis: 1, 0..<(9 * Self.cellLogits)).reshaped([n * 9, Self.cellLogits])
        return cells.split(axis: 1, sizes: [9, 7, 3]) + [logits.slice(axis: 1, (9 * Self.cellLogits)..<(9 * Self.cellLogits + 2))]
    }

    /// Sum of the four heads' mean cross-entropies, and each part.
    public func loss(_ images: Tensor, scenes: [Scene]) -> (total: Tensor, parts: [String: Float]) {
        let t = Self.targets(scenes)
        let h = heads(self(images))
        let parts = [crossEntropy(h[0], t.colour), crossEntropy(h[1], t.shape), crossEntropy(h[2], t.size),
                     crossEntropy(h[3], t.background)]
        let names = ["loss_colour", "loss_shape", "loss_size", "loss_background"]
        return (parts[0] + parts[1] + parts[2] + parts[3],
                Dictionary(uniqueKeysWithValues: zip(names, parts.map(\.item))))
    }

    /// Held-out accuracy: per cell for colour, shape and size; per image for the background and
    /// for all 9 cells right at once (`scene`).
    public func accuracy(_ images: [Image], scenes: [Scene], chunk: Int = 128) -> [String: Double] {
        let t = Self.targets(scenes)
        var right = [0, 0, 0, 0], exactScenes = 0
        let chunk = max(chunk, 1)
        for lo in stride(from: 0, to: images.count, by: chunk) {
            let hi = min(lo + chunk, images.count)
            let h = withoutGrad { heads(self(Self.batch(Array(images[lo..<hi])))) }
            let targets = [t.colour.ints, t.shape.ints, t.size.ints, t.background.ints]
            var cellOK = [Bool](repeating: true, count: hi - lo)
            for (k, logits) in h.enumerated() {
                let v = logits.dim(1), values = logits.scalars
                let offset = k == 3 ? lo : 9 * lo
                for r in 0..<logits.dim(0) {
                    let row = values[(r * v)..<((r + 1) * v)]
                    let guess = row.indices.max { row[$0] < row[$1] }! - r * v
                    let ok = Int32(guess) == targets[k][offset + r]
                    if ok { right[k] += 1 }
                    if !ok && k < 3 { cellOK[r / 9] = false }
                }
            }
            exactScenes += cellOK.filter { $0 }.count
        }
        // The targets are read through their pointers only: they stay alive until every batch is scored.
        withExtendedLifetime(t) {}
        let n = Double(images.count)
        return ["acc_colour": Double(right[0]) / (9 * n), "acc_shape": Double(right[1]) / (9 * n),
                "acc_size": Double(right[2]) / (9 * n), "acc_background": Double(right[3]) / n,
                "acc_scene": Double(exactScenes) / n]
    }

    // MARK: - Features of images

    /// Stacks images (3 × S × S, values in [0, 1]) into (N, 3, S, S) in [-1, 1].
    public static func batch(_ images: [Image]) -> Tensor {
        concat(images.map { $0.converted(channels: 3).toTensorCHW().reshaped([1, 3, $0.height, $0.width]) }, axis: 0)
    }

    /// Feature vectors of images, in batches of 128, without recording gradients.
    public func features(_ images: [Image], chunk: Int = 128) -> [[Float]] {
        var out: [[Float]] = []
        let chunk = max(chunk, 1)
        for lo in stride(from: 0, to: images.count, by: chunk) {
            let f = withoutGrad { features(Self.batch(Array(images[lo..<min(lo + chunk, images.count)]))) }
            let d = f.dim(1), values = f.scalars
            out += (0..<f.dim(0)).map { Array(values[($0 * d)..<(($0 + 1) * d)]) }
        }
        return out
    }

    // MARK: - Checkpoint

    /// Writes weights and the JSON config (safetensors metadata "config") to `path`.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(stateDict(), metadata: metadata.merging(["config": json]) { $1 }, to: URL(fileURLWithPath: path))
    }

    /// Reads a file written by `save(to:)` (a classifier run exports runs/<name>/classifier.safetensors).
    public static func load(from path: String) throws -> ShapesClassifier {
        guard FileManager.default.fileExists(atPath: path) else {
            throw EvaluationError.file(path, "no such file (train one: fusion train recipes/eval-classifier.yaml)")
        }
        let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: path))
        guard let json = metadata["config"],
              let config = try? JSONDecoder().decode(ShapesClassifierConfig.self, from: Foundation.Data(json.utf8)) else {
            throw EvaluationError.file(path, "no ShapesClassifier config in the safetensors metadata")
        }
        let model = ShapesClassifier(config, rng: RNG(seed: 0))
        do { try model.load(tensors) } catch { throw EvaluationError.file(path, "\(error)") }
        model.eval()
        return model
    }
}

/// An evaluation input that cannot be used.
public enum EvaluationError: Error, CustomStringConvertible {
    case file(String, String)
    public var description: String {
        switch self { case .file(let path, let problem): "\(path): \(problem)" }
    }
}
