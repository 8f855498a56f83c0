// Corpus text mixed into the image–text families' rows (`data.text`, `data.text_fraction`): which
// training rows are corpus text, which chunk each reads (a fresh order every epoch), the rows'
// documents, the held-out corpus rows, and the metrics they give (loss, perplexity and bits per
// byte of corpus text). Both families read the same chunks into the same rows. Not the corpus
// reader (Data/TextCorpus) and not the sequence layout (each task's batch).
import Data
import Foundation
import Tensors
import Text
import Training

extension ImageCaptionPairs {
    /// Bytes per corpus chunk: a fixed size, not the row's, so that two recipes with different
    /// `data.seq_len` (Transfusion's and Chameleon's rows differ) score the very same held-out text
    /// — one chunk per held-out row, about 100 BPE tokens.
    static let corpusChunkBytes = 256

    /// The corpus of a recipe's `data.text` in chunks of ``corpusChunkBytes``, with `data.held_out`
    /// of each file's chunks held out; nil without one.
    static func corpus(_ recipe: Recipe) throws -> TextCorpus? {
        let d = recipe.data
        guard !d.text.isEmpty else { return nil }
        do {
            return try TextCorpus(paths: d.text, chunkBytes: corpusChunkBytes, heldOut: Double(max(d.heldOut, 0.001)))
        } catch {
            throw RecipeError.invalidValue(.init(file: "recipe '\(recipe.name)'"), path: "data.text", message: "\(error)")
        }
    }

    /// Text the BPE is trained on besides the captions: the first 256 training chunks of the corpus.
    static func corpusSample(_ corpus: TextCorpus?) throws -> [String] {
        guard let corpus else { return [] }
        return try (0..<min(256, corpus.trainingChunks)).flatMap { try corpus.documents(corpus.trainingChunk($0)) }
    }

    /// Whether training row `row` is corpus text: rows are, in order, so that the first n rows
    /// hold ⌊n · `data.text_fraction`⌋ corpus rows (an exact share of every stretch of rows).
    func isCorpusRow(_ row: Int) -> Bool {
        guard corpus != nil else { return false }
        let f = Double(recipe.data.textFraction)
        return (Double(row + 1) * f).rounded(.down) > (Double(row) * f).rounded(.down)
    }

    /// Chunks per training corpus row: as many as its positions hold at about 4 bytes per token.
    var corpusChunksPerRow: Int { max(1, 4 * recipe.data.seqLen / Self.corpusChunkBytes) }

    /// The training chunks corpus row `row` reads: the m-th corpus row (m = ⌊row · fraction⌋)
    /// reads k = ``corpusChunksPerRow`` chunks, numbers m·k ..< (m+1)·k of a stream that runs
    /// through the corpus's training chunks epoch after epoch, each epoch in its own order.
    func corpusChunks(row: Int) -> [TextCorpus.Chunk] {
        let corpus = corpus!, n = corpus.trainingChunks, k = corpusChunksPerRow
        let m = Int((Double(row) * Double(recipe.data.textFraction)).rounded(.down))
        return (m * k..<(m + 1) * k).map { j in
            corpus.trainingChunk(IndexPermutation(n, seed: recipe.seed ^ 0x7E47_C0DE, round: j / n)(j % n))
        }
    }

    /// The documents of a corpus row reading `chunks`: their documents tokenized and laid out in
    /// order (`BOS text EOS` each) until the row is full; the document that overflows is cut to
    /// fill it and loses its EOS, as does plain text (a chunk's end is not the text's). A JSONL
    /// chunk in which no line starts reads the next one that has one, on the same side of the
    /// split. Each document's `index` is `key` (for per-chunk standard errors).
    func corpusDocuments(_ chunks: [TextCorpus.Chunk], key: Int) throws -> [Document] {
        let t = recipe.data.seqLen
        var out: [Document] = [], used = 0
        for (text, complete) in try corpusTexts(chunks) {
            let ids = tokenizer.encode(text)
            guard !ids.isEmpty else { continue }
            let room = t - used - 1                                       // BOS
            if room < 1 { break }
            let fits = complete && ids.count + 1 <= room
            let kept = Array(ids.prefix(fits ? ids.count : room))
            out.append(Document(index: key, imageFirst: false, caption: kept, corpus: Corpus(ends: fits)))
            used += kept.count + 1 + (fits ? 1 : 0)
            if !fits { break }
        }
        return out
    }

