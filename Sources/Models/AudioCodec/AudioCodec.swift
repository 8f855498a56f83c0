// AudioCodec: the audio tokenizer of Fusion — waveform ↔ normalised log-mel frames grouped into
// fixed patches (one transformer position each), with Griffin–Lim back to a waveform, and a
// vector quantiser over the same patches for the Chameleon baseline (AudioQuantizerTraining.swift).
// Not a neural codec: nothing here is learned except the per-bin statistics and the codebook.
// Legend: F log-mel frames, M mel bins, P frames per patch, N = ⌈F/P⌉ patches, D = P·M, K codes.
import Foundation
import Media
import NN
import Tensors

/// The patches of one clip and what is needed to turn them back into that clip.
public struct AudioPatches {
    /// Normalised log-mel patches, (N, D): row n holds frames n·P ..< n·P + P, frame-major
    /// (`values[n, j·M + m]` is mel bin m of frame n·P + j). Frames past `frames` are padding.
    public var values: Tensor
    /// F, the true number of log-mel frames (the last patch is padded up to P frames).
    public var frames: Int
    /// The waveform length in samples (for Griffin–Lim), at the codec's sample rate.
    public var samples: Int

    public init(values: Tensor, frames: Int, samples: Int) {
        self.values = values
        self.frames = frames
        self.samples = samples
    }

    public var count: Int { values.dim(0) }
}

/// Waveforms ↔ patches of normalised log-mel frames, and (with a trained codebook) ↔ code ids.
///
/// 1. log-mel (STFT `nFFT`/`hop`, `nMels` Slaney filters, natural log with floor 10⁻⁵);
/// 2. per-bin normalisation (x − μ_m) / σ_m with statistics fitted on data by `fit(_:)`;
/// 3. P consecutive frames make one patch of D = P·M values; the last patch is padded with
///    (normalised) silence, and the true frame count is kept beside the patches.
///
/// `decode` undoes 3 and 2, inverts the mel filterbank (least squares) and runs Griffin–Lim.
///
/// ```swift
/// let codec = AudioCodec(.init(nMels: 64, framesPerPatch: 4))
/// codec.fit(clips)                                   // per-mel-bin mean and std
/// let p = codec.encode(clip)                         // p.values (N, 256) for the transformer
/// let back = codec.decode(p)                         // Audio at 16 kHz
/// let report = codec.trainQuantizer(on: clips)       // k-means + Adam steps on the codebook
/// let ids = codec.encodeCodes(clip)                  // Int32 (N) ids for the Chameleon baseline
/// try codec.save(to: "checkpoints/audio-codec.safetensors")
/// ```
public final class AudioCodec: Module {
    public struct Config: Codable, Equatable, Sendable {
        public var sampleRate: Int
        /// STFT size (a power of two) and hop, in samples.
        public var nFFT: Int
        public var hop: Int
        /// M, mel bins per frame.
        public var nMels: Int
        /// P, consecutive frames grouped into one patch.
        public var framesPerPatch: Int
        /// Griffin–Lim iterations used by `decode`.
        public var griffinLimIterations: Int
        /// K, the codebook size of the discrete variant.
        public var codebookSize: Int
        /// β, the commitment weight of the quantiser (no encoder here, so it only scales a logged loss).
        public var commitmentWeight: Float
        /// Update the codebook by exponential moving averages instead of Adam on the codebook loss.
        public var ema: Bool
        public var emaDecay: Float
        /// Restart codes unused for this many quantiser training steps (0 disables restarts).
        public var restartAfterSteps: Int

        public init(sampleRate: Int = 16_000, nFFT: Int = 512, hop: Int = 128, nMels: Int = 64,
                    framesPerPatch: Int = 4, griffinLimIterations: Int = 32, codebookSize: Int = 256,
                    commitmentWeight: Float = 0.25, ema: Bool = false, emaDecay: Float = 0.99,
                    restartAfterSteps: Int = 64) {
            self.sampleRate = sampleRate
            self.nFFT = nFFT
            self.hop = hop
            self.nMels = nMels
            self.framesPerPatch = framesPerPatch
            self.griffinLimIterations = griffinLimIterations
            self.codebookSize = codebookSize
            self.commitmentWeight = commitmentWeight
            self.ema = ema
            self.emaDecay = emaDecay
            self.restartAfterSteps = restartAfterSteps
        }

        /// D = P·M, the length of one patch vector.
        public var patchDim: Int { nMels * framesPerPatch }
        /// Patches per second of audio.
        public var patchesPerSecond: Double { Double(sampleRate) / Double(hop * framesPerPatch) }
    }

    /// Standard deviations are floored at this many nats, so a bin that never varies in the fitting
    /// data (e.g. always at the log floor) does not blow up small differences.
    public static let minStd: Float = 0.1

