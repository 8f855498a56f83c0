// FFT: iterative radix-2 complex FFT and a real-input FFT built on a half-length complex one.
// Not a general FFT: lengths must be powers of two; no SIMD, no mixed radix, no external library.
import Foundation

/// A complex discrete Fourier transform of a fixed power-of-two length `count`, in place over
/// separate real and imaginary arrays: `X[k] = Σₙ x[n]·e^(−2πi·kn/N)`; `inverse` includes 1/N.
///
/// ```swift
/// let fft = FFT(count: 8)
/// var re: [Float] = [1, 0, 0, 0, 0, 0, 0, 0], im = [Float](repeating: 0, count: 8)
/// fft.forward(re: &re, im: &im)        // an impulse: every bin is 1
/// ```
public struct FFT {
    public let count: Int
    let cosTable: [Float], sinTable: [Float]   // e^(−2πi·j/N) for j < N/2
    let bitReversed: [Int]

    public init(count: Int) {
        precondition(count >= 1 && count & (count - 1) == 0, "FFT: length \(count) is not a power of two")
        self.count = count
        let half = max(count / 2, 1)
        cosTable = (0..<half).map { Float(cos(2 * Double.pi * Double($0) / Double(count))) }
        sinTable = (0..<half).map { Float(-sin(2 * Double.pi * Double($0) / Double(count))) }
        let bits = count.trailingZeroBitCount
        bitReversed = (0..<count).map { i in
            var r = 0
            for b in 0..<bits where i & (1 << b) != 0 { r |= 1 << (bits - 1 - b) }
            return r
        }
    }

    public func forward(re: inout [Float], im: inout [Float]) { transform(&re, &im, inverse: false) }

    /// The inverse transform, scaled by 1/N so that `inverse(forward(x)) == x`.
    public func inverse(re: inout [Float], im: inout [Float]) {
        transform(&re, &im, inverse: true)
        let s = 1 / Float(count)
        for i in 0..<count { re[i] *= s; im[i] *= s }
    }

    func transform(_ re: inout [Float], _ im: inout [Float], inverse: Bool) {
        precondition(re.count == count && im.count == count, "FFT: arrays of \(re.count), \(im.count) for length \(count)")
        re.withUnsafeMutableBufferPointer { r in
            im.withUnsafeMutableBufferPointer { i in transform(r.baseAddress!, i.baseAddress!, inverse: inverse) }
        }
    }

    /// Decimation in time: bit-reverse, then log₂N stages of butterflies.
    func transform(_ re: UnsafeMutablePointer<Float>, _ im: UnsafeMutablePointer<Float>, inverse: Bool) {
        let n = count
        for i in 0..<n {
            let j = bitReversed[i]
            if j > i { swap(&re[i], &re[j]); swap(&im[i], &im[j]) }
        }
        let sign: Float = inverse ? -1 : 1
        cosTable.withUnsafeBufferPointer { ct in
            sinTable.withUnsafeBufferPointer { st in
                var len = 2
                while len <= n {
                    let halfLen = len / 2, step = n / len
                    var start = 0
                    while start < n {
                        for j in 0..<halfLen {
                            let wr = ct[j * step], wi = sign * st[j * step]
                            let a = start + j, b = a + halfLen
                            let tr = re[b] * wr - im[b] * wi
                            let ti = re[b] * wi + im[b] * wr
                            re[b] = re[a] - tr; im[b] = im[a] - ti
                            re[a] += tr; im[a] += ti
                        }
                        start += len
                    }
                    len *= 2
                }
            }
        }
    }
}

/// The DFT of a real signal of power-of-two length N ≥ 2, returning the N/2 + 1 non-negative
/// frequency bins, computed with one complex FFT of length N/2 (even samples as real part,
/// odd samples as imaginary part, then untangled).
public struct RealFFT {
    public let count: Int
    /// Number of bins, N/2 + 1.
    public var bins: Int { count / 2 + 1 }
    let half: FFT
    let wr: [Float], wi: [Float]   // e^(−2πi·k/N) for k ≤ N/2