    /// The texts of `chunks` and whether each is a whole document (a JSONL line): a JSONL chunk in
    /// which no line starts reads the next one that has one, on the same side of the split.
    func corpusTexts(_ chunks: [TextCorpus.Chunk]) throws -> [(String, complete: Bool)] {
        let corpus = corpus!
        var texts: [(String, complete: Bool)] = []
        for chunk in chunks {
            let file = corpus.files[chunk.file]
            let side = chunk.index < file.trainingChunks ? 0..<file.trainingChunks : file.trainingChunks..<file.chunks
            var found: [String] = []
            for k in 0..<side.count where found.isEmpty {
                found = try corpus.documents(.init(file: chunk.file, index: side.lowerBound + (chunk.index - side.lowerBound + k) % side.count))
            }
            texts += found.map { ($0, file.isJSONL) }
        }
        return texts
    }

    /// Held-out corpus rows: the first `count` held-out chunks, each in rows of its own, every
    /// token scored once — text longer than a row goes on in the next row (after a BOS), so
    /// recipes with different `data.seq_len` score the same tokens. Documents' `index` is the chunk's.
    func heldOutCorpusRows(count: Int) throws -> [[Document]] {
        guard let corpus else { return [] }
        let t = recipe.data.seqLen
        var rows: [[Document]] = []
        for k in 0..<min(count, corpus.heldOutChunks) {
            var row: [Document] = [], used = 0
            for (text, complete) in try corpusTexts([corpus.heldOutChunk(k)]) {
                var rest = tokenizer.encode(text)[...]
                while !rest.isEmpty {
                    let room = t - used - 1                                  // BOS
                    if room < 2 { rows.append(row); row = []; used = 0; continue }
                    let ends = complete && rest.count + 1 <= room
                    let piece = Array(rest.prefix(ends ? rest.count : room))
                    row.append(Document(index: k, imageFirst: false, caption: piece, corpus: Corpus(ends: ends)))
                    used += piece.count + 1 + (ends ? 1 : 0)
                    rest = rest.dropFirst(piece.count)
                }
            }
            if !row.isEmpty { rows.append(row) }
        }
        return rows
    }

    /// The UTF-8 bytes the text targets of corpus documents in `targets` stand for (EOS and other
    /// reserved ids: none): what bits per byte divide by.
    func corpusBytes(targets: [Int32], document: [Int], docs: [Document]) -> Int {
        var bytes = 0
        for (i, t) in targets.enumerated() where t >= 0 && docs[document[i]].corpus != nil && !SpecialTokens.isSpecial(t) {
            bytes += tokenizer.bytes(of: t).count
        }
        return bytes
    }

    /// `loss_corpus` (nats per token, with its standard error over chunks), `ppl_corpus` and
    /// `bpb_corpus` (bits per UTF-8 byte: comparable across tokenizers) of a tally of held-out
    /// corpus rows over `bytes` bytes.
    static func corpusMetrics(_ tally: HeldOutTally, bytes: Int) -> [String: Double] {
        guard let loss = tally.mean("corpus"), let count = tally.counts["corpus"] else { return [:] }
        var m = ["loss_corpus": loss, "ppl_corpus": Foundation.exp(loss), "corpus_tokens": Double(count)]
        if let se = tally.standardError("corpus") { m["loss_corpus_se"] = se }
        if bytes > 0 { m["bpb_corpus"] = loss * Double(count) / Foundation.log(2) / Double(bytes) }
        return m
    }
}
