// Decoding words after an image or speech span (captioning, transcription): the reserved ids that
// open spans or frame documents are never words, and the first word cannot be EOS, so a layout
// that also continues with a span (image → speech, text → speech) cannot end the text before it
// starts. Not general generation (Transfusion.generate keeps every id).
import NN
import Tensors
import Text

extension SamplingOptions {
    /// Picks a text id among the first `count` logits of row `row` of `logits` (R, V), with the
    /// reserved ids ruled out except EOS, and EOS too unless `allowEnd` (the first word of a
    /// caption or transcript).
    public func pickWord(_ logits: Tensor, row r: Int = 0, count: Int, allowEnd: Bool, rng: RNG) -> Int32 {
        let v = logits.dim(-1)
        precondition(count <= v && (r + 1) * v <= logits.count, "pickWord: \(count) ids of row \(r) of \(logits.shape)")
        var row = withExtendedLifetime(logits) { Array(UnsafeBufferPointer(start: logits.data + r * v, count: count)) }
        for id in 0..<min(SpecialTokens.count, count) where !(allowEnd && Int32(id) == SpecialTokens.eos) {
            row[id] = -.infinity
        }
        return row.withUnsafeBufferPointer { pick($0.baseAddress!, count: count, rng: rng) }
    }
}
