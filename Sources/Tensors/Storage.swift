// Storage: a 64-byte-aligned buffer of 4-byte elements (Float32 or Int32), and the caching
// allocator behind it. Not a general-purpose memory manager: it only recycles buffers of one size
// class (sizes rounded up to eighths of a power of two).
import CKernels
import Foundation

/// A buffer of `count` 4-byte elements. Freed buffers go back to `Allocator.shared`.
public final class Storage: @unchecked Sendable {
    public let count: Int
    public let raw: UnsafeMutableRawPointer

    /// An uninitialised buffer of `count` elements.
    public init(count: Int) {
        precondition(count >= 0, "Storage: negative element count \(count)")
        self.count = count
        self.raw = Allocator.shared.allocate(bytes: max(count, 1) * 4)
    }

    deinit { Allocator.shared.release(raw, bytes: max(count, 1) * 4) }

    @inline(__always) public var floats: UnsafeMutablePointer<Float> {
        raw.assumingMemoryBound(to: Float.self)
    }
    @inline(__always) public var ints: UnsafeMutablePointer<Int32> {
        raw.assumingMemoryBound(to: Int32.self)
    }
}

/// Reuses freed buffers by exact byte size. Training steps allocate the same sizes every step;
/// returning large buffers to the system and taking them back costs page faults each time.
public final class Allocator: @unchecked Sendable {
    public static let shared = Allocator()

    init() {
        // Tensor buffers the cache lets go of (emptyCache, trim) go back to the system, not into
        // glibc's heap, where fragmentation would keep them resident (a run's resident size grew
        // by 55 MiB after each evaluation before this).
        fusion_fix_mmap_threshold(128 << 10)
    }

    /// Buffers smaller than this go straight to malloc/free.
    public var minCachedBytes = 16 * 1024
    /// The most bytes kept in the cache; beyond it freed buffers are returned to the system.
    public var limitBytes = 4 << 30

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private let lock = NSLock()
    public private(set) var cachedBytes = 0
    public private(set) var liveBytes = 0
    public private(set) var peakLiveBytes = 0

    /// The size a request of `bytes` is served with: cached sizes are rounded up to eighths of
    /// their power of two, so a tensor whose size changes a little from step to step (packed image
    /// spans, documents per row) reuses a cached buffer instead of adding a new size to the cache
    /// every step. The unused tail is never touched, so it costs address space, not memory.
    @inline(__always) public func sizeClass(_ bytes: Int) -> Int {
        guard bytes >= minCachedBytes else { return bytes }
        let step = 1 << max(6, (Int.bitWidth - 1 - bytes.leadingZeroBitCount) - 3)
        return (bytes + step - 1) & ~(step - 1)
    }

    func allocate(bytes requested: Int) -> UnsafeMutableRawPointer {
        let bytes = sizeClass(requested)
        lock.lock()
        let peakBefore = peakLiveBytes
        liveBytes += bytes
        peakLiveBytes = max(peakLiveBytes, liveBytes)
        if bytes >= minCachedBytes, let p = free[bytes]?.popLast() {
            cachedBytes -= bytes
            lock.unlock()
            return p
        }
        lock.unlock()
        var p: UnsafeMutableRawPointer?
        if posix_memalign(&p, 64, bytes) == 0, let p { return p }
        // Out of memory: give the cache back to the system and try once more, then report.
        emptyCache()
        if posix_memalign(&p, 64, bytes) == 0, let p { return p }
        lock.lock()
        liveBytes -= bytes
        peakLiveBytes = max(peakBefore, liveBytes)       // the refused request never was live
        let failure = AllocationFailure(requested: bytes, live: liveBytes, peakLive: peakLiveBytes)
        lock.unlock()
        onFailure(failure)
        fatalError("Allocator.onFailure returned")   // the handler must not return: there is no buffer to give
    }

    /// What the system refused: the size asked and what the allocator held then.
    public struct AllocationFailure: CustomStringConvertible, Sendable {
        public var requested: Int
        public var live: Int
        public var peakLive: Int

        public var description: String {
            func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
            return "out of memory: the system refused \(mib(requested)) for a tensor while \(mib(live)) of tensors were live "
                + "(peak \(mib(peakLive)))"
        }
    }

    /// Called, outside any lock, when the system refuses memory even after the cache is emptied;
    /// it must not return. The default writes the failure between `failurePrefix` and
    /// `failureAdvice` to standard error and ends the process with status 1: tensor operations
    /// cannot throw, and a run's files are written atomically, so an orderly exit leaves the last
    /// checkpoint as the run's state. The CLI sets the prefix and the keys that shrink the work.
    public var onFailure: @Sendable (AllocationFailure) -> Never = { failure in
        fflush(nil)
        FileHandle.standardError.write("\(Allocator.failurePrefix)\(failure)\(Allocator.failureAdvice)\n".data(using: .utf8)!)
        _exit(1)
    }

    /// The start of the default failure message, e.g. "fusion train: error: ", and its end: what
    /// to change (set once by a command before its work starts).
    nonisolated(unsafe) public static var failurePrefix = "error: "
    nonisolated(unsafe) public static var failureAdvice = ""

    func release(_ p: UnsafeMutableRawPointer, bytes requested: Int) {
        let bytes = sizeClass(requested)
        lock.lock()
        liveBytes -= bytes
        if bytes >= minCachedBytes && cachedBytes + bytes <= limitBytes {
            free[bytes, default: []].append(p)
            cachedBytes += bytes
            lock.unlock()
            return
        }
        lock.unlock()
        Foundation.free(p)
    }

    /// Returns every cached buffer to the system.
    public func emptyCache() {
        lock.lock()
        for (_, ps) in free { for p in ps { Foundation.free(p) } }
        free = [:]
        cachedBytes = 0
        lock.unlock()
    }

    /// Returns every cached buffer, and the C heap's free memory, to the system: after short-lived
    /// work, so that the process's resident size reads what it really keeps.
    public func trim() {
        emptyCache()
        fusion_release_free_heap()
    }

    /// Resets the peak-live-bytes counter (for measuring one step's peak).
    public func resetPeak() {
        lock.lock(); peakLiveBytes = liveBytes; lock.unlock()
    }
}
