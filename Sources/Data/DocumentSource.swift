// Mixed-modal documents as a source hands them out, for any family: text and spans of any
// registered modality, in any order, each span generated (noised and scored) or read as a
// condition (clean, unscored). Every random choice of document i is drawn from a generator the
// caller derives from (seed, i), so any rank can build any row. Not layout (MixedSequence), not
// noising or tokenizing (the families' document batchers).
import Tensors

/// What a span is in its document.
public enum SpanRole: Hashable, Sendable {
    /// Generated: Transfusion noises it and scores its diffusion loss.
    case generated
    /// Read: given clean (t = 0) and not scored, as an edit's source or speech to transcribe.
    case condition
}

/// One document: its pieces in order, and its index in its source.
public struct Document: Hashable, Sendable {
    public enum Piece: Hashable, Sendable {
        /// Text token ids (reserved ids pass through).
        case text([Int32])
        /// A span of `modality`: its values, one row of `values.count / length` per position, row-major.
        case span(Modality, values: [Float], length: Int, role: SpanRole)
    }

    public var index: Int
    public var pieces: [Piece]

    public init(index: Int, pieces: [Piece]) { self.index = index; self.pieces = pieces }

    /// The layout of the pieces (spans as placeholder positions).
    public var segments: [Segment] {
        pieces.map {
            switch $0 {
            case .text(let ids): return .text(ids)
            case .span(let m, _, let length, _): return .span(m, length: length)
            }
        }
    }

    /// The spans, in order: modality, values, length, role.
    public var spans: [(modality: Modality, values: [Float], length: Int, role: SpanRole)] {
        pieces.compactMap {
            if case .span(let m, let values, let length, let role) = $0 { return (m, values, length, role) }
            return nil
        }
    }
}

/// A source of documents: ShapesWorld's pairs, an image folder, a corpus, a toy signal.
///
/// ```swift
/// let docs = try source.documents(0..<16, seed: recipe.seed)   // the same 16 documents on every rank
/// ```
public protocol DocumentSource {
    /// Document `index`. Every random choice it makes (its kind, caption dropout, its content) is
    /// drawn from `rng`, a generator of its own derived from (seed, index).
    func document(_ index: Int, rng: RNG) throws -> Document
}

extension DocumentSource {
    /// Documents `indices`, document i drawn from `RNG(seed).split(i).split(0)`: a function of
    /// (seed, i) alone. (Stream 1 of `RNG(seed).split(i)` is the document's noise: see the
    /// families' document batchers.)
    public func documents<C: Collection>(_ indices: C, seed: UInt64) throws -> [Document] where C.Element == Int {
        try indices.map { try document($0, rng: RNG(seed: seed).split(UInt64($0)).split(0)) }
    }
}

extension RNG {
    /// The noise generator of document `index` under `seed`: its span timesteps and noise tensors
    /// come from it (span k from `.split(k)`), whatever rows or ranks the document lands in.
    public static func documentNoise(seed: UInt64, index: Int) -> RNG { RNG(seed: seed).split(UInt64(index)).split(1) }
}
