// AudioCodec: patch layout and exact frames ↔ patches round trips, fitted normalisation, the
// Griffin–Lim round trip of speech (mel spectral convergence), quantiser training (error falls,
// codes in use) and checkpoints. Uses espeak-ng speech when installed, synthetic syllables otherwise.
import Foundation
import Media
import Models
import NN
import Tensors
import TestSupport
import Testing

/// A small codec for tests: 32 mels, 4 frames a patch (D = 128), 32 codes.
func tinyAudioCodec(codebookSize: Int = 32, ema: Bool = false) -> AudioCodec {
    AudioCodec(.init(nFFT: 512, hop: 128, nMels: 32, framesPerPatch: 4, codebookSize: codebookSize, ema: ema))
}

/// Mel spectral convergence between two clips: ‖A − B‖_F / ‖A‖_F over mel magnitudes (exp of log-mel),
/// on the frames both have.
func melSpectralConvergence(_ a: Audio, _ b: Audio, nMels: Int = 64) -> Float {
    let la = logMel(a, nMels: nMels, nFFT: 512, hop: 128), lb = logMel(b, nMels: nMels, nFFT: 512, hop: 128)
    let n = min(la.values.count, lb.values.count)
    return spectralConvergence(target: la.values.prefix(n).map { exp($0) },
                               estimate: lb.values.prefix(n).map { exp($0) })
}

@Suite struct AudioCodecTests {
    @Test func patchesHoldFramesExactly() {
        let (clips, _) = TestSpeech.clips(3)
        let codec = tinyAudioCodec()
        codec.fit(clips)
        let clip = clips[1]
        let p = codec.encode(clip)
        let lm = codec.logMelFrames(clip)
        // Shapes: F = 1 + n/hop frames, ⌈F/4⌉ patches of 4·32 values.
        #expect(p.frames == 1 + clip.samples.count / 128 && p.frames == lm.frames)
        #expect(p.values.shape == [(p.frames + 3) / 4, 128])
        #expect(p.samples == clip.samples.count)
        // Patch n, slot j holds frame 4n + j, normalised per bin.
        let (mean, std) = (codec.mean.scalars, codec.std.scalars)
        for (f, b) in [(0, 0), (5, 17), (p.frames - 1, 31)] {
            let expected = (lm.values[f * 32 + b] - mean[b]) / std[b]
            #expect(abs(p.values.data[(f / 4) * 128 + (f % 4) * 32 + b] - expected) < 1e-6)
        }
        // Padding frames are normalised silence.
        if p.frames % 4 != 0 {
            let pad = p.frames   // first padded frame, in the last patch
            #expect(abs(p.values.data[pad * 32 + 3] - (log(logMelFloor) - mean[3]) / std[3]) < 1e-6)
        }
        // Patches → log-mel is exact up to float error, and so is a second encode of it.
        let back = codec.logMel(fromPatches: p.values, frames: p.frames)
        expectClose(back, lm.values, atol: 1e-4, rtol: 1e-5)
        expectClose(codec.patches(fromLogMel: back, frames: p.frames).scalars, p.values.scalars, atol: 1e-5, rtol: 1e-5)
        // A clip at another rate is resampled first.
        let at8k = clip.resampled(to: 8000)
        let p8 = codec.encode(at8k)
        #expect(abs(p8.samples - clip.samples.count) <= 1 && abs(p8.frames - p.frames) <= 1)
    }

