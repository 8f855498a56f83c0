// The VAR task: the same ShapesWorld (or folder) pairs and mixture as the Transfusion and Chameleon
// tasks (caption first or image first, caption dropout, corpus text), with images as the code
// pyramids of a MultiScaleVQTokenizer (`model.image_tokenizer`, an msvq run's tokenizer). A
// caption-first document generates its image scale by scale (its block positions are scored
// against their codes); an image-first one reads the image as its full map and captions it.
// Cross-entropy everywhere, z-loss and QK-norm as the Chameleon baseline. Samples: PNG grids of
// sampled pyramids for the recipe's prompts and captions of held-out images. Not the model (VAR.swift).
import Data
import Evaluation
import Foundation
import Media
import NN
import Tensors
import Text
import Training

public final class VARTask: TrainingTask {
    public let network: VAR
    public let msvq: MultiScaleVQTokenizer
    public var model: Module { network }
    public let flopsPerMicroBatch: Double
    /// The held-out batches, built at the first evaluation.
    var heldOutCache: [Batch]?
    let recipe: Recipe
    let pairs: ImageCaptionPairs
    let docsPerRow: Int
    public var tokenizer: BPETokenizer { pairs.tokenizer }
    var world: any CaptionedImages { pairs.world }
    var heldOut: any CaptionedImages { pairs.heldOut }
    /// Code pyramids (every scale's codes, coarsest first) of training examples by pool index.
    var codeCache: [Int: [Int32]] = [:]
    /// Entries of the cache already in the run folder (EncodingCache).
    var written = 0

    /// What sampling needs to rebuild the model from a run.
    public struct Config: Codable {
        public var kind = ModelFamily.var.rawValue
        public var model: VARConfig
        public var tokenizer: String
        /// The multi-scale VQ tokenizer checkpoint, relative to the run folder.
        public var msvq: String
        public var imageSize: Int
        public var cfg: Float
        /// The positions of one training row (`data.seq_len`).
        public var contextLength: Int?
        /// The top-k image codes are sampled with (`sample.top_k`).
        public var topK: Int?
    }

