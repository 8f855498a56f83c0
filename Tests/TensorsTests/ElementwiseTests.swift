// Gradient checks and forward values for elementwise, activation, reduction and index ops.
import Foundation
import Testing
import Tensors
import TestSupport

@Suite struct ElementwiseTests {
    @Test func broadcastingArithmetic() {
        let shapes: [([Int], [Int])] = [([2, 3], [2, 3]), ([2, 3], [3]), ([2, 3], [1]), ([2, 1, 3], [4, 1]), ([3], [2, 3])]
        for (i, (sa, sb)) in shapes.enumerated() {
            let a = randomInput(sa, seed: UInt64(i)), b = randomInput(sb, seed: UInt64(i + 100), lo: 0.5, hi: 1.5)
            gradCheck([a, b]) { $0[0] + $0[1] }
            gradCheck([a, b]) { $0[0] - $0[1] }
            gradCheck([a, b]) { $0[0] * $0[1] }
            gradCheck([a, b]) { $0[0] / $0[1] }
        }
    }

    @Test func broadcastForwardValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([10, 20, 30])
        #expect((a + b).scalars == [11, 22, 33, 14, 25, 36])
        let c = Tensor([1, 2], shape: [2, 1])
        #expect((a * c).scalars == [1, 2, 3, 8, 10, 12])
        #expect((Tensor([1, 2], shape: [2, 1, 1]) - Tensor([1, 2, 3], shape: [1, 3])).shape == [2, 1, 3])
    }

    @Test func scalarOps() {
        let a = randomInput([5], seed: 1)
        gradCheck([a]) { $0[0] * 3 + 2 }
        gradCheck([a]) { 1 - $0[0] / 4 }
        gradCheck([a]) { -$0[0] }
    }

    @Test func unaryMath() {
        let x = randomInput([13], seed: 2, lo: -2, hi: 2)
        let pos = randomInput([13], seed: 3, lo: 0.5, hi: 2)
        gradCheck([x]) { $0[0].exp() }
        gradCheck([pos]) { $0[0].log() }
        gradCheck([pos]) { $0[0].sqrt() }
        gradCheck([pos]) { $0[0].rsqrt() }
        gradCheck([x]) { $0[0].square() }
        gradCheck([x]) { $0[0].tanh() }
        gradCheck([x]) { $0[0].sigmoid() }
        gradCheck([x]) { $0[0].silu() }
        gradCheck([x]) { $0[0].gelu() }
        gradCheck([x]) { $0[0].relu() }
        gradCheck([x]) { $0[0].clamped(min: 0.1) }
        gradCheck([x]) { $0[0].clamped(-0.5, 0.4) }
    }

    @Test func transcendentalAccuracy() {
        let xs = stride(from: -20.0, through: 20.0, by: 0.01).map { Float($0) }
        let t = Tensor(xs)
        let e = t.exp().scalars, th = t.tanh().scalars, sg = t.sigmoid().scalars
        for (i, x) in xs.enumerated() {
            #expect(abs(e[i] - Foundation.exp(x)) <= 3e-7 * Foundation.exp(x))
            #expect(abs(th[i] - Foundation.tanh(x)) <= 2e-7 + 1e-6 * abs(Foundation.tanh(x)))
            #expect(abs(sg[i] - 1 / (1 + Foundation.exp(-x))) <= 2e-7)
        }
        let big = Tensor([100, -100, 0]).exp().scalars
        #expect(big[0].isFinite && big[1] >= 0 && big[2] == 1)
    }

    @Test func swigluMatchesComposite() {
        let x = randomInput([3, 2, 20], seed: 4, lo: -3, hi: 3)
        gradCheck([x]) { swiglu($0[0]) }
        let fused = swiglu(x).scalars
        let composite = (x.slice(axis: -1, 0..<10).silu() * x.slice(axis: -1, 10..<20)).scalars
        expectClose(fused, composite, atol: 1e-6, rtol: 1e-5)
    }

    @Test func reductions() {
        let x = randomInput([2, 3, 4], seed: 5)
        gradCheck([x]) { $0[0].sum() }
        gradCheck([x]) { $0[0].sum(axes: [1]) }
        gradCheck([x]) { $0[0].sum(axes: [0, 2], keepDims: true) }
        gradCheck([x]) { $0[0].mean(axes: [-1]) }
        gradCheck([x]) { $0[0].mean() }
        gradCheck([x]) { $0[0].max(axis: 1) }
        gradCheck([x]) { $0[0].max(axis: -1, keepDims: true) }
        let s = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(s.sum(axes: [0]).scalars == [5, 7, 9])
        #expect(s.sum(axes: [1]).scalars == [6, 15])
        #expect(s.max(axis: 1).scalars == [3, 6])
        #expect(s.mean().item == 3.5)
        gradCheck([randomInput([3, 1], seed: 6)]) { $0[0].expanded(to: [2, 3, 4]) }
    }

    @Test func largeSumIsParallelAndExact() {
        let n = 1 << 20
        let x = Tensor.ones([4, n / 4])
        #expect(x.sum().item == Float(n))
        #expect(x.sum(axes: [0]).scalars.allSatisfy { $0 == 4 })
    }
}

@Suite struct IndexTests {
    @Test func layoutOps() {
        let x = randomInput([2, 3, 4], seed: 7)
        gradCheck([x]) { $0[0].reshaped([6, 4]) }
        gradCheck([x]) { $0[0].permuted([2, 0, 1]) }
        gradCheck([x]) { $0[0].transposed() }
        gradCheck([x]) { $0[0].slice(axis: 1, 1..<3) }
        gradCheck([x]) { $0[0].split(axis: 2, sizes: [1, 3])[1] }
        let y = randomInput([2, 2, 4], seed: 8)
        gradCheck([x, y]) { concat([$0[0], $0[1]], axis: 1) }
        let p = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]).transposed()
        #expect(p.shape == [3, 2] && p.scalars == [1, 4, 2, 5, 3, 6])
        #expect(concat([Tensor([1, 2], shape: [1, 2]), Tensor([3, 4], shape: [1, 2])], axis: 0).scalars == [1, 2, 3, 4])
    }

    @Test func embeddingGatherAndScatter() {
        let table = randomInput([5, 3], seed: 9)
        let ids = Tensor(ints: [4, 0, 4, 2], shape: [2, 2])
        let out = embedding(table, ids)
        #expect(out.shape == [2, 2, 3])
        #expect(Array(out.scalars[0..<3]) == Array(table.scalars[12..<15]))
        gradCheck([table]) { embedding($0[0], ids) }  // id 4 twice: scatter-add
    }

    @Test func indexSelectWhereDropout() {
        let x = randomInput([3, 4], seed: 10)
        gradCheck([x]) { $0[0].indexSelect(axis: 1, [3, 0, 3]) }
        let mask = Tensor([1, 0, 0, 1], shape: [4])
        let a = randomInput([3, 4], seed: 11), b = randomInput([3, 4], seed: 12)
        gradCheck([a, b]) { whereSelect(mask, $0[0], $0[1]) }
        gradCheck([a]) { $0[0].maskFilled(mask, with: -5) }
        #expect(a.maskFilled(mask, with: -5).scalars[0] == -5)
        let d = Tensor.ones([10000]).dropout(0.25, rng: RNG(seed: 3))
        let kept = d.scalars.filter { $0 != 0 }
        #expect(abs(Double(kept.count) / 10000 - 0.75) < 0.02)
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        // Dropout's gradient is its mask: check with a fixed generator state.
        gradCheck([x]) { $0[0].dropout(0.5, rng: RNG(seed: 5)) }
    }
}
