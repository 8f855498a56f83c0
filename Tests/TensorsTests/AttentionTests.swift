// The fused attention against a naive masked-softmax built from primitive ops, for causal,
// bidirectional-span and packed-document masks (spans at both sequence edges), plus RoPE.
import Foundation
import Testing
import Tensors
import TestSupport

/// softmax(QKᵀ·scale + bias) V with a dense additive mask, from primitive ops.
func naiveAttention(_ q: Tensor, _ k: Tensor, _ v: Tensor, _ mask: AttentionMask) -> Tensor {
    let (b, t, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]), s = k.shape[1]
    var bias = [Float](repeating: 0, count: b * t * s)
    for bi in 0..<b { for i in 0..<t { for j in 0..<s where !mask.allows(batch: bi, query: i, key: j) { bias[(bi * t + i) * s + j] = -1e9 } } }
    let qh = q.permuted([0, 2, 1, 3]), kh = k.permuted([0, 2, 1, 3]), vh = v.permuted([0, 2, 1, 3])
    let scores = matmul(qh, kh, transposeB: true) * (1 / Float(d).squareRoot()) + Tensor(bias, shape: [b, 1, t, s])
    return matmul(scores.softmax(), vh).permuted([0, 2, 1, 3])
}

/// The naive definition of the Transfusion mask, straight from DESIGN.md.
func naiveAllows(doc: [Int32], span: [Int32], _ i: Int, _ j: Int) -> Bool {
    doc[i] == doc[j] && (j <= i || (span[i] >= 0 && span[i] == span[j]))
}

@Suite struct AttentionTests {
    static let layouts: [(String, [[Int32]], [[Int32]])] = [
        ("causal", [[Int32](repeating: 0, count: 9)], [[Int32](repeating: -1, count: 9)]),
        ("span in the middle", [[Int32](repeating: 0, count: 9)], [[-1, -1, 0, 0, 0, -1, -1, -1, -1]]),
        ("spans at both edges", [[Int32](repeating: 0, count: 9)], [[0, 0, 0, -1, -1, -1, 1, 1, 1]]),
        ("packed documents with spans", [[0, 0, 0, 0, 1, 1, 1, 2, 2], [0, 0, 0, 0, 0, 0, 0, 0, 0]],
         [[-1, 0, 0, -1, 1, 1, -1, -1, 2], [-1, -1, -1, -1, -1, 0, 0, 0, 0]]),
    ]

    @Test func maskEqualsNaiveDefinition() throws {
        for (name, docs, spans) in Self.layouts {
            let m = try AttentionMask(documents: docs, spans: spans)
            for b in 0..<docs.count { for i in 0..<9 { for j in 0..<9 {
                #expect(m.allows(batch: b, query: i, key: j) == naiveAllows(doc: docs[b], span: spans[b], i, j), "\(name) b\(b) q\(i) k\(j)")
            } } }
        }
        let causalSpans = try AttentionMask(documents: [[0, 0, 0, 0]], spans: [[-1, 0, 0, -1]], causalSpans: true)
        #expect(causalSpans == AttentionMask.causal(batch: 1, queries: 4))
        #expect(throws: AttentionMask.Failure.self) { try AttentionMask(documents: [[0, 1, 0]], spans: [[-1, -1, -1]]) }
        #expect(throws: AttentionMask.Failure.self) { try AttentionMask(documents: [[0, 1]], spans: [[0, 0]]) }
    }

    @Test func fusedEqualsNaiveForwardAndBackward() throws {
        for (name, docs, spans) in Self.layouts {
            let b = docs.count, t = 9, h = 2, d = 4
            let mask = try AttentionMask(documents: docs, spans: spans)
            let q = randomInput([b, t, h, d], seed: 1), k = randomInput([b, t, h, d], seed: 2), v = randomInput([b, t, h, d], seed: 3)
            let fused = attention(q, k, v, mask: mask), naive = naiveAttention(q, k, v, mask)
            expectClose(fused.scalars, naive.scalars, atol: 1e-5, rtol: 1e-4)
            let seed = RNG(seed: 4).normal(fused.shape)
            fused.backward(seed)
            let (gq, gk, gv) = (q.grad!.scalars, k.grad!.scalars, v.grad!.scalars)
            q.grad = nil; k.grad = nil; v.grad = nil
            naive.backward(seed)
            expectClose(gq, q.grad!.scalars, atol: 1e-5, rtol: 1e-3)
            expectClose(gk, k.grad!.scalars, atol: 1e-5, rtol: 1e-3)
            expectClose(gv, v.grad!.scalars, atol: 1e-5, rtol: 1e-3)
            _ = name
        }
    }