    /// The file name of the run's copy of the multi-scale VQ tokenizer.
    public static let tokenizerFile = "msvq.safetensors"

    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        func refuse(_ key: String, _ message: String) -> RecipeError {
            .invalidValue(.init(file: "recipe '\(recipe.name)'"), path: key, message: message)
        }
        if recipe.train.initFrom != nil { throw refuse("train.init_from", "VAR runs start from scratch in this build; remove it") }
        if d.speechFraction > 0 { throw refuse("data.speech_fraction", "the var task has no speech documents in this build; use 0") }
        pairs = try ImageCaptionPairs(recipe: recipe, run: run, family: .var)
        msvq = try MultiScaleVQTokenizer.load(from: try ImageCaptionPairs.copyTokenizer(recipe: recipe, run: run, as: Self.tokenizerFile) {
            _ = try MultiScaleVQTokenizer.load(from: $0)
        })
        try ImageCaptionPairs.checkImageSize(recipe, downsample: msvq.config.base.downsample, what: "multi-scale VQ tokenizer")
        let grid = d.imageSize / msvq.config.base.downsample
        guard msvq.config.scales.last == grid else {
            throw refuse("data.image_size", "\(d.imageSize)-pixel images give a \(grid)×\(grid) code grid, but the tokenizer's "
                         + "last scale is \(msvq.config.scales.last!) (trained for \(msvq.config.scales.last! * msvq.config.base.downsample)-pixel images)")
        }
        var decoder = Presets.decoder(recipe.model)
        if recipe.model.qkNorm == nil { decoder.qkNorm = true }          // the Chameleon baseline's stabiliser by default
        let config = VARConfig(textVocab: recipe.model.vocabSize ?? pairs.tokenizer.vocabSize,
                               codebookSize: msvq.config.base.codebookSize, codeDim: msvq.config.base.codeDim,
                               scales: msvq.config.scales, decoder: decoder)
        guard d.seqLen >= config.blockPositions + 4 else {
            throw refuse("data.seq_len", "\(d.seqLen) cannot hold one image (\(config.blockPositions) codes over \(config.scales.count) scales + 4)")
        }
        let rng = RNG(seed: recipe.seed).split(0x7A25)
        network = VAR(config, rng: rng)
        network.initialise(rng: rng)
        network.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        let (perRow, avg) = pairs.docsPerRow(imageLength: config.blockPositions)
        docsPerRow = perRow
        if pairs.cachesTraining {
            codeCache = EncodingCache.load("pyramids", width: config.blockPositions, recipe: recipe, run: run)
            written = codeCache.count
        }
        let tokens = recipe.train.batchSize * d.seqLen
        flopsPerMicroBatch = network.trainingFlops(tokens: tokens, attended: avg / 2, scoredRows: tokens, imageRows: tokens)
    }

    // MARK: - Documents and batches

    /// Code pyramids of examples `indices` of `world` (through the cache for the training pool).
    func codes(_ world: any CaptionedImages, _ indices: [Int], cached: Bool) throws -> [[Int32]] {
        try pairs.encoded(world, indices, cached: cached, cache: &codeCache) { images in
            let maps: [[Int32]] = withoutGrad { msvq.encode(images) }.map(\.intScalars)   // per scale (n·s·s)
            let scales = msvq.config.scales
            return (0..<images.dim(0)).map { (i: Int) -> [Int32] in
                var pyramid: [Int32] = []
                for (map, s) in zip(maps, scales) { pyramid += map[(i * s * s)..<((i + 1) * s * s)] }
                return pyramid
            }
        }
    }

    /// A packed batch: ids, targets, mask and positions, each image's start, role and pyramid, and
    /// the documents with the document of each position (−1: padding).
    struct Batch {
        var input: VARInput
        var targets: Tensor
        var tokens: Int
        var documents: [ImageCaptionPairs.Document]
        var documentOf: [Int]
        /// The documents of each row.
        var rowDocuments: [Int]

        /// Rows `kept` alone: one data-parallel rank's share (its images and their code vectors).
        func rows(_ kept: Range<Int>, lengths: (VARImageRole) -> Int) -> Batch {
            let (b, t) = (input.ids.dim(0), input.ids.dim(1))
            if kept == 0..<b { return self }
            let flat = (kept.lowerBound * t)..<(kept.upperBound * t)
            let first = rowDocuments[..<kept.lowerBound].reduce(0, +), count = rowDocuments[kept].reduce(0, +)
            var images: [(start: Int, role: VARImageRole)] = [], slices: [Tensor] = [], offset = 0
            for image in input.images {
                let n = lengths(image.role)
                if flat.contains(image.start) {
                    images.append((image.start - flat.lowerBound, image.role))
                    slices.append(input.vectors!.slice(axis: 0, offset..<(offset + n)))
                }
                offset += n
            }
            let keptTargets = Array(targets.intScalars[flat])
            let share = VARInput(ids: Tensor(ints: Array(input.ids.intScalars[flat]), shape: [kept.count, t]),
                                positions: Tensor(ints: Array(input.positions.intScalars[flat])), mask: input.mask.rows(kept),
                                images: images, vectors: slices.isEmpty ? nil : concat(slices, axis: 0))
            return Batch(input: share, targets: Tensor(ints: keptTargets, shape: [kept.count, t]),
                         tokens: keptTargets.lazy.filter { $0 >= 0 }.count, documents: Array(documents[first..<(first + count)]),
                         documentOf: documentOf[flat].map { $0 < 0 ? $0 : $0 - first }, rowDocuments: Array(rowDocuments[kept]))
        }
    }

    /// Packed rows of `rows` documents of `world`: caption-first documents generate their images
    /// (``VARConfig/sequence(caption:codes:)``), image-first ones read them (``VARConfig/contextSequence(caption:)``).
    func batch(_ world: any CaptionedImages, rows taken: [[ImageCaptionPairs.Document]], cached: Bool) throws -> Batch {
        let t = recipe.data.seqLen, c = network.config
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], docs: [[Int32]] = [], spans: [[Int32]] = []
        var documents: [ImageCaptionPairs.Document] = [], documentOf: [Int] = [], tokens = 0, rowDocuments: [Int] = []
        var images: [(start: Int, role: VARImageRole)] = [], pyramids: [[Int32]] = []
        for (r, picked) in taken.enumerated() {
            var plain = try codes(world, picked.filter(\.hasImage).map(\.index), cached: cached)[...]
            var seqs: [MixedSequence] = [], roles: [VARImageRole?] = []
            for p in picked {
                if let corpus = p.corpus {
                    seqs.append(MixedSequence(segments: [.text(p.caption)], appendEOS: corpus.ends)); roles.append(nil)
                    continue
                }
                let pyramid = plain.removeFirst()
                pyramids.append(pyramid)
                seqs.append(p.imageFirst ? c.contextSequence(caption: p.caption) : c.sequence(caption: p.caption, codes: pyramid))
                roles.append(p.imageFirst ? .context : .blocks)
            }
            let row = try pack(seqs, length: t)
            for (k, role) in roles.enumerated() {
                guard let role else { continue }
                images.append((r * t + row.documents[k].lowerBound + seqs[k].spans[0].start, role))
            }
            documentOf += row.documentIDs.map { Int($0) < picked.count ? documents.count + Int($0) : -1 }
            documents += picked
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs); spans.append(row.spanIDs)
            tokens += row.targets.lazy.filter { $0 >= 0 }.count
            rowDocuments.append(picked.count)
        }
        var vectors: Tensor? = nil
        if !pyramids.isEmpty {
            let (blocks, full) = msvq.nextScaleInputs(c.maps(pyramids))
            let perImage = zip(images.indices, images).map { i, image in
                image.role == .blocks ? blocks.slice(axis: 0, i..<(i + 1)).reshaped([c.blockPositions, c.codeDim])
                    : full.slice(axis: 0, i..<(i + 1)).reshaped([c.contextPositions, c.codeDim])
            }
            vectors = concat(perImage, axis: 0)
        }
        let input = VARInput(ids: Tensor(ints: ids, shape: [taken.count, t]), positions: Tensor(ints: positions),
                             mask: try AttentionMask(documents: docs, spans: spans), images: images, vectors: vectors)
        return Batch(input: input, targets: Tensor(ints: targets, shape: [taken.count, t]), tokens: tokens,
                     documents: documents, documentOf: documentOf, rowDocuments: rowDocuments)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        try loss(microBatch: index, rows: 0..<recipe.train.batchSize, rng: rng)
    }

    /// Rows `rows` of the micro-batch, as the Chameleon task splits it: the whole micro-batch is
    /// drawn and packed, its rows kept, and the loss and each reported part divided by the whole
    /// micro-batch's count of their targets, so the ranks' shares add up (`isShare`).
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        let b = recipe.train.batchSize
        let taken = try (0..<b).map { r in
            try pairs.documents(world, row: index * b + r, perRow: docsPerRow, imageLength: network.config.blockPositions,
                                training: true, rng: rng)
        }
        let whole = try batch(world, rows: taken, cached: pairs.cachesTraining)
        let x = whole.rows(rows, lengths: network.length)
        let l = network.loss(x.input, targets: x.targets, zLoss: recipe.model.zLoss)
        let (positions, attended) = ImageCaptionPairs.realPositions(documentOf: x.documentOf, mask: x.input.mask)
        let imageRows = x.input.images.map { network.length($0.role) }.reduce(0, +)
        let flops = network.trainingFlops(tokens: positions, attended: attended, scoredRows: x.tokens, imageRows: imageRows)
        let parts = ["loss_text": l.text, "loss_image": l.image]
        guard rows != 0..<b else {
            return LossResult(total: l.total, parts: parts, tokens: x.tokens, examples: x.documents.count, flops: flops,
                              positions: positions)
        }
        let share = rankShare(total: l.total, parts: parts, names: ["loss_text", "loss_image"], kept: x.targets.intScalars,
                              whole: whole.targets.intScalars, split: network.partTargets)
        return LossResult(total: share.total, parts: share.parts, tokens: x.tokens, examples: x.documents.count, flops: flops,
                          positions: positions, isShare: true)
    }

    public var cacheBytes: Int {
        let pyramid = 4 * network.config.blockPositions
        return pairs.poolCacheBytes(imageBytes: pyramid) + pairs.heldOutCacheBytes(imageBytes: 4 * network.config.blockPositions * network.config.codeDim)
    }

    public var cacheFileBytes: Int { pairs.poolCacheFileBytes(imageBytes: 4 * network.config.blockPositions) }

    /// Keeps the training pool's pyramids in the run (EncodingCache), so a resume does not encode them again.
    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        guard pairs.cachesTraining else { return }
        written = try EncodingCache.save(codeCache, name: "pyramids", width: network.config.blockPositions, recipe: recipe, run: run,
                                         written: written)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let tok = String(decoding: try JSONEncoder().encode(tokenizer), as: UTF8.self)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Config(model: network.config, tokenizer: tok, msvq: Self.tokenizerFile, imageSize: recipe.data.imageSize,
                                     cfg: recipe.diffusion.cfg, contextLength: recipe.data.seqLen, topK: recipe.sample.topK))
    }

    // MARK: - Evaluation and samples

    /// The held-out set (the documents every image–text family is scored on) in batches of
    /// `train.batch_size` rows, then the held-out corpus rows; built at the first evaluation.
    func heldOutBatches() throws -> [Batch] {
        if let heldOutCache { return heldOutCache }
        let b = recipe.train.batchSize
        let rows = pairs.heldOutRows(count: recipe.eval.documents, imageLength: network.config.blockPositions, audioLength: 0)
            + (try pairs.heldOutCorpusRows(count: recipe.eval.textChunks))
        heldOutCache = try stride(from: 0, to: rows.count, by: b).map {
            try batch(heldOut, rows: Array(rows[$0..<min($0 + b, rows.count)]), cached: false)
        }
        return heldOutCache!
    }

    /// Held-out losses split like the other families': text apart from the markers, captioning
    /// apart from the caption prior, `loss_image` over the codes of images generated from text.
    func heldOutTally() throws -> HeldOutTally {
        var tally = HeldOutTally()
        for x in try heldOutBatches() {
            let targets = x.targets.intScalars
            let rows = Array(0..<targets.count)
            let losses = withoutGrad { rowCrossEntropies(network.logits(network(x.input), rows: rows), targets) }
            tally.addBatch(losses: losses, targets: targets, document: x.documentOf, docs: x.documents,
                           textVocab: Int32(network.config.textVocab), pairs: pairs) { _, doc in doc.imageFirst ? nil : "image" }
        }
        return tally
    }

    /// The held-out losses (``heldOutTally()``), `loss` over every target, and with
    /// `eval.shapes_eval` N > 0 ShapesEval scores of N prompts.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        let tally = try heldOutTally()
        var metrics = tally.metrics
        metrics["loss"] = tally.mean("all") ?? 0
        if recipe.eval.shapesEval > 0 {
            metrics.merge(imageText.trainingShapesEval(prompts: recipe.eval.shapesEval)) { $1 }
        }
        return metrics
    }

    /// The model being trained as an image–text model: codes sampled at temperature 1 with the
    /// recipe's top-k and CFG.
    var imageText: ImageTextModel {
        ImageTextModel(var: network, tokenizer: tokenizer, msvq: msvq, imageSize: recipe.data.imageSize, contextLength: recipe.data.seqLen,
                       options: SamplingOptions(temperature: 1, topK: recipe.sample.topK), cfgScale: recipe.diffusion.cfg)
    }

    /// samples/step-N.png (four images per prompt) and step-N.txt (greedy captions of held-out images).
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        let options = SamplingOptions(temperature: 1, topK: recipe.sample.topK)
        return try pairs.writeSamples(step: step, to: dir, sample: { i, prompt in
            let maps = network.sampleCodes(prompt: prompt, count: 4, tokenizer: msvq, options: options, cfgScale: recipe.diffusion.cfg,
                                           rng: rng.split(UInt64(i)))
            return withoutGrad { msvq.decode(maps) }
        }, caption: { i in
            network.caption(maps: network.config.maps([try codes(heldOut, [i], cached: false)[0]]), tokenizer: msvq,
                            maxTokens: recipe.sample.maxTokens, options: SamplingOptions(temperature: 0), rng: rng)
        })
    }
}

extension VARTask: HeldOutLossScoring {
    public func heldOutLosses() throws -> (kinds: [HeldOutLossReport.Kind], metrics: [String: Double]) {
        let tally = try heldOutTally()
        return (tally.documentKinds, tally.metrics)
    }
}
