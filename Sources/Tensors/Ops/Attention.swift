// Fused scaled-dot-product attention over a block-structured mask, and rotary position
// embeddings. Dimension legend: B batch, T queries, S keys, H heads, D head size.
// The mask is never a dense T×S array: under the Transfusion rule (causal everywhere, plus
// bidirectional inside an image/audio span, never across packed documents) every query sees one
// contiguous run of keys, so a mask is two integers per query. Attention runs per (b, h) in
// query blocks (FlashAttention-style): scores only over the block's key window, the row
// logsumexp saved, probabilities recomputed in backward.
import CBLAS
import Foundation

// MARK: - Mask

/// Which keys each query may attend to: query t of batch row b sees keys `lo[bt] ..< hi[bt]`.
///
/// ```swift
/// // two packed documents, the second holding an image span at positions 6..<10
/// let docs: [Int32]  = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1]
/// let spans: [Int32] = [-1, -1, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1]
/// let mask = try AttentionMask(documents: [docs], spans: [spans])
/// ```
public struct AttentionMask: Equatable, Sendable {
    public let batch: Int, queries: Int, keys: Int
    public let lo: [Int32], hi: [Int32]

    public init(batch: Int, queries: Int, keys: Int, lo: [Int32], hi: [Int32]) {
        precondition(lo.count == batch * queries && hi.count == batch * queries,
                     "AttentionMask: need \(batch * queries) ranges, got \(lo.count)/\(hi.count)")
        for i in 0..<lo.count {
            precondition(lo[i] >= 0 && lo[i] <= hi[i] && Int(hi[i]) <= keys,
                         "AttentionMask: bad key range \(lo[i])..<\(hi[i]) for query \(i) over \(keys) keys")
        }
        self.batch = batch; self.queries = queries; self.keys = keys; self.lo = lo; self.hi = hi
    }

    /// Keys attended, summed over the queries (flat b·queries indices) `included` says: what the
    /// attention's FLOPs scale with (e.g. the queries of real positions, not of padding).
    public func keysAttended(_ included: (Int) -> Bool = { _ in true }) -> Int {
        (0..<lo.count).reduce(0) { $0 + (included($1) ? Int(hi[$1] - lo[$1]) : 0) }
    }

    /// Plain causal attention; with `keys > queries` the queries are the last positions (a KV
    /// cache: query t sits at absolute position keys − queries + t).
    public static func causal(batch: Int, queries: Int, keys: Int? = nil) -> AttentionMask {
        let s = keys ?? queries, off = s - queries
        let hi = (0..<queries).map { Int32(off + $0 + 1) }
        return AttentionMask(batch: batch, queries: queries, keys: s,
                             lo: [Int32](repeating: 0, count: batch * queries),
                             hi: Array([[Int32]](repeating: hi, count: batch).joined()))
    }

    /// Every query sees every key (encoders).
    public static func full(batch: Int, queries: Int, keys: Int? = nil) -> AttentionMask {
        let s = keys ?? queries
        return AttentionMask(batch: batch, queries: queries, keys: s,
                             lo: [Int32](repeating: 0, count: batch * queries),
                             hi: [Int32](repeating: Int32(s), count: batch * queries))
    }

    public enum Failure: Error, CustomStringConvertible {
        case notContiguous(kind: String, row: Int, id: Int32)
        case spanCrossesDocument(row: Int, span: Int32)
        case lengthMismatch(row: Int, documents: Int, spans: Int)
        public var description: String {
            switch self {
            case .notContiguous(let k, let r, let id): return "AttentionMask: \(k) \(id) in row \(r) is not contiguous"
            case .spanCrossesDocument(let r, let s): return "AttentionMask: span \(s) in row \(r) crosses a document boundary"
            case .lengthMismatch(let r, let d, let s): return "AttentionMask: row \(r) has \(d) document ids but \(s) span ids"
            }
        }
    }