    public let config: Config
    /// μ, per-mel-bin mean of the log-mel values, (M). Zero until `fit`.
    public let mean: Tensor
    /// σ, per-mel-bin standard deviation (floored at `minStd`), (M). One until `fit`.
    public let std: Tensor
    /// The codebook over patch vectors, (K, D); meaningful once `quantizerTrained`.
    public let quantizer: VectorQuantizer
    /// Log-mel frames the statistics were fitted on (0: not fitted, identity normalisation).
    public internal(set) var fittedFrames = 0
    /// True once `trainQuantizer` has run (or a checkpoint with a trained codebook was loaded).
    public internal(set) var quantizerTrained = false

    public init(_ config: Config = Config(), seed: UInt64 = 0) {
        precondition(config.nFFT > 0 && config.nFFT & (config.nFFT - 1) == 0,
                     "AudioCodec: nFFT \(config.nFFT) is not a power of two")
        precondition(config.hop > 0 && config.hop <= config.nFFT && config.nMels > 0 && config.framesPerPatch > 0,
                     "AudioCodec: hop \(config.hop), \(config.nMels) mels, \(config.framesPerPatch) frames per patch")
        self.config = config
        mean = Tensor.zeros([config.nMels])
        std = Tensor.ones([config.nMels])
        quantizer = VectorQuantizer(codes: max(config.codebookSize, 1), dim: config.patchDim,
                                    beta: config.commitmentWeight, ema: config.ema, emaDecay: config.emaDecay,
                                    restartAfterSteps: config.restartAfterSteps, rng: RNG(seed: seed))
    }

    // MARK: - Statistics

    /// The log-mel frames of `audio` (resampled to the codec's rate when needed), (F, M) frame-major.
    public func logMelFrames(_ audio: Audio) -> (frames: Int, values: [Float]) {
        let clip = audio.sampleRate == config.sampleRate ? audio : audio.resampled(to: config.sampleRate)
        let lm = Media.logMel(clip, nMels: config.nMels, nFFT: config.nFFT, hop: config.hop)
        return (lm.frames, lm.values)
    }

    /// Fits the per-bin mean and standard deviation over every frame of `clips` (in Double).
    public func fit(_ clips: [Audio]) {
        let m = config.nMels
        var sum = [Double](repeating: 0, count: m), sumSq = sum
        var frames = 0
        for clip in clips {
            let lm = logMelFrames(clip)
            for f in 0..<lm.frames {
                for b in 0..<m {
                    let v = Double(lm.values[f * m + b])
                    sum[b] += v
                    sumSq[b] += v * v
                }
            }
            frames += lm.frames
        }
        precondition(frames > 0, "AudioCodec.fit: no frames in \(clips.count) clips")
        for b in 0..<m {
            let mu = sum[b] / Double(frames)
            let variance = max(sumSq[b] / Double(frames) - mu * mu, 0)
            mean.data[b] = Float(mu)
            std.data[b] = max(Float(variance.squareRoot()), AudioCodec.minStd)
        }
        fittedFrames = frames
    }

    // MARK: - Frames ↔ patches

    /// Log-mel frames (F, M) frame-major → normalised patches (⌈F/P⌉, D), the last padded with silence.
    public func patches(fromLogMel values: [Float], frames: Int) -> Tensor {
        let (m, p) = (config.nMels, config.framesPerPatch)
        precondition(values.count == frames * m, "AudioCodec.patches: \(values.count) values for \(frames)×\(m)")
        let n = max(1, (frames + p - 1) / p)
        let out = Tensor.empty([n, p * m])      // (N·P, M) frame-major is the same memory as (N, P·M)
        let silence = log(logMelFloor)
        for f in 0..<(n * p) {
            for b in 0..<m {
                let v = f < frames ? values[f * m + b] : silence
                out.data[f * m + b] = (v - mean.data[b]) / std.data[b]
            }
        }
        return out
    }

    /// Patches (N, D) → denormalised log-mel frames (F, M) frame-major, keeping the first `frames`
    /// (default: all N·P).
    public func logMel(fromPatches patches: Tensor, frames: Int? = nil) -> [Float] {
        let (m, p) = (config.nMels, config.framesPerPatch)
        precondition(patches.rank == 2 && patches.dim(1) == p * m && patches.dtype == .float32,
                     "AudioCodec: patches must be (N, \(p * m)), got \(patches.shape)")
        let frames = frames ?? patches.dim(0) * p
        precondition(frames >= 0 && frames <= patches.dim(0) * p,
                     "AudioCodec: \(frames) frames do not fit \(patches.dim(0)) patches of \(p)")
        var out = [Float](repeating: 0, count: frames * m)
        for f in 0..<frames {
            for b in 0..<m { out[f * m + b] = patches.data[f * m + b] * std.data[b] + mean.data[b] }
        }
        return out
    }

    // MARK: - Encode / decode

