// Mixed-modal sequences: layout, LM targets, span table; packing rows with document ids.
import Testing
@testable import Data
@testable import Text

@Suite("Mixed sequences and packing")
struct MixedSequenceTests {
    let bos = SpecialTokens.bos, eos = SpecialTokens.eos, pad = SpecialTokens.pad
    let boi = SpecialTokens.boi, eoi = SpecialTokens.eoi, boa = SpecialTokens.boa, eoa = SpecialTokens.eoa

    @Test func layoutTargetsAndSpans() {
        let seq = MixedSequence(segments: [.text([10, 11, 12]), .image(patches: 4), .text([13]), .audio(frames: 2)])
        #expect(seq.tokens == [bos, 10, 11, 12, boi, pad, pad, pad, pad, eoi, 13, boa, pad, pad, eoa, eos])
        // Text → text (including → BOI/BOA and EOI/EOA → text) has a target; nothing into or out of a span.
        #expect(seq.targets == [10, 11, 12, boi, -1, -1, -1, -1, -1, 13, boa, -1, -1, -1, eos, -1])
        #expect(seq.spanIDs == [-1, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, 1, 1, -1, -1])
        #expect(seq.positions == (0..<16).map { Int32($0) })
        #expect(seq.documentIDs == Array(repeating: 0, count: 16))
        #expect(seq.spans == [
            Span(start: 5, length: 4, modality: .image, index: 0, document: 0),
            Span(start: 12, length: 2, modality: .audio, index: 1, document: 0),
        ])
        #expect(seq.textLossCount == 7)
        #expect(seq.debugDescription { ids in ids.map(String.init).joined(separator: ",") } == "<bos>10,11,12<boi>[image×4]<eoi>13<boa>[audio×2]<eoa><eos>")
    }

    @Test func imageFirstAndPrompt() {
        let seq = MixedSequence(segments: [.image(patches: 3), .text([20, 21])], documentID: 5)
        #expect(seq.tokens == [bos, boi, pad, pad, pad, eoi, 20, 21, eos])
        #expect(seq.targets == [boi, -1, -1, -1, -1, 20, 21, eos, -1])
        #expect(seq.spans == [Span(start: 2, length: 3, modality: .image, index: 0, document: 5)])
        #expect(seq.documentIDs.allSatisfy { $0 == 5 })
        let prompt = MixedSequence(segments: [.text([30])], appendEOS: false)
        #expect(prompt.tokens == [bos, 30])
        #expect(prompt.targets == [30, -1])
    }

    @Test func targetsFollowTheRuleEverywhere() {
        var rng = SplitMix64(seed: 1, stream: 0, index: 0)
        for _ in 0..<500 {
            var segments: [Segment] = []
            for _ in 0..<rng.int(in: 0...5) {
                switch rng.int(below: 3) {
                case 0: segments.append(.text((0..<rng.int(in: 0...6)).map { _ in Int32(rng.int(in: 7...300)) }))
                case 1: segments.append(.image(patches: rng.int(in: 1...8)))
                default: segments.append(.audio(frames: rng.int(in: 1...8)))
                }
            }
            let seq = MixedSequence(segments: segments)
            for i in 0..<seq.count {
                let textHere = seq.spanIDs[i] < 0, textNext = i + 1 < seq.count && seq.spanIDs[i + 1] < 0
                #expect(seq.targets[i] == (textHere && textNext ? seq.tokens[i + 1] : -1))
                #expect((seq.spanIDs[i] >= 0) == (seq.tokens[i] == pad))
            }
            for (k, span) in seq.spans.enumerated() {
                #expect(span.index == k)
                #expect(seq.tokens[span.start - 1] == (span.modality == .image ? boi : boa))
                #expect(seq.tokens[span.start + span.length] == (span.modality == .image ? eoi : eoa))
                #expect(seq.spanIDs[span.range].allSatisfy { $0 == Int32(k) })
            }
        }
    }

    @Test func packingKeepsDocumentsApart() throws {
        let a = MixedSequence(segments: [.text([10, 11]), .image(patches: 3)])   // 9 positions
        let b = MixedSequence(segments: [.image(patches: 2), .text([12])])       // 7 positions
        let row = try pack([a, b], length: 20)
        #expect(row.count == 20)
        #expect(row.documents == [0..<9, 9..<16])
        #expect(row.paddingCount == 4)
        #expect(row.tokens == a.tokens + b.tokens + [pad, pad, pad, pad])
        let documentIDs: [Int32] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
        let positions: [Int32] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3]
        let spanIDs: [Int32] = [-1, -1, -1, -1, 0, 0, 0, -1, -1, -1, -1, 1, 1, -1, -1, -1, -1, -1, -1, -1]
        let padTargets: [Int32] = [-1, -1, -1, -1]
        #expect(row.documentIDs == documentIDs)
        #expect(row.positions == positions)
        #expect(row.targets == a.targets + b.targets + padTargets)
        #expect(row.spanIDs == spanIDs)
        #expect(row.spans == [
            Span(start: 4, length: 3, modality: .image, index: 0, document: 0),
            Span(start: 11, length: 2, modality: .image, index: 0, document: 1),
        ])
        // No target crosses a document boundary: each document's last position predicts nothing.
        for d in row.documents { #expect(row.targets[d.upperBound - 1] == -1) }
        #expect(row.sourceIndices == [0, 1])
    }

    @Test func tooLongIsRejected() {
        let long = MixedSequence(segments: [.image(patches: 14)])  // 18 positions
        let short = MixedSequence(segments: [.text([10])])         // 3 positions
        #expect(throws: PackingError.sequenceTooLong(index: 1, count: 18, rowLength: 16)) { try pack([short, long], length: 16) }
        #expect(throws: PackingError.rowOverflow(total: 21, rowLength: 20)) { try pack([short, long], length: 20) }
        #expect(throws: PackingError.sequenceTooLong(index: 1, count: 18, rowLength: 16)) { try packGreedy([short, long], length: 16) }
        let message = "\(PackingError.sequenceTooLong(index: 1, count: 18, rowLength: 16))"
        #expect(message.contains("sequence 1") && message.contains("18") && message.contains("16"))
        #expect(throws: Never.self) { try pack([long], length: 18) }
    }

    @Test func greedyPackerUsesEveryInputOnce() throws {
        var rng = SplitMix64(seed: 2, stream: 0, index: 0)
        let sequences = (0..<400).map { _ in
            MixedSequence(segments: [.text(Array(repeating: 9, count: rng.int(in: 0...20))), .image(patches: rng.int(in: 1...16))])
        }
        let length = 64
        let rows = try packGreedy(sequences, length: length)
        let total = sequences.reduce(0) { $0 + $1.count }
        #expect(rows.count >= (total + length - 1) / length)
        #expect(Double(total) / Double(rows.count * length) > 0.9, "fill \(Double(total) / Double(rows.count * length))")
        var seen: [Int] = []
        for row in rows {
            #expect(row.count == length)
            #expect(row.sourceIndices == row.sourceIndices.sorted())
            for (d, k) in row.sourceIndices.enumerated() {
                let doc = row.documents[d]
                #expect(Array(row.tokens[doc]) == sequences[k].tokens)
                #expect(row.documentIDs[doc].allSatisfy { $0 == Int32(d) })
            }
            #expect(row.documentIDs[(row.documents.last!.upperBound)...].allSatisfy { $0 == Int32(row.documents.count) })
            let spanIDs = Set(row.spanIDs.filter { $0 >= 0 })
            #expect(spanIDs == Set((0..<row.spans.count).map { Int32($0) }))
            seen += row.sourceIndices
        }
        #expect(seen.sorted() == Array(0..<400))
    }

    @Test func shapesCaptionToSequence() {
        let tok = BPETokenizer.train(corpus: (0..<500).map { ShapesWorld(seed: 0).example($0).caption }, vocabSize: 400)
        let ex = ShapesWorld(seed: 0).example(3)
        let caption = tok.encode(ex.caption)
        let seq = MixedSequence(segments: [.text(caption), .image(patches: 16)])
        #expect(seq.count == caption.count + 16 + 4)
        #expect(tok.decode(seq.tokens, skipSpecialTokens: true) == ex.caption)
    }
}
