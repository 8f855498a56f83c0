// Speech evaluation of a model with audio spans (Transfusion: continuous patches; Chameleon: audio
// codes), on held-out spoken captions: the model transcribes espeak-ng's speech; speaks each
// caption (written through Griffin–Lim and read back, as a WAV would be) and is scored by the
// spectral distance to espeak-ng's rendering and by how well it transcribes its own speech. Used by
// eval rows, sample files and `fusion eval --suite speech`. Not the metrics (Evaluation/SpeechMetrics).
// Legend: L patches per audio span, D values per patch.
import Data
import Evaluation
import Foundation
import Media
import Models
import NN
import Tensors
import Text

public struct SpeechEvaluation {
    let spoken: SpokenCaptions
    let heldOut: ShapesWorld
    let tokenizer: BPETokenizer
    /// The model's speech for prompt ids (BOS + words), as patches (1, L, D).
    let speakIDs: ([Int32], RNG) -> Tensor
    /// The model's transcript ids of patches (1, L, D), greedy.
    let transcribeIDs: (Tensor) -> [Int32]

    /// A Transfusion model's speech: the diffusion sampler of `options` over audio patches.
    public init(transfusion model: Transfusion, tokenizer: BPETokenizer, spoken: SpokenCaptions, heldOut: ShapesWorld,
                options: ImageSamplingOptions, maxTokens: Int) {
        self.spoken = spoken; self.heldOut = heldOut; self.tokenizer = tokenizer
        speakIDs = { model.sampleSpeech(prompt: $0, count: 1, options: options, rng: $1) }
        transcribeIDs = {
            model.transcribe(patches: $0, maxTokens: maxTokens, options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
        }
    }

    /// A Chameleon model's speech: audio codes sampled with `options` and CFG `cfgScale`, decoded
    /// through the codec's codebook; transcripts read the nearest codes of the patches.
    public init(chameleon model: Chameleon, tokenizer: BPETokenizer, spoken: SpokenCaptions, heldOut: ShapesWorld,
                options: SamplingOptions, cfgScale: Float, maxTokens: Int) {
        self.spoken = spoken; self.heldOut = heldOut; self.tokenizer = tokenizer
        let (l, d) = (spoken.length, spoken.patchDim)
        speakIDs = { prompt, rng in
            let codes = model.sampleSpeechCodes(prompt: prompt, count: 1, options: options, cfgScale: cfgScale, rng: rng)
            return spoken.codec.patches(fromCodes: codes.reshaped([l])).reshaped([1, l, d])
        }
        transcribeIDs = {
            model.transcribe(codes: spoken.codec.codes(fromPatches: $0.reshaped([l, d])).intScalars, maxTokens: maxTokens,
                             options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
        }
    }

    /// Speech generated for `text`, as the waveform and its patches read back (1, L, D).
    public func speak(_ text: String, rng: RNG) -> (patches: Tensor, audio: Audio) {
        let audio = spoken.waveform(speakIDs([SpecialTokens.bos] + tokenizer.encode(text), rng))
        return (spoken.span(audio), audio)
    }

    /// The model's transcript of patches (1, L, D).
    public func transcribe(_ patches: Tensor) -> String {
        tokenizer.decode(transcribeIDs(patches).filter { !SpecialTokens.isSpecial($0) })
    }

    /// Held-out captions 0..<count (the words spoken for each), clip i drawing from
    /// `RNG(0x5BEE).split(i)`; `progress` runs after each clip.
    public func report(count: Int, progress: (Int) -> Void = { _ in }) throws -> SpeechEvalReport {
        precondition(count > 0, "SpeechEvaluation: count must be positive")
        let base = RNG(seed: 0x5BEE)
        let references = try spoken.patches(heldOut, Array(0...count), cached: false)
        let items = (0..<count).map { i -> SpeechEvalItem in
            let text = SpokenCaptions.text(heldOut, i)
            let reference = Tensor(references[i], shape: [1, spoken.length, spoken.patchDim])
            let own = speak(text, rng: base.split(UInt64(i)))
            let item = SpeechEvalItem(text: text, transcript: transcribe(reference), selfTranscript: transcribe(own.patches),
                                      distance: spectralDistance(own.patches.scalars, references[i]),
                                      baselineDistance: spectralDistance(references[i + 1], references[i]))
            progress(i + 1)
            return item
        }
        return SpeechEvalReport(items: items)
    }

    /// samples/speech-step-N-K.wav: the model speaking held-out spoken captions 0 and 1, and
    /// (`describe`, patches (1, L, D) for held-out image 0) describing an image aloud;
    /// samples/speech-step-N.txt: what the model hears in each, and in espeak-ng's speech;
    /// samples/speech-step-N.png: the spectrograms, each above espeak-ng's for the same words.
    func writeSamples(step: Int, to dir: URL, rng: RNG, describe: (RNG) throws -> Tensor) throws {
        func file(_ k: Int) -> String { dir.appendingPathComponent(String(format: "speech-step-%08d-%d.wav", step, k)).path }
        var lines: [String] = [], pictures: [Image] = []
        let shape = [1, spoken.length, spoken.patchDim]
        let references = try spoken.patches(heldOut, [0, 1], cached: false).map { Tensor($0, shape: shape) }
        for k in 0..<2 {
            let text = SpokenCaptions.text(heldOut, k)
            let own = speak(text, rng: rng.split(UInt64(100 + k)))
            try AudioFile.write(own.audio, to: file(k))
            lines.append("speech-\(k): \"\(text)\" → the model hears its speech as \"\(transcribe(own.patches))\", "
                         + "espeak-ng's as \"\(transcribe(references[k]))\"")
            pictures += [spoken.picture(own.patches), spoken.picture(references[k])]
        }
        let audio = spoken.waveform(try describe(rng.split(102)))
        try AudioFile.write(audio, to: file(2))
        let described = spoken.span(audio)
        lines.append("speech-2 (held-out image 0, whose words are \"\(SpokenCaptions.text(heldOut, 0))\"): the model hears "
                     + "\"\(transcribe(described))\"")
        pictures += [spoken.picture(described), spoken.picture(references[0])]
        try atomicWrite(Foundation.Data((lines.joined(separator: "\n") + "\n").utf8),
                        to: dir.appendingPathComponent(String(format: "speech-step-%08d.txt", step)))
        try PNG.write(Image.grid(pictures.map { $0.upscaled(3) }, columns: 1, padding: 3, background: 1),
                      to: dir.appendingPathComponent(String(format: "speech-step-%08d.png", step)).path)
    }
}

extension TransfusionTask {
    var speechEvaluation: SpeechEvaluation? {
        pairs.spoken.map {
            SpeechEvaluation(transfusion: transfusion, tokenizer: tokenizer, spoken: $0, heldOut: heldOutShapes,
                             options: imageOptions, maxTokens: recipe.sample.maxTokens)
        }
    }

    /// `speech_*` metrics over `count` held-out spoken captions (empty without speech documents).
    func speechEvalMetrics(count: Int) throws -> [String: Double] {
        try speechEvaluation?.report(count: count).metrics ?? [:]
    }

    /// Speech sample files (see ``SpeechEvaluation/writeSamples``), for runs with speech documents.
    func writeSpeechSamples(step: Int, to dir: URL, rng: RNG) throws {
        try speechEvaluation?.writeSamples(step: step, to: dir, rng: rng) { r in
            transfusion.speakImage(latents: try latents(heldOut, [0], cached: false), count: 1, options: imageOptions, rng: r)
        }
    }
}
