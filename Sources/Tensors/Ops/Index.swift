// Shape and indexing ops: reshape (a view), permute/transpose, concat/split/slice, embedding
// gather with its scatter-add gradient, index-select, where/mask-fill and dropout.
import Foundation

extension Tensor {
    // MARK: - Views and layout

    /// Same storage, new shape; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshaped: cannot infer -1 in \(newShape) from \(shape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "reshaped: \(shape) (\(count) elements) cannot become \(newShape)")
        if s == shape { return self }
        let out = Tensor(shape: s, storage: storage, dtype: dtype)
        let inShape = shape
        return out.recorded([self]) { g in [g.reshaped(inShape)] }
    }

    /// Reorders dimensions: output dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permuted: \(order) is not a permutation of 0..<\(rank)")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        let out = Tensor.empty(outShape, dtype: dtype)
        let inStr = contiguousStrides(shape)
        let st = order.map { inStr[$0] }  // input stride of each output dimension
        let r = rank, last = outShape[r - 1], lastStride = st[r - 1]
        let src = storage.raw.assumingMemoryBound(to: UInt32.self)
        let dst = out.storage.raw.assumingMemoryBound(to: UInt32.self)
        forEachRow(of: outShape, strides: st) { row, off in
            let o = dst + row * last
            if lastStride == 1 { o.update(from: src + off, count: last) }
            else { for j in 0..<last { o[j] = src[off + j * lastStride] } }
        }
        var inverse = [Int](repeating: 0, count: r)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return out.recorded([self]) { g in [g.permuted(inverse)] }
    }

    /// Swaps two dimensions (default: the last two).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normAxis(a, rank, "transposed"), normAxis(b, rank, "transposed"))
        return permuted(order)
    }

    // MARK: - Slicing

    /// Elements `range` along `axis` (a copy).
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = normAxis(axis, rank, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) out of bounds for axis \(axis) of size \(shape[a])")
        let outer = shape[..<a].reduce(1, *), len = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape; outShape[a] = range.count
        let out = Tensor.empty(outShape, dtype: dtype)
        copyBlocks(from: storage.raw, srcLen: len, srcStart: range.lowerBound,
                   to: out.storage.raw, dstLen: range.count, dstStart: 0, count: range.count, outer: outer, inner: inner)
        let inShape = shape
        return out.recorded([self]) { g in
            let gx = Tensor.zeros(inShape)
            copyBlocks(from: g.storage.raw, srcLen: range.count, srcStart: 0,
                       to: gx.storage.raw, dstLen: len, dstStart: range.lowerBound, count: range.count, outer: outer, inner: inner)
            return [gx]
        }
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        let a = normAxis(axis, rank, "split")
        precondition(sizes.reduce(0, +) == shape[a], "split: sizes \(sizes) do not sum to \(shape[a]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { n in defer { start += n }; return slice(axis: a, start..<(start + n)) }
    }
}

/// Copies `count` slabs along a middle axis between (outer, len, inner) layouts.
private func copyBlocks(from src: UnsafeMutableRawPointer, srcLen: Int, srcStart: Int,
                        to dst: UnsafeMutableRawPointer, dstLen: Int, dstStart: Int,
                        count: Int, outer: Int, inner: Int) {
    let bytes = count * inner * 4
    if bytes == 0 { return }
    for o in 0..<outer {
        memcpy(dst + ((o * dstLen + dstStart) * inner) * 4, src + ((o * srcLen + srcStart) * inner) * 4, bytes)
    }
}

/// Joins tensors along `axis`; all other dimensions must agree.
public func concat(_ xs: [Tensor], axis: Int) -> Tensor {
    precondition(!xs.isEmpty, "concat: no tensors")
    let r = xs[0].rank, a = normAxis(axis, r, "concat")
    for x in xs {
        precondition(x.rank == r && (0..<r).allSatisfy { $0 == a || x.shape[$0] == xs[0].shape[$0] },
                     "concat: shape \(x.shape) does not match \(xs[0].shape) outside axis \(axis)")
    }
    let outer = xs[0].shape[..<a].reduce(1, *), inner = xs[0].shape[(a + 1)...].reduce(1, *)
    let lens = xs.map { $0.shape[a] }, total = lens.reduce(0, +)
    var outShape = xs[0].shape; outShape[a] = total
    let out = Tensor.empty(outShape, dtype: xs[0].dtype)
    var start = 0
    for (x, n) in zip(xs, lens) {
        copyBlocks(from: x.storage.raw, srcLen: n, srcStart: 0, to: out.storage.raw, dstLen: total, dstStart: start,
                   count: n, outer: outer, inner: inner)
        start += n
    }
    return out.recorded(xs) { g in
        var s = 0
        return lens.map { n in defer { s += n }; return g.slice(axis: a, s..<(s + n)) }
    }
}

