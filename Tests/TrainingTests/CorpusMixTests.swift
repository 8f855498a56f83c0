// A text corpus mixed into the image–text families (`data.text`, `data.text_fraction`): an exact
// share of the training rows is corpus text, read from training chunks only, and both families
// score the very same held-out corpus tokens (loss, perplexity, bits per byte) even when their
// rows differ in length; a row of corpus text only trains Transfusion without an image; the recipe
// says when the corpus or its share is missing.
import Data
import Foundation
@testable import Models
import NN
import Tensors
import Testing
@testable import Training

/// A plain-text corpus of numbered sentences (about 40 KB), written once per process.
private let corpusFile: String = {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-corpus-\(UUID().uuidString).txt").path
    let words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dogs", "and", "sleeps"]
    var rng = SplitMix64(seed: 3, stream: 1, index: 0)
    let text = (0..<800).map { i in (0..<8).map { _ in rng.pick(words) }.joined(separator: " ") + " \(i).\n" }.joined()
    try! text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}()

private func mixedRecipe(_ kind: String, seqLen: Int, fraction: Double = 0.25) throws -> Recipe {
    let tokenizer = try randomImageTokenizer(for: kind)
    return try Recipe.parse("""
        name: \(kind)-corpus
        seed: 4
        model: {kind: \(kind), preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tokenizer)}
        data: {tokenizer_vocab: 700, seq_len: \(seqLen), docs_per_row: 2, pool: 64, text: [\(corpusFile)], text_fraction: \(fraction)}
        train: {steps: 1, batch_size: 4}
        eval: {every: 0, documents: 32, text_chunks: 40}
        """, file: "\(kind).yaml")
}

@Suite(.serialized) struct CorpusMixTests {
    @Test func anExactShareOfRowsIsCorpusTextAndBothFamiliesScoreTheSameHeldOutTokens() throws {
        let text = try String(contentsOfFile: corpusFile, encoding: .utf8)
        let transfusion = try TransfusionTask(recipe: try mixedRecipe("transfusion", seqLen: 112), run: scratchRun())
        let chameleon = try ChameleonTask(recipe: try mixedRecipe("chameleon", seqLen: 160), run: scratchRun())
        let pairs = transfusion.pairs, corpus = try #require(pairs.corpus)
        #expect((0..<100).filter(pairs.isCorpusRow).count == 25 && (0..<8).filter(pairs.isCorpusRow).count == 2)
        // Corpus rows hold corpus text from training chunks only; image rows hold no corpus text.
        for row in 0..<40 {
            let docs = try pairs.documents(pairs.world, row: row, perRow: 2, imageLength: 16, training: true, rng: RNG(seed: 1))
            if pairs.isCorpusRow(row) {
                #expect(!docs.isEmpty && docs.allSatisfy { $0.corpus != nil && text.contains(pairs.tokenizer.decode($0.caption)) })
                #expect(pairs.corpusChunks(row: row).allSatisfy { $0.index < corpus.files[0].trainingChunks })
            } else {
                #expect(docs.allSatisfy { $0.corpus == nil && $0.hasImage })
            }
        }
        // The frequent corpus words were learned by the BPE.
        #expect(pairs.tokenizer.encode(" quick").count == 1)
        // A training batch with corpus rows trains both families.
        for loss in [try transfusion.loss(microBatch: 0, rng: RNG(seed: 2)), try chameleon.loss(microBatch: 0, rng: RNG(seed: 2))] {
            #expect(loss.total.item.isFinite && (loss.positions ?? 0) > 0)
        }
        // Rows of 112 and 160 positions, the same held-out tokens and bytes.
        let a = try transfusion.evaluate(step: 0, rng: RNG(seed: 0)), b = try chameleon.evaluate(step: 0, rng: RNG(seed: 0))
        for m in [a, b] {
            for key in ["loss_corpus", "loss_corpus_se", "ppl_corpus", "bpb_corpus"] { #expect(m[key].map { $0.isFinite && $0 > 0 } == true, "\(key): \(m)") }
        }
        #expect(a["corpus_tokens"] != nil && a["corpus_tokens"] == b["corpus_tokens"], "\(String(describing: a["corpus_tokens"])) vs \(String(describing: b["corpus_tokens"]))")
        #expect(abs(a["bpb_corpus"]! / a["loss_corpus"]! - b["bpb_corpus"]! / b["loss_corpus"]!) < 1e-9, "the same bytes per token")
        #expect(a["documents"] == 32 && b["documents"] == 32, "corpus rows are not image–text documents")
        // The held-out corpus is the last chunks, and every held-out token is scored once.
        let rows = try pairs.heldOutCorpusRows(count: 40)
        let scored = rows.joined().map { $0.caption.count + ($0.corpus!.ends ? 1 : 0) }.reduce(0, +)
        let chunks = try (0..<min(40, corpus.heldOutChunks)).flatMap { try pairs.corpusTexts([corpus.heldOutChunk($0)]) }
        #expect(scored == chunks.map { pairs.tokenizer.encode($0.0).count }.reduce(0, +) && Double(scored) == a["corpus_tokens"])
    }

    @Test func transfusionTrainsOnRowsOfCorpusTextAlone() throws {
        let task = try TransfusionTask(recipe: try mixedRecipe("transfusion", seqLen: 112, fraction: 1), run: scratchRun())
        let x = try task.batch(task.world, firstRow: 0, rows: 4, rng: RNG(seed: 0), training: true)
        #expect(x.input.count(.image) == 0 && x.documents.allSatisfy { $0.corpus != nil })
        let loss = try task.loss(microBatch: 0, rng: RNG(seed: 0))
        #expect(loss.total.item.isFinite && loss.parts["loss_image"] == 0)
    }

    @Test func theRecipeSaysWhatIsMissing() throws {
        let base = "name: x\nmodel: {kind: chameleon}\ntrain: {steps: 1}\n"
        let noFraction = #expect(throws: RecipeError.self) { try Recipe.parse(base + "data: {text: [a.txt]}", file: "x.yaml") }
        #expect(noFraction?.description.contains("data.text") == true && noFraction?.description.contains("text_fraction is 0") == true)
        let noText = #expect(throws: RecipeError.self) { try Recipe.parse(base + "data: {text_fraction: 0.3}", file: "x.yaml") }
        #expect(noText?.description.contains("data.text_fraction") == true && noText?.description.contains("names no files") == true)
        var recipe = try mixedRecipe("chameleon", seqLen: 160)
        recipe.data.text = ["/no/such/corpus.txt"]
        let missing = #expect(throws: RecipeError.self) { try ChameleonTask(recipe: recipe, run: scratchRun()) }
        #expect(missing?.description.contains("data.text") == true && missing?.description.contains("/no/such/corpus.txt: no such file") == true)
    }
}
