// Byte-level BPE: round trips over random Unicode, agreement with a naive reference encoder,
// deterministic training, decoding of special ids. Save/load lives in TokenizerFileTests.swift.
import Foundation
import Testing
@testable import Text
import Data

func randomString(_ rng: inout SplitMix64, maxScalars: Int = 40) -> String {
    let ranges: [ClosedRange<UInt32>] = [
        0x00...0x7F, 0x20...0x7E, 0x20...0x7E, 0x80...0xFF, 0x0300...0x036F, 0x0400...0x04FF,
        0x4E00...0x9FFF, 0x3040...0x30FF, 0x1F300...0x1F6FF, 0x1F900...0x1F9FF, 0x200B...0x200F,
        0xFE00...0xFE0F, 0xFFF0...0xFFFF, 0xFEFF...0xFEFF, 0xE000...0xF8FF, 0x10FFF0...0x10FFFF,
    ]
    var s = String.UnicodeScalarView()
    for _ in 0..<rng.int(below: maxScalars + 1) {
        let r = ranges[rng.int(below: ranges.count)]
        let v = r.lowerBound + UInt32(rng.int(below: Int(r.upperBound - r.lowerBound) + 1))
        if let scalar = Unicode.Scalar(v) { s.append(scalar) }
    }
    return String(s)
}

/// A small English-like corpus with repetition, so training finds merges.
func englishCorpus() -> [String] {
    let colours = ["red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"]
    let shapes = ["circle", "square", "triangle", "diamond", "cross"]
    let cells = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
    var rng = SplitMix64(state: 7)
    var corpus: [String] = []
    for _ in 0..<2000 {
        let c = colours[rng.int(below: colours.count)], s = shapes[rng.int(below: shapes.count)], p = cells[rng.int(below: cells.count)]
        corpus.append(rng.int(below: 2) == 0 ? "a \(c) \(s) in the \(p)" : "what colour is the \(s)? \(c).")
    }
    return corpus
}

/// The textbook encoder: per word, repeatedly merge every occurrence of the lowest-rank pair.
func referenceEncode(_ tok: BPETokenizer, _ text: String) -> [Int32] {
    let bytes = Array(text.utf8)
    var out: [Int32] = []
    for w in WordSplitter.words(bytes) {
        var t = bytes[w].map { BPETokenizer.byteBase + Int32($0) }
        while t.count > 1 {
            var best: (rank: Int32, left: Int32, right: Int32)? = nil
            for i in 0..<(t.count - 1) {
                if let r = tok.ranks[BPETokenizer.key(t[i], t[i + 1])], best == nil || r < best!.rank {
                    best = (r, t[i], t[i + 1])
                }
            }
            guard let b = best else { break }
            var merged: [Int32] = []
            var i = 0
            while i < t.count {
                if i + 1 < t.count && t[i] == b.left && t[i + 1] == b.right {
                    merged.append(BPETokenizer.mergeBase + b.rank)
                    i += 2
                } else {
                    merged.append(t[i])
                    i += 1
                }
            }
            t = merged
        }
        out += t
    }
    return out
}

@Suite("Special tokens")
struct SpecialTokensTests {
    @Test func idsAndNames() {
        #expect([SpecialTokens.bos, .init(SpecialTokens.eos), SpecialTokens.pad, SpecialTokens.boi,
                 SpecialTokens.eoi, SpecialTokens.boa, SpecialTokens.eoa] == [0, 1, 2, 3, 4, 5, 6])
        #expect(SpecialTokens.count == 7)
        #expect(SpecialTokens.name(of: SpecialTokens.boi) == "<boi>")
        #expect(SpecialTokens.id(named: "<eos>") == SpecialTokens.eos)
        #expect(SpecialTokens.name(of: 7) == nil)
        #expect(Set(SpecialTokens.names).count == SpecialTokens.count)
    }
}

@Suite("BPE tokenizer")
struct BPETokenizerTests {
    static let trained = BPETokenizer.train(corpus: englishCorpus(), vocabSize: 400)

    @Test func bytesOnlyRoundTrip() {
        let tok = BPETokenizer(merges: [])
        #expect(tok.vocabSize == 263)
        let ids = tok.encode("héllo 🌍")
        #expect(ids.count == "héllo 🌍".utf8.count)
        #expect(ids.allSatisfy { $0 >= 7 && $0 < 263 })
        #expect(tok.decode(ids) == "héllo 🌍")
    }

    @Test func wordSplitting() {
        let words = WordSplitter.words(Array("a red  circle? x\n\ty".utf8)).map { String(decoding: Array("a red  circle? x\n\ty".utf8)[$0], as: UTF8.self) }
        #expect(words == ["a", " red", "  circle", "?", " x", "\n\ty"])
        #expect(WordSplitter.words([]).isEmpty)
    }

