// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11): a
// counter-based generator. The state is (seed, counter), so a run and its resume draw the same
// numbers and fills can be split across cores. Not cryptographic.
import Foundation

/// A deterministic random generator; `state` round-trips through checkpoints.
///
/// ```swift
/// let rng = RNG(seed: 42)
/// let w = rng.normal([256, 256], std: 0.02)
/// ```
public final class RNG: @unchecked Sendable {
    public struct State: Codable, Equatable, Sendable {
        public var seed: UInt64
        public var counter: UInt64
    }

    public private(set) var state: State

    public init(seed: UInt64) { state = State(seed: seed, counter: 0) }
    public init(state: State) { self.state = state }

    /// An independent generator for a named purpose (dropout, data order, noise): same seed
    /// family, a key derived from `stream`, its own counter.
    public func split(_ stream: UInt64) -> RNG {
        RNG(seed: state.seed &* 0x9E37_79B9_7F4A_7C15 &+ stream &* 0xBF58_476D_1CE4_E5B9 &+ 1)
    }

    // MARK: - Philox block

    @inline(__always)
    static func block(seed: UInt64, counter: UInt64) -> SIMD4<UInt32> {
        var c0 = UInt32(truncatingIfNeeded: counter), c1 = UInt32(truncatingIfNeeded: counter >> 32)
        var c2: UInt32 = 0x5EED, c3: UInt32 = 0
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let (hi0, lo0) = (UInt32(truncatingIfNeeded: p0 >> 32), UInt32(truncatingIfNeeded: p0))
            let (hi1, lo1) = (UInt32(truncatingIfNeeded: p1 >> 32), UInt32(truncatingIfNeeded: p1))
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            k0 &+= 0x9E37_79B9
            k1 &+= 0xBB67_AE85
        }
        return SIMD4(c0, c1, c2, c3)
    }

    /// Reserves `blocks` counters and returns the first.
    private func take(_ blocks: Int) -> UInt64 {
        let first = state.counter
        state.counter &+= UInt64(blocks)
        return first
    }

    @inline(__always) static func unit(_ x: UInt32) -> Float { Float(x >> 8) * (1.0 / 16_777_216.0) }

    // MARK: - Fills

    /// Fills `n` floats uniform in [lo, hi).
    public func fillUniform(_ p: UnsafeMutablePointer<Float>, _ n: Int, lo: Float = 0, hi: Float = 1) {
        let blocks = (n + 3) / 4
        let first = take(blocks), seed = state.seed
        Parallel.forRange(blocks, grain: 1 << 14) { r in
            for b in r {
                let v = RNG.block(seed: seed, counter: first &+ UInt64(b))
                for j in 0..<4 where b * 4 + j < n { p[b * 4 + j] = lo + (hi - lo) * RNG.unit(v[j]) }
            }
        }
    }

    /// Fills `n` floats from N(mean, std²) by Box–Muller.
    public func fillNormal(_ p: UnsafeMutablePointer<Float>, _ n: Int, mean: Float = 0, std: Float = 1) {
        let blocks = (n + 3) / 4
        let first = take(blocks), seed = state.seed
        Parallel.forRange(blocks, grain: 1 << 13) { r in
            for b in r {
                let v = RNG.block(seed: seed, counter: first &+ UInt64(b))
                for pair in 0..<2 {
                    let u1 = (Float(v[2 * pair] >> 8) + 1) * (1.0 / 16_777_216.0)  // (0, 1]
                    let u2 = RNG.unit(v[2 * pair + 1])
                    let rad = (-2 * Foundation.log(u1)).squareRoot()
                    let a = 2 * Float.pi * u2
                    let i = b * 4 + 2 * pair
                    if i < n { p[i] = mean + std * rad * Foundation.cos(a) }
                    if i + 1 < n { p[i + 1] = mean + std * rad * Foundation.sin(a) }
                }
            }
        }
    }

    // MARK: - Tensors and scalars

    /// A tensor drawn from `initializer`, which it remembers (a parameter's initial values).
    public func draw(_ shape: [Int], _ initializer: Initializer) -> Tensor {
        let t = Tensor.empty(shape)
        fill(t, initializer)
        return t
    }

    /// Overwrites `t` with draws from `initializer` and records it as `t`'s initializer.
    public func fill(_ t: Tensor, _ initializer: Initializer) {
        switch initializer {
        case .uniform(let lo, let hi): fillUniform(t.data, t.count, lo: lo, hi: hi)
        case .normal(let mean, let std): fillNormal(t.data, t.count, mean: mean, std: std)
        case .constant(let value): t.data.update(repeating: value, count: t.count)
        }
        t.initializer = initializer
    }

    public func uniform(_ shape: [Int], lo: Float = 0, hi: Float = 1) -> Tensor {
        let t = Tensor.empty(shape)
        fillUniform(t.data, t.count, lo: lo, hi: hi)
        return t
    }

    public func normal(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        let t = Tensor.empty(shape)
        fillNormal(t.data, t.count, mean: mean, std: std)
        return t
    }

    /// One uniform float in [0, 1).
    public func nextFloat() -> Float { RNG.unit(RNG.block(seed: state.seed, counter: take(1))[0]) }

    /// One uniform integer in 0..<bound (bound ≤ 2^32), by Lemire's multiply-shift.
    public func nextInt(below bound: Int) -> Int {
        precondition(bound > 0 && bound <= 1 << 32, "RNG.nextInt: bound \(bound) out of range")
        let x = RNG.block(seed: state.seed, counter: take(1))
        let r = (UInt64(x[0]) << 32) | UInt64(x[1])
        return Int((r.multipliedFullWidth(by: UInt64(bound))).high)
    }

    /// Integers in 0..<bound as an Int32 tensor.
    public func integers(_ shape: [Int], below bound: Int) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(ints: (0..<n).map { _ in Int32(nextInt(below: bound)) }, shape: shape)
    }

    /// A uniformly random permutation of 0..<n (Fisher–Yates).
    public func permutation(_ n: Int) -> [Int] {
        var a = Array(0..<n)
        if n < 2 { return a }
        for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, nextInt(below: i + 1)) }
        return a
    }
}

/// The distribution a parameter's initial values are drawn from.
public enum Initializer: Equatable, Sendable {
    case uniform(lo: Float, hi: Float)
    case normal(mean: Float, std: Float)
    case constant(Float)
}
