// Reductions (sum, mean, max over axes) and broadcasting expansion, their adjoint.
// Axis reductions view the input as (outer, len, inner) and accumulate rows with SIMD adds.
import Foundation

/// out[o, i] = Σ_a x[o, a, i] for x viewed as (outer, len, inner).
private func sumAxisKernel(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           outer: Int, len: Int, inner: Int) {
    if inner == 1 {
        Parallel.forRange(outer, grain: max(1, 8192 / max(len, 1))) { r in
            for o in r { out[o] = vsum(x + o * len, len) }
        }
        return
    }
    // Split the inner columns when there is a single outer row (bias gradients); rows otherwise.
    let splitInner = outer < Parallel.threads
    let tasks = splitInner ? min(Parallel.threads, max(1, inner / 64)) : outer
    let work = outer * len * inner
    let run: (Int) -> Void = { t in
        let (oRange, iLo, iHi): (Range<Int>, Int, Int) = splitInner
            ? (0..<outer, inner * t / tasks, inner * (t + 1) / tasks)
            : (t..<(t + 1), 0, inner)
        for o in oRange {
            let dst = out + o * inner
            for i in iLo..<iHi { dst[i] = 0 }
            for a in 0..<len {
                let src = x + (o * len + a) * inner
                var i = iLo
                while i + 8 <= iHi { store8(load8(dst + i) + load8(src + i), dst + i); i += 8 }
                while i < iHi { dst[i] += src[i]; i += 1 }
            }
        }
    }
    if work < 1 << 15 { for t in 0..<tasks { run(t) } } else { Parallel.forEach(tasks, run) }
}

/// Copies `src` (shape `from`) broadcast to `to` into `dst`.
func broadcastCopy(_ src: UnsafePointer<Float>, from: [Int], to: [Int], _ dst: UnsafeMutablePointer<Float>) {
    let st = broadcastStrides(from, to: to)
    let r = to.count
    if r == 0 { dst[0] = src[0]; return }
    let last = to[r - 1], lastStride = st[r - 1]
    forEachRow(of: to, strides: st) { row, off in
        let out = dst + row * last
        if lastStride == 1 { out.update(from: src + off, count: last) } else { out.update(repeating: src[off], count: last) }
    }
}

extension Tensor {
    /// Sum over `axes`; `keepDims` leaves them as size 1.
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        let ax = Set(axes.map { normAxis($0, rank, "sum") }).sorted(by: >)
        var keptShape = shape
        var cur = self.detached()
        for a in ax {
            let outer = cur.shape[..<a].reduce(1, *), len = cur.shape[a]
            let inner = cur.shape[(a + 1)...].reduce(1, *)
            keptShape[a] = 1
            let next = Tensor.empty(keptShape)
            // After the first axis `cur` is the only owner of its buffer: it stays alive while read.
            withExtendedLifetime(cur) { sumAxisKernel(cur.data, next.data, outer: outer, len: len, inner: inner) }
            cur = next
        }
        let outShape = keepDims ? keptShape : shape.enumerated().filter { !ax.contains($0.offset) }.map(\.element)
        let out = Tensor(shape: outShape, storage: cur.storage)
        let inShape = shape
        return out.recorded([self]) { g in [g.reshaped(keptShape).expanded(to: inShape)] }
    }

    /// Sum of all elements, as a one-element tensor of shape [].
    public func sum() -> Tensor { sum(axes: Array(0..<rank)) }

    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let n = axes.map { shape[normAxis($0, rank, "mean")] }.reduce(1, *)
        return sum(axes: axes, keepDims: keepDims) * (1 / Float(n))
    }

    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Maximum along `axis`; the gradient flows to the first maximal element.
    public func max(axis: Int, keepDims: Bool = false) -> Tensor {
        let a = normAxis(axis, rank, "max")
        let outer = shape[..<a].reduce(1, *), len = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        precondition(len > 0, "max: empty axis \(axis) in shape \(shape)")
        var kept = shape; kept[a] = 1
        let out = Tensor.empty(keepDims ? kept : shape.enumerated().filter { $0.offset != a }.map(\.element))
        var arg = [Int32](repeating: 0, count: outer * inner)
        let x = data, y = out.data
        for o in 0..<outer {
            for i in 0..<inner {
                var best = x[o * len * inner + i], bi = 0
                for j in 1..<len where x[(o * len + j) * inner + i] > best { best = x[(o * len + j) * inner + i]; bi = j }
                y[o * inner + i] = best
                arg[o * inner + i] = Int32(bi)
            }
        }
        let inShape = shape
        return out.recorded([self]) { g in
            let gx = Tensor.zeros(inShape)
            for o in 0..<outer {
                for i in 0..<inner { gx.data[(o * len + Int(arg[o * inner + i])) * inner + i] = g.data[o * inner + i] }
            }
            return [gx]
        }
    }

    /// Broadcasts to `target` (NumPy rules); the gradient sums back.
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        _ = broadcastShape(shape, target, op: "expanded(to:)")
        let out = Tensor.empty(target)
        broadcastCopy(data, from: shape, to: target, out.data)
        let inShape = shape
        return out.recorded([self]) { g in [g.summed(to: inShape)] }
    }
}
