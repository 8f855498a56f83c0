// Work splitting for our own loops and for large GEMMs, over one pool of threads.
// Not a scheduler: it splits one loop into at most `threads` contiguous chunks.
//
// OpenBLAS always runs single-threaded: its own worker threads spin in sched_yield between
// calls, which on a 2-core machine steals the cores our elementwise loops run on (perf showed
// ~14% of a decoder step in __schedule/sched_yield). Large products are split by `sgemm` into
// one single-threaded GEMM per thread instead, on the same Dispatch threads as everything else.
import CBLAS
import Foundation
import Synchronization

public enum Parallel {
    /// Threads used by our loops and by split GEMMs.
    nonisolated(unsafe) public private(set) static var threads: Int = {
        let n = ProcessInfo.processInfo.environment["FUSION_THREADS"].flatMap { Int($0) }
            ?? ProcessInfo.processInfo.activeProcessorCount
        _ = BLAS.cores  // every product reads `threads` first: OpenBLAS is set up before its first call
        return max(1, n)
    }()

    /// Depth of parallel regions entered from the calling thread; work issued inside one (by any of
    /// its threads) runs serially, so nested loops and GEMMs never oversubscribe.
    static let depth = Atomic<Int>(0)

    /// True inside a parallel region (or when one thread is all there is).
    @inline(__always) public static var isSerial: Bool { threads <= 1 || depth.load(ordering: .relaxed) > 0 }

    public static func setThreads(_ n: Int) {
        threads = max(1, n)
        openblas_set_num_threads(1)
    }

    /// Runs `chunks` ≥ 2 pieces concurrently, marking the region so nested work stays serial.
    @inline(__always)
    static func run(_ chunks: Int, _ body: (Int) -> Void) {
        depth.add(1, ordering: .relaxed)
        defer { depth.subtract(1, ordering: .relaxed) }
        // The caller's matmul precision holds on the threads that do its work.
        let precision = MatmulPrecision.current
        if precision == .fp32 {
            DispatchQueue.concurrentPerform(iterations: chunks, execute: body)
        } else {
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                MatmulPrecision.$current.withValue(precision) { body(i) }
            }
        }
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, in parallel when each chunk gets at
    /// least `grain` items. `body` receives a half-open range.
    @inline(__always)
    public static func forRange(_ n: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        let chunks = isSerial ? 1 : min(threads, n / max(grain, 1))
        if chunks <= 1 {
            if n > 0 { body(0..<n) }
            return
        }
        run(chunks) { c in
            let lo = n * c / chunks, hi = n * (c + 1) / chunks
            body(lo..<hi)
        }
    }

    /// Runs `body(i)` for each of `n` independent tasks (rows, heads, images), in parallel.
    @inline(__always)
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || isSerial {
            for i in 0..<n { body(i) }
            return
        }
        let chunks = min(threads, n)
        run(chunks) { c in
            for i in (n * c / chunks)..<(n * (c + 1) / chunks) { body(i) }
        }
    }
}

extension Parallel {
    /// Runs `body` where our own threads each call small GEMMs (attention blocks, per-image
    /// convolutions). OpenBLAS is single-threaded everywhere now, so this only documents intent.
    @inline(__always)
    public static func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        try body()
    }
}
