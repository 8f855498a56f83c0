// The tape: accumulation, shared subexpressions, no-grad mode and leaf gradient ownership.
import Testing
import Tensors
import TestSupport

@Suite struct AutogradTests {
    @Test func reusedInputAccumulates() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = (x * x + x).sum()  // dy/dx = 2x + 1
        y.backward()
        #expect(x.grad!.scalars == [3, 5, 7])
        (x * 2).sum().backward()  // accumulates: + 2
        #expect(x.grad!.scalars == [5, 7, 9])
    }

    @Test func diamondGraph() {
        let x = Tensor([0.5, -1], requiresGrad: true)
        let a = x.exp(), b = a * a, c = (a + b).sum()
        c.backward()
        let e = x.exp().scalars
        expectClose(x.grad!.scalars, e.map { $0 + 2 * $0 * $0 })
    }

    @Test func noGradRecordsNothing() {
        let x = Tensor([1, 2], requiresGrad: true)
        let y = withoutGrad { x * 3 }
        #expect(!y.tracksGrad)
        let z = x * 3
        #expect(z.tracksGrad)
    }

    @Test func leafGradientsDoNotAlias() {
        // add's backward hands the same buffer to both inputs; leaves must get their own copies.
        let a = Tensor([1, 1], requiresGrad: true), b = Tensor([1, 1], requiresGrad: true)
        (a + b).sum().backward()
        a.grad!.scaleInPlace(10)
        #expect(b.grad!.scalars == [1, 1])
    }

    @Test func onlyTrackedInputsGetGradients() {
        let w = Tensor([2, 3], requiresGrad: true), c = Tensor([4, 5])
        (w * c).sum().backward()
        #expect(w.grad!.scalars == [4, 5])
        #expect(c.grad == nil)
    }
}

@Suite struct RNGTests {
    @Test func deterministicAndResumable() {
        let a = RNG(seed: 7), b = RNG(seed: 7)
        #expect(a.normal([100]).scalars == b.normal([100]).scalars)
        let saved = a.state
        let next = a.uniform([50]).scalars
        #expect(RNG(state: saved).uniform([50]).scalars == next)
        #expect(RNG(seed: 8).normal([10]).scalars != RNG(seed: 7).normal([10]).scalars)
    }

    @Test func distributionMoments() {
        let n = 200_000
        let x = RNG(seed: 1).normal([n], mean: 1, std: 2).scalars
        let mean = x.reduce(0, +) / Float(n)
        let v = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(n)
        #expect(abs(mean - 1) < 0.02 && abs(v.squareRoot() - 2) < 0.02)
        let u = RNG(seed: 2).uniform([n]).scalars
        #expect(u.allSatisfy { $0 >= 0 && $0 < 1 } && abs(u.reduce(0, +) / Float(n) - 0.5) < 0.005)
        let r = RNG(seed: 3)
        let counts = (0..<60000).reduce(into: [Int](repeating: 0, count: 6)) { c, _ in c[r.nextInt(below: 6)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10000) < 400 })
        #expect(RNG(seed: 4).permutation(10).sorted() == Array(0..<10))
    }
}

@Suite struct InputCheckTests {
    /// Preconditions stay live in release builds: a bad id stops with a message rather than
    /// reading outside the table.
    @Test func outOfRangeTokenIdStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            _ = embedding(Tensor.zeros([4, 2]), Tensor(ints: [1, 9]))
        }
        await #expect(processExitsWith: .failure) {
            _ = matmul(Tensor.zeros([2, 3]), Tensor.zeros([4, 2]))
        }
    }
}