    /// The Transfusion mask from per-position document ids and span ids (−1 = text, no span).
    /// Causal within a document; bidirectional inside a span unless `causalSpans`; nothing across
    /// documents. Documents and spans must be contiguous runs.
    public init(documents: [[Int32]], spans: [[Int32]], causalSpans: Bool = false) throws {
        let b = documents.count, t = documents.first?.count ?? 0
        var lo = [Int32](), hi = [Int32]()
        lo.reserveCapacity(b * t); hi.reserveCapacity(b * t)
        for r in 0..<b {
            let doc = documents[r], span = spans[r]
            guard doc.count == t, span.count == t else { throw Failure.lengthMismatch(row: r, documents: doc.count, spans: span.count) }
            var docStart = [Int](repeating: 0, count: t), spanEnd = [Int](repeating: 0, count: t)
            var seenDocs = Set<Int32>(), seenSpans = Set<Int32>()
            for i in 0..<t {
                if i > 0 && doc[i] == doc[i - 1] { docStart[i] = docStart[i - 1] } else {
                    guard seenDocs.insert(doc[i]).inserted else { throw Failure.notContiguous(kind: "document", row: r, id: doc[i]) }
                    docStart[i] = i
                }
                if span[i] >= 0 && !(i > 0 && span[i] == span[i - 1]) {
                    guard seenSpans.insert(span[i]).inserted else { throw Failure.notContiguous(kind: "span", row: r, id: span[i]) }
                }
                if span[i] >= 0 && i > 0 && span[i] == span[i - 1] && doc[i] != doc[i - 1] {
                    throw Failure.spanCrossesDocument(row: r, span: span[i])
                }
            }
            for i in stride(from: t - 1, through: 0, by: -1) {
                spanEnd[i] = (span[i] >= 0 && i + 1 < t && span[i + 1] == span[i]) ? spanEnd[i + 1] : i + 1
            }
            for i in 0..<t {
                lo.append(Int32(docStart[i]))
                hi.append(Int32(span[i] >= 0 && !causalSpans ? spanEnd[i] : i + 1))
            }
        }
        self.init(batch: b, queries: t, keys: t, lo: lo, hi: hi)
    }

    /// The mask of batch rows `rows` alone (their key ranges are row-relative, so unchanged).
    public func rows(_ rows: Range<Int>) -> AttentionMask {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= batch, "AttentionMask: rows \(rows) of a batch of \(batch)")
        let flat = (rows.lowerBound * queries)..<(rows.upperBound * queries)
        return AttentionMask(batch: rows.count, queries: queries, keys: keys, lo: Array(lo[flat]), hi: Array(hi[flat]))
    }

    /// The mask's definition, query by query (for tests and debugging; O(T·S)).
    public func allows(batch b: Int, query i: Int, key j: Int) -> Bool {
        j >= lo[b * queries + i] && j < hi[b * queries + i]
    }
}

// MARK: - Scaled dot-product attention

private let queryBlock = 64

/// Where head h of token t of batch row b starts: base + b·batchStride + t·tokenStride + h·D.
/// Lets one kernel read q, k, v from separate (B, T, H, D) tensors or from a packed QKV row.
struct HeadLayout {
    let base: UnsafeMutablePointer<Float>
    let tokenStride: Int
    let batchStride: Int
    @inline(__always) func at(_ b: Int, _ t: Int, _ h: Int, _ d: Int) -> UnsafeMutablePointer<Float> {
        base + b * batchStride + t * tokenStride + h * d
    }
}

/// softmax(scale · Q Kᵀ + mask) V for q (B, T, H, D), k and v (B, S, H, D); output (B, T, H, D).
/// Rows with no visible key output zeros.
public func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: AttentionMask, scale: Float? = nil) -> Tensor {
    precondition(q.rank == 4 && k.rank == 4 && v.rank == 4, "attention: q, k, v must be (B, T, H, D)")
    let (b, t, h, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3])
    let s = k.shape[1]
    precondition(k.shape == [b, s, h, d] && v.shape == k.shape, "attention: k \(k.shape) / v \(v.shape) do not fit q \(q.shape)")
    precondition(mask.batch == b && mask.queries == t && mask.keys == s,
                 "attention: mask is \(mask.batch)×\(mask.queries)×\(mask.keys), inputs need \(b)×\(t)×\(s)")
    let sc = scale ?? 1 / Float(d).squareRoot()
    let out = Tensor.empty(q.shape), lse = Tensor.empty([b, h, t])
    let lq = { (x: Tensor, n: Int) in HeadLayout(base: x.data, tokenStride: h * d, batchStride: n * h * d) }
    attentionForward(b: b, t: t, s: s, h: h, d: d, q: lq(q, t), k: lq(k, s), v: lq(v, s), out: lq(out, t),
                     lse: lse.data, mask: mask, scale: sc)
    let qd = q.detached(), kd = k.detached(), vd = v.detached(), od = out.detached()
    let needQ = q.tracksGrad, needK = k.tracksGrad, needV = v.tracksGrad
    return out.recorded([q, k, v]) { g in
        let gq = Tensor.empty(qd.shape), gk = Tensor.zeros(kd.shape), gv = Tensor.zeros(vd.shape)
        attentionBackward(b: b, t: t, s: s, h: h, d: d, q: lq(qd, t), k: lq(kd, s), v: lq(vd, s), out: lq(od, t),
                          g: lq(g, t), gq: lq(gq, t), gk: lq(gk, s), gv: lq(gv, s), lse: lse.data, mask: mask, scale: sc)
        return [needQ ? gq : nil, needK ? gk : nil, needV ? gv : nil]
    }
}