    @Test func finiteDifferenceGradients() throws {
        let mask = try AttentionMask(documents: [[0, 0, 0, 1, 1]], spans: [[-1, 0, 0, -1, -1]])
        let q = randomInput([1, 5, 1, 3], seed: 5), k = randomInput([1, 5, 1, 3], seed: 6), v = randomInput([1, 5, 1, 3], seed: 7)
        gradCheck([q, k, v]) { attention($0[0], $0[1], $0[2], mask: mask) }
    }

    @Test func longSequencesCrossQueryBlocks() throws {
        // 150 positions: three query blocks, an image span straddling a block boundary.
        let t = 150
        var spans = [Int32](repeating: -1, count: t)
        for i in 50..<90 { spans[i] = 0 }
        for i in 130..<150 { spans[i] = 1 }
        let docs = [Int32](repeating: 0, count: 100) + [Int32](repeating: 1, count: 50)
        let mask = try AttentionMask(documents: [docs], spans: [spans])
        let q = randomInput([1, t, 2, 8], seed: 8), k = randomInput([1, t, 2, 8], seed: 9), v = randomInput([1, t, 2, 8], seed: 10)
        let fused = attention(q, k, v, mask: mask), naive = naiveAttention(q, k, v, mask)
        expectClose(fused.scalars, naive.scalars, atol: 1e-5, rtol: 1e-4)
        let seed = RNG(seed: 11).normal(fused.shape)
        fused.backward(seed)
        let gk = k.grad!.scalars
        k.grad = nil
        naive.backward(seed)
        expectClose(gk, k.grad!.scalars, atol: 1e-4, rtol: 1e-3)
    }

    @Test func cachedQueriesMatchFullSequence() {
        // The last 3 queries against all 8 keys equal rows 5..<8 of full causal attention.
        let q = randomInput([1, 8, 2, 4], seed: 12), k = randomInput([1, 8, 2, 4], seed: 13), v = randomInput([1, 8, 2, 4], seed: 14)
        let full = attention(q, k, v, mask: .causal(batch: 1, queries: 8))
        let tail = attention(q.slice(axis: 1, 5..<8), k, v, mask: .causal(batch: 1, queries: 3, keys: 8))
        expectClose(tail.scalars, full.slice(axis: 1, 5..<8).scalars, atol: 1e-6)
    }

    @Test func ropeRotatesAndInverts() {
        let x = randomInput([2, 5, 2, 6], seed: 15)
        let pos = Tensor(ints: [0, 1, 2, 3, 4, 0, 1, 2, 0, 1])
        gradCheck([x]) { rope($0[0], positions: pos) }
        let y = rope(x, positions: pos)
        // Norms of each rotated pair are preserved; position 0 is the identity.
        expectClose(Array(y.scalars[0..<12]), Array(x.scalars[0..<12]), atol: 1e-7)
        let nx = (x * x).sum().item, ny = (y * y).sum().item
        #expect(abs(nx - ny) < 1e-4 * nx)
        // Relative positions: <rope(q, m), rope(k, n)> depends only on m − n.
        let q = RNG(seed: 16).normal([1, 1, 1, 6]), k = RNG(seed: 17).normal([1, 1, 1, 6])
        func dotAt(_ m: Int32, _ n: Int32) -> Float {
            (rope(q, positions: Tensor(ints: [m])) * rope(k, positions: Tensor(ints: [n]))).sum().item
        }
        #expect(abs(dotAt(3, 1) - dotAt(7, 5)) < 1e-5)
    }
}

@Suite struct PackedAttentionTests {
    @Test func packedEqualsSplit() throws {
        let (b, t, h, d) = (2, 7, 2, 4)
        let mask = try AttentionMask(documents: [[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]],
                                     spans: [[-1, 0, 0, -1, 1, 1, -1], [-1, -1, -1, -1, 0, 0, 0]])
        let pos = Tensor(ints: [0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6])
        let x = randomInput([b, t, 3 * h * d], seed: 21)
        let packed = attention(packed: rope(packed: x, heads: h, positions: pos), heads: h, mask: mask)
        let parts = x.split(axis: -1, sizes: [h * d, h * d, h * d]).map { $0.reshaped([b, t, h, d]) }
        let split = attention(rope(parts[0], positions: pos), rope(parts[1], positions: pos), parts[2], mask: mask)
        expectClose(packed.scalars, split.scalars, atol: 1e-6)
        let seed = RNG(seed: 22).normal(packed.shape)
        packed.backward(seed)
        let g1 = x.grad!.scalars
        x.grad = nil
        split.reshaped([b, t, h * d]).backward(seed)
        expectClose(g1, x.grad!.scalars, atol: 1e-5, rtol: 1e-4)
        let small = randomInput([1, 3, 6], seed: 23)
        gradCheck([small]) { attention(packed: rope(packed: $0[0], heads: 1, positions: Tensor(ints: [0, 1, 2])), heads: 1, mask: .causal(batch: 1, queries: 3)) }
    }
}
