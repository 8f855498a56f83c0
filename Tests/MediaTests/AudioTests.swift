// Audio files and resampling: 16-bit WAV/FLAC round trips, channel mixdown, frequency-preserving and
// anti-aliased rate conversion, and named errors for missing, foreign, truncated and corrupt files.
import Foundation
import Testing
import Data
@testable import Media

/// A sine of `frequency` Hz, `seconds` long, peak `amplitude`.
func sine(_ frequency: Double, rate: Int, seconds: Double, amplitude: Float = 0.5) -> [Float] {
    (0..<Int(seconds * Double(rate))).map { amplitude * Float(sin(2 * Double.pi * frequency * Double($0) / Double(rate))) }
}

/// The frequency of the strongest bin of a Hann-windowed power-of-two segment from the middle of `x`.
func peakFrequency(_ x: [Float], rate: Int, size: Int) -> Double {
    let start = (x.count - size) / 2
    let w = (0..<size).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(size))) * x[start + $0] }
    let (re, im) = RealFFT(count: size).forward(w)
    let mags = zip(re, im).map { $0 * $0 + $1 * $1 }
    let k = mags.indices.max { mags[$0] < mags[$1] }!
    return Double(k) * Double(rate) / Double(size)
}

func rms(_ x: ArraySlice<Float>) -> Float { (x.map { $0 * $0 }.reduce(0, +) / Float(max(x.count, 1))).squareRoot() }

@Suite struct AudioTests {
    /// libsndfile writes float → PCM16 as round(x·32767) and reads back x/32768, so the round trip
    /// errs by at most |x|/32768 + 0.5/32768.
    static let pcm16Tolerance: Float = 1.5 / 32768

    func testSignal() -> [Float] {
        var g = SplitMix64(state: 4)
        return sine(440, rate: 16_000, seconds: 0.5, amplitude: 0.6).map { $0 + Float.random(in: -0.3...0.3, using: &g) }
    }

