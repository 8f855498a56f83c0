// Mel: a Slaney-style mel filterbank, log-mel spectrograms, and their least-squares inverse.
// Not HTK: the mel scale is linear below 1 kHz and logarithmic above, with area-normalised filters.
import Foundation

/// Triangular mel filters over the bins of an `nFFT`-point real FFT, as librosa's
/// `filters.mel(htk=False, norm="slaney")` (Slaney's Auditory Toolbox): `nMels + 2` points
/// equally spaced on the mel scale from `fMin` to `fMax`, each filter scaled by 2 / (its width in Hz)
/// so that filters have equal area.
///
/// ```swift
/// let mel = MelFilterbank(sampleRate: 16_000, nFFT: 512, nMels: 80)
/// let m = mel.apply(stft.forward(x).magnitude, frames: f)   // f × 80
/// ```
public struct MelFilterbank {
    public let sampleRate: Int, nFFT: Int, nMels: Int
    public let fMin: Double, fMax: Double
    /// `nMels` × `bins` weights, row-major.
    public let weights: [Float]
    /// The bins where each filter is non-zero (apply and inverse skip the rest).
    let support: [Range<Int>]
    public var bins: Int { nFFT / 2 + 1 }

    public init(sampleRate: Int, nFFT: Int, nMels: Int, fMin: Double = 0, fMax: Double? = nil) {
        let fMax = fMax ?? Double(sampleRate) / 2
        precondition(nMels > 0 && fMin >= 0 && fMax > fMin, "MelFilterbank: \(nMels) mels over \(fMin)–\(fMax) Hz")
        self.sampleRate = sampleRate
        self.nFFT = nFFT
        self.nMels = nMels
        self.fMin = fMin
        self.fMax = fMax
        let bins = nFFT / 2 + 1
        let lo = MelFilterbank.hzToMel(fMin), hi = MelFilterbank.hzToMel(fMax)
        let edges = (0..<(nMels + 2)).map { MelFilterbank.melToHz(lo + (hi - lo) * Double($0) / Double(nMels + 1)) }
        var w = [Float](repeating: 0, count: nMels * bins)
        for m in 0..<nMels {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2])
            let norm = 2 / (right - left)
            for k in 0..<bins {
                let f = Double(k) * Double(sampleRate) / Double(nFFT)
                let up = (f - left) / (centre - left), down = (right - f) / (right - centre)
                w[m * bins + k] = Float(max(0, min(up, down)) * norm)
            }
        }
        weights = w
        support = (0..<nMels).map { m in
            let row = w[(m * bins)..<((m + 1) * bins)]
            guard let first = row.firstIndex(where: { $0 != 0 }), let last = row.lastIndex(where: { $0 != 0 }) else {
                return 0..<0
            }
            return (first - m * bins)..<(last - m * bins + 1)
        }
    }

    /// Slaney's mel scale: 3 mels per 200 Hz below 1 kHz, then logarithmic (27 mels per factor 6.4).
    public static func hzToMel(_ f: Double) -> Double {
        let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
        return f < minLogHz ? f / fSp : minLogMel + log(f / minLogHz) / logStep
    }

    public static func melToHz(_ m: Double) -> Double {
        let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
        return m < minLogMel ? m * fSp : minLogHz * exp(logStep * (m - minLogMel))
    }

    /// Mel energies of a frame-major `frames` × `bins` spectrogram: `frames` × `nMels`.
    public func apply(_ spectrum: [Float], frames: Int) -> [Float] {
        precondition(spectrum.count == frames * bins, "MelFilterbank.apply: \(spectrum.count) values for \(frames)×\(bins)")
        var out = [Float](repeating: 0, count: frames * nMels)
        for f in 0..<frames {
            for m in 0..<nMels {
                var s: Float = 0
                for k in support[m] { s += weights[m * bins + k] * spectrum[f * bins + k] }
                out[f * nMels + m] = s
            }
        }
        return out
    }

    /// The smallest-norm spectrum that the filterbank maps to each mel frame, clamped at zero:
    /// x = Wᵀ(WWᵀ + λI)⁻¹y, with a tiny λ (10⁻⁶ of WWᵀ's mean diagonal) for filters that cover no
    /// bin. Returns `frames` × `bins`. Mel pooling loses detail, so this is a smooth estimate, not
    /// the original spectrum.
    public func inverse(_ mel: [Float], frames: Int) -> [Float] {
        precondition(mel.count == frames * nMels, "MelFilterbank.inverse: \(mel.count) values for \(frames)×\(nMels)")
        let p = pseudoInverse()   // bins × nMels
        var out = [Float](repeating: 0, count: frames * bins)
        for f in 0..<frames {
            for k in 0..<bins {
                var s: Float = 0
                for m in 0..<nMels { s += p[k * nMels + m] * mel[f * nMels + m] }
                out[f * bins + k] = max(s, 0)
            }
        }
        return out
    }

    /// Wᵀ(WWᵀ + λI)⁻¹ as a `bins` × `nMels` matrix, by Cholesky factorisation in Double.
    func pseudoInverse() -> [Float] {
        let (M, B) = (nMels, bins)
        var g = [Double](repeating: 0, count: M * M)   // WWᵀ
        for i in 0..<M {
            for j in 0...i {
                var s = 0.0
                for k in 0..<B { s += Double(weights[i * B + k]) * Double(weights[j * B + k]) }
                g[i * M + j] = s
                g[j * M + i] = s
            }
        }
        let meanDiag = (0..<M).map { g[$0 * M + $0] }.reduce(0, +) / Double(M)
        let lambda = max(meanDiag, 1e-30) * 1e-6
        for i in 0..<M { g[i * M + i] += lambda }
        // 1. Cholesky: g = L Lᵀ (lower triangle of l).
        var l = [Double](repeating: 0, count: M * M)
        for i in 0..<M {
            for j in 0...i {
                var s = g[i * M + j]
                for k in 0..<j { s -= l[i * M + k] * l[j * M + k] }
                l[i * M + j] = i == j ? s.squareRoot() : s / l[j * M + j]
            }
        }
        // 2. For each bin k, solve (WWᵀ + λI) z = W[:, k]; row k of the result is zᵀ.
        var out = [Float](repeating: 0, count: B * M)
        var z = [Double](repeating: 0, count: M)
        for k in 0..<B {
            for i in 0..<M {   // forward: L u = w
                var s = Double(weights[i * B + k])
                for j in 0..<i { s -= l[i * M + j] * z[j] }
                z[i] = s / l[i * M + i]
            }
            for i in stride(from: M - 1, through: 0, by: -1) {   // backward: Lᵀ z = u
                var s = z[i]
                for j in (i + 1)..<M { s -= l[j * M + i] * z[j] }
                z[i] = s / l[i * M + i]
            }
            for m in 0..<M { out[k * M + m] = Float(z[m]) }
        }
        return out
    }
}

