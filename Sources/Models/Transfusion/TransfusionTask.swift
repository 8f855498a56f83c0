// The Transfusion task: ShapesWorld image–caption pairs as mixed sequences (caption first for
// text-to-image, image first for captioning) and optionally edit triplets (a clean source span, the
// instruction, a noised target span), images encoded once by a frozen VAE, noised per span, packed
// into rows, and optionally speech documents (spoken captions as audio spans: text to speech,
// speech to text, image to speech); loss = LM cross-entropy + λ·diffusion MSE (image and audio). Samples are PNG grids of images for the
// recipe's prompts and captions of held-out images. Can start from a trained run (fine-tuning).
// Not the model (Models/Transfusion).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Modalities
import Training
import NN
import Tensors
import Text

public final class TransfusionTask: TrainingTask, InitialisedFrom {
    public let transfusion: Transfusion
    /// What `train.init_from` loaded from a Hugging Face checkpoint (nil otherwise).
    public private(set) var initialisedFrom: String?
    public let vae: ImageVAE
    public let diffusion: GaussianDiffusion
    public var model: Module { transfusion }
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
    /// Latents (C·h·w values) of training examples by pool index, encoded on first use.
    var latentCache: [Int: [Float]] = [:]
    /// Latents of training edit triplets by index: source then target (2·C·h·w values).
    var editLatentCache: [Int: [Float]] = [:]
    /// Entries of each cache already in the run folder (EncodingCache).
    var written = (latents: 0, edits: 0)

    /// What `fusion sample` / `caption` / `generate` need to rebuild the model from a run.
    public struct Config: Codable {
        public var kind = ModelFamily.transfusion.rawValue
        public var model: TransfusionConfig
        /// The BPE tokenizer as JSON.
        public var tokenizer: String
        /// The VAE checkpoint, relative to the run folder.
        public var vae: String
        public var diffusion: DiffusionSection
        public var imageSize: Int
        /// The AudioCodec of speech spans, relative to the run folder (nil: no audio).
        public var audioCodec: String? = nil
        /// espeak-ng's words per minute for reference speech.
        public var speechWPM: Int? = nil
        /// The positions of one training row (`data.seq_len`): what sampling may use (nil: written
        /// before it was kept; ``SavedModel/trainedContext`` reads the run's recipe then).
        public var contextLength: Int? = nil
    }

    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        // train.init_from: a Fusion Transfusion run (the whole model, its tokenizer and VAE), or a
        // Hugging Face decoder (the decoder, and the text embedding and head when the sizes agree).
        let huggingFace = recipe.train.initFrom.flatMap { SavedModel.isHuggingFace($0) ? $0 : nil }
        let base = try recipe.train.initFrom.flatMap { huggingFace == nil ? try Self.startingRun($0, recipe: recipe, run: run) : nil }
        pairs = try ImageCaptionPairs(recipe: recipe, run: run, family: .transfusion)
        let tokenizer = pairs.tokenizer
        vae = try Self.copyVAE(recipe: recipe, run: run)
        diffusion = try Self.diffusion(recipe.diffusion)