/// Self-attention straight from a packed projection: `qkv` (B, T, 3·H·D) holds [q | k | v] per
/// token; returns (B, T, H·D). No split copies forward, one packed gradient backward.
public func attention(packed qkv: Tensor, heads h: Int, mask: AttentionMask, scale: Float? = nil) -> Tensor {
    precondition(qkv.rank == 3 && qkv.shape[2] % (3 * h) == 0, "attention(packed:): qkv \(qkv.shape) is not (B, T, 3·H·D) for \(h) heads")
    let (b, t) = (qkv.shape[0], qkv.shape[1]), c = qkv.shape[2], d = c / (3 * h)
    precondition(mask.batch == b && mask.queries == t && mask.keys == t,
                 "attention(packed:): mask is \(mask.batch)×\(mask.queries)×\(mask.keys), input needs \(b)×\(t)×\(t)")
    let sc = scale ?? 1 / Float(d).squareRoot()
    let out = Tensor.empty([b, t, h * d]), lse = Tensor.empty([b, h, t])
    let part = { (x: Tensor, i: Int) in HeadLayout(base: x.data + i * h * d, tokenStride: c, batchStride: t * c) }
    let lo = { (x: Tensor) in HeadLayout(base: x.data, tokenStride: h * d, batchStride: t * h * d) }
    attentionForward(b: b, t: t, s: t, h: h, d: d, q: part(qkv, 0), k: part(qkv, 1), v: part(qkv, 2), out: lo(out),
                     lse: lse.data, mask: mask, scale: sc)
    let xd = qkv.detached(), od = out.detached()
    return out.recorded([qkv]) { g in
        let gx = Tensor.zeros(xd.shape)
        attentionBackward(b: b, t: t, s: t, h: h, d: d, q: part(xd, 0), k: part(xd, 1), v: part(xd, 2), out: lo(od),
                          g: lo(g), gq: part(gx, 0), gk: part(gx, 1), gv: part(gx, 2), lse: lse.data, mask: mask, scale: sc)
        return [gx]
    }
}

/// Forward over every (b, h) in query blocks; writes the output and each row's logsumexp.
private func attentionForward(b: Int, t: Int, s: Int, h: Int, d: Int, q: HeadLayout, k: HeadLayout, v: HeadLayout,
                              out: HeadLayout, lse pl: UnsafeMutablePointer<Float>, mask: AttentionMask, scale sc: Float) {
    let lo = mask.lo, hi = mask.hi
    Parallel.withSingleThreadedBLAS {
        Parallel.forEach(b * h) { bh in
            let bi = bh / h, hh = bh % h
            let qb = q.at(bi, 0, hh, d), kb = k.at(bi, 0, hh, d), vb = v.at(bi, 0, hh, d), ob = out.at(bi, 0, hh, d)
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * max(s, 1))
            defer { scores.deallocate() }
            for i0 in stride(from: 0, to: t, by: queryBlock) {
                let i1 = min(i0 + queryBlock, t), rows = i1 - i0
                let (k0, k1) = keyWindow(lo, hi, base: bi * t, i0, i1)
                let w = k1 - k0
                if w == 0 {
                    for i in i0..<i1 { (ob + i * out.tokenStride).update(repeating: 0, count: d); pl[bh * t + i] = -.infinity }
                    continue
                }
                sgemm(transA: false, transB: true, m: rows, n: w, k: d, alpha: sc, qb + i0 * q.tokenStride, lda: q.tokenStride,
                      kb + k0 * k.tokenStride, ldb: k.tokenStride, scores, ldc: w)
                for r in 0..<rows {
                    let row = scores + r * w
                    let a = Int(lo[bi * t + i0 + r]) - k0, z = Int(hi[bi * t + i0 + r]) - k0
                    if a >= z { row.update(repeating: 0, count: w); pl[bh * t + i0 + r] = -.infinity; continue }
                    for j in 0..<a { row[j] = 0 }
                    for j in z..<w { row[j] = 0 }
                    pl[bh * t + i0 + r] = softmaxRow(row + a, row + a, z - a)
                }
                sgemm(transA: false, transB: false, m: rows, n: d, k: w, scores, lda: w, vb + k0 * v.tokenStride, ldb: v.tokenStride,
                      ob + i0 * out.tokenStride, ldc: out.tokenStride)
            }
        }
    }
}

