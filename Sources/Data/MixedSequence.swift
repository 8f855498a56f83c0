// One document as a mixed-modal sequence (BOS text… BOI [span] EOI … EOS) with LM targets, positions
// and span table. Not packing, not tensors, not span contents (a span is placeholder positions).
import Text

/// A piece of an example, in order.
public enum Segment: Hashable, Sendable {
    /// Text token ids (from a tokenizer; reserved ids are passed through unchanged).
    case text([Int32])
    /// A continuous span of `length` positions of `modality`, framed by its opening and closing ids.
    case span(Modality, length: Int)

    /// An image as a span of `patches` positions, framed by BOI … EOI.
    public static func image(patches: Int) -> Segment { .span(.image, length: patches) }
    /// Audio as a span of `frames` positions, framed by BOA … EOA.
    public static func audio(frames: Int) -> Segment { .span(.audio, length: frames) }
}

/// A continuous span: positions `start ..< start + length` hold one vector each.
public struct Span: Hashable, Codable, Sendable {
    /// First position of the span (the position after BOI/BOA).
    public var start: Int
    /// Number of positions (patches or frames).
    public var length: Int
    public var modality: Modality
    /// Ordinal of the span within its document (0 = its first image or audio span), for
    /// finding the span's data in the example it came from.
    public var index: Int
    /// The document the span belongs to (its document id in the sequence or packed row).
    public var document: Int32

    public var range: Range<Int> { start..<(start + length) }
}

/// One document laid out as a sequence, following DESIGN.md:
/// `BOS text… BOI [image] EOI text… BOA [audio] EOA … EOS`.
///
/// Arrays are parallel, one entry per position:
/// - `tokens`: token ids; span positions hold `PAD`.
/// - `targets`: the id to predict at each position for the LM loss, or -1 for no text loss.
///   **Rule:** `targets[i] = tokens[i + 1]` exactly when positions `i` and `i + 1` are both
///   text positions (not inside a span), else -1. So the LM loss covers predicting the first
///   text token after BOS, every text token, BOI/BOA (the model must learn when to open a
///   span), the first text token after EOI/EOA, and EOS. It skips BOI → first element (that
///   element is continuous, trained by the diffusion loss), every span position (their outputs
///   are diffusion predictions), including last element → EOI (EOI follows a fixed-length span
///   deterministically; the sampler inserts it), and the last position (nothing follows).
/// - `positions`: 0-based position within the document (for RoPE).
/// - `documentIDs`: the document each position belongs to.
/// - `spanIDs`: -1 at text positions, otherwise the span's ordinal; the Transfusion mask lets
///   positions with the same `spanIDs` value (≠ -1) attend to each other bidirectionally.
///
/// ```swift
/// let seq = MixedSequence(segments: [.text(caption), .image(patches: 16)])
/// // tokens:  BOS c₀ … cₙ BOI PAD×16 EOI EOS
/// // spans:   [Span(start: n + 3, length: 16, modality: .image, index: 0, document: 0)]
/// ```
public struct MixedSequence: Hashable, Sendable {
    public var tokens: [Int32]
    public var targets: [Int32]
    public var positions: [Int32]
    public var documentIDs: [Int32]
    public var spanIDs: [Int32]
    public var spans: [Span]

    /// Number of positions.
    public var count: Int { tokens.count }

    /// Lays out `segments` between BOS and (if `appendEOS`) EOS. Leave EOS off for a prompt
    /// that generation continues. `precondition` fails on an empty span or a negative token id.
    public init(segments: [Segment], documentID: Int32 = 0, appendEOS: Bool = true) {
        var tokens: [Int32] = [SpecialTokens.bos]
        var spanIDs: [Int32] = [-1]
        var spans: [Span] = []
        func addSpan(_ n: Int, _ modality: Modality) {
            precondition(n > 0, "a \(modality) span needs at least one position (got \(n))")
            tokens.append(modality.opening)
            spanIDs.append(-1)
            spans.append(Span(start: tokens.count, length: n, modality: modality, index: spans.count, document: documentID))
            tokens.append(contentsOf: repeatElement(SpecialTokens.pad, count: n))
            spanIDs.append(contentsOf: repeatElement(Int32(spans.count - 1), count: n))
            tokens.append(modality.closing)
            spanIDs.append(-1)
        }
        for segment in segments {
            switch segment {
            case .text(let ids):
                precondition(ids.allSatisfy { $0 >= 0 }, "text segments hold non-negative token ids")
                tokens.append(contentsOf: ids)
                spanIDs.append(contentsOf: repeatElement(-1, count: ids.count))
            case .span(let modality, let n): addSpan(n, modality)
            }
        }
        if appendEOS {
            tokens.append(SpecialTokens.eos)
            spanIDs.append(-1)
        }
        self.tokens = tokens
        self.spanIDs = spanIDs
        self.spans = spans
        self.targets = Self.targets(tokens: tokens, spanIDs: spanIDs)
        self.positions = (0..<tokens.count).map { Int32($0) }
        self.documentIDs = Array(repeating: documentID, count: tokens.count)
    }

    /// `<name>` / `</name>` for the markers of a registered (not built-in) modality, else nil.
    static func markerName(_ id: Int32) -> String? {
        guard let m = Modality.spanModalities.first(where: { $0.rawValue > Modality.audio.rawValue && ($0.opening == id || $0.closing == id) })
        else { return nil }
        return id == m.opening ? "<\(m)>" : "</\(m)>"
    }

    /// The LM targets of a layout: `tokens[i + 1]` where positions i and i + 1 are both text.
    static func targets(tokens: [Int32], spanIDs: [Int32]) -> [Int32] {
        (0..<tokens.count).map { i in
            i + 1 < tokens.count && spanIDs[i] < 0 && spanIDs[i + 1] < 0 ? tokens[i + 1] : -1
        }
    }

    /// Number of positions that carry an LM loss.
    public var textLossCount: Int { targets.lazy.filter { $0 >= 0 }.count }

    /// The sequence as text for debugging: special ids by name (a registered modality's markers as
    /// `<wave>`, `</wave>`), spans as `[image×16]`.
    public func debugDescription(decode: ([Int32]) -> String) -> String {
        var out = ""
        var i = 0
        var pending: [Int32] = []
        func flush() {
            if !pending.isEmpty { out += decode(pending) }
            pending.removeAll()
        }
        while i < tokens.count {
            if spanIDs[i] >= 0 {
                flush()
                let span = spans[Int(spanIDs[i])]
                out += "[\(span.modality)×\(span.length)]"
                i += span.length
                continue
            }
            if let name = SpecialTokens.name(of: tokens[i]) ?? Self.markerName(tokens[i]) {
                flush()
                out += name
            } else {
                pending.append(tokens[i])
            }
            i += 1
        }
        flush()
        return out
    }
}
