// The Chameleon baseline task: the same ShapesWorld pairs and mixture as the Transfusion task
// (caption first or image first, caption dropout, edit triplets, speech documents), but images are
// VQ codes and speech AudioCodec codes in the token stream, attention is causal and every position trains with cross-entropy (except an edit's
// given source codes). Can start from a trained Chameleon run (`train.init_from`). Samples: PNG
// grids of decoded codes for the recipe's prompts and captions of held-out images. Not the model.
import Data
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

public final class ChameleonTask: TrainingTask {
    public let chameleon: Chameleon
    public let vq: VQTokenizer
    public var model: Module { chameleon }
    public let flopsPerMicroBatch: Double
    /// The held-out batches, built at the first evaluation.
    var heldOutCache: [Batch]?
    let recipe: Recipe
    let pairs: ImageCaptionPairs
    let docsPerRow: Int
    public var tokenizer: BPETokenizer { pairs.tokenizer }
    var world: any CaptionedImages { pairs.world }
    var heldOut: any CaptionedImages { pairs.heldOut }
    /// The held-out ShapesWorld, for its edit triplets and speech (refused for other sources at start).
    var heldOutShapes: ShapesWorld { ImageCaptionPairs.shapes(heldOut) }
    /// Code ids of training examples by pool index, encoded on first use.
    var codeCache: [Int: [Int32]] = [:]
    /// Code ids of training edit triplets by index: source then target.
    var editCodeCache: [Int: [Int32]] = [:]
    /// Entries of each cache already in the run folder (EncodingCache).
    var written = (codes: 0, edits: 0)

