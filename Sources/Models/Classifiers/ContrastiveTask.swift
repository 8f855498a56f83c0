// The contrastive task (model.kind clip): trains Evaluation's ImageTextEncoder on the recipe's
// image–caption data (ShapesWorld or a folder, split as every family splits it), reports held-out
// retrieval accuracy and loss, and exports runs/<name>/encoder.safetensors (with its tokenizer) at
// each checkpoint: the feature space of `fusion eval --suite folder`. Not the network
// (Evaluation/ImageTextEncoder.swift).
import Data
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

/// Trains the folder evaluation's image–text encoder.
///
/// Micro-batch i draws candidates 2·B·i ..< 2·B·(i+1) of the training order (a folder's rows
/// epoch after epoch, each epoch permuted; ShapesWorld's examples) and keeps the first B whose
/// captions differ, so no pair in a batch is a false negative. `model.dim` sets the embedding width
/// (default 64); `model.layers`/`heads` and the preset the text tower.
///
/// ```sh
/// fusion train recipes/clip-textures.yaml   # → runs/clip-textures/encoder.safetensors
/// ```
public final class ContrastiveTask: TrainingTask {
    public let encoder: ImageTextEncoder
    public let tokenizer: BPETokenizer
    public var model: Module { encoder }
    public let flopsPerMicroBatch: Double
    let recipe: Recipe
    let train: any CaptionedImages
    let heldOut: any CaptionedImages

    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        guard d.imageSize == 32 || d.imageSize == 64 else {
            throw RunError.io("data.image_size", "the image–text encoder takes 32 or 64, got \(d.imageSize)")
        }
        (train, heldOut) = try ImageCaptionPairs.sources(recipe, family: .clip)
        try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        tokenizer = try LMTask.tokenizer(recipe: recipe, run: run, corpus: ImageCaptionPairs.captions(train))
        let text = Presets.decoder(recipe.model)
        let config = ImageTextEncoderConfig(imageSize: d.imageSize, embedding: recipe.model.dim ?? 64,
                                            vocab: recipe.model.vocabSize ?? tokenizer.vocabSize, text: text,
                                            contextLength: min(d.seqLen, 64))
        encoder = ImageTextEncoder(config, rng: RNG(seed: recipe.seed).split(0xC11F))
        encoder.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        // Convs at 32×32, the image projection, and the text tower over L positions; ×3 for training.
        let c = Double(config.channels), b = Double(recipe.train.batchSize)
        let image = ShapesClassifier.trunkFlops(channels: c) + 2 * 4 * c * 16 * Double(config.embedding)
        flopsPerMicroBatch = 3 * b * image + text.trainingFlops(tokens: recipe.train.batchSize * config.contextLength,
                                                                attended: Double(config.contextLength))
    }

    /// The example number `n` of the training order reads.
    func trainingIndex(_ n: Int) -> Int {
        guard let rows = train.count else { return n }
        return IndexPermutation(rows, seed: recipe.seed ^ 0xC11F, round: n / rows)(n % rows)
    }

    /// Up to `count` examples of `source` from `candidates` whose captions differ, in order.
    static func distinct(_ source: any CaptionedImages, _ candidates: [Int], count: Int) -> [Int] {
        var seen = Set<String>(), out: [Int] = []
        for i in candidates where out.count < count && seen.insert(source.caption(i)).inserted { out.append(i) }
        return out
    }

    func pairs(_ source: any CaptionedImages, _ indices: [Int]) throws -> (Tensor, [[Int32]]) {
        (imageBatch(try indices.map { try source.image($0) }), indices.map { tokenizer.encode(source.caption($0)) })
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        let b = recipe.train.batchSize
        let picked = Self.distinct(train, (2 * b * index..<2 * b * (index + 1)).map(trainingIndex), count: b)
        let (images, captions) = try pairs(train, picked)
        let (total, accuracy) = encoder.loss(images: images, captions: captions)
        return LossResult(total: total, parts: ["acc": accuracy], tokens: picked.count, examples: picked.count)
    }

    /// Held-out loss and retrieval accuracy (image → caption among the batch) over `eval.batches`
    /// batches of distinct held-out captions.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        return try encoder.inferring {
            let b = recipe.train.batchSize, available = heldOut.count ?? b * recipe.eval.batches * 2
            var loss = 0.0, accuracy = 0.0, batches = 0
            for k in 0..<recipe.eval.batches {
                guard 2 * b * k < available else { break }
                let candidates = Array(2 * b * k..<min(2 * b * (k + 1), available))
                let picked = Self.distinct(heldOut, candidates, count: b)
                guard picked.count >= 2 else { break }
                let (images, captions) = try pairs(heldOut, picked)
                let (l, a) = encoder.loss(images: images, captions: captions)
                loss += Double(l.item); accuracy += Double(a); batches += 1
            }
            guard batches > 0 else { return [:] }
            return ["loss": loss / Double(batches), "acc_retrieval": accuracy / Double(batches)]
        }
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(["kind": "clip", "config": String(decoding: try JSONEncoder().encode(encoder.config), as: UTF8.self)])
    }

    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        let tok = String(decoding: try JSONEncoder().encode(tokenizer), as: UTF8.self)
        try encoder.save(to: run.url.appendingPathComponent(ImageTextEncoder.fileName).path,
                         metadata: ["step": String(step), "recipe": recipe.name, "tokenizer": tok])
    }
}