    @Test(arguments: ["wav", "flac"])
    func roundTripWithin16BitQuantisation(ext: String) throws {
        let dir = temporaryDirectory(), path = dir + "/a.\(ext)"
        let x = testSignal()
        try AudioFile.write(Audio(sampleRate: 16_000, samples: x), to: path)
        let back = try AudioFile.read(path)
        #expect(back.sampleRate == 16_000 && back.samples.count == x.count)
        let err = zip(back.samples, x).map { abs($0 - $1) }.max()!
        #expect(err <= AudioTests.pcm16Tolerance, "max error \(err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.\(ext)"])   // no temp left
        if ext == "wav" { #expect(readBytes(path).prefix(4).elementsEqual("RIFF".utf8)) }
        if ext == "flac" { #expect(readBytes(path).prefix(4).elementsEqual("fLaC".utf8)) }
    }

    @Test func writeClipsOutOfRange() throws {
        let path = temporaryDirectory() + "/clip.wav"
        try AudioFile.write(Audio(sampleRate: 8000, samples: [2, -3, 0.5]), to: path)
        let s = try AudioFile.read(path).samples
        #expect(s[0] > 0.999 && s[1] < -0.999 && abs(s[2] - 0.5) < AudioTests.pcm16Tolerance)
        #expect(throws: MediaError.self) { try AudioFile.write(Audio(sampleRate: 8000, samples: [0]), to: "x.mp3") }
    }

    @Test func channelsAreAveragedToMono() throws {
        let dir = temporaryDirectory()
        let left: [Int16] = [1000, -2000, 30000, 0], right: [Int16] = [3000, 2000, -10000, 32767]
        writeBytes(wavBytes(sampleRate: 22_050, channels: 2, interleaved: zip(left, right).flatMap { [$0, $1] }),
                   to: dir + "/stereo.wav")
        let a = try AudioFile.read(dir + "/stereo.wav")
        #expect(a.sampleRate == 22_050 && a.samples.count == 4)
        for i in 0..<4 {
            #expect(abs(a.samples[i] - (Float(left[i]) + Float(right[i])) / 2 / 32768) < 1e-6)
        }
        // Three channels too.
        writeBytes(wavBytes(sampleRate: 8000, channels: 3, interleaved: [300, 600, 900, -300, -600, -900]),
                   to: dir + "/three.wav")
        let t = try AudioFile.read(dir + "/three.wav").samples
        #expect(abs(t[0] - 600 / 32768) < 1e-6 && abs(t[1] + 600 / 32768) < 1e-6)
    }

    // MARK: - Resampling

    @Test func downAndUpKeepsA440Sine() throws {
        let x = sine(440, rate: 16_000, seconds: 1)
        let path = temporaryDirectory() + "/s.wav"
        try AudioFile.write(Audio(sampleRate: 16_000, samples: x), to: path)
        let down = try AudioFile.read(path, sampleRate: 8000)
        #expect(down.sampleRate == 8000 && down.samples.count == 8000)
        let up = down.resampled(to: 16_000)
        #expect(up.samples.count == 16_000)
        // 8192-point FFT: bins of 0.98 Hz at 8 kHz and 1.95 Hz at 16 kHz.
        #expect(abs(peakFrequency(down.samples, rate: 8000, size: 4096) - 440) < 2)
        #expect(abs(peakFrequency(up.samples, rate: 16_000, size: 8192) - 440) < 2)
        // The waveform itself survives (away from the zero-padded edges): 440 Hz is far inside the passband.
        let mid = 2000..<14_000
        let err = zip(up.samples[mid], x[mid]).map { abs($0 - $1) }.max()!
        #expect(err < 2e-3, "max deviation \(err)")
    }

    @Test func downsamplingRemovesWhatWouldAlias() {
        // 6 kHz is above the 4 kHz Nyquist of 8 kHz: without a low-pass it would fold to 2 kHz.
        let x = sine(6000, rate: 16_000, seconds: 0.5)
        let y = Audio(sampleRate: 16_000, samples: x).resampled(to: 8000).samples
        let ratio = rms(y[500..<3500]) / rms(x[...])
        #expect(ratio < 1e-3, "alias leaks at \(ratio)")
        // And 3 kHz (inside the new band, below the 0.9 × Nyquist cutoff) passes at full level.
        let z = Audio(sampleRate: 16_000, samples: sine(3000, rate: 16_000, seconds: 0.5)).resampled(to: 8000).samples
        #expect(abs(rms(z[500..<3500]) / (0.5 / Float(2).squareRoot()) - 1) < 0.01)
    }

    @Test(arguments: [(44_100, 16_000, 1000.0), (22_050, 16_000, 440.0), (8000, 8191, 440.0)])
    func oddRatiosKeepFrequency(from: Int, to: Int, frequency: Double) {
        let y = Audio(sampleRate: from, samples: sine(frequency, rate: from, seconds: 1)).resampled(to: to)
        #expect(y.samples.count == to)
        #expect(abs(peakFrequency(y.samples, rate: to, size: 4096) - frequency) < Double(to) / 4096 + 0.5)
    }

    // MARK: - Damaged files

    func writtenWav() throws -> [UInt8] {
        let path = temporaryDirectory() + "/w.wav"
        try AudioFile.write(Audio(sampleRate: 16_000, samples: sine(440, rate: 16_000, seconds: 0.5)), to: path)
        return readBytes(path)
    }

    @Test func truncatedWavThrows() throws {
        let bytes = try writtenWav(), dir = temporaryDirectory()
        for cut in [bytes.count / 2, bytes.count - 1, 44, 100] {
            writeBytes(Array(bytes[0..<cut]), to: dir + "/x.wav")
            let error = #expect(throws: MediaError.self, "cut at \(cut)") { try AudioFile.read(dir + "/x.wav") }
            #expect(error?.description.hasPrefix("x.wav: truncated:") == true, "\(String(describing: error))")
        }
        for cut in [0, 12, 30] {   // inside the header: libsndfile refuses to open it
            writeBytes(Array(bytes[0..<cut]), to: dir + "/h.wav")
            let error = #expect(throws: MediaError.self, "cut at \(cut)") { try AudioFile.read(dir + "/h.wav") }
            #expect(error?.description.hasPrefix("h.wav: ") == true)
        }
    }

    @Test func implausibleSampleRateIsRefusedNotResampled() throws {
        // Found by `make fuzz` (wav): a 44-byte header claiming 1 325 415 040 Hz made read(_:sampleRate:)
        // build a resampler with millions of taps per phase (minutes, gigabytes).
        let dir = temporaryDirectory()
        writeBytes(wavBytes(sampleRate: 1_325_415_040, channels: 1, interleaved: [0, 100, -100, 0]), to: dir + "/fast.wav")
        let error = #expect(throws: MediaError.self) { try AudioFile.read(dir + "/fast.wav", sampleRate: 16_000) }
        #expect(error?.description == "fast.wav: unsupported: sample rate 1325415040 Hz (expected 1000…768000 Hz)")
        writeBytes(wavBytes(sampleRate: 8000, channels: 1, interleaved: [0, 100, -100, 0]), to: dir + "/ok.wav")
        #expect(try AudioFile.read(dir + "/ok.wav", sampleRate: 16_000).samples.count == 8)
    }

    @Test func truncatedFlacThrows() throws {
        let dir = temporaryDirectory()
        var g = SplitMix64(state: 5)
        let noise = (0..<16_000).map { _ in Float.random(in: -0.5...0.5, using: &g) }   // incompressible
        try AudioFile.write(Audio(sampleRate: 16_000, samples: noise), to: dir + "/n.flac")
        let bytes = readBytes(dir + "/n.flac")
        writeBytes(Array(bytes[0..<bytes.count / 2]), to: dir + "/cut.flac")
        #expect(throws: MediaError.self) { try AudioFile.read(dir + "/cut.flac") }
    }

    @Test func foreignAndCorruptFilesThrow() throws {
        let dir = temporaryDirectory()
        writeBytes(Array("this is plainly not audio, just some text in a file".utf8), to: dir + "/t.wav")
        let foreign = #expect(throws: MediaError.self) { try AudioFile.read(dir + "/t.wav") }
        #expect(foreign?.description.hasPrefix("t.wav: ") == true)
        var bad = try writtenWav()
        bad[20] = 9   // fmt chunk: format tag 9 is not a WAV codec libsndfile reads
        writeBytes(bad, to: dir + "/c.wav")
        #expect(throws: MediaError.self) { try AudioFile.read(dir + "/c.wav") }
        let missing = #expect(throws: MediaError.self) { try AudioFile.read(dir + "/nope.wav") }
        #expect(missing?.description.hasPrefix("nope.wav: cannot open") == true)
    }
}
