// GriffinLim: phase recovery from a magnitude spectrogram by alternating projections, with momentum.
// Not a neural vocoder: expect the metallic timbre of Griffin–Lim, good enough to listen to samples.
import Foundation

/// A waveform whose STFT magnitude approximates `magnitude` (frame-major, `frames` ×
/// (nFFT/2 + 1), the layout of `ComplexSpectrogram.magnitude`), by the fast Griffin–Lim algorithm
/// (Perraudin, Balazs & Søndergaard 2013; librosa's `griffinlim`):
///
/// 1. start from random phases (seeded, so the result is reproducible);
/// 2. each iteration: waveform = ISTFT(|S|·phase); rebuilt = STFT(waveform);
///    phase = normalise(rebuilt − α/(1+α)·previous rebuilt), α = `momentum`;
/// 3. return ISTFT(|S|·phase).
///
/// Uses the same window, hop and centring as `STFT`.
///
/// ```swift
/// let mag = STFT(nFFT: 512, hop: 128).forward(x).magnitude
/// let y = griffinLim(magnitude: mag, frames: f, nFFT: 512, hop: 128, sampleRate: 16_000, iterations: 50)
/// ```
public func griffinLim(
    magnitude: [Float], frames: Int, nFFT: Int, hop: Int, sampleRate: Int,
    iterations: Int = 32, momentum: Float = 0.99, length: Int? = nil, seed: UInt64 = 0
) -> Audio {
    let stft = STFT(nFFT: nFFT, hop: hop)
    let bins = stft.bins, count = frames * bins
    precondition(magnitude.count == count, "griffinLim: \(magnitude.count) values for \(frames)×\(bins)")
    let length = length ?? max(0, (frames - 1) * hop)

    // 1. Random initial phases from a SplitMix64 stream.
    var state = seed &+ 0x9E37_79B9_7F4A_7C15
    func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
    var pr = [Float](repeating: 0, count: count), pi = pr
    for i in 0..<count {
        let a = 2 * Double.pi * uniform()
        pr[i] = Float(cos(a))
        pi[i] = Float(sin(a))
    }

    func synthesise() -> [Float] {
        let spec = ComplexSpectrogram(frames: frames, bins: bins,
                                      re: (0..<count).map { magnitude[$0] * pr[$0] },
                                      im: (0..<count).map { magnitude[$0] * pi[$0] })
        return stft.inverse(spec, length: length)
    }

    // 2. Alternate projections: consistent spectrograms (STFT of a signal) and the target magnitude.
    let beta = momentum / (1 + momentum)
    var prevRe = [Float](repeating: 0, count: count), prevIm = prevRe
    for _ in 0..<iterations {
        let rebuilt = stft.forward(synthesise())
        // The rebuilt STFT may have one frame more or less than the target when `length` is not a
        // multiple of hop; compare over the frames both have.
        let shared = min(rebuilt.frames, frames) * bins
        for i in 0..<count {
            let rr = i < shared ? rebuilt.re[i] : 0, ri = i < shared ? rebuilt.im[i] : 0
            let ar = rr - beta * prevRe[i], ai = ri - beta * prevIm[i]
            let norm = (ar * ar + ai * ai).squareRoot() + 1e-16
            pr[i] = ar / norm
            pi[i] = ai / norm
            prevRe[i] = rr
            prevIm[i] = ri
        }
    }
    // 3. The final waveform.
    return Audio(sampleRate: sampleRate, samples: synthesise())
}

/// Spectral convergence ‖|S| − |Ŝ|‖_F / ‖S‖_F between a target magnitude and the magnitude of a
/// reconstruction (same layout): 0 is a perfect match; Griffin–Lim's usual quality measure.
public func spectralConvergence(target: [Float], estimate: [Float]) -> Float {
    precondition(target.count == estimate.count, "spectralConvergence: \(target.count) vs \(estimate.count) values")
    var num = 0.0, den = 0.0
    for i in 0..<target.count {
        let d = Double(target[i] - estimate[i])
        num += d * d
        den += Double(target[i]) * Double(target[i])
    }
    return den > 0 ? Float((num / den).squareRoot()) : (num > 0 ? .infinity : 0)
}