// MARK: - Gather and scatter

/// Rows of `table` (V, D) picked by Int32 `ids` of any shape → (ids.shape…, D). The gradient
/// scatter-adds into the table's rows.
public func embedding(_ table: Tensor, _ ids: Tensor) -> Tensor {
    precondition(table.rank == 2, "embedding: table must be (vocab, dim), got \(table.shape)")
    precondition(ids.dtype == .int32, "embedding: ids must be int32")
    let v = table.shape[0], d = table.shape[1], n = ids.count
    let pi = ids.ints
    for i in 0..<n {
        precondition(pi[i] >= 0 && Int(pi[i]) < v, "embedding: id \(pi[i]) at position \(i) outside vocabulary of \(v)")
    }
    let out = Tensor.empty(ids.shape + [d])
    let pt = table.data, po = out.data
    Parallel.forRange(n, grain: Swift.max(1, 16384 / d)) { r in
        for i in r { (po + i * d).update(from: pt + Int(pi[i]) * d, count: d) }
    }
    let idsKept = ids
    return out.recorded([table]) { g in
        let gt = Tensor.zeros([v, d])
        let pg = g.data, pgt = gt.data, pi = idsKept.ints
        // Split the columns so threads never add into the same element.
        let chunks = Swift.min(Parallel.threads, Swift.max(1, d / 32))
        Parallel.forEach(chunks) { c in
            let lo = d * c / chunks, hi = d * (c + 1) / chunks
            for i in 0..<n {
                let src = pg + i * d, dst = pgt + Int(pi[i]) * d
                for j in lo..<hi { dst[j] += src[j] }
            }
        }
        return [gt]
    }
}

extension Tensor {
    /// Entries `indices` along `axis` (repeats allowed); the gradient scatter-adds.
    public func indexSelect(axis: Int, _ indices: [Int]) -> Tensor {
        let a = normAxis(axis, rank, "indexSelect")
        let outer = shape[..<a].reduce(1, *), len = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        for i in indices { precondition(i >= 0 && i < len, "indexSelect: index \(i) out of range 0..<\(len)") }
        var outShape = shape; outShape[a] = indices.count
        let out = Tensor.empty(outShape, dtype: dtype)
        for o in 0..<outer {
            for (k, i) in indices.enumerated() {
                memcpy(out.storage.raw + ((o * indices.count + k) * inner) * 4, storage.raw + ((o * len + i) * inner) * 4, inner * 4)
            }
        }
        let inShape = shape
        return out.recorded([self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                for (k, i) in indices.enumerated() {
                    let src = g.data + (o * indices.count + k) * inner, dst = gx.data + (o * len + i) * inner
                    for j in 0..<inner { dst[j] += src[j] }
                }
            }
            return [gx]
        }
    }

    // MARK: - Selection

    /// Where `mask` is nonzero takes `value`, elsewhere self. `mask` broadcasts.
    public func maskFilled(_ mask: Tensor, with value: Float) -> Tensor {
        whereSelect(mask, Tensor.full(shape, value), self)
    }

    /// Inverted dropout: zeroes each element with probability `p`, scales the rest by 1/(1-p).
    public func dropout(_ p: Float, rng: RNG, training: Bool = true) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: p = \(p) must be in [0, 1)")
        if !training || p == 0 { return self }
        let keep = rng.uniform(shape)
        let scale = V8(repeating: 1 / (1 - p)), pv = V8(repeating: p)
        vmap(keep.data, keep.data, count) { u in V8(repeating: 0).replacing(with: scale, where: u .>= pv) }
        return self * keep
    }
}

/// Elementwise `cond ? a : b` (cond nonzero = true); all three broadcast together. Gradients
/// flow to `a` where true and to `b` where false.
public func whereSelect(_ cond: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = broadcastShape(broadcastShape(cond.shape, a.shape, op: "where"), b.shape, op: "where")
    let c = withoutGrad { cond.expanded(to: shape) }
    let ae = a.expanded(to: shape), be = b.expanded(to: shape)
    let out = Tensor.empty(shape)
    vmap3(c.data, ae.data, be.data, out.data, out.count) { c, a, b in b.replacing(with: a, where: c .!= 0) }
    return out.recorded([ae, be]) { g in
        let ga = Tensor.empty(shape), gb = Tensor.empty(shape)
        vmap2(c.data, g.data, ga.data, g.count) { c, g in V8(repeating: 0).replacing(with: g, where: c .!= 0) }
        vmap2(c.data, g.data, gb.data, g.count) { c, g in g.replacing(with: 0, where: c .!= 0) }
        return [ga, gb]
    }
}
