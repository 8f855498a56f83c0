// Free generation over text and spans, the loop both image–text families run (Transfusion.generate
// diffuses the spans it opens, Chameleon.generate samples their codes): text is decoded with a KV
// cache; when the model opens an image (BOI) or speech (BOA), the family samples the span and
// caches it, and decoding goes on after its closing id. Not caption decoding (NN's decodeLoop).
import Data
import Tensors
import Text

/// A piece of generated output.
public enum GeneratedSegment {
    case text([Int32])
    /// A generated image: clean latents (1, C, h, w) from Transfusion, code ids (1, grid, grid)
    /// from Chameleon, the decoded image (1, 3, H, W) from VAR.
    case image(Tensor)
    /// A generated audio span: clean AudioCodec patches (1, L, D) from Transfusion, code ids
    /// (1, L) from Chameleon.
    case audio(Tensor)
    /// A generated span of another registered modality: values (1, L, D) from Transfusion, code
    /// ids (1, L) from Chameleon.
    case span(Modality, Tensor)

    /// The segment of a span of `modality` (image and audio have their own cases).
    public static func span(of modality: Modality, _ x: Tensor) -> GeneratedSegment {
        modality == .image ? .image(x) : modality == .audio ? .audio(x) : .span(modality, x)
    }
}

/// Decodes after `prompt`: `step` extends the cache by ids and returns the next-token logits,
/// `pick` chooses an id from them, and `spanLength` says how many positions the span an id opens
/// takes (nil: the id opens none). An opened span goes to `open` with the context before its
/// opening id; it returns the segment, the ids that stand for the span in the context after the
/// opening id (through the closing id), and the ids to feed next. Stops at EOS, after `maxTokens`
/// picks, or where the next token or span (with its closing id) would pass `maxPositions`.
/// Text segments keep the opening and closing ids, as they were picked and fed.
func generateMixed(prompt: [Int32], maxTokens: Int, maxPositions: Int?, spanLength: (Int32) -> Int?,
                   step: ([Int32]) -> Tensor, pick: (Tensor) -> Int32,
                   open: (_ id: Int32, _ context: [Int32]) -> (segment: GeneratedSegment, tail: [Int32], next: [Int32]))
    -> [GeneratedSegment] {
    var context = prompt, out: [GeneratedSegment] = [], pending: [Int32] = [], next = prompt
    let limit = maxPositions ?? .max
    for _ in 0..<maxTokens {
        if context.count >= limit { break }
        let id = pick(step(next))
        let length = spanLength(id)
        // A span that would not fit (with its closing token) ends the generation before it opens.
        if let length, context.count + 1 + length + 1 > limit { break }
        pending.append(id)
        if id == SpecialTokens.eos { break }
        if length != nil {
            out.append(.text(pending)); pending = []
            let opened = open(id, context)
            out.append(opened.segment)
            context += [id] + opened.tail
            pending.append(context.last!)
            next = opened.next
            continue
        }
        context.append(id)
        next = [id]
    }
    if !pending.isEmpty { out.append(.text(pending)) }
    return out
}
