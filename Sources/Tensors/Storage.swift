// Storage: a 64-byte-aligned buffer of 4-byte elements (Float32 or Int32), and the caching
// allocator behind it. Not a general-purpose memory manager: it only recycles exact sizes.
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

    /// Buffers smaller than this go straight to malloc/free.
    public var minCachedBytes = 16 * 1024
    /// The most bytes kept in the cache; beyond it freed buffers are returned to the system.
    public var limitBytes = 4 << 30

    private var free: [Int: [UnsafeMutableRawPointer]] = [:]
    private let lock = NSLock()
    public private(set) var cachedBytes = 0
    public private(set) var liveBytes = 0
    public private(set) var peakLiveBytes = 0

    func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        lock.lock()
        liveBytes += bytes
        peakLiveBytes = max(peakLiveBytes, liveBytes)
        if bytes >= minCachedBytes, let p = free[bytes]?.popLast() {
            cachedBytes -= bytes
            lock.unlock()
            return p
        }
        lock.unlock()
        var p: UnsafeMutableRawPointer?
        let rc = posix_memalign(&p, 64, bytes)
        precondition(rc == 0 && p != nil, "Allocator: out of memory allocating \(bytes) bytes")
        return p!
    }

    func release(_ p: UnsafeMutableRawPointer, bytes: Int) {
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

    /// Resets the peak-live-bytes counter (for measuring one step's peak).
    public func resetPeak() {
        lock.lock(); peakLiveBytes = liveBytes; lock.unlock()
    }
}
