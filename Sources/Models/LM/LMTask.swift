// The text task: a DecoderLM trained on ShapesWorld captions and question/answer pairs (or a
// folder's metadata text), packed into fixed-length rows with document-aware attention. It is
// the quickstart model and the text-only baseline. Not multimodal (see the Transfusion task).
import Data
import Foundation
import NN
import Tensors
import Text
import Training

public final class LMTask: TrainingTask, InitialisedFrom {
    public let lm: DecoderLM
    /// What `train.init_from` loaded (nil: random initialisation).
    public private(set) var initialisedFrom: String?
    public let tokenizer: BPETokenizer
    public var model: Module { lm }
    let recipe: Recipe
    let world: ShapesWorld
    let heldOut: ShapesWorld
    let docsPerRow: Int
    public let flopsPerMicroBatch: Double

    /// The config saved beside checkpoints.
    public struct Config: Codable {
        public var kind = ModelFamily.lm.rawValue
        public var vocab: Int
        public var decoder: DecoderConfig
        public var tokenizer: String
        /// The positions of one training row (`data.seq_len`; nil: written before it was kept).
        public var contextLength: Int? = nil
    }

    /// Builds the tokenizer (loading `data.tokenizer`, or training one on ShapesWorld text and
    /// saving it into the run) and the model.
    public init(recipe: Recipe, run: RunDirectory) throws {
        self.recipe = recipe
        let d = recipe.data
        guard d.source == .shapes else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.source",
                                           message: "\(d.source.rawValue) is not available for model.kind lm yet (use shapes)")
        }
        world = ShapesWorld(seed: recipe.seed, imageSize: d.imageSize)
        heldOut = ShapesWorld(seed: Self.heldOutShapesSeed, imageSize: d.imageSize)
        tokenizer = try Self.tokenizer(recipe: recipe, run: run, corpus: Self.shapesCorpus(ShapesWorld(seed: Self.corpusShapesSeed)))
        let config = Presets.decoder(recipe.model)
        let vocab = recipe.model.vocabSize ?? tokenizer.vocabSize
        guard vocab >= tokenizer.vocabSize else {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "model.vocab_size",
                                           message: "\(vocab) is smaller than the tokenizer's \(tokenizer.vocabSize) (remove it to use the tokenizer's)")
        }
        let rng = RNG(seed: recipe.seed).split(0xB0D1)
        lm = DecoderLM(vocab: vocab, config: config, rng: rng)
        lm.decoder.initialise(rng: rng)
        lm.drawInitialValues(seed: recipe.seed)  // each parameter from its key's stream
        if let path = recipe.train.initFrom {
            guard SavedModel.isHuggingFace(path) else {
                throw ImageCaptionPairs.initFromError(recipe, "\(path): an lm run starts from a Hugging Face checkpoint folder "
                                                      + "(config.json with model_type llama or qwen3, e.g. from fusion export --format hf)")
            }
            let loaded = try HuggingFaceImport.load(path, decoder: config, vocab: vocab)
            try lm.load(lm.stateDict().merging(loaded.weights) { $1 })
            initialisedFrom = loaded.summary
        }
        // Enough documents per row to fill it on average.
        let w = world, tok = tokenizer
        let avg = Double((0..<64).map { Self.document(w.example($0), tok).count }.reduce(0, +)) / 64
        docsPerRow = max(1, Int(Double(d.seqLen) / avg))
        let attended = min(avg, Double(d.seqLen)) / 2
        flopsPerMicroBatch = lm.trainingFlops(tokens: recipe.train.batchSize * d.seqLen, attended: attended)
    }

    /// The recipe's tokenizer: `data.tokenizer` if given, else the run's tokenizer.json, else a
    /// byte-level BPE trained on `corpus` (made only then) and saved into the run.
    static func tokenizer(recipe: Recipe, run: RunDirectory, corpus: @autoclosure () throws -> [String]) throws -> BPETokenizer {
        let d = recipe.data
        if let path = d.tokenizer { return try BPETokenizer.load(from: path) }
        let tokURL = run.url.appendingPathComponent("tokenizer.json")
        if FileManager.default.fileExists(atPath: tokURL.path) { return try BPETokenizer.load(from: tokURL.path) }
        let tokenizer = BPETokenizer.train(corpus: try corpus(), vocabSize: d.tokenizerVocab)
        try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        try tokenizer.save(to: tokURL.path)
        return tokenizer
    }

    /// The seed of the held-out ShapesWorld the text and image–text families score on, whatever the
    /// run's seed (seed 0's held-out world, as before): runs that differ in seed alone — a seed
    /// replicate — are scored on the same documents.
    static let heldOutShapesSeed: UInt64 = 0x5EED_0F_E7A1
    /// The seed of the ShapesWorld whose text a run's BPE is trained on, whatever the run's seed
    /// (seed 0's, as before): a seed replicate tokenizes alike, so its losses per token compare.
    static let corpusShapesSeed: UInt64 = 0

    /// ShapesWorld text a tokenizer is trained on: the captions, questions and answers of the
    /// first 2000 examples.
    static func shapesCorpus(_ world: ShapesWorld) -> [String] {
        (0..<2000).flatMap { i -> [String] in
            let e = world.example(i)
            return [e.caption] + e.questions.map { $0.question + " " + $0.answer }
        }
    }

    /// One training document: the caption, then a question and its answer.
    static func document(_ e: ShapesExample, _ tok: BPETokenizer) -> MixedSequence {
        var text = e.caption
        if let qa = e.questions.first { text += ". " + qa.question + " " + qa.answer }
        return MixedSequence(segments: [.text(tok.encode(text))])
    }

    /// A packed batch of rows from consecutive examples of `world`, starting at row `firstRow`.
    func batch(_ world: ShapesWorld, firstRow: Int, rows: Int) throws -> (ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor, tokens: Int, examples: Int) {
        let t = recipe.data.seqLen
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = []
        var docs: [[Int32]] = [], spans: [[Int32]] = []
        var tokens = 0, examples = 0
        for r in 0..<rows {
            var seqs: [MixedSequence] = []
            var used = 0
            for k in 0..<docsPerRow {
                let s = Self.document(world.example((firstRow + r) * docsPerRow + k), tokenizer)
                if used + s.count > t { break }
                seqs.append(s); used += s.count
            }
            if seqs.isEmpty {  // a single document longer than the row: truncate it
                var s = Self.document(world.example((firstRow + r) * docsPerRow), tokenizer)
                s = MixedSequence(segments: [.text(Array(s.tokens.dropFirst().prefix(t - 2)))])
                seqs = [s]
            }
            let row = try pack(seqs, length: t)
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs); spans.append(row.spanIDs)
            tokens += row.targets.lazy.filter { $0 >= 0 }.count
            examples += seqs.count
        }
        let mask = try AttentionMask(documents: docs, spans: spans)
        return (Tensor(ints: ids, shape: [rows, t]), Tensor(ints: targets, shape: [rows, t]), mask,
                Tensor(ints: positions, shape: [rows * t]), tokens, examples)
    }

    public func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        try loss(microBatch: index, rows: 0..<recipe.train.batchSize, rng: rng)
    }

    /// Rows are packed independently and draw no randomness, so a share of a micro-batch is
    /// just its rows; the loss is a mean over target tokens (`meanOver` = tokens).
    public func loss(microBatch index: Int, rows: Range<Int>, rng: RNG) throws -> LossResult {
        let x = try batch(world, firstRow: index * recipe.train.batchSize + rows.lowerBound, rows: rows.count)
        let loss = lm.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions, zLoss: recipe.model.zLoss)
        return LossResult(total: loss, parts: ["loss_text": loss.item], tokens: x.tokens, examples: x.examples)
    }

    public func checkpointConfig() throws -> Foundation.Data {
        let tok = try JSONEncoder().encode(tokenizer)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(Config(vocab: lm.vocab, decoder: lm.decoder.config, tokenizer: String(data: tok, encoding: .utf8)!,
                                     contextLength: recipe.data.seqLen))
    }

    /// Held-out loss, perplexity and bits per byte over `eval.batches` batches.
    public func evaluate(step: Int, rng: RNG) throws -> [String: Double] {
        var nats = 0.0, tokens = 0, bytes = 0
        for i in 0..<max(recipe.eval.batches, 1) {
            let x = try batch(heldOut, firstRow: i * recipe.train.batchSize, rows: recipe.train.batchSize)
            let l = Double(lm.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions).item)
            nats += l * Double(x.tokens); tokens += x.tokens
            bytes += x.targets.intScalars.filter { $0 >= 0 }.reduce(0) { $0 + tokenizer.bytes(of: $1).count }
        }
        let loss = nats / Double(max(tokens, 1))
        return ["loss": loss, "ppl": Foundation.exp(loss), "bpb": nats / Double(max(bytes, 1)) / Foundation.log(2)]
    }

    /// Continues each prompt (or BOS alone) and writes them to samples/step-N.txt.
    public func writeSamples(step: Int, to dir: URL, rng: RNG) throws -> String? {
        let s = recipe.sample
        let prompts = s.prompts.isEmpty ? ["a", "two", "what colour"] : s.prompts
        let options = SamplingOptions(temperature: s.temperature, topK: s.topK)
        let lines = prompts.map { p -> String in
            let ids = lm.generate(prompt: [SpecialTokens.bos] + tokenizer.encode(p), maxTokens: s.maxTokens,
                                  options: options, stop: [SpecialTokens.eos], rng: rng)
            return p + tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) })
        }
        let url = dir.appendingPathComponent(String(format: "step-%08d.txt", step))
        try atomicWrite(Foundation.Data((lines.joined(separator: "\n") + "\n").utf8), to: url)
        return "sample @\(step): \(lines[0])"
    }
}
