// Learns BPE merges from a corpus: word counting, incremental pair counts and a lazy max-heap.
// Not the encoder (BPETokenizer.swift); it holds no state after training returns.

extension BPETokenizer {
    /// Learns merges from `corpus` until the vocabulary (specials + 256 bytes + merges) holds
    /// `vocabSize` ids, or no adjacent pair occurs at least `minFrequency` times.
    ///
    /// Deterministic: the most frequent pair wins; ties go to the smallest `(left, right)` id
    /// pair, so the same corpus always gives the same merges, whatever the hash seed.
    ///
    /// ```swift
    /// let tok = BPETokenizer.train(corpus: captions, vocabSize: 512)
    /// ```
    public static func train(corpus: [String], vocabSize: Int, minFrequency: Int = 2) -> BPETokenizer {
        var trainer = BPETrainer()
        for text in corpus { trainer.add(text) }
        return BPETokenizer(validated: trainer.learn(mergeCount: max(0, vocabSize - Int(mergeBase)), minFrequency: max(1, minFrequency)))
    }
}

/// The training state: unique words as token lists with their counts, pair counts, and which
/// words hold each pair.
struct BPETrainer {
    private var wordCounts: [[UInt8]: Int] = [:]

    mutating func add(_ text: String) {
        let bytes = Array(text.utf8)
        for w in WordSplitter.words(bytes) { wordCounts[Array(bytes[w]), default: 0] += 1 }
    }

    /// A heap entry ordered so the min is the highest count, then the smallest pair key.
    struct Candidate: Comparable {
        var count: Int
        var key: UInt64
        static func < (a: Candidate, b: Candidate) -> Bool {
            a.count != b.count ? a.count > b.count : a.key < b.key
        }
    }

    func learn(mergeCount: Int, minFrequency: Int) -> [BPETokenizer.Merge] {
        // Sort words so every index below is independent of Dictionary order.
        let unique = wordCounts.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        var words: [[Int32]] = unique.map { $0.key.map { BPETokenizer.byteBase + Int32($0) } }
        let counts: [Int] = unique.map(\.value)

        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]  // may hold stale or repeated word indices
        for (w, tokens) in words.enumerated() where tokens.count > 1 {
            for i in 0..<(tokens.count - 1) {
                let k = BPETokenizer.key(tokens[i], tokens[i + 1])
                pairCounts[k, default: 0] += counts[w]
                pairWords[k, default: []].append(Int32(w))
            }
        }
        var heap = MinHeap<Candidate>()
        for (k, c) in pairCounts { heap.push(Candidate(count: c, key: k)) }

        var merges: [BPETokenizer.Merge] = []
        var touched: [UInt64: Int] = [:]  // pair count deltas of one merge step
        while merges.count < mergeCount, let best = heap.pop() {
            // Lazy deletion: skip entries whose count has changed since they were pushed.
            guard pairCounts[best.key] == best.count else { continue }
            if best.count < minFrequency { break }
            let left = Int32(truncatingIfNeeded: best.key >> 32)
            let right = Int32(truncatingIfNeeded: best.key & 0xFFFF_FFFF)
            let product = BPETokenizer.mergeBase + Int32(merges.count)
            merges.append(.init(left, right))

            touched.removeAll(keepingCapacity: true)
            var lastWord: Int32 = -1
            for w in (pairWords[best.key] ?? []) where w != lastWord {
                lastWord = w
                let old = words[Int(w)]
                guard old.count > 1 else { continue }
                var merged: [Int32] = []
                merged.reserveCapacity(old.count)
                var i = 0
                while i < old.count {
                    if i + 1 < old.count && old[i] == left && old[i + 1] == right {
                        merged.append(product)
                        i += 2
                    } else {
                        merged.append(old[i])
                        i += 1
                    }
                }
                if merged.count == old.count { continue }  // stale index
                let c = counts[Int(w)]
                for i in 0..<(old.count - 1) { touched[BPETokenizer.key(old[i], old[i + 1]), default: 0] -= c }
                if merged.count > 1 {
                    for i in 0..<(merged.count - 1) {
                        let k = BPETokenizer.key(merged[i], merged[i + 1])
                        touched[k, default: 0] += c
                        if merged[i] == product || merged[i + 1] == product { pairWords[k, default: []].append(w) }
                    }
                }
                words[Int(w)] = merged
            }
            pairWords[best.key] = nil
            for (k, delta) in touched where delta != 0 {
                let c = (pairCounts[k] ?? 0) + delta
                if c > 0 {
                    pairCounts[k] = c
                    heap.push(Candidate(count: c, key: k))
                } else {
                    pairCounts[k] = nil
                }
            }
        }
        return merges
    }
}
