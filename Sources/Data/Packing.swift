// Packs mixed-modal sequences into fixed-length rows with document ids, plus a first-fit packer.
// Not batching into tensors and not truncation: a sequence that does not fit is an error.
import Text

/// Why sequences could not be packed.
public enum PackingError: Error, CustomStringConvertible, Equatable {
    /// Sequence `index` has `count` positions, more than a row of `rowLength`.
    case sequenceTooLong(index: Int, count: Int, rowLength: Int)
    /// The sequences together need `total` positions, more than a row of `rowLength`.
    case rowOverflow(total: Int, rowLength: Int)

    public var description: String {
        switch self {
        case .sequenceTooLong(let index, let count, let rowLength):
            return "sequence \(index) has \(count) positions, longer than the row length \(rowLength); shorten it (fewer patches or tokens) or raise the row length"
        case .rowOverflow(let total, let rowLength):
            return "the sequences need \(total) positions together, more than the row length \(rowLength)"
        }
    }
}

/// A fixed-length row of several documents, the unit of a training batch.
///
/// Documents in a row are numbered 0, 1, … in order; the padding at the end is one more
/// document of its own (id = number of documents), with `PAD` tokens, targets -1, spanIDs -1,
/// so masks that compare document ids never let a real position see padding or another
/// document. `positions` restart at 0 in every document (padding included).
///
/// `spanIDs` are renumbered per row: the n-th span of the row (in `spans`) has spanID n,
/// whatever document it comes from; `spans[n].index` keeps its ordinal in its own document.
public struct PackedRow: Hashable, Sendable {
    public var tokens: [Int32]
    public var targets: [Int32]
    public var positions: [Int32]
    public var documentIDs: [Int32]
    public var spanIDs: [Int32]
    public var spans: [Span]
    /// The positions of each document, in order (padding not included).
    public var documents: [Range<Int>]
    /// For each document, the index of the sequence it came from in the packer's input.
    public var sourceIndices: [Int]

    /// Row length.
    public var count: Int { tokens.count }
    /// Number of padding positions at the end.
    public var paddingCount: Int { count - (documents.last?.upperBound ?? 0) }
}

/// Packs `sequences` (in order) into one row of `length` positions, padding the rest.
///
/// ```swift
/// let row = try pack([a, b], length: 256)  // row.documentIDs: 0…0 1…1 2…2 (padding)
/// ```
/// - Throws: ``PackingError/sequenceTooLong(index:count:rowLength:)`` if one sequence is longer
///   than `length`, ``PackingError/rowOverflow(total:rowLength:)`` if together they are.
public func pack(_ sequences: [MixedSequence], length: Int) throws -> PackedRow {
    try pack(sequences, length: length, sourceIndices: Array(sequences.indices))
}

func pack(_ sequences: [MixedSequence], length: Int, sourceIndices: [Int]) throws -> PackedRow {
    for (k, s) in sequences.enumerated() where s.count > length {
        throw PackingError.sequenceTooLong(index: sourceIndices[k], count: s.count, rowLength: length)
    }
    let total = sequences.reduce(0) { $0 + $1.count }
    guard total <= length else { throw PackingError.rowOverflow(total: total, rowLength: length) }

    var row = PackedRow(tokens: [], targets: [], positions: [], documentIDs: [], spanIDs: [], spans: [],
                        documents: [], sourceIndices: sourceIndices)
    row.tokens.reserveCapacity(length)
    for (d, s) in sequences.enumerated() {
        let offset = row.tokens.count
        let spanBase = Int32(row.spans.count)
        row.tokens += s.tokens
        row.targets += s.targets
        row.positions += s.positions
        row.documentIDs += repeatElement(Int32(d), count: s.count)
        row.spanIDs += s.spanIDs.map { $0 < 0 ? -1 : $0 + spanBase }
        row.spans += s.spans.map { span in
            var moved = span
            moved.start += offset
            moved.document = Int32(d)
            return moved
        }
        row.documents.append(offset..<(offset + s.count))
    }
    let padding = length - total
    row.tokens += repeatElement(SpecialTokens.pad, count: padding)
    row.targets += repeatElement(-1, count: padding)
    row.positions += (0..<padding).map { Int32($0) }
    row.documentIDs += repeatElement(Int32(sequences.count), count: padding)
    row.spanIDs += repeatElement(-1, count: padding)
    return row
}

/// Packs a list into rows of `length` positions, first fit: each sequence goes into the first
/// of the last `window` rows that still has room, or opens a new row (the window keeps packing
/// linear in the list length). Deterministic; within a row, documents keep their input order.
/// `sourceIndices` in each row say which inputs it holds.
///
/// - Throws: ``PackingError/sequenceTooLong(index:count:rowLength:)`` naming the first
///   sequence longer than `length`; nothing is dropped or truncated silently.
public func packGreedy(_ sequences: [MixedSequence], length: Int, window: Int = 32) throws -> [PackedRow] {
    var rows: [[Int]] = []
    var used: [Int] = []
    for (k, s) in sequences.enumerated() {
        guard s.count <= length else {
            throw PackingError.sequenceTooLong(index: k, count: s.count, rowLength: length)
        }
        let searched = max(0, used.count - max(1, window))..<used.count
        if let r = searched.first(where: { used[$0] + s.count <= length }) {
            rows[r].append(k)
            used[r] += s.count
        } else {
            rows.append([k])
            used.append(s.count)
        }
    }
    return try rows.map { members in
        try pack(members.map { sequences[$0] }, length: length, sourceIndices: members)
    }
}