    @Test func trainingLearnsFrequentWords() {
        let tok = Self.trained
        // The corpus has few distinct words, so training runs out of repeated pairs before 400.
        #expect(tok.vocabSize > 300 && tok.vocabSize <= 400)
        // Frequent words become single tokens.
        for word in [" circle", " square", " the", " colour"] {
            #expect(tok.encode(word).count == 1, "\(word) → \(tok.encode(word))")
        }
        // Merges never cross a word boundary: every token's bytes lie within one word.
        for id in BPETokenizer.mergeBase..<Int32(tok.vocabSize) {
            let b = tok.bytes(of: id)
            #expect(WordSplitter.words(b).count == 1, "token \(id) \(String(decoding: b, as: UTF8.self)) spans words")
        }
    }

    @Test func trainingIsDeterministicAndOrderFree() {
        var corpus = englishCorpus()
        let a = BPETokenizer.train(corpus: corpus, vocabSize: 400)
        var rng = SplitMix64(state: 3)
        for i in stride(from: corpus.count - 1, to: 0, by: -1) { corpus.swapAt(i, rng.int(below: i + 1)) }
        let b = BPETokenizer.train(corpus: corpus, vocabSize: 400)
        #expect(a == b)
        #expect(a == Self.trained)
    }

    @Test func trainingStopsWhenNothingRepeats() {
        let tok = BPETokenizer.train(corpus: ["abc"], vocabSize: 1000)
        #expect(tok.merges.isEmpty)
        let two = BPETokenizer.train(corpus: ["abab"], vocabSize: 1000)
        #expect(two.merges == [.init(BPETokenizer.byteBase + 97, BPETokenizer.byteBase + 98)])
        #expect(BPETokenizer.train(corpus: ["abab"], vocabSize: 10).merges.isEmpty)
    }

    @Test func roundTripsRandomUnicode() {
        // Train on a mix of English and random strings so merges include multi-byte pieces.
        var rng = SplitMix64(state: 42)
        let noise = (0..<500).map { _ in randomString(&rng) }
        let tok = BPETokenizer.train(corpus: englishCorpus() + noise + noise, vocabSize: 1500)
        var failures = 0
        for _ in 0..<5000 {
            let s = randomString(&rng)
            let ids = tok.encode(s)
            if tok.decode(ids) != s || tok.decodeBytes(ids) != Array(s.utf8) {
                failures += 1
                if failures < 5 { Issue.record("round trip failed for \(s.unicodeScalars.map { String($0.value, radix: 16) })") }
            }
            if ids.contains(where: { $0 < BPETokenizer.byteBase || $0 >= Int32(tok.vocabSize) }) { failures += 1 }
        }
        #expect(failures == 0)
        #expect(tok.encode("").isEmpty)
        #expect(tok.decode([]) == "")
    }

    @Test func matchesReferenceEncoder() {
        var rng = SplitMix64(state: 9)
        let tok = Self.trained
        let corpus = englishCorpus()
        for k in 0..<3000 {
            let s = k % 2 == 0 ? corpus[rng.int(below: corpus.count)] + " " + corpus[rng.int(below: corpus.count)] : randomString(&rng)
            #expect(tok.encode(s) == referenceEncode(tok, s), "\(s)")
        }
        // Overlapping pairs: "aaaa…" with a learned "aa" merge merges left to right.
        let a = BPETokenizer.train(corpus: ["aaaa aaaa aaa"], vocabSize: 270)
        for n in 1...9 {
            let s = String(repeating: "a", count: n)
            #expect(a.encode(s) == referenceEncode(a, s))
        }
    }

    @Test func specialTokensDecodeByOption() {
        let tok = Self.trained
        let ids = [SpecialTokens.bos] + tok.encode("a red circle") + [SpecialTokens.boi, SpecialTokens.pad, SpecialTokens.eoi, SpecialTokens.eos]
        #expect(tok.decode(ids) == "<bos>a red circle<boi><pad><eoi><eos>")
        #expect(tok.decode(ids, skipSpecialTokens: true) == "a red circle")
        // Special strings in text are plain bytes, never control ids.
        #expect(!tok.encode("<bos>").contains(where: SpecialTokens.isSpecial))
        // Unknown ids decode to U+FFFD; a split multi-byte character is repaired.
        #expect(tok.decode([Int32(tok.vocabSize), -5]) == "\u{FFFD}\u{FFFD}")
        let euro = tok.encode("€")
        #expect(tok.decodeBytes(Array(euro.prefix(1))).count >= 1)
    }

    @Test func encodingIsFast() {
        let tok = Self.trained
        var rng = SplitMix64(state: 1)
        let corpus = englishCorpus()
        let text = (0..<20000).map { _ in corpus[rng.int(below: corpus.count)] }.joined(separator: " ")
        let longWord = String(repeating: "ab", count: 50_000)  // one 100 kB word
        let start = Date()
        let ids = tok.encode(text)
        let long = tok.encode(longWord)
        let seconds = Date().timeIntervalSince(start)
        let mb = Double(text.utf8.count + longWord.utf8.count) / 1e6
        print("BPE encode: \(String(format: "%.2f", mb)) MB in \(String(format: "%.3f", seconds)) s (\(String(format: "%.1f", mb / seconds)) MB/s)")
        #expect(tok.decode(ids) == text)
        #expect(tok.decode(long) == longWord)
        #expect(seconds < 10)
    }
}
