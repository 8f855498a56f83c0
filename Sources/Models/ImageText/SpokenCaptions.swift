// Speech spans of the mixed-modal tasks: utterances of a SpokenTexts source (ShapesWorld captions
// spoken by espeak-ng, or a folder's recordings) turned into a fixed number of AudioCodec patches
// (padded with silence or cut), and (for Chameleon) into codebook ids. The run's codec is fitted
// once on the first training clips and saved in the run folder, so resumes and samplers read the
// same one. Not the codec itself (Models/AudioCodec), not the utterances (Data/SpokenTexts) and
// not the document mixture (ImageCaptionPairs).
// Legend: L patches per span, P frames per patch, M mel bins, D = P·M.
import Data
import Foundation
import Media
import Training
import Tensors

public final class SpokenCaptions {
    static let fileName = "audio-codec.safetensors"
    /// Clips the per-bin statistics (and the Chameleon codebook) are fitted on.
    static let fitClips = 64
    static let quantizerClips = 256

    public let codec: AudioCodec
    /// L, patches per audio span.
    public let length: Int
    public let wordsPerMinute: Int
    /// Patches (L·D values) of training examples by pool index, spoken on first use.
    private var cache: [Int: [Float]] = [:]

    /// The run's codec (read from `run/audio-codec.safetensors`, or built from the recipe's `data.audio_*`
    /// keys, fitted on the first training utterances of `source` and saved there); with `quantized` its
    /// codebook is trained too (k-means and minibatch steps over the patches of the first clips).
    init(recipe: Recipe, run: RunDirectory, source: any SpokenTexts, quantized: Bool) throws {
        let d = recipe.data
        length = d.audioPatches
        wordsPerMinute = d.speechWPM
        let url = run.url.appendingPathComponent(Self.fileName)
        if FileManager.default.fileExists(atPath: url.path) {
            codec = try AudioCodec.load(from: url.path)
            guard !quantized || codec.quantizerTrained else {
                throw RunError.io(url.path, "the audio codec has no trained codebook; delete it to refit")
            }
            return
        }
        let config = AudioCodec.Config(sampleRate: d.audioSampleRate, nFFT: d.audioFFT, hop: d.audioHop, nMels: d.audioMels,
                                       framesPerPatch: d.audioFramesPerPatch, codebookSize: d.audioCodebook)
        codec = AudioCodec(config, seed: recipe.seed)
        let available = source.count ?? Int.max
        let clips = try (0..<min(Self.fitClips, available)).map { try speech(source, $0) }
        codec.fit(clips)
        if quantized {
            let more = try (min(Self.fitClips, available)..<min(Self.quantizerClips, available)).map { try speech(source, $0) }
            let rows = (clips + more).map { fixedPatches(codec.encode($0)) }
            let data = Tensor(rows.flatMap { $0 }, shape: [rows.count * length, config.patchDim])
            codec.trainQuantizer(onPatches: data, options: AudioQuantizerOptions(kMeansIterations: 10, steps: 100,
                                                                                  seed: recipe.seed))
        }
        try codec.save(to: url.path)
    }

    /// A codec read back from a run, with its span length and speaking rate.
    init(codec: AudioCodec, length: Int, wordsPerMinute: Int) {
        self.codec = codec; self.length = length; self.wordsPerMinute = wordsPerMinute
    }

    /// D, values per patch.
    var patchDim: Int { codec.config.patchDim }

    /// Utterance `index` of `source` at the codec's sample rate.
    public func speech(_ source: any SpokenTexts, _ index: Int) throws -> Audio {
        try source.speech(index, sampleRate: codec.config.sampleRate)
    }

    /// A clip's patches padded with silence or cut to L patches: L·D values.
    func fixedPatches(_ p: AudioPatches) -> [Float] {
        let (m, frames) = (codec.config.nMels, length * codec.config.framesPerPatch)
        var logMel = codec.logMel(fromPatches: p.values, frames: p.frames)               // (F, M)
        if p.frames >= frames {
            logMel.removeLast((p.frames - frames) * m)
        } else {
            logMel += [Float](repeating: log(logMelFloor), count: (frames - p.frames) * m)
        }
        return codec.patches(fromLogMel: logMel, frames: frames).scalars
    }

    /// A waveform as one span of patches, (1, L, D).
    public func span(_ audio: Audio) -> Tensor {
        Tensor(fixedPatches(codec.encode(audio)), shape: [1, length, patchDim])
    }

    /// Patches (L·D values each) of utterances `indices` of `source`, through the cache for the training pool.
    func patches(_ source: any SpokenTexts, _ indices: [Int], cached: Bool) throws -> [[Float]] {
        try indices.map { i in
            if cached, let hit = cache[i] { return hit }
            let values = fixedPatches(codec.encode(try speech(source, i)))
            if cached { cache[i] = values }
            return values
        }
    }

    /// Codebook ids (L each) of utterances `indices` of `source`.
    func codes(_ source: any SpokenTexts, _ indices: [Int], cached: Bool) throws -> [[Int32]] {
        try patches(source, indices, cached: cached).map { values in
            codec.codes(fromPatches: Tensor(values, shape: [length, patchDim])).intScalars
        }
    }

    /// Patches (1, L, D) or (L, D) as a spectrogram picture: time left to right, mel bins bottom to
    /// top, normalised log-mel values from −3 (dark) to 3 (bright) on a heat scale.
    public func picture(_ patches: Tensor) -> Image {
        let (m, frames) = (codec.config.nMels, length * codec.config.framesPerPatch)
        let values = patches.reshaped([frames, m]).scalars                            // (F, M) frame-major
        var pixels = [Float](repeating: 0, count: frames * m * 3)
        for f in 0..<frames {
            for b in 0..<m {
                let v = min(max((values[f * m + b] + 3) / 6, 0), 1)
                let at = ((m - 1 - b) * frames + f) * 3
                pixels[at] = min(1, 2 * v); pixels[at + 1] = max(0, 2 * v - 1); pixels[at + 2] = 0.35 * (1 - v)
            }
        }
        return Image(width: frames, height: m, channels: 3, pixels: pixels)
    }

    /// Patches (1, L, D) or (L, D) → a waveform through Griffin–Lim.
    public func waveform(_ patches: Tensor) -> Audio {
        codec.decode(patches.reshaped([length, patchDim]))
    }
}
