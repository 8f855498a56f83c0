// The held-out documents both image–text families (Transfusion, Chameleon) are scored on, and the
// tally that splits their losses by kind of target. Document j is held-out example j laid out
// by its own random stream alone (caption or image first, edit, speech; nothing dropped), so two
// runs with the same data section score the very same documents whatever their rows hold, and
// text is scored apart from the span markers (BOI, EOI, BOA, EOA) one family predicts more of.
// Not the forward passes (each task's evaluate) and not the training mixture (ImageCaptionPairs).
import Evaluation
import Foundation
import Tensors
import Text
import Training

extension ImageCaptionPairs {
    /// Held-out document `j`: example (or edit triplet) j of the held-out world, its kind drawn
    /// from `RNG(0xE7A1_D0C5).split(j)` with the recipe's mixture (edit and speech fractions,
    /// image-first share, speech mix) and nothing dropped (caption, instruction and source kept).
    func heldOutDocument(_ j: Int) -> Document {
        let rng = RNG(seed: 0xE7A1_D0C5).split(UInt64(j)), d = recipe.data
        if d.editFraction > 0 && rng.nextFloat() < d.editFraction {
            // A folder's held-out edits are fewer than its held-out images: they repeat in turn.
            let edits = Self.editing(heldOut), e = edits.editCount.map { j % $0 } ?? j
            return Document(index: e, imageFirst: false, caption: [],
                            edit: Edit(instruction: tokenizer.encode(edits.editInstruction(e)), keepSource: true))
        }
        if speech != nil && d.speechFraction > 0 && rng.nextFloat() < d.speechFraction {
            let kind = Self.speechKind(weights: d.speechMix, rng: rng)
            let utterance = speechIndex(.heldOut, document: j, index: j)     // a folder's fewer recordings repeat in turn
            return Document(index: utterance, imageFirst: kind == .fromImage,
                            caption: kind == .fromImage ? [] : tokenizer.encode(speechSource(.heldOut).transcript(utterance)),
                            speech: kind)
        }
        return Document(index: j, imageFirst: rng.nextFloat() < recipe.diffusion.imageFirst,
                        caption: tokenizer.encode(heldOut.caption(j)))
    }

    /// Positions of `doc` with images of `imageLength` and speech of `audioLength` positions.
    func length(of doc: Document, imageLength: Int, audioLength: Int) -> Int {
        if let edit = doc.edit { return Self.length(edit, imageLength: imageLength) }
        if let kind = doc.speech { return Self.length(kind, words: doc.caption.count, imageLength: imageLength, audioLength: audioLength) }
        return Self.length(caption: doc.caption.count, imageLength: imageLength)
    }

    /// Held-out documents 0..<count (all of a smaller folder's held-out rows) packed in order
    /// into rows of `data.seq_len` positions: a document that does not fit opens the next row; one
    /// longer than a row loses its caption (instruction, words), as in training.
    func heldOutRows(count: Int, imageLength: Int, audioLength: Int) -> [[Document]] {
        var rows: [[Document]] = [], used = 0
        for j in 0..<min(count, heldOut.count ?? count) {
            var doc = heldOutDocument(j)
            var length = self.length(of: doc, imageLength: imageLength, audioLength: audioLength)
            if length > recipe.data.seqLen {
                doc.caption = []
                doc.edit?.instruction = []
                length = self.length(of: doc, imageLength: imageLength, audioLength: audioLength)
            }
            if rows.isEmpty || used + length > recipe.data.seqLen { rows.append([]); used = 0 }
            rows[rows.count - 1].append(doc)
            used += length
        }
        return rows
    }
}

/// Held-out losses summed by kind of target across batches, and the metrics they give.
///
/// Kinds: `text` (caption, instruction and spoken-word targets, EOS included; the same set for
/// both families), of which `caption` (text after the image in image-first documents: captioning)
/// and `prior` (text before the image in caption-first documents); `markers` (BOI, EOI, BOA, EOA
/// targets, scored apart: Chameleon predicts EOI after its codes, an easy target Transfusion never
/// sees); `lm` (every target of the LM head: text and markers); `image` and `audio` (span
/// predictions of images generated from text, edit targets and speech generated from text or
/// images; what is read first, an image-first image or speech to transcribe, is a condition);
/// `corpus` (the targets of held-out `data.text` rows, by chunk, in no other kind).
///
/// Token-level kinds also keep per-document sums, for a standard error that treats documents,
/// not targets, as the independent draws (the cluster-robust error of a ratio mean).
struct HeldOutTally {
    private(set) var sums: [String: Double] = [:]
    private(set) var counts: [String: Int] = [:]
    /// Per kind, per held-out document: the sum and count of its targets' losses.
    private var perDocument: [String: [Int: (sum: Double, count: Int)]] = [:]
    /// Held-out documents scored (image–text documents; corpus rows apart).
    var documents = 0
    /// UTF-8 bytes of the corpus text targets scored (``ImageCaptionPairs/corpusBytes(targets:document:docs:)``).
    var corpusBytes = 0