    /// What sampling needs to rebuild the model from a run.
    public struct Config: Codable {
        public var kind = ModelFamily.chameleon.rawValue
        public var model: ChameleonConfig
        public var tokenizer: String
        /// The VQ tokenizer checkpoint, relative to the run folder.
        public var vq: String
        public var imageSize: Int
        public var cfg: Float
        /// The AudioCodec (with its codebook) of speech spans, relative to the run folder (nil: no speech).
        public var audioCodec: String? = nil
        public var speechWPM: Int? = nil
        /// The positions of one training row (`data.seq_len`; nil: written before it was kept).
        public var contextLength: Int? = nil
        /// The top-k image codes are sampled with (`sample.top_k`; nil: written before it was kept).
        public var topK: Int? = nil
    }

    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        let base = try recipe.train.initFrom.map { try Self.startingRun($0, recipe: recipe, run: run) }
        pairs = try ImageCaptionPairs(recipe: recipe, run: run, family: .chameleon, quantizedSpeech: true)
        let tokenizer = pairs.tokenizer
        vq = try VQTokenizer.load(from: try ImageCaptionPairs.copyTokenizer(recipe: recipe, run: run, as: "vq.safetensors") {
            _ = try VQTokenizer.load(from: $0)
        })
        try ImageCaptionPairs.checkImageSize(recipe, downsample: vq.config.downsample, what: "VQ tokenizer")
        let grid = vq.gridShape(height: d.imageSize, width: d.imageSize)
        var decoder = Presets.decoder(recipe.model)
        if recipe.model.qkNorm == nil { decoder.qkNorm = true }          // Chameleon's stabiliser by default
        let config = ChameleonConfig(textVocab: recipe.model.vocabSize ?? tokenizer.vocabSize,
                                     codebookSize: vq.config.codebookSize, gridSize: grid[0], decoder: decoder,
                                     audioCodebookSize: pairs.spoken?.codec.config.codebookSize ?? 0,
                                     audioLength: pairs.spoken?.length ?? 0)
        guard d.seqLen >= config.tokensPerImage + 4 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold one image (\(config.tokensPerImage) codes + 4)")
        }
        guard d.editFraction == 0 || d.seqLen >= 2 * config.tokensPerImage + 6 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold an edit triplet (2 × \(config.tokensPerImage) codes + 6)")
        }
        if let spoken = pairs.spoken, d.seqLen < config.tokensPerImage + spoken.length + 6 {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold an image and its speech (\(config.tokensPerImage) + "
                                               + "\(spoken.length) codes + 6): raise it or lower data.audio_patches")
        }
        let rng = RNG(seed: recipe.seed).split(0xB0D1)
        chameleon = Chameleon(config, rng: rng)
        chameleon.initialise(rng: rng)
        chameleon.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        if let base {
            guard base.config.model == config else {
                throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "train.init_from",
                                               message: "\(base.checkpoint.path) holds a different model than the recipe's "
                                                   + "(checkpoint \(base.config.model), recipe \(config)): match the "
                                                   + "model section to the run's recipe.yaml")
            }
            try chameleon.load(base.model.stateDict())
        }
        let (perRow, avg) = pairs.docsPerRow(imageLength: config.tokensPerImage)
        docsPerRow = perRow
        if pairs.cachesTraining {                                    // what the run encoded before it stopped
            codeCache = EncodingCache.load("codes", width: config.tokensPerImage, recipe: recipe, run: run)
            editCodeCache = EncodingCache.load("edit-codes", width: 2 * config.tokensPerImage, recipe: recipe, run: run)
            written = (codeCache.count, editCodeCache.count)
        }
        flopsPerMicroBatch = chameleon.trainingFlops(tokens: recipe.train.batchSize * d.seqLen, attended: avg / 2)
    }

    /// The Chameleon run `train.init_from` names, loaded (EMA weights when kept), with its tokenizer
    /// and VQ tokenizer copied into `run` unless it has them (a resume).
    static func startingRun(_ path: String, recipe: Recipe, run: RunDirectory) throws -> ChameleonRun {
        let base: ChameleonRun
        do { base = try ChameleonRun(path: path) } catch { throw ImageCaptionPairs.initFromError(recipe, "\(path): \(error)") }
        try ImageCaptionPairs.adoptStartingRun(path, tokenizer: base.tokenizer, imageTokenizer: base.run.appendingPathComponent(base.config.vq), as: "vq.safetensors",
                                               what: "VQ tokenizer", recipe: recipe, run: run)
        return base
    }

    /// Code ids of edit triplets `indices` of `world`, source then target per triplet (through the
    /// cache for the training pool).
    func editCodes(_ world: any CaptionedImages, _ indices: [Int], cached: Bool) throws -> [[Int32]] {
        let per = 2 * chameleon.config.tokensPerImage
        return try pairs.encoded(world, indices, cached: cached, cache: &editCodeCache, render: pairs.editImages) { images in
            let ids = withoutGrad { vq.encode(images) }.intScalars                 // (2n, grid, grid)
            return (0..<(images.dim(0) / 2)).map { Array(ids[($0 * per)..<(($0 + 1) * per)]) }
        }
    }

    /// One document as a token sequence: caption and image in the pair's order, or an edit
    /// `BOS BOI source EOI instruction BOI target EOI EOS` whose source codes are given, not
    /// predicted (their targets are −1), or a speech document (`speech`: its audio codes).
    func sequence(_ doc: ImageCaptionPairs.Document, codes: [Int32], speech: [Int32] = []) -> MixedSequence {
        if let corpus = doc.corpus { return MixedSequence(segments: [.text(doc.caption)], appendEOS: corpus.ends) }
        if let kind = doc.speech {
            let audio = chameleon.audioTokens(codes: speech)
            switch kind {
            case .fromCaption: return MixedSequence(segments: [.text(doc.caption + audio)])
            case .toCaption: return MixedSequence(segments: [.text(audio + doc.caption)])
            case .fromImage: return MixedSequence(segments: [.text(chameleon.imageTokens(codes: codes) + audio)])
            }
        }
        guard let edit = doc.edit else {
            let image = chameleon.imageTokens(codes: codes)
            return MixedSequence(segments: [.text(doc.imageFirst ? image + doc.caption : doc.caption + image)])
        }
        let per = chameleon.config.tokensPerImage
        let source = chameleon.imageTokens(codes: Array(codes[..<per])), target = chameleon.imageTokens(codes: Array(codes[per...]))
        var seq = MixedSequence(segments: [.text((edit.keepSource ? source : []) + edit.instruction + target)])
        // Positions 1 (BOI) … per predict the source codes: the source is a given, not an output.
        if edit.keepSource { for i in 1...per { seq.targets[i] = -1 } }
        return seq
    }

    /// Code ids of examples `indices` of `world` (through the cache for the training pool).
    func codes(_ world: any CaptionedImages, _ indices: [Int], cached: Bool) throws -> [[Int32]] {
        let per = chameleon.config.tokensPerImage
        return try pairs.encoded(world, indices, cached: cached, cache: &codeCache) { images in
            let ids = withoutGrad { vq.encode(images) }.intScalars
            return (0..<images.dim(0)).map { Array(ids[($0 * per)..<(($0 + 1) * per)]) }
        }
    }

    /// A packed batch: ids, targets (−1: none), mask and positions, the target count, and the
    /// documents with the document of each position (−1: padding).
    struct Batch {
        var ids: Tensor
        var targets: Tensor
        var mask: AttentionMask
        var positions: Tensor
        var tokens: Int
        var examples: Int
        var documents: [ImageCaptionPairs.Document]
        var documentOf: [Int]
        /// The documents of each row.
        var rowDocuments: [Int] = []

        /// Rows `kept` alone: one data-parallel rank's share.
        func rows(_ kept: Range<Int>) -> Batch {
            let t = ids.dim(1)
            if kept == 0..<ids.dim(0) { return self }
            let flat = (kept.lowerBound * t)..<(kept.upperBound * t)
            let first = rowDocuments[..<kept.lowerBound].reduce(0, +), count = rowDocuments[kept].reduce(0, +)
            let keptTargets = Array(targets.intScalars[flat])
            return Batch(ids: Tensor(ints: Array(ids.intScalars[flat]), shape: [kept.count, t]),
                         targets: Tensor(ints: keptTargets, shape: [kept.count, t]), mask: mask.rows(kept),
                         positions: Tensor(ints: Array(positions.intScalars[flat])),
                         tokens: keptTargets.lazy.filter { $0 >= 0 }.count, examples: count,
                         documents: Array(documents[first..<(first + count)]),
                         documentOf: documentOf[flat].map { $0 < 0 ? $0 : $0 - first }, rowDocuments: Array(rowDocuments[kept]))
        }
    }

    /// Packed rows: documents `BOS caption BOI codes EOI EOS` (caption dropped with probability
    /// `diffusion.caption_dropout`) or, with probability `diffusion.image_first`,
    /// `BOS BOI codes EOI caption EOS`, or edit triplets (`data.edit_fraction`) — the same mixture
    /// as the Transfusion task.
    func batch(_ world: any CaptionedImages, firstRow: Int, rows: Int, rng: RNG, training: Bool) throws -> Batch {
        let taken = try (0..<rows).map { r in
            try pairs.documents(world, row: firstRow + r, perRow: docsPerRow, imageLength: chameleon.config.tokensPerImage,
                            training: training, rng: rng)
        }
        return try batch(world, rows: taken, cached: training && pairs.cachesTraining, side: training ? .train : .heldOut)
    }

    /// `rows` of documents of `world` laid out as token sequences and packed; speech documents read
    /// `side`'s utterances.
    func batch(_ world: any CaptionedImages, rows taken: [[ImageCaptionPairs.Document]], cached: Bool,
               side: ImageCaptionPairs.Side) throws -> Batch {
        let t = recipe.data.seqLen
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], docs: [[Int32]] = []
        var documents: [ImageCaptionPairs.Document] = [], documentOf: [Int] = []
        var tokens = 0, rowDocuments: [Int] = []
        for picked in taken {
            var plain = try codes(world, picked.filter { $0.edit == nil && $0.hasImage }.map(\.index), cached: cached)[...]
            var edits = try editCodes(world, picked.filter { $0.edit != nil }.map(\.index), cached: cached)[...]
            let speaking = picked.filter { $0.speech != nil }.map(\.index)
            var speech = try speaking.isEmpty ? [] : pairs.spoken!.codes(pairs.speechSource(side), speaking,
                                                                         cached: side == .train && pairs.cachesSpeech)[...]
            let seqs = picked.map { p in
                sequence(p, codes: p.edit != nil ? edits.removeFirst() : p.hasImage ? plain.removeFirst() : [],
                         speech: p.speech != nil ? speech.removeFirst() : [])
            }
            let row = try pack(seqs, length: t)
            documentOf += row.documentIDs.map { Int($0) < picked.count ? documents.count + Int($0) : -1 }
            documents += picked
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs)
            tokens += row.targets.lazy.filter { $0 >= 0 }.count
            rowDocuments.append(picked.count)
        }
        let mask = try AttentionMask(documents: docs, spans: docs.map { [Int32](repeating: -1, count: $0.count) })
        return Batch(ids: Tensor(ints: ids, shape: [taken.count, t]), targets: Tensor(ints: targets, shape: [taken.count, t]), mask: mask,
                     positions: Tensor(ints: positions), tokens: tokens, examples: documents.count, documents: documents,
                     documentOf: documentOf, rowDocuments: rowDocuments)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        try loss(microBatch: index, rows: 0..<recipe.train.batchSize, rng: rng)
    }

    /// Rows `rows` of the micro-batch: the whole micro-batch is drawn and packed (cheap beside the
    /// model), its rows kept, and the loss and each reported part divided by the whole
    /// micro-batch's count of their targets, so the ranks' shares add up (`isShare`). All rows:
    /// the plain loss.
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        let b = recipe.train.batchSize
        let whole = try batch(world, firstRow: index * b, rows: b, rng: rng, training: true)
        let x = whole.rows(rows)
        let l = chameleon.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions, zLoss: recipe.model.zLoss)
        let logged = pairs.loggedLosses(chameleon.config.codeSpans.map(\.modality))
        var parts = ["loss_text": l.text]
        for m in logged { parts["loss_\(m)"] = l.spans[m]! }
        // FLOPs on the real positions: padding queries left out.
        let (positions, attended) = ImageCaptionPairs.realPositions(documentOf: x.documentOf, mask: x.mask)
        let flops = chameleon.trainingFlops(tokens: positions, attended: attended)
        guard rows != 0..<b else {
            return LossResult(total: l.total, parts: parts, tokens: x.tokens, examples: x.examples, flops: flops, positions: positions)
        }
        let share = rankShare(total: l.total, parts: parts, names: ["loss_text"] + chameleon.config.codeSpans.map { "loss_\($0.modality)" },
                              kept: x.targets.intScalars, whole: whole.targets.intScalars, split: chameleon.partTargets)
        return LossResult(total: share.total, parts: share.parts, tokens: x.tokens, examples: x.examples, flops: flops,
                          positions: positions, isShare: true)
    }

    public var cacheBytes: Int {
        let image = 4 * chameleon.config.gridSize * chameleon.config.gridSize
        return pairs.poolCacheBytes(imageBytes: image) + pairs.heldOutCacheBytes(imageBytes: 0)
    }

    public var cacheFileBytes: Int { pairs.poolCacheFileBytes(imageBytes: 4 * chameleon.config.gridSize * chameleon.config.gridSize) }

    /// Keeps the training pool's codes in the run (EncodingCache), so a resume does not encode them again.
    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        guard pairs.cachesTraining else { return }
        let per = chameleon.config.tokensPerImage
        written.codes = try EncodingCache.save(codeCache, name: "codes", width: per, recipe: recipe, run: run, written: written.codes)
        written.edits = try EncodingCache.save(editCodeCache, name: "edit-codes", width: 2 * per, recipe: recipe, run: run,
                                               written: written.edits)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let tok = String(decoding: try JSONEncoder().encode(tokenizer), as: UTF8.self)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Config(model: chameleon.config, tokenizer: tok, vq: "vq.safetensors",
                                     imageSize: recipe.data.imageSize, cfg: recipe.diffusion.cfg,
                                     audioCodec: pairs.spoken == nil ? nil : SpokenCaptions.fileName,
                                     speechWPM: pairs.spoken?.wordsPerMinute, contextLength: recipe.data.seqLen,
                                     topK: recipe.sample.topK))
    }

    /// The held-out set in batches of `train.batch_size` rows (then the held-out corpus rows, with
    /// `data.text`), built at the first evaluation and kept.
    func heldOutBatches() throws -> [Batch] {
        if let heldOutCache { return heldOutCache }
        let c = chameleon.config, b = recipe.train.batchSize
        let rows = pairs.heldOutRows(count: recipe.eval.documents, imageLength: c.tokensPerImage, audioLength: c.audioLength)
            + (try pairs.heldOutCorpusRows(count: recipe.eval.textChunks))
        heldOutCache = try stride(from: 0, to: rows.count, by: b).map {
            try batch(heldOut, rows: Array(rows[$0..<min($0 + b, rows.count)]), cached: false, side: .heldOut)
        }
        return heldOutCache!
    }

    /// The held-out losses by kind of target (``HeldOutTally``): image codes count when the
    /// document generates them from text (or edits them), audio codes when it speaks.
    func heldOutTally() throws -> HeldOutTally {
        let c = chameleon.config, audio = Int32(c.textVocab + c.codebookSize)
        var tally = HeldOutTally()
        for x in try heldOutBatches() {
            let targets = x.targets.intScalars
            let losses = withoutGrad { rowCrossEntropies(chameleon.lm(x.ids, mask: x.mask, positions: x.positions), targets) }
            tally.addBatch(losses: losses, targets: targets, document: x.documentOf, docs: x.documents,
                           textVocab: Int32(c.textVocab), pairs: pairs) { id, doc in
                if id >= audio { return doc.speech == .fromCaption || doc.speech == .fromImage ? "audio" : nil }
                return doc.edit != nil || (doc.speech == nil && !doc.imageFirst) ? "image" : nil
            }
        }
        return tally
    }

    /// Held-out losses on the held-out set both families share (`eval.documents` documents, see
    /// HeldOutSet.swift), split like the Transfusion task's: text apart from the span markers (EOI
    /// after the codes is one), captioning apart from the caption prior; `loss_image` over the
    /// codes of images generated from text or edited, `loss_audio` over speech generated from text
    /// or images; `loss` over every target.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        let tally = try heldOutTally()
        var metrics = tally.metrics
        metrics["loss"] = tally.mean("all") ?? 0
        if let speech = speechEvaluation {
            if recipe.eval.speech > 0 { metrics.merge(try speech.report(count: recipe.eval.speech).metrics) { $1 } }
        }
        if recipe.eval.shapesEval > 0 { metrics.merge(shapesEvalMetrics(count: recipe.eval.shapesEval)) { $1 } }
        if recipe.eval.edits > 0 && recipe.data.editFraction > 0 {
            metrics.merge(EditEvalReport(checks: zip(0..<recipe.eval.edits, try edits(count: recipe.eval.edits)).map {
                EditEval(imageSize: recipe.data.imageSize).check(heldOutShapes.edit($0), image: $1)
            }).metrics()) { $1 }
        }
        return metrics
    }

    /// How speech codes are sampled: temperature 1 with the recipe's top-k.
    var speechSampling: SamplingOptions { SamplingOptions(temperature: 1, topK: recipe.sample.topK) }

    /// Speech scored on held-out spoken captions (nil without speech documents).
    var speechEvaluation: SpeechEvaluation? {
        pairs.spoken.map {
            SpeechEvaluation(chameleon: chameleon, tokenizer: tokenizer, spoken: $0, heldOut: pairs.speechSource(.heldOut), options: speechSampling,
                             cfgScale: recipe.diffusion.cfg, maxTokens: recipe.sample.maxTokens)
        }
    }

    /// The model being trained as an image–text model: codes sampled at temperature 1 with the
    /// recipe's top-k and CFG.
    var imageText: ImageTextModel {
        ImageTextModel(chameleon: chameleon, tokenizer: tokenizer, vq: vq, imageSize: recipe.data.imageSize,
                       contextLength: recipe.data.seqLen, options: SamplingOptions(temperature: 1, topK: recipe.sample.topK),
                       cfgScale: recipe.diffusion.cfg)
    }

    /// ShapesEval on about `count` prompts, one image each, with fixed randomness — the same
    /// prompts and seeds the Transfusion task scores.
    func shapesEvalMetrics(count: Int) -> [String: Double] { imageText.trainingShapesEval(prompts: count) }

    /// Edits of held-out triplets 0..<count (temperature 1, the recipe's top-k, CFG against the
    /// instruction dropped), triplet i drawing from `RNG(0xED17).split(i)` as the Transfusion task's.
    func edits(count: Int) throws -> [Image] {
        let base = RNG(seed: 0xED17), triplets = ImageCaptionPairs.editing(heldOut)
        let editor = ImageEditor(chameleon: chameleon, tokenizer: tokenizer, vq: vq, imageSize: recipe.data.imageSize,
                                 options: SamplingOptions(temperature: 1, topK: recipe.sample.topK), cfgScale: recipe.diffusion.cfg)
        return try (0..<count).map { i in
            editor.edit(try triplets.editImages(i).source, method: .instruction, instruction: triplets.editInstruction(i),
                        rng: base.split(UInt64(i)))
        }
    }

    /// samples/step-N.png (four images per prompt, sampled at temperature 1 with CFG) and
    /// step-N.txt (greedy captions of held-out images beside the truth); with edit triplets in the
    /// mixture also edits-step-N.png (source | target | edit, eight held-out triplets).
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        func describe(_ r: RNG) throws -> Tensor {
            let l = chameleon.config.audioLength, spoken = pairs.spoken!
            let ids = chameleon.sampleSpeechCodes(prompt: [SpecialTokens.bos] + chameleon.imageTokens(codes: try codes(heldOut, [0], cached: false)[0]),
                                                  count: 1, options: speechSampling, cfgScale: 1, rng: r)
            return spoken.codec.patches(fromCodes: ids.reshaped([l])).reshaped([1, l, spoken.patchDim])
        }
        try speechEvaluation?.writeSamples(step: step, to: dir, rng: rng, describe: pairs.describesImages ? describe : nil)
        if recipe.data.editFraction > 0 {
            let triplets = ImageCaptionPairs.editing(heldOut), n = min(8, triplets.editCount ?? 8)
            let cells = try zip(0..<n, edits(count: n)).flatMap { i, edited in
                let (source, target) = try triplets.editImages(i)
                return [source, target, edited]
            }
            try PNG.write(Image.grid(cells, columns: 3, padding: 2, background: 1),
                          to: dir.appendingPathComponent(String(format: "edits-step-%08d.png", step)).path)
        }
        return try pairs.writeSamples(step: step, to: dir, sample: { i, prompt in
            let ids = chameleon.sampleCodes(prompt: prompt, count: 4,
                                            options: SamplingOptions(temperature: 1, topK: recipe.sample.topK),
                                            cfgScale: recipe.diffusion.cfg, rng: rng.split(UInt64(i)))
            return withoutGrad { vq.decode(ids) }
        }, caption: { i in
            chameleon.caption(codes: try codes(heldOut, [i], cached: false)[0], maxTokens: recipe.sample.maxTokens,
                              options: SamplingOptions(temperature: 0), rng: rng)
        })
    }
}

extension ChameleonTask: HeldOutLossScoring {
    public func heldOutLosses() throws -> (kinds: [HeldOutLossReport.Kind], metrics: [String: Double]) {
        let tally = try heldOutTally()
        return (tally.documentKinds, tally.metrics)
    }
}
