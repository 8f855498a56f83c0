// Byte-level BPE tokenizer (GPT-2 style 256 byte tokens, so any text encodes): encode, decode,
// vocabulary layout. Not training or the file format; never parses special-token strings in text.

/// A byte-level byte-pair-encoding tokenizer.
///
/// Vocabulary layout: ids `0..<7` are ``SpecialTokens``, ids `7..<263` are the 256 single
/// bytes (byte `b` is id `7 + b`), and merge `k` creates id `263 + k`. Text is first split
/// into words (whitespace attaches to the word after it, punctuation runs stand alone), and
/// merges never cross a word boundary.
///
/// ```swift
/// let tokenizer = BPETokenizer.train(corpus: ["a red circle", "two blue squares"], vocabSize: 300)
/// let ids = tokenizer.encode("a red square")
/// tokenizer.decode(ids)  // "a red square"
/// ```
public struct BPETokenizer: Sendable, Equatable {
    /// A merge rule: the adjacent tokens `left`, `right` become one token.
    public struct Merge: Hashable, Sendable {
        public var left: Int32
        public var right: Int32
        public init(_ left: Int32, _ right: Int32) {
            self.left = left
            self.right = right
        }
    }

    /// The first byte token id (`SpecialTokens.count`).
    public static let byteBase = Int32(SpecialTokens.count)
    /// The first merged token id: specials plus the 256 bytes.
    public static let mergeBase = Int32(SpecialTokens.count + 256)

    /// Merge rules in priority order; merge `k` produces id `mergeBase + k`.
    public let merges: [Merge]

    /// The bytes each id decodes to (empty for special ids).
    let tokenBytes: [[UInt8]]
    /// Pair key → merge rank (which is also `id - mergeBase` of the product).
    let ranks: [UInt64: Int32]

    /// The number of ids: specials, bytes and merges.
    public var vocabSize: Int { Int(Self.mergeBase) + merges.count }

    /// A tokenizer from merge rules in priority order. Each rule may only use ids that exist
    /// before it (specials excluded); `precondition` fails otherwise (use ``load(from:)`` for
    /// untrusted input, which reports the problem).
    public init(merges: [Merge]) {
        if let problem = Self.validate(merges) { preconditionFailure(problem) }
        self.init(validated: merges)
    }

    init(validated merges: [Merge]) {
        self.merges = merges
        var bytes: [[UInt8]] = Array(repeating: [], count: SpecialTokens.count)
        for b in 0..<256 { bytes.append([UInt8(b)]) }
        var ranks: [UInt64: Int32] = [:]
        ranks.reserveCapacity(merges.count)
        for (k, m) in merges.enumerated() {
            bytes.append(bytes[Int(m.left)] + bytes[Int(m.right)])
            ranks[Self.key(m.left, m.right)] = Int32(k)
        }
        self.tokenBytes = bytes
        self.ranks = ranks
    }

    /// Why `merges` is not a valid rule list, or nil when it is.
    static func validate(_ merges: [Merge]) -> String? {
        var seen = Set<Merge>()
        for (k, m) in merges.enumerated() {
            let limit = mergeBase + Int32(k)
            for id in [m.left, m.right] where id < byteBase || id >= limit {
                return "merge \(k) uses id \(id), which is not a byte or earlier merge (allowed \(byteBase)..<\(limit))"
            }
            if !seen.insert(m).inserted { return "merge \(k) (\(m.left), \(m.right)) is a duplicate" }
        }
        return nil
    }

    public static func == (a: BPETokenizer, b: BPETokenizer) -> Bool { a.merges == b.merges }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    // MARK: - Encoding