    /// Adds `count` targets whose mean loss is `mean` to `key` (of held-out document `document`, if one).
    mutating func add(_ key: String, mean: Double, count: Int, document: Int? = nil) {
        guard count > 0, mean.isFinite else { return }
        sums[key, default: 0] += mean * Double(count)
        counts[key, default: 0] += count
        if let document {
            let old = perDocument[key, default: [:]][document] ?? (0, 0)
            perDocument[key, default: [:]][document] = (old.sum + mean * Double(count), old.count + count)
        }
    }

    /// The standard error of `mean(key)` over documents, the ratio estimator's (``RatioMean``,
    /// each document's loss sum over its target count, in document order); nil without
    /// per-document sums or with fewer than two documents.
    func standardError(_ key: String) -> Double? {
        guard let docs = perDocument[key], docs.count >= 2 else { return nil }
        return RatioMean.estimate(docs.keys.sorted().map { (docs[$0]!.sum, Double(docs[$0]!.count)) })?.standardError
    }

    /// Adds one held-out batch: per-target cross-entropies `losses` of targets `targets` (ids below
    /// `textVocab` are text or markers; code ids above it count as `image` or `audio` when
    /// `scoredCode` says the target's document generates them), `document[i]` naming target i's
    /// document in `docs`; and the batch's image–text documents and corpus bytes (`pairs`' tokenizer).
    mutating func addBatch(losses: [Float], targets: [Int32], document: [Int], docs: [ImageCaptionPairs.Document],
                           textVocab: Int32, pairs: ImageCaptionPairs,
                           scoredCode: ((Int32, ImageCaptionPairs.Document) -> String?)? = nil) {
        documents += docs.filter { $0.corpus == nil }.count
        corpusBytes += pairs.corpusBytes(targets: targets, document: document, docs: docs)
        for (i, t) in targets.enumerated() where t >= 0 {
            let loss = Double(losses[i]), doc = docs[document[i]], j = doc.index
            if doc.corpus != nil {                                    // corpus text: its own kind, by chunk
                add("corpus", mean: loss, count: 1, document: j)
                continue
            }
            guard t < textVocab else {
                if let key = scoredCode?(t, doc) { add(key, mean: loss, count: 1, document: j) }
                add("all", mean: loss, count: 1)
                continue
            }
            add("lm", mean: loss, count: 1)
            add("all", mean: loss, count: 1)
            if [SpecialTokens.boi, SpecialTokens.eoi, SpecialTokens.boa, SpecialTokens.eoa].contains(t) {
                add("markers", mean: loss, count: 1, document: j)
                continue
            }
            add("text", mean: loss, count: 1, document: j)
            if doc.edit == nil && doc.speech == nil { add(doc.imageFirst ? "caption" : "prior", mean: loss, count: 1, document: j) }
        }
    }

    /// The kinds kept per document (text, caption, prior, markers, then the rest by name), each
    /// with its documents ascending: what `fusion eval --suite losses` writes.
    var documentKinds: [HeldOutLossReport.Kind] {
        let first = ["text", "caption", "prior", "markers"]
        let names = first.filter { perDocument[$0] != nil } + perDocument.keys.filter { !first.contains($0) }.sorted()
        return names.map { key in
            let docs = perDocument[key]!.sorted { $0.key < $1.key }
            return HeldOutLossReport.Kind(name: key, documents: docs.map(\.key), sums: docs.map(\.value.sum),
                                          counts: docs.map(\.value.count))
        }
    }

    /// The mean loss of `key`, or nil when nothing of that kind was scored.
    func mean(_ key: String) -> Double? { counts[key].map { sums[key]! / Double($0) } }

    /// The eval metrics of every kind scored: `loss_text` (with `ppl` = exp of it), `loss_caption`,
    /// `loss_prior`, `loss_markers`, `loss_image`, `loss_audio`, each with its standard error
    /// (`…_se`) where documents give one, and the document count; with corpus rows also
    /// `loss_corpus`, `ppl_corpus`, `bpb_corpus` (``ImageCaptionPairs/corpusMetrics(_:bytes:)``).
    var metrics: [String: Double] {
        var m: [String: Double] = ["documents": Double(documents)]
        for key in ["text", "caption", "prior", "markers", "image", "audio"] {
            if let v = mean(key) { m["loss_\(key)"] = v }
            if let se = standardError(key) { m["loss_\(key)_se"] = se }
        }
        if let text = mean("text") { m["ppl"] = Foundation.exp(text) }
        m.merge(ImageCaptionPairs.corpusMetrics(self, bytes: corpusBytes)) { $1 }
        return m
    }
}

/// A task that scores the shared held-out documents (Transfusion, Chameleon, VAR): its held-out
/// losses kept per document and the eval metrics of the same pass, for `fusion eval --suite
/// losses` and paired comparisons between runs.
public protocol HeldOutLossScoring {
    func heldOutLosses() throws -> (kinds: [HeldOutLossReport.Kind], metrics: [String: Double])
}