        try ImageCaptionPairs.checkImageSize(recipe, downsample: vae.config.downsample, what: "VAE")
        let latent = vae.latentShape(height: d.imageSize, width: d.imageSize)      // [C, h, w]
        guard latent[1] == latent[2] else { throw RunError.io(recipe.model.imageTokenizer ?? "", "latents must be square") }
        let patchifier = recipe.model.patchifier
        guard latent[1] % recipe.model.patchSize == 0 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "model.patch_size",
                                           message: "\(recipe.model.patchSize) does not divide the \(latent[1])×\(latent[2]) latent grid")
        }
        let config = TransfusionConfig(
            vocab: recipe.model.vocabSize ?? tokenizer.vocabSize, decoder: Presets.decoder(recipe.model),
            latentChannels: latent[0], latentSize: latent[1], patchSize: recipe.model.patchSize, patchifier: patchifier,
            unetChannels: recipe.model.unetChannels, timestepScale: diffusion.target == .flow ? 1000 : 1,
            audioDim: pairs.spoken?.patchDim ?? 0, audioLength: pairs.spoken?.length ?? 0)
        guard d.seqLen >= config.patchesPerImage + 4 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold one image (\(config.patchesPerImage) patches + 4)")
        }
        guard d.editFraction == 0 || d.seqLen >= 2 * config.patchesPerImage + 6 else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold an edit triplet (2 × \(config.patchesPerImage) patches + 6)")
        }
        if let spoken = pairs.spoken, d.seqLen < config.patchesPerImage + spoken.length + 6 {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.seq_len",
                                           message: "\(d.seqLen) cannot hold an image and its speech (\(config.patchesPerImage) + "
                                               + "\(spoken.length) patches + 6): raise it or lower data.audio_patches")
        }
        let rng = RNG(seed: recipe.seed).split(0xB0D1)
        transfusion = Transfusion(config, rng: rng)
        transfusion.initialise(rng: rng)
        transfusion.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        if let base {
            // A run without audio can start a run that adds speech: its weights load, the audio layers start fresh.
            var withoutAudio = config
            withoutAudio.audioDim = 0; withoutAudio.audioLength = 0
            let addsAudio = !base.config.model.hasAudio && config.hasAudio && base.config.model == withoutAudio
            guard base.config.model == config || addsAudio else {
                throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "train.init_from",
                                               message: "\(base.checkpoint.path) holds a different model than the recipe's "
                                                   + "(checkpoint \(base.config.model), recipe \(config)): match the "
                                                   + "model and diffusion.target sections to the run's recipe.yaml")
            }
            try transfusion.load(transfusion.stateDict().merging(base.model.stateDict()) { $1 })
        }
        if let huggingFace {
            let loaded = try HuggingFaceImport.load(huggingFace, decoder: config.decoder, vocab: config.vocab)
            try transfusion.load(transfusion.stateDict().merging(loaded.weights) { $1 })
            initialisedFrom = loaded.summary + "; image and audio layers start fresh"
        }

        let (perRow, avg) = pairs.docsPerRow(imageLength: config.patchesPerImage)
        docsPerRow = perRow
        let images = recipe.train.batchSize * docsPerRow
        let textRows = Int(Double(images) * (avg - Double(config.patchesPerImage) - 2))
        // Speech documents trade an image for an audio span in a fraction of the documents (on average).
        let speech = Int((Double(images) * Double(d.speechFraction)).rounded())
        if pairs.cachesTraining {                                    // what the run encoded before it stopped
            let per = config.latentChannels * config.latentSize * config.latentSize
            latentCache = EncodingCache.load("latents", width: per, recipe: recipe, run: run)
            editLatentCache = EncodingCache.load("edit-latents", width: 2 * per, recipe: recipe, run: run)
            written = (latentCache.count, editLatentCache.count)
        }
        flopsPerMicroBatch = transfusion.trainingFlops(tokens: recipe.train.batchSize * d.seqLen, attended: avg / 2,
                                                       textRows: textRows, spans: [.image: images - speech, .audio: speech])
    }

    /// The run `train.init_from` names, loaded (EMA weights when kept), with its tokenizer and VAE
    /// copied into `run` (unless `run` has them: a resume), so the vocabulary and latents match.
    static func startingRun(_ path: String, recipe: Recipe, run: RunDirectory) throws -> TransfusionRun {
        let base: TransfusionRun
        do { base = try TransfusionRun(path: path) } catch { throw ImageCaptionPairs.initFromError(recipe, "\(path): \(error)") }
        try ImageCaptionPairs.adoptStartingRun(path, tokenizer: base.tokenizer, imageTokenizer: base.vaeURL, as: "vae.safetensors",
                                               what: "VAE", recipe: recipe, run: run)
        return base
    }

    /// Copies the recipe's VAE into the run (so a run is self-contained) and loads it.
    static func copyVAE(recipe: Recipe, run: RunDirectory) throws -> ImageVAE {
        try ImageVAE.load(from: try ImageCaptionPairs.copyTokenizer(recipe: recipe, run: run, as: "vae.safetensors") {
            _ = try ImageVAE.load(from: $0)
        })
    }

    /// The diffusion process a recipe's `diffusion:` section names.
    public static func diffusion(_ s: DiffusionSection) throws -> GaussianDiffusion {
        if s.target == .flow { return GaussianDiffusion(flow: FlowSchedule(steps: s.steps)) }
        return GaussianDiffusion(schedule: s.schedule.schedule(steps: s.steps), target: s.target)
    }

    // MARK: - Documents and batches

    /// One packed micro-batch: the model input, LM targets and diffusion targets.
    struct Batch {
        var input: TransfusionInput
        var targets: Tensor
        /// Per modality with spans: the diffusion targets of its scored spans, in span order, and
        /// which spans are scored (nil: all; edit sources and speech to transcribe are left out).
        var spanTargets: [Modality: SpanTargets]
        var tokens: Int
        var examples: Int
        /// The documents, in row order, and the document of each position (−1: padding).
        var documents: [ImageCaptionPairs.Document] = []
        var documentOf: [Int] = []
        /// The tokens (text targets and span positions) and documents of each row.
        var rowTokens: [Int] = []
        var rowDocuments: [Int] = []

        var rowCount: Int { input.ids.dim(0) }
        /// What each term of the loss is a mean over: text targets, and each modality's scored spans.
        var textTargets: Int { targets.intScalars.lazy.filter { $0 >= 0 }.count }
        func scoredSpans(_ modality: Modality) -> Int {
            spanTargets[modality]?.scoredCount(of: input.count(modality)) ?? 0
        }

        /// Rows `kept` alone (rows of `t` positions): the spans, noise, timesteps and targets they
        /// have in the whole batch. One data-parallel rank's share.
        func rows(_ kept: Range<Int>, length t: Int) -> Batch {
            if kept == 0..<rowCount { return self }
            let flat = (kept.lowerBound * t)..<(kept.upperBound * t)
            var x = input
            x.ids = Tensor(ints: Array(input.ids.intScalars[flat]), shape: [kept.count, t])
            x.positions = Tensor(ints: Array(input.positions.intScalars[flat]))
            x.mask = input.mask.rows(kept)
            x.spans = [:]
            var targets: [Modality: SpanTargets] = [:]
            for (modality, spans) in input.spans {
                let inRows = spans.starts.indices.filter { flat.contains(spans.starts[$0]) }
                x.spans[modality] = spans.selecting(inRows, shiftedBy: flat.lowerBound)
                if let whole = spanTargets[modality] { targets[modality] = Self.keep(inRows, of: whole) }
            }
            let firstDocument = rowDocuments[..<kept.lowerBound].reduce(0, +)
            let documentCount = rowDocuments[kept].reduce(0, +)
            return Batch(input: x, targets: Tensor(ints: Array(self.targets.intScalars[flat])), spanTargets: targets,
                         tokens: rowTokens[kept].reduce(0, +), examples: documentCount,
                         documents: Array(documents[firstDocument..<(firstDocument + documentCount)]),
                         documentOf: documentOf[flat].map { $0 < 0 ? $0 : $0 - firstDocument },
                         rowTokens: Array(rowTokens[kept]), rowDocuments: Array(rowDocuments[kept]))
        }

        /// The target rows and scored list of spans `kept` (ascending, contiguous) when `whole`
        /// holds one row per span its `scored` lists (nil: per span).
        static func keep(_ kept: [Int], of whole: SpanTargets) -> SpanTargets {
            var part = whole
            guard let first = kept.first else {
                if whole.scored != nil { part.scored = [] }
                return part
            }
            guard let scored = whole.scored else {
                part.values = whole.values.indexSelect(axis: 0, kept)
                return part
            }
            let rows = scored.indices.filter { kept.contains(scored[$0]) }
            if !rows.isEmpty { part.values = whole.values.indexSelect(axis: 0, rows) }
            part.scored = rows.map { scored[$0] - first }
            return part
        }
    }

    /// Latents (n, C, h, w) of examples `indices` of `world`, through the cache for the training pool.
    func latents(_ world: any CaptionedImages, _ indices: [Int], cached: Bool) throws -> Tensor {
        let c = transfusion.config, per = c.latentChannels * c.latentSize * c.latentSize
        let rows = try pairs.encoded(world, indices, cached: cached, cache: &latentCache) { images in
            let z = withoutGrad { vae.encode(images) }.scalars
            return (0..<images.dim(0)).map { Array(z[($0 * per)..<(($0 + 1) * per)]) }
        }
        return Tensor(rows.flatMap { $0 }, shape: [indices.count, c.latentChannels, c.latentSize, c.latentSize])
    }

    /// Latents of edit triplets `indices` of `world`: one row of 2·C·h·w values per triplet (source
    /// then target), through the cache for the training pool.
    func editLatents(_ world: any CaptionedImages, _ indices: [Int], cached: Bool) throws -> [[Float]] {
        let c = transfusion.config, per = 2 * c.latentChannels * c.latentSize * c.latentSize
        return try pairs.encoded(world, indices, cached: cached, cache: &editLatentCache, render: pairs.editImages) { images in
            let z = withoutGrad { vae.encode(images) }.scalars                       // (2n, C, h, w)
            return (0..<(images.dim(0) / 2)).map { Array(z[($0 * per)..<(($0 + 1) * per)]) }
        }
    }

    /// Rows `firstRow ..< firstRow + rows` of `world`: each document is one example laid out
    /// caption first (its caption dropped with probability `caption_dropout`) or image first
    /// (probability `image_first`, timestep capped at `image_first_max_t`), or an edit triplet
    /// (probability `data.edit_fraction`) whose source span is clean (t = 0, no loss) and whose
    /// target span is noised and scored.
    /// With `encoding`, only those rows' images and speech are encoded (a data-parallel rank's
    /// rows); the other rows' spans hold zeros, for ``Batch/rows(_:length:)`` to drop, while their
    /// documents, timesteps and noise are drawn as in the whole batch.
    func batch(_ world: any CaptionedImages, firstRow: Int, rows: Int, rng: RNG, training: Bool,
               encoding: Range<Int>? = nil) throws -> Batch {
        let d = recipe.diffusion, np = transfusion.config.patchesPerImage
        var taken: [[ImageCaptionPairs.Document]] = [], steps: [Float] = [], audioSteps: [Float] = []
        for r in 0..<rows {
            taken.append(try pairs.documents(world, row: firstRow + r, perRow: docsPerRow, imageLength: np,
                                             training: training, rng: rng) { doc in
                if doc.corpus != nil { steps.append(0); return }         // no span: a placeholder keeps one step per document
                guard let kind = doc.speech else {
                    steps += diffusion.sampleTimesteps(n: 1, rng: rng, maxT: doc.imageFirst ? d.imageFirstMaxT : nil)
                    return
                }
                // The span read first (an image described aloud, speech transcribed) is noise-limited.
                steps += kind == .fromImage ? diffusion.sampleTimesteps(n: 1, rng: rng, maxT: d.imageFirstMaxT) : [0]
                audioSteps += diffusion.sampleTimesteps(n: 1, rng: rng, maxT: kind == .toCaption ? d.imageFirstMaxT : nil)
            })
        }
        return try batch(world, rows: taken, steps: steps, audioSteps: audioSteps, noise: rng, cached: training && pairs.cachesTraining,
                         side: training ? .train : .heldOut, encoding: encoding)
    }

    /// `rows` of documents of `world` laid out and packed: image spans noised to `steps` (one per
    /// document, in order; ignored for documents without an image), speech spans to `audioSteps`
    /// (one per speech document), the noise drawn from `noise`. With `conditionsClean`, what a
    /// document reads first — the image of an image-first document, the speech of a speech-to-text
    /// one — is given clean (t = 0) and carries no diffusion loss, as when the model captions or
    /// transcribes (held-out scoring); otherwise it is noised to its capped step and scored, as in
    /// training. Speech documents read `side`'s utterances.
    func batch(_ world: any CaptionedImages, rows taken: [[ImageCaptionPairs.Document]], steps: [Float], audioSteps: [Float],
               noise rng: RNG, cached: Bool, side: ImageCaptionPairs.Side, conditionsClean: Bool = false,
               encoding: Range<Int>? = nil) throws -> Batch {
        let d = recipe.diffusion, t = recipe.data.seqLen, c = transfusion.config
        let np = c.patchesPerImage, l = c.audioLength
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], documentOf: [Int] = []
        var docs: [[Int32]] = [], spans: [[Int32]] = [], starts: [Int] = [], audioStarts: [Int] = []
        var documents: [ImageCaptionPairs.Document] = []
        var rowTokens: [Int] = [], rowDocuments: [Int] = [], documentRow: [Int] = []
        for (r, taken) in taken.enumerated() {
            let seqs = taken.map { doc -> MixedSequence in
                if let corpus = doc.corpus { return MixedSequence(segments: [.text(doc.caption)], appendEOS: corpus.ends) }
                if let edit = doc.edit {
                    return MixedSequence(segments: (edit.keepSource ? [.image(patches: np)] : [])
                                         + [.text(edit.instruction), .image(patches: np)])
                }
                switch doc.speech {
                case .fromCaption: return MixedSequence(segments: [.text(doc.caption), .audio(frames: l)])
                case .toCaption: return MixedSequence(segments: [.audio(frames: l), .text(doc.caption)])
                case .fromImage: return MixedSequence(segments: [.image(patches: np), .audio(frames: l)])
                case nil:
                    return MixedSequence(segments: doc.imageFirst ? [.image(patches: np), .text(doc.caption)]
                                                                  : [.text(doc.caption), .image(patches: np)])
                }
            }
            let row = try pack(seqs, length: t)
            documentOf += row.documentIDs.map { Int($0) < taken.count ? documents.count + Int($0) : -1 }
            documents += taken
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs); spans.append(row.spanIDs)
            starts += row.spans.filter { $0.modality == .image }.map { r * t + $0.start }
            audioStarts += row.spans.filter { $0.modality == .audio }.map { r * t + $0.start }
            rowTokens.append(row.targets.lazy.filter { $0 >= 0 }.count + row.spans.reduce(0) { $0 + $1.length })
            rowDocuments.append(taken.count)
            documentRow += Array(repeating: r, count: taken.count)
        }
        let mask = try AttentionMask(documents: docs, spans: spans, causalSpans: d.causalSpans)
        let shape = [c.latentChannels, c.latentSize, c.latentSize]
        let per = shape.reduce(1, *)
        // Clean latents of every image span in order; edit sources stay clean at t = 0 and unscored.
        // Documents outside `encoding`'s rows get zeros of the same size (and are never read).
        func encoded<T>(_ which: (ImageCaptionPairs.Document) -> Bool, width: Int,
                        _ encode: ([Int]) throws -> [[T]]) rethrows -> [[T]] where T: Numeric {
            let picked = documents.indices.filter { which(documents[$0]) }
            let wanted = picked.filter { encoding?.contains(documentRow[$0]) ?? true }
            var got = try (wanted.isEmpty ? [] : encode(wanted.map { documents[$0].index }))[...]
            return picked.map { encoding?.contains(documentRow[$0]) ?? true ? got.removeFirst() : [T](repeating: 0, count: width) }
        }
        let plain = try encoded({ $0.edit == nil && $0.hasImage }, width: per) { indices in
            let z = try latents(world, indices, cached: cached).scalars
            return (0..<indices.count).map { Array(z[($0 * per)..<(($0 + 1) * per)]) }
        }.flatMap { $0 }
        let edits = try encoded({ $0.edit != nil }, width: 2 * per) { try editLatents(world, $0, cached: cached) }
        var x0: [Float] = [], times: [Float] = [], scored: [Int] = [], sources: [Int] = []
        var nextPlain = 0, nextEdit = 0
        for (doc, step) in zip(documents, steps) where doc.hasImage {
            if let edit = doc.edit {
                let pair = edits[nextEdit]; nextEdit += 1
                if edit.keepSource {
                    sources.append(times.count)
                    x0 += pair[..<per]; times.append(0)
                }
                scored.append(times.count)
                x0 += pair[per...]; times.append(step)
            } else {
                let clean = conditionsClean && doc.imageFirst
                if clean { sources.append(times.count) } else { scored.append(times.count) }
                x0 += plain[(nextPlain * per)..<((nextPlain + 1) * per)]; times.append(clean ? 0 : step)
                nextPlain += 1
            }
        }
        let clean = Tensor(x0, shape: [times.count] + shape)
        let scoredX0 = sources.isEmpty ? clean : clean.indexSelect(axis: 0, scored)
        let scoredT = scored.map { times[$0] }
        let noise = rng.normal(scoredX0.shape)
        let noisy = diffusion.qSample(x0: scoredX0, t: scoredT, noise: noise)
        var spanLatents = noisy
        if !sources.isEmpty {
            // Interleave: row k of the input is the noisy row of scored span k, or the clean source.
            var values = x0
            let z = noisy.scalars
            for (j, k) in scored.enumerated() {
                values.replaceSubrange((k * per)..<((k + 1) * per), with: z[(j * per)..<((j + 1) * per)])
            }
            spanLatents = Tensor(values, shape: [times.count] + shape)
        }
        var input = TransfusionInput(ids: Tensor(ints: ids, shape: [taken.count, t]), positions: Tensor(ints: positions), mask: mask)
        if !times.isEmpty { input.spans[.image] = SpanBatch(spanLatents, timesteps: times, starts: starts) }
        var spanTargets: [Modality: SpanTargets] = [
            .image: SpanTargets(diffusion.trainingTarget(x0: scoredX0, noise: noise, t: scoredT), scored: sources.isEmpty ? nil : scored,
                                weight: d.lossWeight)]
        if let spoken = pairs.spoken, !audioSteps.isEmpty {
            // Speech spans, noised and scored (speech to transcribe given clean with conditionsClean): (m, L, D).
            let speaking = documents.filter { $0.speech != nil }
            let speech = try encoded({ $0.speech != nil }, width: l * c.audioDim) {
                try spoken.patches(pairs.speechSource(side), $0, cached: side == .train && pairs.cachesSpeech)
            }
            let a0 = Tensor(speech.flatMap { $0 }, shape: [speech.count, l, c.audioDim])
            let audioNoise = rng.normal(a0.shape)
            let clean = speaking.indices.filter { conditionsClean && speaking[$0].speech == .toCaption }
            let steps = audioSteps.enumerated().map { clean.contains($0.offset) ? 0 : $0.element }
            var noisy = diffusion.qSample(x0: a0, t: steps, noise: audioNoise)
            var audioTargets = SpanTargets(diffusion.trainingTarget(x0: a0, noise: audioNoise, t: steps), weight: d.lossWeight)
            if !clean.isEmpty {
                let keep = speaking.indices.filter { !clean.contains($0) }
                var values = noisy.scalars
                let clean0 = a0.scalars, per = l * c.audioDim
                for k in clean { values.replaceSubrange((k * per)..<((k + 1) * per), with: clean0[(k * per)..<((k + 1) * per)]) }
                noisy = Tensor(values, shape: a0.shape)
                if !keep.isEmpty { audioTargets.values = audioTargets.values.indexSelect(axis: 0, keep) }   // none: scored as 0
                audioTargets.scored = keep
            }
            input.spans[.audio] = SpanBatch(noisy, timesteps: steps, starts: audioStarts)
            spanTargets[.audio] = audioTargets
        }
        return Batch(input: input, targets: Tensor(ints: targets), spanTargets: spanTargets,
                     tokens: rowTokens.reduce(0, +), examples: documents.count, documents: documents, documentOf: documentOf,
                     rowTokens: rowTokens, rowDocuments: rowDocuments)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        try loss(microBatch: index, rows: 0..<recipe.train.batchSize, rng: rng)
    }

    /// Rows `rows` of the micro-batch: the whole micro-batch is drawn (documents, timesteps,
    /// noise: cheap beside the model; only these rows' images are encoded), its rows kept, and each term of the loss divided by the
    /// whole micro-batch's count of its kind (text targets, scored image and audio spans), so the
    /// ranks' shares add up to the single-process loss (`isShare`). All rows: the plain loss.
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        let b = recipe.train.batchSize
        let whole = try batch(world, firstRow: index * b, rows: b, rng: rng, training: true, encoding: rows)
        let x = whole.rows(rows, length: recipe.data.seqLen)
        let l = transfusion.loss(x.input, targets: x.targets, spanTargets: x.spanTargets, zLoss: recipe.model.zLoss)
        let (flops, positions) = trainingFlops(x)
        let logged = pairs.loggedLosses(transfusion.adapters.map(\.modality))
        guard rows != 0..<b else {
            var parts = ["loss_text": l.text.item]
            for m in logged { parts["loss_\(m)"] = l.spans[m]!.item }
            return LossResult(total: l.total, parts: parts, tokens: x.tokens, examples: x.examples, flops: flops, positions: positions)
        }
        func share(_ part: Int, of all: Int) -> Float { all == 0 ? 0 : Float(part) / Float(all) }
        let text = share(x.textTargets, of: whole.textTargets)
        var parts = ["loss_text": l.text.item * text], total = l.text * text
        for adapter in transfusion.adapters {
            let m = adapter.modality, part = share(x.scoredSpans(m), of: whole.scoredSpans(m))
            if logged.contains(m) { parts["loss_\(m)"] = l.spans[m]!.item * part }
            total = total + l.spans[m]! * ((x.spanTargets[m]?.weight ?? 0) * part)
        }
        return LossResult(total: total, parts: parts,
                          tokens: x.tokens, examples: x.examples, flops: flops, positions: positions, isShare: true)
    }

    /// The batch's training FLOPs on its real positions (padding queries left out) and how many
    /// real positions it holds.
    func trainingFlops(_ x: Batch) -> (flops: Double, positions: Int) {
        let (positions, attended) = ImageCaptionPairs.realPositions(documentOf: x.documentOf, mask: x.input.mask)
        let flops = transfusion.trainingFlops(tokens: positions, attended: attended,
                                              textRows: x.targets.intScalars.lazy.filter { $0 >= 0 }.count,
                                              spans: x.input.spans.mapValues(\.count))
        return (flops, positions)
    }

    public var cacheBytes: Int {
        let c = transfusion.config, image = 4 * c.latentChannels * c.latentSize * c.latentSize
        // The held-out batches: clean or noised latents, their targets, and the rows' ids.
        return pairs.poolCacheBytes(imageBytes: image) + pairs.heldOutCacheBytes(imageBytes: 2 * image)
    }

    public var cacheFileBytes: Int {
        pairs.poolCacheFileBytes(imageBytes: 4 * transfusion.config.latentChannels * transfusion.config.latentSize * transfusion.config.latentSize)
    }

    /// Keeps the training pool's latents in the run (EncodingCache), so a resume does not encode them again.
    public func didSaveCheckpoint(step: Int, run: RunDirectory) throws {
        guard pairs.cachesTraining else { return }
        let c = transfusion.config, per = c.latentChannels * c.latentSize * c.latentSize
        written.latents = try EncodingCache.save(latentCache, name: "latents", width: per, recipe: recipe, run: run, written: written.latents)
        written.edits = try EncodingCache.save(editLatentCache, name: "edit-latents", width: 2 * per, recipe: recipe, run: run,
                                               written: written.edits)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let tok = String(decoding: try JSONEncoder().encode(tokenizer), as: UTF8.self)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Config(model: transfusion.config, tokenizer: tok, vae: "vae.safetensors",
                                     diffusion: recipe.diffusion, imageSize: recipe.data.imageSize,
                                     audioCodec: pairs.spoken == nil ? nil : SpokenCaptions.fileName,
                                     speechWPM: pairs.spoken?.wordsPerMinute, contextLength: recipe.data.seqLen))
    }

    /// The held-out set in batches of `train.batch_size` rows, image spans noised to levels drawn
    /// per document (`RNG(0x7135_E7A1).split(j)`), what is read first given clean; then the
    /// held-out corpus rows (`eval.text_chunks`) when the recipe mixes in `data.text`. Built at the
    /// first evaluation (images encoded, speech synthesised) and kept: every evaluation reads the
    /// same batches.
    func heldOutBatches() throws -> [Batch] {
        if let heldOutCache { return heldOutCache }
        let c = transfusion.config, b = recipe.train.batchSize
        let rows = pairs.heldOutRows(count: recipe.eval.documents, imageLength: c.patchesPerImage, audioLength: c.audioLength)
            + (try pairs.heldOutCorpusRows(count: recipe.eval.textChunks))
        heldOutCache = try stride(from: 0, to: rows.count, by: b).enumerated().map { k, first in
            let chunk = Array(rows[first..<min(first + b, rows.count)])
            var steps: [Float] = [], audioSteps: [Float] = []
            for doc in chunk.joined() {
                if doc.corpus != nil { steps.append(0); continue }
                let noise = RNG(seed: 0x7135_E7A1).split(UInt64(doc.index))       // the document's own noise levels
                steps += diffusion.sampleTimesteps(n: 1, rng: noise)
                if doc.speech != nil { audioSteps += diffusion.sampleTimesteps(n: 1, rng: noise) }
            }
            return try batch(heldOut, rows: chunk, steps: steps, audioSteps: audioSteps, noise: RNG(seed: 0xE7A1).split(UInt64(k)),
                             cached: false, side: .heldOut, conditionsClean: true)
        }
        return heldOutCache!
    }

    /// The held-out losses by kind of target (``HeldOutTally``).
    func heldOutTally() throws -> HeldOutTally {
        var tally = HeldOutTally()
        for x in try heldOutBatches() {
            let targets = x.targets.intScalars
            let s = transfusion.scores(x.input, targets: targets, spanTargets: x.spanTargets)
            tally.addBatch(losses: s.text, targets: targets, document: x.documentOf, docs: x.documents,
                           textVocab: Int32(transfusion.config.vocab), pairs: pairs)
            for m in x.spanTargets.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
                tally.add("\(m)", mean: Double(s.spans[m] ?? 0), count: x.scoredSpans(m))
            }
        }
        return tally
    }

    /// Held-out losses on the held-out set both families share (``ImageCaptionPairs/heldOutRows(count:imageLength:audioLength:)``,
    /// `eval.documents` documents): text split from the span markers and captioning from the caption
    /// prior (``HeldOutTally``), scored with the image of image-first documents clean (t = 0, as
    /// the captioner reads it); the diffusion loss of generated spans at noise levels drawn per
    /// document, so evaluations at different steps compare. With `eval.shapes_eval` N > 0 also
    /// ShapesEval scores of N prompts (TransfusionEvaluation.swift).
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        let tally = try heldOutTally()
        var metrics = tally.metrics
        let lambda = Double(recipe.diffusion.lossWeight)
        metrics["loss"] = (tally.mean("lm") ?? 0) + lambda * ((tally.mean("image") ?? 0) + (tally.mean("audio") ?? 0))
        if recipe.eval.speech > 0, pairs.spoken != nil { metrics.merge(try speechEvalMetrics(count: recipe.eval.speech)) { $1 } }
        if recipe.eval.shapesEval > 0 { metrics.merge(shapesEvalMetrics(count: recipe.eval.shapesEval)) { $1 } }
        if recipe.eval.edits > 0 && recipe.data.editFraction > 0 {
            metrics.merge(try editEvalMetrics(count: recipe.eval.edits)) { $1 }
        }
        return metrics
    }

    /// The image-sampling settings of the recipe.
    public var imageOptions: ImageSamplingOptions {
        let d = recipe.diffusion
        return ImageSamplingOptions(diffusion: diffusion, sampler: d.sampler,
                                    steps: d.sampleSteps, cfgScale: d.cfg, clipX0: d.clipX0 > 0 ? d.clipX0 : nil)
    }

    /// samples/step-N.png: four images for each prompt (rows), and step-N.txt: captions of
    /// held-out images next to their true captions. With ShapesWorld edit triplets in the mixture, also samples/edits-step-N.png (TransfusionEditEvaluation.swift);
    /// with speech documents, speech-step-N-K.wav and speech-step-N.txt (SpeechEvaluation.swift).
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        if recipe.data.editFraction > 0 { try writeEditSamples(step: step, to: dir) }
        try writeSpeechSamples(step: step, to: dir, rng: rng)
        return try pairs.writeSamples(step: step, to: dir, sample: { i, prompt in
            let z = transfusion.sampleImages(prompt: prompt, count: 4, options: imageOptions, rng: rng.split(UInt64(i)))
            return withoutGrad { vae.decode(z) }
        }, caption: { i in
            transfusion.caption(latents: try latents(heldOut, [i], cached: false), maxTokens: recipe.sample.maxTokens,
                                options: SamplingOptions(temperature: 0), rng: rng)
        })
    }
}

extension TransfusionTask: HeldOutLossScoring {
    public func heldOutLosses() throws -> (kinds: [HeldOutLossReport.Kind], metrics: [String: Double]) {
        let tally = try heldOutTally()
        return (tally.documentKinds, tally.metrics)
    }
}
