// SplitMix64 (Steele, Lea & Flood 2014), keyed per (seed, stream, index), behind ShapesWorld.
// Not for tensors (Tensors.RNG is the Philox generator) and not cryptographic.

/// A 64-bit generator whose state can be derived from `(seed, stream, index)`, so example
/// `i` draws the same numbers however many other examples were generated before it.
///
/// ```swift
/// var rng = SplitMix64(seed: 42, stream: 1, index: 7)
/// let cell = rng.int(below: 9)
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(state: UInt64) { self.state = state }

    /// The generator for example `index` of stream `stream` under `seed`.
    public init(seed: UInt64, stream: UInt64, index: Int) {
        let key = Self.mix(seed &+ Self.mix(stream &* 0xD1B5_4A32_D192_ED03 &+ Self.mix(UInt64(bitPattern: Int64(index)))))
        self.init(state: key)
    }

    /// The SplitMix64 finaliser: a bijective 64-bit mix.
    @inlinable
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (multiply-high; the bias is below 2⁻⁶⁰ for small n).
    public mutating func int(below n: Int) -> Int {
        precondition(n > 0, "int(below:) needs n > 0")
        return Int(next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// A uniform integer in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + int(below: range.count)
    }

    /// A uniform double in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { unit() < p }

    /// A uniformly chosen element of a non-empty collection.
    public mutating func pick<C: RandomAccessCollection>(_ c: C) -> C.Element where C.Index == Int {
        c[c.startIndex + int(below: c.count)]
    }

    /// A Fisher–Yates shuffle.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1)) }
    }
}
