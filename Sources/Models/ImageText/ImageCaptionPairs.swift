// The image–caption data both mixed-modal tasks (Transfusion, Chameleon) train on: the training
// and held-out examples (ShapesWorld worlds or the two sides of a folder's split), the run's BPE
// tokenizer and copy of the image tokenizer, the training order (finite pool, a folder's epochs),
// the per-document mixture (caption first, image first, edit triplets, speech documents) and
// tokenization. Not how images or speech are encoded (each task its own way) and not the sequence
// layout.
import Data
import Foundation
import Media
import Training
import NN
import Tensors
import Text

struct ImageCaptionPairs {
    let recipe: Recipe
    /// Training examples: a ShapesWorld, or a folder's training rows.
    let world: any CaptionedImages
    /// Held-out examples: a ShapesWorld of its own seed, or a folder's held-out rows.
    let heldOut: any CaptionedImages
    let tokenizer: BPETokenizer
    /// The run's audio codec and speech spans, when the mixture has speech documents.
    let spoken: SpokenCaptions?
    /// The utterances speech documents read, training and held-out: ShapesWorld captions spoken by
    /// espeak-ng, or the two sides of `data.speech`'s split; nil without speech documents.
    let speech: (train: any SpokenTexts, heldOut: any SpokenTexts)?
    /// The `data.text` corpus whose chunks fill `data.text_fraction` of the rows (CorpusRows.swift).
    let corpus: TextCorpus?

    /// One document of a row: which example, its order, and its caption ids (empty when dropped);
    /// for an edit document, `index` is the triplet's (the source's ``EditTriplets``) and `edit` is set.
    struct Document {
        var index: Int
        var imageFirst: Bool
        var caption: [Int32]
        var edit: Edit? = nil
        /// Set for a speech document; `caption` then holds the spoken words (empty when dropped) and
        /// `index` is the utterance's (``speechIndex(_:document:index:)``).
        var speech: SpeechKind? = nil
        /// Set for corpus text (`BOS text [EOS]`); `caption` then holds the text and `index` its chunk.
        var corpus: Corpus? = nil

        /// Whether the document holds an image of example `index` (every kind but text ↔ speech
        /// and corpus text; an edit holds the triplet's two images).
        var hasImage: Bool { corpus == nil && (speech == nil || speech == .fromImage) }
    }

    /// Corpus text: whether it ends in EOS (a whole JSONL document) or was cut (a plain-text chunk,
    /// a document longer than the row).
    struct Corpus {
        var ends: Bool
    }

    /// The kinds of speech document, in the order of `data.speech_mix`.
    enum SpeechKind: Int, CaseIterable {
        /// `BOS words BOA [speech] EOA EOS`: text to speech.
        case fromCaption
        /// `BOS BOA [speech] EOA words EOS`: speech to text.
        case toCaption
        /// `BOS BOI [image] EOI BOA [speech] EOA EOS`: an image described aloud.
        case fromImage
    }

    /// An edit document `BOS BOI [source] EOI instruction BOI [target] EOI EOS`: the instruction ids
    /// (empty when dropped) and whether the source span is there (dropped: `BOS instruction BOI
    /// [target] EOI EOS`).
    struct Edit {
        var instruction: [Int32]
        var keepSource: Bool
    }