/// Backward: recomputes P per query block, writes dQ and accumulates into dK, dV (which must
/// start zeroed).
private func attentionBackward(b: Int, t: Int, s: Int, h: Int, d: Int, q: HeadLayout, k: HeadLayout, v: HeadLayout,
                               out: HeadLayout, g: HeadLayout, gq: HeadLayout, gk: HeadLayout, gv: HeadLayout,
                               lse pl: UnsafeMutablePointer<Float>, mask: AttentionMask, scale sc: Float) {
    let lo = mask.lo, hi = mask.hi
    Parallel.withSingleThreadedBLAS {
        Parallel.forEach(b * h) { bh in
            let bi = bh / h, hh = bh % h
            let qb = q.at(bi, 0, hh, d), kb = k.at(bi, 0, hh, d), vb = v.at(bi, 0, hh, d), ob = out.at(bi, 0, hh, d)
            let gb = g.at(bi, 0, hh, d), gqb = gq.at(bi, 0, hh, d), gkb = gk.at(bi, 0, hh, d), gvb = gv.at(bi, 0, hh, d)
            let p = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * max(s, 1))
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: queryBlock * max(s, 1))
            defer { p.deallocate(); dp.deallocate() }
            for i0 in stride(from: 0, to: t, by: queryBlock) {
                let i1 = min(i0 + queryBlock, t), rows = i1 - i0
                let (k0, k1) = keyWindow(lo, hi, base: bi * t, i0, i1)
                let w = k1 - k0
                if w == 0 { for i in i0..<i1 { (gqb + i * gq.tokenStride).update(repeating: 0, count: d) }; continue }
                // 1. P = exp(scale·QKᵀ − lse) inside each row's window (recomputed).
                sgemm(transA: false, transB: true, m: rows, n: w, k: d, alpha: sc, qb + i0 * q.tokenStride, lda: q.tokenStride,
                      kb + k0 * k.tokenStride, ldb: k.tokenStride, p, ldc: w)
                // 2. dP = dO·Vᵀ
                sgemm(transA: false, transB: true, m: rows, n: w, k: d, gb + i0 * g.tokenStride, lda: g.tokenStride,
                      vb + k0 * v.tokenStride, ldb: v.tokenStride, dp, ldc: w)
                // 3. dS = P ⊙ (dP − rowsum(dO ⊙ O)), folded with the scale.
                let scv = V8(repeating: sc)
                for r in 0..<rows {
                    let i = i0 + r
                    let a = Int(lo[bi * t + i]) - k0, z = Int(hi[bi * t + i]) - k0
                    let prow = p + r * w, drow = dp + r * w
                    if a >= z { prow.update(repeating: 0, count: w); drow.update(repeating: 0, count: w); continue }
                    let l = V8(repeating: pl[bh * t + i])
                    let dd = V8(repeating: vdot(gb + i * g.tokenStride, ob + i * out.tokenStride, d))
                    for j in 0..<a { prow[j] = 0; drow[j] = 0 }
                    for j in z..<w { prow[j] = 0; drow[j] = 0 }
                    vmap2Serial(prow + a, drow + a, prow + a, z - a) { s, _ in vexp(s - l) }
                    vmap2Serial(prow + a, drow + a, drow + a, z - a) { p, dp in p * (dp - dd) * scv }
                }
                // 4. dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO
                sgemm(transA: false, transB: false, m: rows, n: d, k: w, dp, lda: w, kb + k0 * k.tokenStride, ldb: k.tokenStride,
                      gqb + i0 * gq.tokenStride, ldc: gq.tokenStride)
                sgemm(transA: true, transB: false, m: w, n: d, k: rows, dp, lda: w, qb + i0 * q.tokenStride, ldb: q.tokenStride,
                      beta: 1, gkb + k0 * gk.tokenStride, ldc: gk.tokenStride)
                sgemm(transA: true, transB: false, m: w, n: d, k: rows, p, lda: w, gb + i0 * g.tokenStride, ldb: g.tokenStride,
                      beta: 1, gvb + k0 * gv.tokenStride, ldc: gv.tokenStride)
            }
        }
    }
}

