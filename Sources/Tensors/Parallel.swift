// Work splitting for our own loops, and the thread count shared with OpenBLAS.
// Not a scheduler: it splits one loop into at most `threads` contiguous chunks.
import CBLAS
import Foundation

public enum Parallel {
    /// Threads used by our loops and by OpenBLAS (set together so neither oversubscribes).
    nonisolated(unsafe) public private(set) static var threads: Int = {
        let n = ProcessInfo.processInfo.environment["FUSION_THREADS"].flatMap { Int($0) }
            ?? ProcessInfo.processInfo.activeProcessorCount
        openblas_set_num_threads(Int32(max(1, n)))
        return max(1, n)
    }()

    public static func setThreads(_ n: Int) {
        threads = max(1, n)
        openblas_set_num_threads(Int32(threads))
    }

    /// Runs `body` over `0..<n` split into contiguous chunks, in parallel when each chunk gets at
    /// least `grain` items. `body` receives a half-open range.
    @inline(__always)
    public static func forRange(_ n: Int, grain: Int = 32768, _ body: (Range<Int>) -> Void) {
        let chunks = min(threads, n / max(grain, 1))
        if chunks <= 1 {
            if n > 0 { body(0..<n) }
            return
        }
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = n * c / chunks, hi = n * (c + 1) / chunks
            body(lo..<hi)
        }
    }

    /// Runs `body(i)` for each of `n` independent tasks (rows, heads, images), in parallel.
    @inline(__always)
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || threads <= 1 {
            for i in 0..<n { body(i) }
            return
        }
        let chunks = min(threads, n)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in (n * c / chunks)..<(n * (c + 1) / chunks) { body(i) }
        }
    }
}

extension Parallel {
    /// Runs `body` with OpenBLAS limited to one thread, for regions where our own threads each
    /// call small GEMMs (attention blocks, per-image convolutions).
    @inline(__always)
    public static func withSingleThreadedBLAS<T>(_ body: () throws -> T) rethrows -> T {
        if threads == 1 { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(threads)) }
        return try body()
    }
}
