// Resample: band-limited sample-rate conversion by a Kaiser-windowed sinc, polyphase for rational ratios.
// Not a real-time resampler: it converts a whole clip at once, treating the signal as zero outside it.
import Foundation

extension Audio {
    /// The clip at `rate` Hz, by windowed-sinc interpolation (Kaiser window, β = 10, 32 zero
    /// crossings each side). The low-pass cutoff is 0.9 × the lower of the two Nyquist
    /// frequencies, so downsampling removes what would alias and upsampling adds no images.
    /// Output length is `ceil(count × rate / sampleRate)`.
    ///
    /// ```swift
    /// let a8k = Audio(sampleRate: 16_000, samples: x).resampled(to: 8_000)
    /// ```
    public func resampled(to rate: Int) -> Audio {
        precondition(rate > 0, "Audio.resampled: rate \(rate)")
        if rate == sampleRate || samples.isEmpty { return Audio(sampleRate: rate, samples: samples) }
        let resampler = Resampler(from: sampleRate, to: rate)
        return Audio(sampleRate: rate, samples: resampler.run(samples))
    }
}

/// Rational-ratio windowed-sinc resampler. Output sample n sits at input position
/// x = n·M/L (L = out/g, M = in/g, g = gcd); its fractional part takes one of L values, so for
/// moderate L every phase's taps are precomputed.
struct Resampler {
    let up: Int, down: Int                // L, M
    let cutoff: Double                    // fc, cycles per input sample
    let halfWidth: Double                 // taps reach ±halfWidth input samples
    let reach: Int                        // ceil(halfWidth)
    let phases: [[Float]]?                // L × (2·reach) taps, when L is small enough

    static let zeroCrossings = 32.0, rolloff = 0.9, beta = 10.0, maxPhases = 4096

    init(from inRate: Int, to outRate: Int) {
        let g = Resampler.gcd(inRate, outRate)
        up = outRate / g
        down = inRate / g
        cutoff = 0.5 * min(1, Double(outRate) / Double(inRate)) * Resampler.rolloff
        halfWidth = Resampler.zeroCrossings / (2 * cutoff)
        reach = Int(halfWidth.rounded(.up))
        if up <= Resampler.maxPhases {
            let (L, fc, hw, r) = (up, cutoff, halfWidth, reach)
            phases = (0..<L).map { p in Resampler.taps(frac: Double(p) / Double(L), cutoff: fc, halfWidth: hw, reach: r) }
        } else {
            phases = nil
        }
    }

    /// Weights for inputs k = i − reach + 1 … i + reach around position x = i + frac, normalised to
    /// sum to 1 (exact DC gain).
    static func taps(frac: Double, cutoff fc: Double, halfWidth: Double, reach: Int) -> [Float] {
        var w = [Double](repeating: 0, count: 2 * reach)
        let i0b = bessel0(beta)
        for j in 0..<(2 * reach) {
            let t = frac + Double(reach - 1 - j)          // x − k
            let u = t / halfWidth
            guard abs(u) < 1 else { continue }
            let arg = 2 * fc * t
            let sinc = arg == 0 ? 1 : sin(Double.pi * arg) / (Double.pi * arg)
            w[j] = 2 * fc * sinc * bessel0(beta * (1 - u * u).squareRoot()) / i0b
        }
        let sum = w.reduce(0, +)
        return w.map { Float($0 / sum) }
    }

    func run(_ x: [Float]) -> [Float] {
        let n = x.count
        let outCount = (n * up + down - 1) / down
        var y = [Float](repeating: 0, count: outCount)
        let width = 2 * reach
        x.withUnsafeBufferPointer { xp in
            for m in 0..<outCount {
                let pos = m * down
                let i = pos / up, p = pos % up
                let h = phases?[p] ?? Resampler.taps(frac: Double(p) / Double(up), cutoff: cutoff,
                                                     halfWidth: halfWidth, reach: reach)
                let k0 = i - reach + 1
                let lo = max(0, -k0), hi = min(width, n - k0)   // taps that land inside the clip
                var s: Float = 0
                if lo < hi { for j in lo..<hi { s += h[j] * xp[k0 + j] } }
                y[m] = s
            }
        }
        return y
    }

    /// Modified Bessel function of the first kind, order 0 (power series).
    static func bessel0(_ x: Double) -> Double {
        var sum = 1.0, term = 1.0, k = 1.0
        let q = x * x / 4
        while term > 1e-12 * sum {
            term *= q / (k * k)
            sum += term
            k += 1
        }
        return sum
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}
