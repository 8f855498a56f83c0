// The Chameleon baseline task: the same ShapesWorld pairs and mixture as the Transfusion task
// (caption first or image first, caption dropout), but images are VQ codes in the token stream,
// attention is causal and every position trains with cross-entropy. Samples: PNG grids of
// decoded codes for the recipe's prompts and captions of held-out images. Not the model.
import Data
import Evaluation
import Foundation
import Media
import Models
import NN
import Tensors
import Text

public final class ChameleonTask: TrainingTask {
    public let chameleon: Chameleon
    public let vq: VQTokenizer
    public var model: Module { chameleon }
    public let flopsPerMicroBatch: Double
    let recipe: Recipe
    let pairs: ImageCaptionPairs
    let docsPerRow: Int
    public var tokenizer: BPETokenizer { pairs.tokenizer }
    var world: ShapesWorld { pairs.world }
    var heldOut: ShapesWorld { pairs.heldOut }
    /// Code ids of training examples by pool index, encoded on first use.
    var codeCache: [Int: [Int32]] = [:]

    /// What sampling needs to rebuild the model from a run.
    public struct Config: Codable {
        public var kind = "chameleon"
        public var model: ChameleonConfig
        public var tokenizer: String
        /// The VQ tokenizer checkpoint, relative to the run folder.
        public var vq: String
        public var imageSize: Int
        public var cfg: Float
    }

    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        pairs = try ImageCaptionPairs(recipe: recipe, run: run, task: "chameleon")
        let tokenizer = pairs.tokenizer
        vq = try VQTokenizer.load(from: try ImageCaptionPairs.copyTokenizer(recipe: recipe, run: run, as: "vq.safetensors") {
            _ = try VQTokenizer.load(from: $0)
        })
        let grid = vq.gridShape(height: d.imageSize, width: d.imageSize)
        var decoder = try Presets.decoder(recipe.model)
        if recipe.model.qkNorm == nil { decoder.qkNorm = true }          // Chameleon's stabiliser by default
        let config = ChameleonConfig(textVocab: recipe.model.vocabSize ?? tokenizer.vocabSize,
                                     codebookSize: vq.config.codebookSize, gridSize: grid[0], decoder: decoder)
        guard d.seqLen >= config.tokensPerImage + 4 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold one image (\(config.tokensPerImage) codes + 4)")
        }
        let rng = RNG(seed: recipe.seed).split(0xB0D1)
        chameleon = Chameleon(config, rng: rng)
        chameleon.initialise(rng: rng)
        let (perRow, avg) = pairs.docsPerRow(imageLength: config.tokensPerImage)
        docsPerRow = perRow
        flopsPerMicroBatch = chameleon.trainingFlops(tokens: recipe.train.batchSize * d.seqLen, attended: avg / 2)
    }

    /// Code ids of examples `indices` of `world` (through the cache for the training pool).
    func codes(_ world: ShapesWorld, _ indices: [Int], cached: Bool) -> [[Int32]] {
        let per = chameleon.config.tokensPerImage
        return pairs.encoded(world, indices, cached: cached, cache: &codeCache) { images in
            let ids = withoutGrad { vq.encode(images) }.intScalars
            return (0..<images.dim(0)).map { Array(ids[($0 * per)..<(($0 + 1) * per)]) }
        }
    }

    /// Packed rows: documents `BOS caption BOI codes EOI EOS` (caption dropped with probability
    /// `diffusion.caption_dropout`) or, with probability `diffusion.image_first`,
    /// `BOS BOI codes EOI caption EOS` — the same mixture as the Transfusion task.
    func batch(_ world: ShapesWorld, firstRow: Int, rows: Int, rng: RNG, training: Bool) throws
        -> (ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor, tokens: Int, examples: Int) {
        let t = recipe.data.seqLen
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], docs: [[Int32]] = []
        var tokens = 0, examples = 0
        for r in 0..<rows {
            let picked = pairs.documents(world, row: firstRow + r, perRow: docsPerRow,
                                         imageLength: chameleon.config.tokensPerImage, training: training, rng: rng)
            let imageCodes = codes(world, picked.map(\.index), cached: training && recipe.data.pool > 0)
            let seqs = zip(picked, imageCodes).map { p, c -> MixedSequence in
                let image = chameleon.imageTokens(codes: c)
                return MixedSequence(segments: [.text(p.imageFirst ? image + p.caption : p.caption + image)])
            }
            let row = try pack(seqs, length: t)
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs)
            tokens += row.targets.lazy.filter { $0 >= 0 }.count
            examples += seqs.count
        }
        let mask = try AttentionMask(documents: docs, spans: docs.map { [Int32](repeating: -1, count: $0.count) })
        return (Tensor(ints: ids, shape: [rows, t]), Tensor(ints: targets, shape: [rows, t]), mask,
                Tensor(ints: positions), tokens, examples)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        let b = recipe.train.batchSize
        let x = try batch(world, firstRow: index * b, rows: b, rng: rng, training: true)
        let l = chameleon.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions, zLoss: recipe.model.zLoss)
        return LossResult(total: l.total, parts: ["loss_text": l.text, "loss_image": l.image], tokens: x.tokens,
                          examples: x.examples)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let tok = String(decoding: try JSONEncoder().encode(tokenizer), as: UTF8.self)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Config(model: chameleon.config, tokenizer: tok, vq: "vq.safetensors",
                                     imageSize: recipe.data.imageSize, cfg: recipe.diffusion.cfg))
    }

    /// Held-out losses with fixed randomness, comparable across steps and with Transfusion runs.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        var total = 0.0, text = 0.0, image = 0.0
        let n = max(recipe.eval.batches, 1)
        for i in 0..<n {
            let x = try batch(heldOut, firstRow: i * recipe.train.batchSize, rows: recipe.train.batchSize,
                              rng: RNG(seed: 0xE7A1).split(UInt64(i)), training: false)
            let l = chameleon.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions)
            total += Double(l.total.item); text += Double(l.text); image += Double(l.image)
        }
        var metrics = ["loss": total / Double(n), "loss_text": text / Double(n), "loss_image": image / Double(n),
                       "ppl": Foundation.exp(text / Double(n))]
        if recipe.eval.shapesEval > 0 { metrics.merge(shapesEvalMetrics(count: recipe.eval.shapesEval)) { $1 } }
        return metrics
    }

    /// ShapesEval on about `count` prompts, one image each (temperature 1, the recipe's top-k and
    /// CFG), with fixed randomness — the same prompts the Transfusion task scores.
    func shapesEvalMetrics(count: Int) -> [String: Double] {
        let eval = ShapesEval(seed: 0, totalPrompts: count, imageSize: recipe.data.imageSize)
        let base = RNG(seed: 0x5EE7)
        let images = eval.prompts.enumerated().map { i, p -> [Image] in
            let ids = chameleon.sampleCodes(prompt: [SpecialTokens.bos] + tokenizer.encode(p.text), count: 1,
                                            options: SamplingOptions(temperature: 1, topK: recipe.sample.topK),
                                            cfgScale: recipe.diffusion.cfg, rng: base.split(UInt64(i)))
            return [Image(chw: withoutGrad { vq.decode(ids) })]
        }
        return eval.score(images: images).metrics
    }

    /// samples/step-N.png (four images per prompt, sampled at temperature 1 with CFG) and
    /// step-N.txt (greedy captions of held-out images beside the truth).
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        try pairs.writeSamples(step: step, to: dir, sample: { i, prompt in
            let ids = chameleon.sampleCodes(prompt: prompt, count: 4,
                                            options: SamplingOptions(temperature: 1, topK: recipe.sample.topK),
                                            cfgScale: recipe.diffusion.cfg, rng: rng.split(UInt64(i)))
            return withoutGrad { vq.decode(ids) }
        }, caption: { i in
            chameleon.caption(codes: codes(heldOut, [i], cached: false)[0], maxTokens: recipe.sample.maxTokens,
                              options: SamplingOptions(temperature: 0), rng: rng)
        })
    }
}