    @Test func fittedStatisticsNormalise() {
        let (clips, _) = TestSpeech.clips(3)
        let codec = tinyAudioCodec()
        #expect(codec.fittedFrames == 0)
        codec.fit(clips)
        #expect(codec.fittedFrames == clips.map { 1 + $0.samples.count / 128 }.reduce(0, +))
        // Over the fitting frames each bin has mean 0 and (unless floored) standard deviation 1.
        var sum = [Double](repeating: 0, count: 32), sumSq = sum, n = 0.0
        for clip in clips {
            let p = codec.encode(clip)
            let v = p.values.scalars
            for f in 0..<p.frames {
                for b in 0..<32 { sum[b] += Double(v[f * 32 + b]); sumSq[b] += Double(v[f * 32 + b] * v[f * 32 + b]) }
            }
            n += Double(p.frames)
        }
        let std = codec.std.scalars
        for b in 0..<32 {
            #expect(abs(sum[b] / n) < 1e-3, "bin \(b) mean \(sum[b] / n)")
            if std[b] > AudioCodec.minStd { #expect(abs(sumSq[b] / n - 1) < 1e-3, "bin \(b) var \(sumSq[b] / n)") }
        }
    }

    @Test func griffinLimRoundTripKeepsTheSpectrum() {
        let (clips, spoken) = TestSpeech.clips(2)
        let codec = AudioCodec(.init(nMels: 64, framesPerPatch: 4, griffinLimIterations: 32))
        codec.fit(clips)
        let clip = clips[0]
        let back = codec.reconstruct(clip)
        #expect(back.sampleRate == 16_000 && back.samples.count == clip.samples.count)
        #expect(back.samples.allSatisfy { $0.isFinite })
        let sc = melSpectralConvergence(clip, back)
        // Log-mel of the reconstruction against the original: mean absolute difference in nats,
        // over frames louder than -60 dB of the peak (silence is at the log floor in both).
        let a = logMel(clip, nMels: 64, nFFT: 512, hop: 128).values
        let b = logMel(back, nMels: 64, nFFT: 512, hop: 128).values
        let loud = (a.max() ?? 0) - 6.9
        let pairs = zip(a, b).filter { $0.0 > loud }
        let mad = pairs.map { abs($0.0 - $0.1) }.reduce(0, +) / Float(max(pairs.count, 1))
        print(String(format: "AudioCodec round trip (%@): mel spectral convergence %.3f, log-mel MAD %.3f nats",
                     spoken ? "espeak-ng" : "synthetic", sc, mad))
        #expect(sc < 0.35, "mel spectral convergence \(sc)")
        #expect(mad < 0.6, "log-mel mean absolute difference \(mad)")
    }

    @Test func quantizerTrainingLowersErrorAndUsesCodes() {
        let (clips, _) = TestSpeech.clips(4)
        let codec = tinyAudioCodec(codebookSize: 32)
        codec.fit(clips)
        let report = codec.trainQuantizer(on: clips, options: .init(kMeansIterations: 8, steps: 30, batchSize: 64))
        print("AudioCodec quantiser: \(report)")
        #expect(report.kMeansError < 0.6 * report.initialError)
        #expect(report.finalError < 0.6 * report.initialError)
        #expect(report.usage.fraction >= 0.8, "\(report.usage)")
        #expect(codec.quantizerTrained)
        // Codes → patches → codes is the identity, and codes decode to a clip of the right length.
        let (ids, frames, samples) = codec.encodeCodes(clips[0])
        #expect(ids.shape == [(frames + 3) / 4] && ids.dtype == .int32)
        #expect(codec.codes(fromPatches: codec.patches(fromCodes: ids)).intScalars == ids.intScalars)
        let audio = codec.decodeCodes(ids, frames: frames, samples: samples, iterations: 4)
        #expect(audio.samples.count == samples)
    }

    @Test func emaQuantizerTrains() {
        let (clips, _) = TestSpeech.clips(3)
        let codec = tinyAudioCodec(codebookSize: 16, ema: true)
        codec.fit(clips)
        let report = codec.trainQuantizer(on: clips, options: .init(kMeansIterations: 4, steps: 20, batchSize: 64))
        #expect(report.finalError < 0.7 * report.initialError, "\(report)")
        #expect(report.finalError < 1.2 * report.kMeansError, "\(report)")
    }

    @Test func checkpointRoundTrip() throws {
        let (clips, _) = TestSpeech.clips(2)
        let codec = tinyAudioCodec(codebookSize: 16)
        codec.fit(clips)
        codec.trainQuantizer(on: clips, options: .init(kMeansIterations: 2, steps: 0))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-audio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("codec.safetensors").path
        try codec.save(to: path)
        let back = try AudioCodec.load(from: path)
        #expect(back.config == codec.config)
        #expect(back.mean.scalars == codec.mean.scalars && back.std.scalars == codec.std.scalars)
        #expect(back.quantizer.codebook.scalars == codec.quantizer.codebook.scalars)
        #expect(back.fittedFrames == codec.fittedFrames && back.quantizerTrained)
        #expect(back.encode(clips[0]).values.scalars == codec.encode(clips[0]).values.scalars)
        #expect(back.encodeCodes(clips[1]).ids.intScalars == codec.encodeCodes(clips[1]).ids.intScalars)

        // Errors name the file.
        let missing = dir.appendingPathComponent("nope.safetensors").path
        let bare = dir.appendingPathComponent("bare.safetensors").path
        try Safetensors.write(["mean": Tensor.zeros([32])], to: URL(fileURLWithPath: bare))
        let junk = dir.appendingPathComponent("junk.safetensors").path
        try "not a checkpoint".write(toFile: junk, atomically: true, encoding: .utf8)
        for (file, words) in [(missing, "no such file"), (bare, "config"), (junk, "safetensors")] {
            let error = #expect(throws: (any Error).self) { _ = try AudioCodec.load(from: file) }
            let text = error.map { "\($0)" } ?? ""
            #expect(text.contains(file) && text.contains(words), "\(text)")
        }
    }
}