    public init(count: Int) {
        precondition(count >= 2 && count & (count - 1) == 0, "RealFFT: length \(count) is not a power of two ≥ 2")
        self.count = count
        half = FFT(count: count / 2)
        wr = (0...(count / 2)).map { Float(cos(2 * Double.pi * Double($0) / Double(count))) }
        wi = (0...(count / 2)).map { Float(-sin(2 * Double.pi * Double($0) / Double(count))) }
    }

    /// Bins 0…N/2 of the DFT of `x` (N samples) into `re`, `im` (N/2 + 1 each).
    public func forward(_ x: UnsafePointer<Float>, re: UnsafeMutablePointer<Float>, im: UnsafeMutablePointer<Float>) {
        let h = count / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * h) { buf in
            let zr = buf.baseAddress!, zi = zr + h
            for n in 0..<h { zr[n] = x[2 * n]; zi[n] = x[2 * n + 1] }
            half.transform(zr, zi, inverse: false)
            // X[k] = E[k] + W^k·O[k], with E[k] = (Z[k] + conj Z[h−k]) / 2, O[k] = (Z[k] − conj Z[h−k]) / 2i.
            for k in 0...h {
                let a = k % h, b = (h - k) % h
                let er = (zr[a] + zr[b]) / 2, ei = (zi[a] - zi[b]) / 2
                let or = (zi[a] + zi[b]) / 2, oi = -(zr[a] - zr[b]) / 2
                re[k] = er + wr[k] * or - wi[k] * oi
                im[k] = ei + wr[k] * oi + wi[k] * or
            }
        }
    }

    /// Convenience over arrays: returns `(re, im)` with N/2 + 1 bins.
    public func forward(_ x: [Float]) -> (re: [Float], im: [Float]) {
        precondition(x.count == count, "RealFFT: \(x.count) samples for length \(count)")
        var re = [Float](repeating: 0, count: bins), im = [Float](repeating: 0, count: bins)
        x.withUnsafeBufferPointer { xp in
            re.withUnsafeMutableBufferPointer { r in
                im.withUnsafeMutableBufferPointer { i in forward(xp.baseAddress!, re: r.baseAddress!, im: i.baseAddress!) }
            }
        }
        return (re, im)
    }

    /// The real signal (N samples, 1/N included) whose non-negative bins are `re`, `im`; the
    /// imaginary parts of bins 0 and N/2 are ignored, as for any real signal.
    public func inverse(re: UnsafePointer<Float>, im: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>) {
        let h = count / 2
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * h) { buf in
            let zr = buf.baseAddress!, zi = zr + h
            // E[k] = (X[k] + conj X[h−k]) / 2, O[k] = (X[k] − conj X[h−k])·W^(−k) / 2, Z[k] = E[k] + i·O[k].
            for k in 0..<h {
                // For k = 0 the partner is the Nyquist bin; both are real for a real signal.
                let xr = re[k], xi = k == 0 ? 0 : im[k]
                let yr = re[h - k], yi = k == 0 ? 0 : -im[h - k]   // conj X[h−k]
                let er = (xr + yr) / 2, ei = (xi + yi) / 2
                let dr = (xr - yr) / 2, di = (xi - yi) / 2
                let or = dr * wr[k] + di * wi[k], oi = di * wr[k] - dr * wi[k]   // times conj(W^k)
                zr[k] = er - oi
                zi[k] = ei + or
            }
            half.transform(zr, zi, inverse: true)
            let s = 1 / Float(h)
            for n in 0..<h { x[2 * n] = zr[n] * s; x[2 * n + 1] = zi[n] * s }
        }
    }

    /// Convenience over arrays.
    public func inverse(re: [Float], im: [Float]) -> [Float] {
        precondition(re.count == bins && im.count == bins, "RealFFT.inverse: need \(bins) bins")
        var x = [Float](repeating: 0, count: count)
        re.withUnsafeBufferPointer { r in
            im.withUnsafeBufferPointer { i in
                x.withUnsafeMutableBufferPointer { inverse(re: r.baseAddress!, im: i.baseAddress!, into: $0.baseAddress!) }
            }
        }
        return x
    }
}
