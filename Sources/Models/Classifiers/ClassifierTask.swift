// The eval-classifier task (model.kind classifier): trains Evaluation's ShapesClassifier on
// ShapesWorld attributes, reports held-out accuracy and a real-vs-real Fréchet distance, and
// exports runs/<name>/classifier.safetensors at each checkpoint: the feature space of `fusion eval
// --suite fd`. Not the network (Evaluation/ShapesClassifier.swift).
import Data
import Evaluation
import Foundation
import Media
import NN
import Tensors
import Training

/// Trains the FD feature network.
///
/// Micro-batch i holds ShapesWorld examples i·B ..< (i+1)·B (recipe seed); held-out images are
/// `eval.batches · train.batch_size` scenes of another seed. `model.dim` sets the feature width
/// (default 64).
///
/// ```sh
/// fusion train recipes/eval-classifier.yaml   # → runs/eval-classifier/classifier.safetensors
/// ```
public final class ClassifierTask: TrainingTask {
    public let classifier: ShapesClassifier
    public var model: Module { classifier }
    public let flopsPerMicroBatch: Double
    let recipe: Recipe
    let world: ShapesWorld
    let heldOutScenes: [Scene]
    let heldOutImages: [Image]

    public init(recipe: Recipe) throws {
        self.recipe = recipe
        let size = recipe.data.imageSize
        guard recipe.data.source == .shapes else {
            throw RunError.io("data.source", "model.kind classifier trains on 'shapes' (its labels are ShapesWorld scenes)")
        }
        guard size == 32 || size == 64 else { throw RunError.io("data.image_size", "the classifier takes 32 or 64, got \(size)") }
        world = ShapesWorld(seed: recipe.seed, imageSize: size)
        let test = ShapesWorld(seed: recipe.seed &+ 0x5EED_0F_E7A1, imageSize: size)
        heldOutScenes = (0..<(max(recipe.eval.batches, 1) * recipe.train.batchSize)).map(test.scene)
        heldOutImages = heldOutScenes.map { Image(width: size, height: size, channels: 3, pixels: $0.render(imageSize: size)) }
        let config = ShapesClassifierConfig(imageSize: size, features: recipe.model.dim ?? 64)
        classifier = ShapesClassifier(config, rng: RNG(seed: recipe.seed).split(0xC1A5))
        classifier.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        // Conv FLOPs at 32×32 (2·in·out·9 per output pixel), the linear layers, ×3 for training.
        let c = Double(config.channels), f = Double(config.features)
        let forward = ShapesClassifier.trunkFlops(channels: c) + 2 * (4 * c * 16 * f + f * 173)
        flopsPerMicroBatch = 3 * forward * Double(recipe.train.batchSize)
    }

    /// Scenes and images of training micro-batch `index`.
    func batch(_ index: Int) -> (Tensor, [Scene]) {
        let b = recipe.train.batchSize, size = recipe.data.imageSize
        let scenes = (0..<b).map { world.scene(index * b + $0) }
        let images = scenes.map { Image(width: size, height: size, channels: 3, pixels: $0.render(imageSize: size)) }
        return (ShapesClassifier.batch(images), scenes)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        let (x, scenes) = batch(index)
        let (total, parts) = classifier.loss(x, scenes: scenes)
        return LossResult(total: total, parts: parts, tokens: scenes.count, examples: scenes.count)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(["kind": "classifier"].merging(
            ["config": String(decoding: try JSONEncoder().encode(classifier.config), as: UTF8.self)]) { $1 })
    }

    /// Held-out accuracies, and the FD between the two halves of the held-out set (its noise floor).
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        return classifier.inferring {
            // In chunks of the training batch: the evaluation's memory stays within the steps' (MemoryPlan).
            let chunk = recipe.train.batchSize
            var metrics = classifier.accuracy(heldOutImages, scenes: heldOutScenes, chunk: chunk)
            let features = classifier.features(heldOutImages, chunk: chunk)
            let half = features.count / 2
            if half >= 2 { metrics["fd_real_real"] = frechetDistance(Array(features[..<half]), Array(features[half...])) }
            return metrics
        }
    }

    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        try classifier.save(to: run.url.appendingPathComponent(ShapesClassifier.fileName).path,
                            metadata: ["step": String(step), "recipe": recipe.name])
    }
}