    /// Token ids of `text` (no BOS/EOS added). Special-token strings such as `"<bos>"` in the
    /// text are ordinary characters and encode as bytes, so user text can never inject control ids.
    public func encode(_ text: String) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(bytes: $0) }
    }

    /// Token ids of raw bytes (no BOS/EOS added).
    public func encode(bytes: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(bytes.count / 2 + 1)
        var scratch = WordScratch()
        for word in WordSplitter.words(bytes) {
            encodeWord(UnsafeBufferPointer(rebasing: bytes[word]), into: &out, scratch: &scratch)
        }
        return out
    }

    /// Reusable buffers for one word: a doubly linked list of tokens plus a heap of candidate
    /// merges keyed `rank << 32 | position` (lowest rank first, then leftmost).
    struct WordScratch {
        var tokens: [Int32] = []
        var next: [Int32] = []
        var prev: [Int32] = []
        var heap = MinHeap<UInt64>()
    }

    /// Applies merges to one word in rank order: O(n log n) in the word length n.
    func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch s: inout WordScratch) {
        let n = word.count
        if n == 1 {
            out.append(Self.byteBase + Int32(word[0]))
            return
        }
        s.tokens.removeAll(keepingCapacity: true)
        s.next.removeAll(keepingCapacity: true)
        s.prev.removeAll(keepingCapacity: true)
        s.heap.removeAll()
        for i in 0..<n {
            s.tokens.append(Self.byteBase + Int32(word[i]))
            s.next.append(i + 1 < n ? Int32(i + 1) : -1)
            s.prev.append(Int32(i - 1))
        }
        @inline(__always) func consider(_ i: Int32, _ s: inout WordScratch) {
            guard i >= 0 else { return }
            let j = s.next[Int(i)]
            guard j >= 0, let rank = ranks[Self.key(s.tokens[Int(i)], s.tokens[Int(j)])] else { return }
            s.heap.push(UInt64(UInt32(rank)) << 32 | UInt64(UInt32(i)))
        }
        for i in 0..<(n - 1) { consider(Int32(i), &s) }
        // A merge only creates pairs of higher rank than itself (its product did not exist
        // before), so popping lowest rank then leftmost position reproduces the classic
        // "merge every occurrence of the best pair, left to right" loop.
        while let top = s.heap.pop() {
            let rank = Int32(truncatingIfNeeded: top >> 32)
            let i = Int32(truncatingIfNeeded: top & 0xFFFF_FFFF)
            let j = s.next[Int(i)]
            // Stale entries: the left token was absorbed (tokens[i] == -1), has no right
            // neighbour any more, or the pair at i changed since the entry was pushed.
            guard s.tokens[Int(i)] >= 0, j >= 0,
                ranks[Self.key(s.tokens[Int(i)], s.tokens[Int(j)])] == rank
            else { continue }
            s.tokens[Int(i)] = Self.mergeBase + rank
            s.tokens[Int(j)] = -1
            let k = s.next[Int(j)]
            s.next[Int(i)] = k
            if k >= 0 { s.prev[Int(k)] = i }
            consider(s.prev[Int(i)], &s)
            consider(i, &s)
        }
        var i: Int32 = 0
        while i >= 0 {
            out.append(s.tokens[Int(i)])
            i = s.next[Int(i)]
        }
    }

    // MARK: - Decoding

    /// The text of `ids`.
    ///
    /// - Special ids decode to their printable forms (`"<bos>"`, `"<boi>"`, …) unless
    ///   `skipSpecialTokens` is true, in which case they are dropped. Either way, re-encoding
    ///   the result does not give the special ids back (their strings encode as plain bytes).
    /// - Ids outside the vocabulary (e.g. image codes appended by a Chameleon-style model)
    ///   decode to U+FFFD.
    /// - Byte sequences that are not valid UTF-8 (possible when a model emits ids one by one)
    ///   are repaired with U+FFFD; ``decodeBytes(_:skipSpecialTokens:)`` gives the raw bytes.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecialTokens: skipSpecialTokens), as: UTF8.self)
    }

    /// The raw bytes of `ids`; special and unknown ids as in ``decode(_:skipSpecialTokens:)``.
    public func decodeBytes(_ ids: [Int32], skipSpecialTokens: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 3)
        for id in ids {
            if let name = SpecialTokens.name(of: id) {
                if !skipSpecialTokens { out.append(contentsOf: name.utf8) }
            } else if id >= 0 && Int(id) < tokenBytes.count {
                out.append(contentsOf: tokenBytes[Int(id)])
            } else {
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])  // U+FFFD
            }
        }
        return out
    }

    /// The bytes of one id (empty for special and unknown ids); for inspecting a vocabulary.
    public func bytes(of id: Int32) -> [UInt8] {
        guard id >= Self.byteBase, Int(id) < tokenBytes.count else { return [] }
        return tokenBytes[Int(id)]
    }
}