    /// A waveform → its normalised log-mel patches (N, D), with the true frame and sample counts.
    public func encode(_ audio: Audio) -> AudioPatches {
        let lm = logMelFrames(audio)
        let samples = audio.sampleRate == config.sampleRate
            ? audio.samples.count
            : Int((Double(audio.samples.count) * Double(config.sampleRate) / Double(audio.sampleRate)).rounded(.up))
        return AudioPatches(values: patches(fromLogMel: lm.values, frames: lm.frames), frames: lm.frames,
                            samples: samples)
    }

    /// Patches (N, D) → a waveform at the codec's rate: denormalise, invert the mel filterbank,
    /// Griffin–Lim (`griffinLimIterations`, or `iterations`). Without `frames` all N·P frames are
    /// used; without `samples` the length is (frames − 1)·hop.
    public func decode(_ patches: Tensor, frames: Int? = nil, samples: Int? = nil, iterations: Int? = nil,
                       seed: UInt64 = 0) -> Audio {
        let frames = frames ?? patches.dim(0) * config.framesPerPatch
        let values = logMel(fromPatches: patches, frames: frames)
        let magnitude = inverseLogMel(values, frames: frames, nMels: config.nMels, nFFT: config.nFFT,
                                      sampleRate: config.sampleRate)
        return griffinLim(magnitude: magnitude, frames: frames, nFFT: config.nFFT, hop: config.hop,
                          sampleRate: config.sampleRate, iterations: iterations ?? config.griffinLimIterations,
                          length: samples, seed: seed)
    }

    /// `decode(patches.values, frames: patches.frames, samples: patches.samples)`.
    public func decode(_ patches: AudioPatches, iterations: Int? = nil, seed: UInt64 = 0) -> Audio {
        decode(patches.values, frames: patches.frames, samples: patches.samples, iterations: iterations, seed: seed)
    }

    /// decode(encode(audio)): what the continuous codec keeps of a clip.
    public func reconstruct(_ audio: Audio, iterations: Int? = nil) -> Audio {
        decode(encode(audio), iterations: iterations)
    }

    // MARK: - Discrete codes

    /// Patches (N, D) → nearest code ids, Int32 (N).
    public func codes(fromPatches patches: Tensor) -> Tensor {
        withoutGrad { quantizer.nearestCodes(patches) }
    }

    /// Code ids (N) → their code vectors, (N, D): quantised patches for `decode`.
    public func patches(fromCodes ids: Tensor) -> Tensor {
        precondition(ids.rank == 1 && ids.dtype == .int32, "AudioCodec: ids must be Int32 (N), got \(ids.shape)")
        return withoutGrad { quantizer.lookup(ids) }
    }

    /// A waveform → code ids, Int32 (N), one per patch (frames and samples as in `encode`).
    public func encodeCodes(_ audio: Audio) -> (ids: Tensor, frames: Int, samples: Int) {
        precondition(quantizerTrained, "AudioCodec.encodeCodes: the codebook is untrained (call trainQuantizer)")
        let p = encode(audio)
        return (codes(fromPatches: p.values), p.frames, p.samples)
    }

    /// Code ids (N) → a waveform, through their code vectors and `decode`.
    public func decodeCodes(_ ids: Tensor, frames: Int? = nil, samples: Int? = nil, iterations: Int? = nil) -> Audio {
        decode(patches(fromCodes: ids), frames: frames, samples: samples, iterations: iterations)
    }

    // MARK: - Checkpoints

    /// Writes the statistics, the codebook and the JSON config (metadata "config") to `path`.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        let own = ["config": json, "fitted_frames": String(fittedFrames), "quantizer_trained": String(quantizerTrained)]
        try Safetensors.write(stateDict(), metadata: metadata.merging(own) { $1 }, to: URL(fileURLWithPath: path))
    }

    /// Reads a codec written by `save(to:)`: `let codec = try AudioCodec.load(from: "audio-codec.safetensors")`.
    /// - Throws: `TokenizerCheckpointError` (or a safetensors error) naming the file.
    public static func load(from path: String) throws -> AudioCodec {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerCheckpointError(path: path, problem: "no such file (fit a codec and save it first)")
        }
        let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: path))   // its errors name the file
        guard let json = metadata["config"] else {
            throw TokenizerCheckpointError(path: path, problem: "no 'config' entry in the safetensors metadata")
        }
        let config: Config
        do { config = try JSONDecoder().decode(Config.self, from: Foundation.Data(json.utf8)) } catch {
            throw TokenizerCheckpointError(path: path, problem: "config is not an AudioCodec config: \(error)")
        }
        let codec = AudioCodec(config)
        do { try codec.load(tensors) } catch {
            throw TokenizerCheckpointError(path: path, problem: "\(error)")
        }
        codec.fittedFrames = Int(metadata["fitted_frames"] ?? "") ?? 0
        codec.quantizerTrained = metadata["quantizer_trained"] == "true"
        codec.eval()
        return codec
    }
}