/// The union of key ranges of queries i0..<i1 (rows with empty ranges ignored).
@inline(__always)
private func keyWindow(_ lo: [Int32], _ hi: [Int32], base: Int, _ i0: Int, _ i1: Int) -> (Int, Int) {
    var a = Int.max, z = 0
    for i in i0..<i1 where lo[base + i] < hi[base + i] {
        a = min(a, Int(lo[base + i])); z = max(z, Int(hi[base + i]))
    }
    return a == Int.max ? (0, 0) : (a, z)
}

// MARK: - Rotary position embedding

/// Rotates pairs (x[j], x[j + D/2]) of x (B, T, H, D) by angle position·θ^(−2j/D) (the
/// "rotate-half" layout of GPT-NeoX and LLaMA). `positions` holds B·T (or T) Int32 positions, so
/// packed documents can restart at 0.
public func rope(_ x: Tensor, positions: Tensor, base: Float = 10000) -> Tensor {
    precondition(x.rank == 4, "rope: x must be (B, T, H, D), got \(x.shape)")
    return ropeHeads(x, positions: positions, base: base, headDim: x.shape[3], rotated: x.shape[2])
}

/// RoPE on the q and k thirds of a packed (B, T, 3·H·D) projection; v passes through.
public func rope(packed qkv: Tensor, heads: Int, positions: Tensor, base: Float = 10000) -> Tensor {
    precondition(qkv.rank == 3 && qkv.shape[2] % (3 * heads) == 0, "rope(packed:): qkv \(qkv.shape) is not (B, T, 3·H·D)")
    return ropeHeads(qkv, positions: positions, base: base, headDim: qkv.shape[2] / (3 * heads), rotated: 2 * heads)
}

/// x viewed as (B, T, C) with C = groups·D: rotates the first `rotated` groups, copies the rest.
private func ropeHeads(_ x: Tensor, positions: Tensor, base: Float, headDim d: Int, rotated h: Int) -> Tensor {
    let (b, t) = (x.shape[0], x.shape[1]), c = x.count / max(b * t, 1)
    precondition(d % 2 == 0, "rope: head size \(d) must be even")
    precondition(positions.dtype == .int32 && (positions.count == t || positions.count == b * t),
                 "rope: positions must be \(t) or \(b * t) int32 values")
    let half = d / 2
    let pos = positions.intScalars
    let maxPos = Int(pos.max() ?? 0) + 1
    // cos/sin table: (maxPos, D/2), in Double then rounded, so large positions stay accurate.
    let cosT = UnsafeMutablePointer<Float>.allocate(capacity: maxPos * half)
    let sinT = UnsafeMutablePointer<Float>.allocate(capacity: maxPos * half)
    for p in 0..<maxPos {
        for j in 0..<half {
            let a = Double(p) * Foundation.pow(Double(base), -2 * Double(j) / Double(d))
            cosT[p * half + j] = Float(Foundation.cos(a)); sinT[p * half + j] = Float(Foundation.sin(a))
        }
    }
    let table = RopeTable(cos: cosT, sin: sinT)
    let perRow = positions.count == b * t
    func rotate(_ src: Tensor, sign: Float) -> Tensor {
        let dst = Tensor.empty(src.shape)
        let ps = src.data, pd = dst.data
        Parallel.forRange(b * t, grain: max(1, 4096 / c)) { r in
            for bt in r {
                let p = Int(pos[perRow ? bt : bt % t])
                let c0 = table.cos + p * half, sn = table.sin + p * half
                if h * d < c { (pd + bt * c + h * d).update(from: ps + bt * c + h * d, count: c - h * d) }
                for hh in 0..<h {
                    let o = bt * c + hh * d
                    var j = 0
                    let sv = V8(repeating: sign)
                    while j + 8 <= half {
                        let x1 = load8(ps + o + j), x2 = load8(ps + o + half + j)
                        let cj = load8(c0 + j), sj = sv * load8(sn + j)
                        store8(x1 * cj - x2 * sj, pd + o + j)
                        store8(x2 * cj + x1 * sj, pd + o + half + j)
                        j += 8
                    }
                    while j < half {
                        let x1 = ps[o + j], x2 = ps[o + half + j], sj = sign * sn[j]
                        pd[o + j] = x1 * c0[j] - x2 * sj
                        pd[o + half + j] = x2 * c0[j] + x1 * sj
                        j += 1
                    }
                }
            }
        }
        return dst
    }
    let out = rotate(x, sign: 1)
    return out.recorded([x]) { g in [rotate(g, sign: -1)] }
}

/// Owns the cos/sin buffers of one rope call (freed with the autograd node).
private final class RopeTable: @unchecked Sendable {
    let cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>
    init(cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) { self.cos = cos; self.sin = sin }
    deinit { cos.deallocate(); sin.deallocate() }
}