    init(recipe: Recipe, run: RunDirectory, family task: ModelFamily, quantizedSpeech: Bool = false) throws {
        guard recipe.data.editFraction == 0 || task.capabilities.contains(.editTriplets) else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.edit_fraction",
                                           message: "the \(task) task does not train on edit triplets in this build; use 0")
        }
        self.recipe = recipe
        let d = recipe.data
        try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        let corpus = try Self.corpus(recipe)
        self.corpus = corpus
        if d.source == .folder { try Self.checkFolderRecipe(recipe, family: task) }
        (world, heldOut) = try Self.sources(recipe, family: task)
        if d.editFraction > 0, let train = world as? FolderImageCaptions, let held = heldOut as? FolderImageCaptions,
           train.edits.isEmpty || held.edits.isEmpty {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.edit_fraction",
                                           message: "\(train.dataset.metadata.path) has \(train.edits.count) training and "
                                               + "\(held.edits.count) held-out edit rows (source_file, instruction, target_file; "
                                               + "split by source_file); edits need both, or use 0")
        }
        let speech = try Self.speechSources(recipe, world: world, heldOut: heldOut)
        self.speech = speech
        // The corpus is made only when the run has no tokenizer yet (the argument is an autoclosure):
        // the captions, a folder's training transcripts, a sample of the text corpus.
        tokenizer = try LMTask.tokenizer(recipe: recipe, run: run, corpus: Self.captions(world) + Self.transcripts(speech?.train)
                                             + (try Self.corpusSample(corpus)))
        spoken = try speech.map { try SpokenCaptions(recipe: recipe, run: run, source: $0.train, quantized: quantizedSpeech) }
    }

    /// The utterances of a recipe's speech documents (nil when `data.speech_fraction` is 0): the
    /// two sides of the `data.speech` folder's split (its `.wav` rows, split like images), or
    /// ShapesWorld's captions of `world` and `heldOut` spoken by espeak-ng.
    static func speechSources(_ recipe: Recipe, world: any CaptionedImages, heldOut: any CaptionedImages) throws
        -> (train: any SpokenTexts, heldOut: any SpokenTexts)? {
        let d = recipe.data
        func error(_ key: String, _ message: String) -> RecipeError {
            .invalidValue(.init(file: "recipe '\(recipe.name)'"), path: key, message: message)
        }
        guard d.speechFraction > 0 else {
            if let folder = d.speech {
                throw error("data.speech", "names recordings (\(folder)), but data.speech_fraction is 0: say which fraction of "
                            + "the documents are speech")
            }
            if recipe.eval.speech > 0 {
                throw error("eval.speech", "scores speech, but the recipe has no speech documents (data.speech_fraction 0): "
                            + "use 0, or mix speech in")
            }
            return nil
        }
        guard d.speechMix.count == SpeechKind.allCases.count, d.speechMix.reduce(0, +) > 0 else {
            throw error("data.speech_mix", "needs 3 weights (caption → speech, speech → caption, image → speech) "
                        + "that are not all 0, got \(d.speechMix)")
        }
        if let folder = d.speech {
            guard d.speechMix[SpeechKind.fromImage.rawValue] == 0 else {
                throw error("data.speech_mix", "image → speech needs a recording of each image's description, which "
                            + "\(folder) does not pair; use [\(d.speechMix[0]), \(d.speechMix[1]), 0]")
            }
            let dataset = try FolderDataset(folder: folder)
            let train = try FolderSpeech(dataset: dataset, split: .train, heldOut: Double(d.heldOut), skipBad: d.skipBad)
            let held = try FolderSpeech(dataset: dataset, split: .heldOut, heldOut: Double(d.heldOut), skipBad: d.skipBad)
            reportSkipped(train.skipped + held.skipped, of: dataset)
            return (train, held)
        }
        guard let train = world as? ShapesWorld, let held = heldOut as? ShapesWorld else {
            throw error("data.speech_fraction", "with data.source \(d.source), speech documents need recordings: add "
                        + "'speech: DIR' under 'data:' (a folder of .wav files with their transcripts), or use 0")
        }
        guard Speech.espeak != nil else { throw error("data.speech_fraction", "\(SpeechError.espeakMissing)") }
        return (ShapesSpeech(world: train, wordsPerMinute: d.speechWPM), ShapesSpeech(world: held, wordsPerMinute: d.speechWPM))
    }

    /// A side of the data: what a task is training on, or what it is scored on.
    enum Side { case train, heldOut }

    /// The utterances speech documents of `side` read (the mixture has speech documents).
    func speechSource(_ side: Side) -> any SpokenTexts {
        guard let speech else { preconditionFailure("ImageCaptionPairs: no speech documents in this recipe") }
        return side == .train ? speech.train : speech.heldOut
    }

    /// The utterance speech document number `n` of `side` reads: `index` (the document's example)
    /// from ShapesWorld, whose utterance `i` describes image `i`; from a folder's training
    /// recordings epoch after epoch in a fresh order each (as images), its held-out ones in turn.
    func speechIndex(_ side: Side, document n: Int, index: Int) -> Int {
        guard let count = speechSource(side).count else { return index }
        return side == .train ? IndexPermutation(count, seed: recipe.seed ^ 0x5BEE, round: n / count)(n % count) : n % count
    }

    /// Whether the run trains image → speech documents (an image described aloud).
    /// Which of a model's span modalities a run logs a `loss_<modality>` part for: images always,
    /// audio in runs with speech documents.
    func loggedLosses(_ modalities: [Modality]) -> [Modality] { modalities.filter { $0 != .audio || spoken != nil } }

    var describesImages: Bool { speech != nil && recipe.data.speechMix[SpeechKind.fromImage.rawValue] > 0 }

    /// Whether training speech patches are encoded once and kept: a finite pool or recordings.
    var cachesSpeech: Bool { recipe.data.pool > 0 || speech?.train.count != nil }

    /// The training and held-out examples of a recipe's data section: ShapesWorld worlds of the
    /// recipe's seed and of the fixed held-out seed (``LMTask/heldOutShapesSeed``), or the two sides of a folder's split.
    static func sources(_ recipe: Recipe, family task: ModelFamily) throws -> (train: any CaptionedImages, heldOut: any CaptionedImages) {
        let d = recipe.data
        switch d.source {
        case .shapes:
            return (ShapesWorld(seed: recipe.seed, imageSize: d.imageSize), ShapesWorld(seed: LMTask.heldOutShapesSeed, imageSize: d.imageSize))
        case .folder:
            let dataset = try FolderDataset(folder: d.path!, imageSize: d.imageSize)
            let train = try FolderImageCaptions(dataset: dataset, split: .train, heldOut: Double(d.heldOut), skipBad: d.skipBad)
            let heldOut = try FolderImageCaptions(dataset: dataset, split: .heldOut, heldOut: Double(d.heldOut), skipBad: d.skipBad)
            reportSkipped(train.skipped + heldOut.skipped, of: dataset)
            return (train, heldOut)
        default:
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.source",
                                           message: "the \(task) task trains on 'shapes' or 'folder' (image–caption pairs), not '\(d.source.rawValue)'")
        }
    }

    /// Prints the bad rows `data.skip_bad` left out of `dataset` (the first five, and how many more).
    static func reportSkipped(_ skipped: [String], of dataset: FolderDataset) {
        guard !skipped.isEmpty else { return }
        let lines = ["data: left out \(skipped.count) bad rows of \(dataset.metadata.path) (data.skip_bad):"]
            + skipped.prefix(5).map { "  " + $0 } + (skipped.count > 5 ? ["  … and \(skipped.count - 5) more"] : [])
        FileHandle.standardError.write(Foundation.Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    /// The text a BPE for `source` is trained on: ShapesWorld's captions, questions and answers
    /// (``LMTask/shapesCorpus(_:)``, of seed 0's world whatever the run's seed), or every caption of a finite source.
    static func captions(_ source: any CaptionedImages) -> [String] {
        source is ShapesWorld ? LMTask.shapesCorpus(ShapesWorld(seed: LMTask.corpusShapesSeed))
                              : (0..<(source.count ?? 0)).map(source.caption)
    }

    /// The training transcripts of a folder's recordings, for the BPE (none from a generator, whose
    /// words the captions already hold).
    static func transcripts(_ source: (any SpokenTexts)?) -> [String] {
        guard let source, let count = source.count else { return [] }
        return (0..<count).map(source.transcript)
    }

    /// Throws unless `data.image_size` divides by the image tokenizer's downsampling (`what`: "VAE"
    /// or "VQ tokenizer"), naming the key and the tokenizer.
    static func checkImageSize(_ recipe: Recipe, downsample: Int, what: String) throws {
        let size = recipe.data.imageSize
        guard size % downsample != 0 else { return }
        let fits = [size - size % downsample, size - size % downsample + downsample].filter { $0 > 0 }
        throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.image_size",
                                       message: "\(size) does not divide by the \(what)'s downsampling \(downsample) "
                                           + "(\(recipe.model.imageTokenizer ?? "the run's copy")): use "
                                           + fits.map(String.init).joined(separator: " or ") + ", or a tokenizer trained at this size")
    }

    /// What a folder source cannot score (the ShapesWorld suites), each an error naming its key.
    static func checkFolderRecipe(_ recipe: Recipe, family task: ModelFamily) throws {
        let unsupported: [(String, Bool, String)] = [
            ("eval.shapes_eval", recipe.eval.shapesEval > 0, "ShapesEval scores ShapesWorld prompts, which a folder has no truth for; use 0"),
            ("eval.edits", recipe.eval.edits > 0, "the edit suite scores ShapesWorld triplets; use 0"),
        ]
        if let (path, _, message) = unsupported.first(where: { $0.1 }) {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: path,
                                           message: "with data.source folder: \(message)")
        }
    }

    /// The ShapesWorld behind `source`, for what only ShapesWorld has (edits with their scenes);
    /// the initialiser refuses those parts of a recipe for any other source.
    static func shapes(_ source: any CaptionedImages) -> ShapesWorld {
        guard let world = source as? ShapesWorld else {
            preconditionFailure("ImageCaptionPairs: the ShapesWorld suites need a ShapesWorld source (checked at start)")
        }
        return world
    }

    /// The edit triplets of `source` (ShapesWorld's, or a folder's edit rows on its side of the
    /// split); the initialiser checks a folder has some before edits are mixed in.
    static func editing(_ source: any CaptionedImages) -> any EditTriplets {
        guard let edits = source as? any EditTriplets else { preconditionFailure("ImageCaptionPairs: \(type(of: source)) has no edits") }
        return edits
    }

    /// The edit triplet document number `n` reads when it is an edit: the pair index `index`
    /// (ShapesWorld, as ever), or a finite source's edit rows epoch after epoch in a fresh order each.
    func editIndex(_ source: any CaptionedImages, document n: Int, index: Int) -> Int {
        guard let count = Self.editing(source).editCount else { return index }
        return IndexPermutation(count, seed: recipe.seed ^ 0xED17, round: n / count)(n % count)
    }

    /// The example training document number `n` reads: `n` itself from a ShapesWorld (cycled
    /// through `data.pool` when set); from a finite source (a folder's training rows, the first
    /// `data.pool` of them when set) epoch after epoch, each epoch in an order of its own
    /// (``IndexPermutation`` keyed by the recipe's seed and the epoch), so the order is a function
    /// of `n` alone and a resumed run reads what it would have read.
    func trainingIndex(_ n: Int) -> Int {
        let pool = recipe.data.pool
        guard let rows = world.count else { return pool > 0 ? n % pool : n }
        let size = pool > 0 ? min(pool, rows) : rows
        return IndexPermutation(size, seed: recipe.seed, round: n / size)(n % size)
    }

    /// Whether training examples are encoded once and kept: a finite pool or a finite source.
    var cachesTraining: Bool { recipe.data.pool > 0 || world.count != nil }

    /// Positions of a document around an image of `imageLength` positions: BOS BOI … EOI EOS.
    static func length(caption: Int, imageLength: Int) -> Int { caption + imageLength + 4 }

    /// Positions of a speech document of `kind` with `words` text ids around a span of `audioLength`.
    static func length(_ kind: SpeechKind, words: Int, imageLength: Int, audioLength: Int) -> Int {
        kind == .fromImage ? imageLength + audioLength + 6 : words + audioLength + 4
    }

    /// Positions of an edit document: BOS [BOI source EOI] instruction BOI target EOI EOS.
    static func length(_ edit: Edit, imageLength: Int) -> Int {
        edit.instruction.count + imageLength + 4 + (edit.keepSource ? imageLength + 2 : 0)
    }

    /// Documents per row: `data.docs_per_row`, or as many as fill `data.seq_len` on average (from
    /// the first 64 training examples).
    func docsPerRow(imageLength: Int) -> (count: Int, averageLength: Double) {
        let n = min(64, world.count ?? 64)
        let avg = Double((0..<n).map { Self.length(caption: tokenizer.encode(world.caption($0)).count,
                                                   imageLength: imageLength) }.reduce(0, +)) / Double(n)
        let fit = max(1, Int(Double(recipe.data.seqLen) / avg))
        return (recipe.data.docsPerRow > 0 ? recipe.data.docsPerRow : fit, avg)
    }

    /// The documents of row `row` of `world` (up to `perRow`, as many as fit in `data.seq_len`):
    /// each caption first, its caption dropped with probability `caption_dropout`, or with
    /// probability `image_first` image first; with probability `data.edit_fraction` it is edit
    /// triplet `index` instead (instruction dropped with probability `instruction_dropout`, source
    /// with `source_dropout`). A first document longer than the row loses its caption (or
    /// instruction); with probability `data.speech_fraction` a speech document of a kind drawn by
    /// `data.speech_mix` (text to speech with the words dropped like captions, speech to text, or
    /// image to speech). A training row that is corpus text (``isCorpusRow(_:)``) holds its
    /// chunk's documents instead. `accepted` runs as each document is taken, so per-document draws
    /// from `rng` (diffusion timesteps) interleave with the mixture's in a fixed order.
    func documents(_ source: any CaptionedImages, row: Int, perRow: Int, imageLength: Int, training: Bool, rng: RNG,
                   accepted: (Document) -> Void = { _ in }) throws -> [Document] {
        if training && isCorpusRow(row) {
            let docs = try corpusDocuments(corpusChunks(row: row), key: row)
            docs.forEach(accepted)
            return docs
        }
        let mix = recipe.diffusion, t = recipe.data.seqLen
        var out: [Document] = [], used = 0
        for k in 0..<perRow {
            var index = row * perRow + k
            if training { index = trainingIndex(index) }
            if recipe.data.editFraction > 0 && rng.nextFloat() < recipe.data.editFraction {
                let edits = Self.editing(source)
                index = editIndex(source, document: row * perRow + k, index: index)
                let dropInstruction = rng.nextFloat() < mix.instructionDropout
                let keepSource = !(rng.nextFloat() < mix.sourceDropout)
                var edit = Edit(instruction: dropInstruction ? [] : tokenizer.encode(edits.editInstruction(index)),
                                keepSource: keepSource)
                var length = Self.length(edit, imageLength: imageLength)
                if used + length > t {
                    guard out.isEmpty else { break }
                    edit.instruction = []                              // an instruction longer than a row: dropped
                    length = Self.length(edit, imageLength: imageLength)
                }
                let doc = Document(index: index, imageFirst: false, caption: [], edit: edit)
                out.append(doc); used += length
                accepted(doc)
                continue
            }
            if let spoken, recipe.data.speechFraction > 0 && rng.nextFloat() < recipe.data.speechFraction {
                let kind = Self.speechKind(weights: recipe.data.speechMix, rng: rng)
                let drop = kind == .fromImage || (kind == .fromCaption && rng.nextFloat() < mix.captionDropout)
                let side: Side = training ? .train : .heldOut
                let utterance = speechIndex(side, document: row * perRow + k, index: index)
                let words = drop ? [] : tokenizer.encode(speechSource(side).transcript(utterance))
                var doc = Document(index: utterance, imageFirst: kind == .fromImage, caption: words, speech: kind)
                var length = Self.length(kind, words: words.count, imageLength: imageLength, audioLength: spoken.length)
                if used + length > t {
                    guard out.isEmpty else { break }
                    doc.caption = []                                  // words longer than a row: dropped
                    length = Self.length(kind, words: 0, imageLength: imageLength, audioLength: spoken.length)
                }
                out.append(doc); used += length
                accepted(doc)
                continue
            }
            let imageFirst = rng.nextFloat() < mix.imageFirst
            let drop = !imageFirst && rng.nextFloat() < mix.captionDropout
            var doc = Document(index: index, imageFirst: imageFirst, caption: drop ? [] : tokenizer.encode(source.caption(index)))
            var length = Self.length(caption: doc.caption.count, imageLength: imageLength)
            if used + length > t {
                guard out.isEmpty else { break }
                doc.caption = []                                  // a caption longer than a row: dropped
                length = Self.length(caption: 0, imageLength: imageLength)
            }
            out.append(doc); used += length
            accepted(doc)
        }
        return out
    }

    /// A speech kind drawn with probabilities proportional to `weights`.
    static func speechKind(weights: [Int], rng: RNG) -> SpeechKind {
        var u = rng.nextFloat() * Float(weights.reduce(0, +))
        for (kind, w) in zip(SpeechKind.allCases, weights) where w > 0 {
            if u < Float(w) { return kind }
            u -= Float(w)
        }
        return SpeechKind.allCases[weights.lastIndex { $0 > 0 }!]
    }

    /// Images (N, 3, H, W) in [-1, 1] of examples `indices` of `source`.
    /// - Throws: `MediaError` naming a folder's image that cannot be read.
    func images(_ source: any CaptionedImages, _ indices: [Int]) throws -> Tensor {
        imageBatch(try indices.map { try source.image($0) })
    }

    /// Images (2N, 3, H, W) in [-1, 1] of edit triplets `indices` of `source`: source, target, source, ….
    func editImages(_ source: any CaptionedImages, _ indices: [Int]) throws -> Tensor {
        let edits = Self.editing(source)
        return imageBatch(try indices.flatMap { i -> [Image] in
            let (a, b) = try edits.editImages(i)
            return [a, b]
        })
    }

    /// The distinct training examples the pool caches: `data.pool` (capped at the source's size),
    /// or every training example of a finite source.
    var poolSize: Int { recipe.data.pool > 0 ? min(recipe.data.pool, world.count ?? .max) : world.count ?? 0 }

    /// The most bytes the training pool's caches reach: `imageBytes` per image (latents or
    /// codes) for every pool index (every training row of a folder), twice that per edit triplet
    /// when edits are mixed in, and the speech patches of every cached utterance (each pool index
    /// of ShapesWorld's, every training recording of a folder's). A cached entry also costs its
    /// array and dictionary slot (about 80 bytes).
    func poolCacheBytes(imageBytes: Int) -> Int {
        let entry = 80, pool = poolSize
        var bytes = pool * (imageBytes + entry)
        if recipe.data.editFraction > 0 { bytes += pool * (2 * imageBytes + entry) }
        if let spoken, let speech {
            bytes += (speech.train.count ?? pool) * (4 * spoken.length * spoken.patchDim + entry)
        }
        return bytes
    }

    /// The largest cache file `EncodingCache` writes for the training pool (`imageBytes` per
    /// encoded image): the latents or codes, the edit triplets' (two images each), or the speech
    /// patches; 0 when the pool is not cached.
    func poolCacheFileBytes(imageBytes: Int) -> Int {
        guard cachesTraining else { return 0 }
        let pool = poolSize
        var largest = pool * imageBytes
        if recipe.data.editFraction > 0 { largest = max(largest, pool * 2 * imageBytes) }
        if let spoken, let speech, cachesSpeech { largest = max(largest, (speech.train.count ?? pool) * 4 * spoken.length * spoken.patchDim) }
        return largest
    }

    /// The real (non-padding) positions of a packed batch whose `documentOf` is −1 at padding, and
    /// the keys each attends on average under `mask`: what the batch's training FLOPs count.
    static func realPositions(documentOf: [Int], mask: AttentionMask) -> (positions: Int, attended: Double) {
        let positions = documentOf.lazy.filter { $0 >= 0 }.count
        return (positions, Double(mask.keysAttended { documentOf[$0] >= 0 }) / Double(max(positions, 1)))
    }

    /// Bytes of the held-out batches a task keeps (`eval.documents` documents): each document's
    /// share of the rows' ids, targets and positions (Int32, `data.seq_len` / 2 positions on
    /// average), `imageBytes` of span data per image, and its speech patches; the held-out corpus
    /// rows (a full row each).
    func heldOutCacheBytes(imageBytes: Int) -> Int {
        let documents = recipe.eval.documents
        var bytes = documents * (3 * 4 * recipe.data.seqLen / 2 + imageBytes + 80)
        if let spoken, recipe.data.speechFraction > 0 {
            bytes += Int(Double(documents) * Double(recipe.data.speechFraction)) * 2 * 4 * spoken.length * spoken.patchDim
        }
        if let corpus {
            // Rows of a chunk: one, or more when its tokens (at most one per byte) overflow a row.
            let rowsPerChunk = 1 + Self.corpusChunkBytes / recipe.data.seqLen
            bytes += min(recipe.eval.textChunks, corpus.heldOutChunks) * rowsPerChunk * (3 * 4 * recipe.data.seqLen + 80)
        }
        return bytes
    }

    /// Values per example of `indices`, computed by `encode` (the images of a chunk → one row of
    /// values per index) in chunks of 64 and kept in `cache` when `cached` (the training pool).
    /// `render` makes a chunk's images (default: the examples' images).
    func encoded<T>(_ world: any CaptionedImages, _ indices: [Int], cached: Bool, cache: inout [Int: [T]],
                    render: ((any CaptionedImages, [Int]) throws -> Tensor)? = nil, encode: (Tensor) -> [[T]]) throws -> [[T]] {
        let missing = Array(Set(indices.filter { !cached || cache[$0] == nil })).sorted()
        var fresh: [Int: [T]] = [:]
        for lo in stride(from: 0, to: missing.count, by: 64) {
            let chunk = Array(missing[lo..<min(lo + 64, missing.count)])
            for (i, values) in zip(chunk, encode(try render?(world, chunk) ?? images(world, chunk))) { fresh[i] = values }
        }
        if cached { cache.merge(fresh) { $1 } }
        return indices.map { cached ? cache[$0]! : fresh[$0]! }
    }

    /// A `train.init_from` error, naming the key.
    static func initFromError(_ recipe: Recipe, _ message: String) -> RecipeError {
        .invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "train.init_from", message: message)
    }

    /// What `train.init_from` (the run at `path`) brings into `run`: checks the recipe names no
    /// tokenizers of its own, then saves the base run's BPE tokenizer and copies its image
    /// tokenizer file (`what`: "VAE" or "VQ tokenizer") into the run as `name`.
    static func adoptStartingRun(_ path: String, tokenizer: BPETokenizer, imageTokenizer file: URL, as name: String,
                                 what: String, recipe: Recipe, run: RunDirectory) throws {
        if recipe.data.tokenizer != nil { throw initFromError(recipe, "remove data.tokenizer: the tokenizer comes from \(path)") }
        if recipe.model.imageTokenizer != nil {
            throw initFromError(recipe, "remove model.image_tokenizer: the \(what) comes from \(path)")
        }
        try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        let local = run.url.appendingPathComponent("tokenizer.json")
        if !FileManager.default.fileExists(atPath: local.path) { try tokenizer.save(to: local.path) }
        try copyIntoRun(file, run: run, as: name)
    }

    /// Copies `file` into the run folder as `name` (unless it is there), under a temporary name
    /// renamed into place: a run killed mid-copy never keeps half a file.
    static func copyIntoRun(_ file: URL, run: RunDirectory, as name: String) throws {
        let fm = FileManager.default
        let local = run.url.appendingPathComponent(name)
        guard !fm.fileExists(atPath: local.path) else { return }
        try fm.createDirectory(at: run.url, withIntermediateDirectories: true)
        let tmp = run.url.appendingPathComponent(".\(name).\(getpid()).tmp")
        try? fm.removeItem(at: tmp)
        try fm.copyItem(at: file, to: tmp)
        guard rename(tmp.path, local.path) == 0 else {
            throw RunError.io(local.path, "cannot move the copy of \(file.path) into place: \(String(cString: strerror(errno)))")
        }
    }

    /// Copies `model.image_tokenizer` to `run/name` unless the run has it already (checking it with
    /// `validate` first); returns the copy's path.
    static func copyTokenizer(recipe: Recipe, run: RunDirectory, as name: String, validate: (String) throws -> Void)
        throws -> String {
        let local = run.url.appendingPathComponent(name)
        if !FileManager.default.fileExists(atPath: local.path) {
            guard let path = recipe.model.imageTokenizer else {
                throw RecipeError.missingKey(.init(file: "recipe '\(recipe.name)'"), path: "model.image_tokenizer",
                                             hint: "name a tokenizer checkpoint, e.g. 'image_tokenizer: checkpoints/vae-shapes.safetensors'")
            }
            try validate(path)                                        // fail before copying a bad file
            try copyIntoRun(URL(fileURLWithPath: path), run: run, as: name)
        }
        return local.path
    }

    /// samples/step-N.png (four images per prompt, one row each: `sample(i, prompt ids)` returns
    /// images (4, 3, H, W)) and step-N.txt (`caption(i)` of held-out images 0..<4 beside the truth).
    /// Prompts are the recipe's, or the first held-out captions. Returns the trainer's summary line.
    func writeSamples(step: Int, to dir: URL, sample: (Int, [Int32]) -> Tensor, caption: (Int) throws -> [Int32]) throws -> String {
        let shown = min(4, heldOut.count ?? 4)
        let prompts = recipe.sample.prompts.isEmpty ? (0..<shown).map { heldOut.caption($0) } : recipe.sample.prompts
        var cells: [Image] = []
        for (i, p) in prompts.enumerated() {
            let images = sample(i, [SpecialTokens.bos] + tokenizer.encode(p))
            cells += (0..<images.dim(0)).map { Image(chw: images.slice(axis: 0, $0..<($0 + 1))) }
        }
        try PNG.write(Image.grid(cells, columns: 4, padding: 2, background: 1),
                      to: dir.appendingPathComponent(String(format: "step-%08d.png", step)).path)
        let lines = try (0..<shown).map { i in
            let ids = try caption(i)
            return "\(tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) }))\t(truth: \(heldOut.caption(i)))"
        }
        let text = "prompts: " + prompts.joined(separator: " | ") + "\n" + lines.joined(separator: "\n") + "\n"
        try atomicWrite(Foundation.Data(text.utf8), to: dir.appendingPathComponent(String(format: "step-%08d.txt", step)))
        return "sample @\(step): \(lines[0])"
    }
}
