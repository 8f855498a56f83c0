// Losses: fused softmax cross-entropy (ignore index, optional z-loss) and mean squared error.
// Cross-entropy never materialises probabilities in forward; backward recomputes them per row.
import Foundation

/// The cross-entropy of each row of `logits` (…, V) against its target (nats; no tape, no z-loss):
/// what evaluations split by kind of target. Rows whose target is `ignoreIndex` give NaN.
public func rowCrossEntropies(_ logits: Tensor, _ targets: [Int32], ignoreIndex: Int32 = -1) -> [Float] {
    let v = logits.dim(-1), rows = logits.count / Swift.max(v, 1)
    precondition(targets.count == rows, "rowCrossEntropies: \(targets.count) targets for logits \(logits.shape)")
    var out = [Float](repeating: .nan, count: rows)
    withExtendedLifetime(logits) {
        let px = logits.data
        out.withUnsafeMutableBufferPointer { po in
            Parallel.forRange(rows, grain: Swift.max(1, 2048 / Swift.max(v, 1))) { r in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: v)
                defer { scratch.deallocate() }
                for i in r where targets[i] != ignoreIndex {
                    precondition(targets[i] >= 0 && Int(targets[i]) < v, "rowCrossEntropies: target \(targets[i]) outside 0..<\(v)")
                    po[i] = softmaxRow(px + i * v, scratch, v) - px[i * v + Int(targets[i])]
                }
            }
        }
    }
    return out
}

/// Mean next-token cross-entropy of `logits` (…, V) against Int32 `targets` (…); positions whose
/// target is `ignoreIndex` are skipped. `zLoss` adds zLoss·mean(logsumexp²) (PaLM/Chameleon) to
/// keep the softmax normaliser near 1. Returns a scalar; an all-ignored batch gives 0.
///
/// ```swift
/// let loss = crossEntropy(logits, targets, ignoreIndex: -1)
/// ```
public func crossEntropy(_ logits: Tensor, _ targets: Tensor, ignoreIndex: Int32 = -100,
                         zLoss: Float = 0) -> Tensor {
    let v = logits.dim(-1), rows = logits.count / Swift.max(v, 1)
    precondition(targets.dtype == .int32, "crossEntropy: targets must be int32")
    precondition(targets.count == rows, "crossEntropy: \(targets.shape) targets for logits \(logits.shape)")
    let pt = targets.ints
    var valid = 0
    for i in 0..<rows where pt[i] != ignoreIndex {
        precondition(pt[i] >= 0 && Int(pt[i]) < v, "crossEntropy: target \(pt[i]) at row \(i) outside 0..<\(v)")
        valid += 1
    }
    let lse = Tensor.empty([rows])
    let rowLoss = Tensor.empty([rows])
    let px = logits.data, pl = lse.data, pr = rowLoss.data
    Parallel.forRange(rows, grain: Swift.max(1, 2048 / Swift.max(v, 1))) { r in
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: v)
        defer { scratch.deallocate() }
        for i in r {
            let l = softmaxRow(px + i * v, scratch, v)
            pl[i] = l
            pr[i] = pt[i] == ignoreIndex ? 0 : (l - px[i * v + Int(pt[i])]) + zLoss * l * l
        }
    }
    var total: Double = 0
    // `rowLoss` is used through `pr` only (written above, summed here): it stays alive until the sum.
    withExtendedLifetime(rowLoss) { for i in 0..<rows { total += Double(pr[i]) } }
    let denom = Float(Swift.max(valid, 1))
    let out = Tensor([Float(total) / denom], shape: [])
    let xd = logits.detached(), tk = targets, lsed = lse
    return out.recorded([logits]) { g in
        let gx = Tensor.empty(xd.shape)
        let pl = lsed.data
        let scale = g.item / denom
        let px = xd.data, pg = gx.data, pt = tk.ints
        Parallel.forRange(rows, grain: Swift.max(1, 2048 / Swift.max(v, 1))) { r in
            for i in r {
                let dst = pg + i * v
                if pt[i] == ignoreIndex { dst.update(repeating: 0, count: v); continue }
                // d/dx [lse − x_t + z·lse²] = softmax·(1 + 2z·lse) − onehot(t)
                let l = pl[i]
                let c = V8(repeating: scale * (1 + 2 * zLoss * l)), lv = V8(repeating: l)
                vmap2Serial(px + i * v, px + i * v, dst, v) { x, _ in vexp(x - lv) * c }
                dst[Int(pt[i])] -= scale
            }
        }
        return [gx]
    }
}

/// Mean of (pred − target)² over all elements; both sides get gradients.
public func mse(_ pred: Tensor, _ target: Tensor) -> Tensor {
    precondition(pred.shape == target.shape, "mse: shapes \(pred.shape) and \(target.shape) differ")
    let diff = Tensor.empty(pred.shape)
    vmap2(pred.data, target.data, diff.data, pred.count) { $0 - $1 }
    var total: Double = 0
    let pd = diff.data
    var i = 0
    while i < pred.count {  // Double accumulation over chunks for stable long sums
        let n = Swift.min(4096, pred.count - i)
        total += Double(vdot(pd + i, pd + i, n))
        i += n
    }
    let n = Float(Swift.max(pred.count, 1))
    let out = Tensor([Float(total) / n], shape: [])
    let needP = pred.tracksGrad, needT = target.tracksGrad
    return out.recorded([pred, target]) { g in
        let gp = diff * (2 * g.item / n)
        return [needP ? gp : nil, needT ? -gp : nil]
    }
}
