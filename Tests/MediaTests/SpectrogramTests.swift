// FFT against a naive DFT, STFT round trips, the Slaney mel filterbank and its inverse, log-mel, and
// Griffin–Lim reconstructing a tone to a small spectral convergence.
import Foundation
import Testing
import Data
@testable import Media

/// Σₙ x[n]·e^(−2πi·kn/N) in Double.
func naiveDFT(_ re: [Float], _ im: [Float]) -> ([Double], [Double]) {
    let n = re.count
    var outRe = [Double](repeating: 0, count: n), outIm = outRe
    for k in 0..<n {
        for j in 0..<n {
            let a = -2 * Double.pi * Double(k * j % n) / Double(n)
            outRe[k] += Double(re[j]) * cos(a) - Double(im[j]) * sin(a)
            outIm[k] += Double(re[j]) * sin(a) + Double(im[j]) * cos(a)
        }
    }
    return (outRe, outIm)
}

func randomSignal(_ n: Int, seed: UInt64 = 1) -> [Float] {        // uniform in [-1, 1], the same for a seed
    var g = SplitMix64(state: seed)
    return (0..<n).map { _ in Float.random(in: -1...1, using: &g) }
}

@Suite struct SpectrogramTests {
    // Float32 FFT error grows like ε·log₂N·‖x‖; with |x| ≤ 1 and ‖x‖ ≤ √N, 1e-6·N is a loose bound
    // that a wrong twiddle or index (errors of order √N) cannot meet.
    @Test(arguments: [1, 2, 4, 8, 16, 64, 256, 1024])
    func complexFFTMatchesNaiveDFT(n: Int) {
        let xr = randomSignal(n, seed: UInt64(n)), xi = randomSignal(n, seed: UInt64(n) + 1000)
        var re = xr, im = xi
        let fft = FFT(count: n)
        fft.forward(re: &re, im: &im)
        let (er, ei) = naiveDFT(xr, xi)
        let err = (0..<n).map { max(abs(Double(re[$0]) - er[$0]), abs(Double(im[$0]) - ei[$0])) }.max()!
        #expect(err < 1e-6 * Double(n) + 1e-6, "n=\(n) error \(err)")
        fft.inverse(re: &re, im: &im)
        #expect(zip(re, xr).allSatisfy { abs($0 - $1) < 1e-5 } && zip(im, xi).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test(arguments: [2, 4, 8, 32, 512, 2048])
    func realFFTMatchesNaiveDFT(n: Int) {
        let x = randomSignal(n, seed: UInt64(n))
        let rfft = RealFFT(count: n)
        let (re, im) = rfft.forward(x)
        #expect(re.count == n / 2 + 1)
        let (er, ei) = naiveDFT(x, [Float](repeating: 0, count: n))
        let err = (0...(n / 2)).map { max(abs(Double(re[$0]) - er[$0]), abs(Double(im[$0]) - ei[$0])) }.max()!
        #expect(err < 1e-6 * Double(n) + 1e-6, "n=\(n) error \(err)")
        let back = rfft.inverse(re: re, im: im)
        let rt = zip(back, x).map { abs($0 - $1) }.max()!
        #expect(rt < 1e-5, "n=\(n) round trip \(rt)")
    }

    @Test func stftInverseReconstructs() {
        let x = randomSignal(5000)
        for (nFFT, hop) in [(512, 128), (256, 64), (64, 32)] {
            let stft = STFT(nFFT: nFFT, hop: hop)
            let spec = stft.forward(x)
            #expect(spec.frames == 1 + 5000 / hop && spec.bins == nFFT / 2 + 1)
            let y = stft.inverse(spec, length: x.count)
            let err = zip(x, y).map { abs($0 - $1) }.max()!
            #expect(err < 1e-4, "nFFT \(nFFT) hop \(hop): \(err)")
        }
    }

    @Test func stftFindsASine() {
        // 1 kHz at 16 kHz with nFFT 512: bin 32 exactly.
        let spec = STFT(nFFT: 512, hop: 128).forward(sine(1000, rate: 16_000, seconds: 0.25))
        let mag = spec.magnitude
        let f = spec.frames / 2
        let row = Array(mag[(f * spec.bins)..<((f + 1) * spec.bins)])
        #expect(row.indices.max { row[$0] < row[$1] } == 32)
        // Hann-windowed amplitude A sine: peak |X| = A·N/4.
        #expect(abs(row[32] - 0.5 * 512 / 4) < 0.5)
    }

    // MARK: - Mel

    @Test func slaneyMelScale() {
        #expect(abs(MelFilterbank.hzToMel(1000) - 15) < 1e-12)
        #expect(abs(MelFilterbank.hzToMel(200) - 3) < 1e-12)
        // librosa.hz_to_mel(8000) = 45.245640471924965 (Slaney).
        #expect(abs(MelFilterbank.hzToMel(8000) - 45.245640471924965) < 1e-9)
        for f in [0.0, 123.4, 999, 1000, 4321, 11_025] {
            #expect(abs(MelFilterbank.melToHz(MelFilterbank.hzToMel(f)) - f) < 1e-9 * max(f, 1))
        }
    }

    @Test func filterbankShape() {
        let bank = MelFilterbank(sampleRate: 16_000, nFFT: 1024, nMels: 40)
        #expect(bank.weights.count == 40 * 513 && bank.weights.allSatisfy { $0 >= 0 })
        let binHz = 16_000.0 / 1024
        for m in 0..<40 {
            let row = Array(bank.weights[(m * 513)..<((m + 1) * 513)])
            // Each filter peaks at the bin nearest its centre frequency…
            let centre = MelFilterbank.melToHz(MelFilterbank.hzToMel(8000) * Double(m + 1) / 41)
            let peak = row.indices.max { row[$0] < row[$1] }!
            #expect(abs(Double(peak) * binHz - centre) <= binHz)
            // …and has unit area in Hz (Slaney normalisation), up to the bin discretisation.
            let area = Double(row.reduce(0, +)) * binHz
            #expect(abs(area - 1) < 0.05, "filter \(m) area \(area)")
        }
    }

    @Test func melInverseIsARightInverse() {
        let bank = MelFilterbank(sampleRate: 16_000, nFFT: 512, nMels: 64)
        var g = SplitMix64(state: 2)
        // A smooth non-negative spectrum, 3 frames.
        let spec = (0..<(3 * 257)).map { i in Float(1 + sin(Double(i % 257) / 20)) + Float.random(in: 0...0.1, using: &g) }
        let mel = bank.apply(spec, frames: 3)
        let again = bank.apply(bank.inverse(mel, frames: 3), frames: 3)
        let rel = zip(again, mel).map { abs($0 - $1) / max($1, 1e-3) }.max()!
        #expect(rel < 0.02, "W·W⁺·y differs from y by \(rel)")
    }

    @Test func logMelOfAToneAndSilence() {
        let audio = Audio(sampleRate: 16_000, samples: sine(1000, rate: 16_000, seconds: 0.5))
        let lm = logMel(audio, nMels: 80, nFFT: 512, hop: 160)
        #expect(lm.frames == 1 + 8000 / 160 && lm.mels == 80 && lm.values.count == lm.frames * 80)
        let f = lm.frames / 2
        let row = Array(lm.values[(f * 80)..<((f + 1) * 80)])
        let peak = row.indices.max { row[$0] < row[$1] }!
        let centres = (0..<80).map { MelFilterbank.melToHz(MelFilterbank.hzToMel(8000) * Double($0 + 1) / 81) }
        let nearest = centres.indices.min { abs(centres[$0] - 1000) < abs(centres[$1] - 1000) }!
        #expect(abs(peak - nearest) <= 1)
        let silent = logMel(Audio(sampleRate: 16_000, samples: [Float](repeating: 0, count: 1600)), nMels: 10, nFFT: 256, hop: 128)
        #expect(silent.values.allSatisfy { $0 == log(logMelFloor) })
    }

    // MARK: - Griffin–Lim

    /// Bounds, from a sweep over seeds 0–2 (momentum 0.99, this tone, nFFT 512, hop 128): after 200
    /// iterations the interior frames reach a spectral convergence of 0.012–0.035, the whole
    /// spectrogram 0.025–0.077. The excess is in the ⌈nFFT/hop⌉ frames at each end: their reflect
    /// padding makes the magnitude depend on the tone's absolute phase at the clip's edges, which
    /// the interior does not constrain, so a random start can settle on another phase there.
    /// Random phases with no iterations give about 0.6.
    @Test func griffinLimReconstructsATone() {
        let (rate, nFFT, hop) = (16_000, 512, 128)
        let x = sine(440, rate: rate, seconds: 0.5)
        let stft = STFT(nFFT: nFFT, hop: hop)
        let target = stft.forward(x)
        let mag = target.magnitude
        func reconstruct(_ iterations: Int) -> (all: Float, interior: Float, audio: Audio) {
            let y = griffinLim(magnitude: mag, frames: target.frames, nFFT: nFFT, hop: hop, sampleRate: rate,
                               iterations: iterations, length: x.count, seed: 0)
            let est = stft.forward(y.samples).magnitude
            let edge = (nFFT / hop) * target.bins, inner = edge..<(mag.count - edge)
            return (spectralConvergence(target: mag, estimate: est),
                    spectralConvergence(target: Array(mag[inner]), estimate: Array(est[inner])), y)
        }
        let start = reconstruct(0), done = reconstruct(200)
        print("Griffin–Lim, 440 Hz tone: spectral convergence \(start.all) at start; after 200 iterations "
              + "\(done.all) overall, \(done.interior) in interior frames")
        #expect(done.audio.samples.count == x.count && done.audio.sampleRate == rate)
        #expect(start.all > 0.3)
        #expect(done.interior < 0.05)
        #expect(done.all < 0.1)
        #expect(abs(peakFrequency(done.audio.samples, rate: rate, size: 4096) - 440) < 4)
    }

    @Test func logMelToAudioKeepsThePitch() {
        let (rate, nFFT, hop, nMels) = (16_000, 512, 128, 80)
        let audio = Audio(sampleRate: rate, samples: sine(440, rate: rate, seconds: 0.5))
        let lm = logMel(audio, nMels: nMels, nFFT: nFFT, hop: hop)
        let mag = inverseLogMel(lm.values, frames: lm.frames, nMels: nMels, nFFT: nFFT, sampleRate: rate)
        let y = griffinLim(magnitude: mag, frames: lm.frames, nFFT: nFFT, hop: hop, sampleRate: rate, iterations: 50,
                           length: audio.samples.count)
        // Mel bands near 440 Hz are ~37 Hz apart, so the pitch comes back within a band.
        #expect(abs(peakFrequency(y.samples, rate: rate, size: 4096) - 440) < 40)
        let again = logMel(y, nMels: nMels, nFFT: nFFT, hop: hop)
        // The mel pseudo-inverse smears each band over its neighbours, so this round trip is loose
        // (measured about 0.25 in natural-log units, i.e. ±30 % in magnitude).
        let diff = zip(again.values, lm.values).map { abs($0 - $1) }.reduce(0, +) / Float(lm.values.count)
        print("log-mel → Griffin–Lim → log-mel: mean |Δ log-mel| = \(diff)")
        #expect(diff < 0.5)
    }
}
