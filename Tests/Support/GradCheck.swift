// Finite-difference gradient checking for tensor ops. The scalar probed is L = Σ f(x)ᵢ·rᵢ with
// a fixed random r (so every output element matters), accumulated in Double; each input element
// is nudged by ±ε and the central difference compared with autograd's gradient.
import Foundation
import Testing
import Tensors

/// Random inputs for checks: uniform in [lo, hi), requiring grad.
public func randomInput(_ shape: [Int], seed: UInt64, lo: Float = -1, hi: Float = 1) -> Tensor {
    let t = RNG(seed: seed).uniform(shape, lo: lo, hi: hi)
    t.requiresGrad = true
    return t
}

/// L = Σ y·r in Double.
private func probe(_ y: Tensor, _ r: [Float]) -> Double {
    var s = 0.0
    let p = y.data
    for i in 0..<y.count { s += Double(p[i]) * Double(r[i]) }
    return s
}

/// Checks autograd against central differences for every element of every input in `inputs`
/// (all must require grad). Returns the worst relative error for reporting.
@discardableResult
public func gradCheck(_ inputs: [Tensor], eps: Float = 1e-3, rtol: Double = 2e-2, atol: Double = 2e-3,
               sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor) -> Double {
    for x in inputs { x.grad = nil }
    let y = f(inputs)
    let r = RNG(seed: 1234).uniform([y.count], lo: -1, hi: 1).scalars
    let seed = Tensor(r, shape: y.shape)
    y.backward(seed)
    var worst = 0.0
    for (n, x) in inputs.enumerated() {
        // A missing gradient is a failure, not zeros: an input autograd never reached is a bug
        // even where the true gradient happens to be 0.
        guard let grad = x.grad else {
            Issue.record("input \(n) got no gradient from autograd", sourceLocation: sourceLocation)
            return .infinity
        }
        let g = grad.scalars
        for i in 0..<x.count {
            let old = x.data[i]
            x.data[i] = old + eps
            let lp = withoutGrad { probe(f(inputs), r) }
            x.data[i] = old - eps
            let lm = withoutGrad { probe(f(inputs), r) }
            x.data[i] = old
            let num = (lp - lm) / (2 * Double(eps))
            let err = abs(num - Double(g[i]))
            let scale = max(abs(num), abs(Double(g[i])))
            worst = max(worst, err / max(scale, 1e-6))
            if err > atol + rtol * scale {
                Issue.record("grad mismatch: input \(n) element \(i): autograd \(g[i]) vs numeric \(num)",
                             sourceLocation: sourceLocation)
                return worst
            }
        }
    }
    return worst
}

/// Asserts two float arrays agree within atol + rtol·|expected|.
public func expectClose(_ a: [Float], _ b: [Float], atol: Float = 1e-5, rtol: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "length \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    for i in 0..<min(a.count, b.count) where abs(a[i] - b[i]) > atol + rtol * abs(b[i]) {
        Issue.record("element \(i): \(a[i]) vs expected \(b[i])", sourceLocation: sourceLocation)
        return
    }
}
