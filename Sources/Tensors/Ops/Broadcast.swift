// Broadcasting rules (NumPy's) and the reduction of a broadcast gradient back to its input shape.
// Not an op: helpers for Elementwise and its backward rules.

/// The broadcast shape of `a` and `b`, or a precondition failure naming both shapes.
public func broadcastShape(_ a: [Int], _ b: [Int], op: String = "broadcast") -> [Int] {
    let r = max(a.count, b.count)
    var out = [Int](repeating: 1, count: r)
    for i in 0..<r {
        let da = i < r - a.count ? 1 : a[i - (r - a.count)]
        let db = i < r - b.count ? 1 : b[i - (r - b.count)]
        precondition(da == db || da == 1 || db == 1, "\(op): shapes \(a) and \(b) do not broadcast")
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` viewed inside the broadcast `outShape` (0 along broadcast axes).
func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
    let pad = outShape.count - shape.count
    let s = contiguousStrides(shape)
    return (0..<outShape.count).map { i in
        i < pad || shape[i - pad] == 1 ? 0 : s[i - pad]
    }
}

/// How a smaller operand repeats inside a larger one, for the fast loops.
enum BroadcastPattern {
    case same               // identical shapes
    case scalar             // the small side has one element
    case rows(inner: Int)   // the small side is a suffix: it repeats over leading rows
    case general
}

func broadcastPattern(big: [Int], small: [Int]) -> BroadcastPattern {
    if big == small { return .same }
    let n = small.reduce(1, *)
    if n == 1 { return .scalar }
    var s = small[...]
    while s.first == 1 { s = s.dropFirst() }
    if s.count <= big.count && Array(big.suffix(s.count)) == Array(s) { return .rows(inner: n) }
    return .general
}

extension Tensor {
    /// Sums a broadcast gradient back to `target` (the input's shape).
    public func summed(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let pad = rank - target.count
        precondition(pad >= 0, "summed(to:): \(shape) cannot reduce to \(target)")
        var axes: [Int] = Array(0..<pad)
        for i in 0..<target.count where target[i] == 1 && shape[i + pad] != 1 { axes.append(i + pad) }
        return sum(axes: axes, keepDims: true).reshaped(target)
    }
}

/// Calls `body(row, offset)` for every row (all dimensions but the last) of `shape`, in parallel
/// chunks, where `offset` = Σ index[d]·strides[d] over the leading dimensions: the start of that
/// row in a source laid out with `strides`. Shared by permute and broadcast copies.
@inline(__always)
func forEachRow(of shape: [Int], strides: [Int], _ body: (Int, Int) -> Void) {
    let r = shape.count, last = shape[r - 1]
    let rows = shape.reduce(1, *) / Swift.max(last, 1)
    Parallel.forRange(rows, grain: Swift.max(1, 16384 / Swift.max(last, 1))) { range in
        var idx = [Int](repeating: 0, count: r)
        var rem = range.lowerBound, off = 0
        for d in stride(from: r - 2, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d]; off += idx[d] * strides[d] }
        for row in range {
            body(row, off)
            var d = r - 2
            while d >= 0 {
                idx[d] += 1; off += strides[d]
                if idx[d] < shape[d] { break }
                off -= strides[d] * shape[d]; idx[d] = 0
                d -= 1
            }
        }
    }
}
