// Parallel's loops: every index runs exactly once for sizes around the thread count, and loops
// issued inside a parallel region run serially.
import Synchronization
import Testing
import Tensors

@Suite struct ParallelTests {
    @Test(arguments: [0, 1, 2, 3, 64, 1000, 100_003])
    func loopsCoverEachIndexOnce(_ n: Int) {
        let hits = UnsafeMutablePointer<Int32>.allocate(capacity: max(n, 1))
        defer { hits.deallocate() }
        hits.initialize(repeating: 0, count: max(n, 1))
        Parallel.forRange(n, grain: 1) { r in for i in r { hits[i] += 1 } }
        #expect((0..<n).allSatisfy { hits[$0] == 1 })
        hits.initialize(repeating: 0, count: max(n, 1))
        Parallel.forEach(n) { i in hits[i] += 1 }
        #expect((0..<n).allSatisfy { hits[$0] == 1 })
    }

    @Test func nestedLoopsRunSerially() {
        let inner = Atomic<Int>(0), parallelInside = Atomic<Int>(0)
        Parallel.forEach(8) { _ in
            if !Parallel.isSerial { parallelInside.add(1, ordering: .relaxed) }
            Parallel.forRange(1000, grain: 1) { r in inner.add(r.count, ordering: .relaxed) }
        }
        #expect(inner.load(ordering: .relaxed) == 8000)
        #expect(parallelInside.load(ordering: .relaxed) == 0)
    }
}