// MARK: - Log-mel

/// Floor applied before the logarithm in `logMel` (so silence maps to ln 10⁻⁵ ≈ −11.5).
public let logMelFloor: Float = 1e-5

/// The log-mel spectrogram of `audio`: STFT (periodic Hann, centred frames) → magnitude →
/// Slaney mel filterbank from 0 Hz to Nyquist → natural log with floor `logMelFloor` (the
/// Tacotron 2 / HiFi-GAN convention). Values are frame-major: `values[f * mels + m]`.
///
/// ```swift
/// let lm = logMel(audio, nMels: 80, nFFT: 1024, hop: 256)   // lm.frames × 80
/// ```
public func logMel(_ audio: Audio, nMels: Int, nFFT: Int, hop: Int) -> (frames: Int, mels: Int, values: [Float]) {
    let spec = STFT(nFFT: nFFT, hop: hop).forward(audio.samples)
    let bank = MelFilterbank(sampleRate: audio.sampleRate, nFFT: nFFT, nMels: nMels)
    let mel = bank.apply(spec.magnitude, frames: spec.frames)
    return (spec.frames, nMels, mel.map { log(max($0, logMelFloor)) })
}

/// A magnitude spectrogram (`frames` × (nFFT/2 + 1), frame-major) estimated from `logMel` values by
/// undoing the log and the filterbank's least-squares inverse; feed it to `griffinLim`.
public func inverseLogMel(_ values: [Float], frames: Int, nMels: Int, nFFT: Int, sampleRate: Int) -> [Float] {
    let bank = MelFilterbank(sampleRate: sampleRate, nFFT: nFFT, nMels: nMels)
    return bank.inverse(values.map { $0 <= log(logMelFloor) ? 0 : exp($0) }, frames: frames)
}
