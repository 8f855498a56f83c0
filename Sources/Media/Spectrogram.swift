// Spectrogram: the short-time Fourier transform (periodic Hann window, centred frames) and its inverse.
// Not a feature extractor: mel scaling lives in Mel.swift, phase recovery in GriffinLim.swift.
import Foundation

/// A complex spectrogram: `frames` × `bins` values, frame-major (`re[f * bins + k]`).
public struct ComplexSpectrogram: Equatable {
    public var frames: Int
    public var bins: Int
    public var re: [Float]
    public var im: [Float]

    public init(frames: Int, bins: Int, re: [Float], im: [Float]) {
        precondition(re.count == frames * bins && im.count == frames * bins, "ComplexSpectrogram: size mismatch")
        self.frames = frames
        self.bins = bins
        self.re = re
        self.im = im
    }

    /// |X|, frame-major.
    public var magnitude: [Float] { zip(re, im).map { ($0 * $0 + $1 * $1).squareRoot() } }
}

/// Short-time Fourier transform with a periodic Hann window of length `nFFT` (a power of two) and
/// hop `hop`. Frames are centred: the signal is reflect-padded by nFFT/2 on both sides, so frame f
/// is centred on sample f·hop and a signal of n samples has 1 + n / hop frames (librosa's
/// `center=True, pad_mode="reflect"` convention).
///
/// ```swift
/// let stft = STFT(nFFT: 512, hop: 128)
/// let spec = stft.forward(audio.samples)          // spec.frames × 257 bins
/// let back = stft.inverse(spec, length: audio.samples.count)
/// ```
public struct STFT {
    public let nFFT: Int
    public let hop: Int
    public let window: [Float]
    let fft: RealFFT

    public var bins: Int { nFFT / 2 + 1 }

    public init(nFFT: Int, hop: Int) {
        precondition(hop > 0 && hop <= nFFT, "STFT: hop \(hop) for nFFT \(nFFT)")
        self.nFFT = nFFT
        self.hop = hop
        fft = RealFFT(count: nFFT)
        window = (0..<nFFT).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(nFFT))) }
    }

    /// Number of frames for a signal of `samples` samples.
    public func frameCount(samples: Int) -> Int { 1 + samples / hop }

    /// Index into a signal of length n after reflect padding (mirrored without repeating the edge
    /// sample, repeatedly for signals shorter than the padding).
    @inline(__always) static func reflect(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        let period = 2 * (n - 1)
        var j = i % period
        if j < 0 { j += period }
        return j < n ? j : period - j
    }

    public func forward(_ x: [Float]) -> ComplexSpectrogram {
        let n = x.count, frames = frameCount(samples: n), pad = nFFT / 2, b = bins
        var re = [Float](repeating: 0, count: frames * b), im = re
        var frame = [Float](repeating: 0, count: nFFT)
        guard n > 0 else { return ComplexSpectrogram(frames: frames, bins: b, re: re, im: im) }
        re.withUnsafeMutableBufferPointer { rp in
            im.withUnsafeMutableBufferPointer { ip in
                for f in 0..<frames {
                    let start = f * hop - pad
                    for j in 0..<nFFT {
                        let s = start + j
                        frame[j] = window[j] * x[s >= 0 && s < n ? s : STFT.reflect(s, n)]
                    }
                    frame.withUnsafeBufferPointer {
                        fft.forward($0.baseAddress!, re: rp.baseAddress! + f * b, im: ip.baseAddress! + f * b)
                    }
                }
            }
        }
        return ComplexSpectrogram(frames: frames, bins: b, re: re, im: im)
    }

    /// Weighted overlap-add inverse: each frame's inverse FFT is windowed again, summed, and divided
    /// by the summed squared window — the least-squares signal for a (possibly inconsistent)
    /// spectrogram (Griffin & Lim 1984, eq. 6). `length` defaults to (frames − 1)·hop.
    public func inverse(_ spec: ComplexSpectrogram, length: Int? = nil) -> [Float] {
        precondition(spec.bins == bins, "STFT.inverse: \(spec.bins) bins for nFFT \(nFFT)")
        let pad = nFFT / 2, frames = spec.frames
        let n = length ?? max(0, (frames - 1) * hop)
        let total = (frames - 1) * hop + nFFT
        var acc = [Float](repeating: 0, count: total), norm = acc
        var frame = [Float](repeating: 0, count: nFFT)
        spec.re.withUnsafeBufferPointer { rp in
            spec.im.withUnsafeBufferPointer { ip in
                for f in 0..<frames {
                    frame.withUnsafeMutableBufferPointer {
                        fft.inverse(re: rp.baseAddress! + f * bins, im: ip.baseAddress! + f * bins, into: $0.baseAddress!)
                    }
                    let start = f * hop
                    for j in 0..<nFFT {
                        acc[start + j] += window[j] * frame[j]
                        norm[start + j] += window[j] * window[j]
                    }
                }
            }
        }
        var y = [Float](repeating: 0, count: n)
        for i in 0..<n where pad + i < total {
            let w = norm[pad + i]
            y[i] = w > 1e-8 ? acc[pad + i] / w : 0
        }
        return y
    }
}
