// Speech evaluation of a Transfusion model with audio spans, on held-out spoken captions: the model
// transcribes espeak-ng's speech; speaks each caption (written through Griffin–Lim and read back,
// as a WAV would be) and is scored by the spectral distance to espeak-ng's rendering and by how
// well it transcribes its own speech. Used by eval rows and `fusion eval --suite speech`.
// Not the metrics themselves (Evaluation/SpeechMetrics).
import Data
import Evaluation
import Foundation
import Media
import Models
import NN
import Tensors
import Text

public struct SpeechEvaluation {
    let model: Transfusion
    let tokenizer: BPETokenizer
    let spoken: SpokenCaptions
    let heldOut: ShapesWorld
    let options: ImageSamplingOptions
    let maxTokens: Int

    public init(model: Transfusion, tokenizer: BPETokenizer, spoken: SpokenCaptions, heldOut: ShapesWorld,
                options: ImageSamplingOptions, maxTokens: Int) {
        self.model = model; self.tokenizer = tokenizer; self.spoken = spoken; self.heldOut = heldOut
        self.options = options; self.maxTokens = maxTokens
    }

    /// Text ids decoded to words, special ids dropped.
    public func words(_ ids: [Int32]) -> String { tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) }) }

    /// Speech generated for `text` (through the waveform), as patches (1, L, D), and the waveform.
    public func speak(_ text: String, rng: RNG) -> (patches: Tensor, audio: Audio) {
        let generated = model.sampleSpeech(prompt: [SpecialTokens.bos] + tokenizer.encode(text), count: 1,
                                           options: options, rng: rng)
        let audio = spoken.waveform(generated)
        return (spoken.span(audio), audio)
    }

    /// The model's transcript of patches (1, L, D), greedy.
    public func transcribe(_ patches: Tensor) -> String {
        words(model.transcribe(patches: patches, maxTokens: maxTokens, options: SamplingOptions(temperature: 0),
                               rng: RNG(seed: 0)))
    }

    /// Held-out captions 0..<count (the words spoken for each), clip i drawing from `RNG(0x5BEE).split(i)`;
    /// `progress` runs after each clip.
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
}

extension TransfusionTask {
    var speechEvaluation: SpeechEvaluation? {
        pairs.spoken.map {
            SpeechEvaluation(model: transfusion, tokenizer: tokenizer, spoken: $0, heldOut: heldOut, options: imageOptions,
                             maxTokens: recipe.sample.maxTokens)
        }
    }

    /// `speech_*` metrics over `count` held-out spoken captions (empty without speech documents).
    func speechEvalMetrics(count: Int) throws -> [String: Double] {
        try speechEvaluation?.report(count: count).metrics ?? [:]
    }

    /// samples/speech-step-N-K.wav: the model speaking the first two held-out spoken captions and
    /// describing held-out image 0 aloud; samples/speech-step-N.txt: what it heard in each
    /// (and in espeak-ng's speech), beside the words.
    func writeSpeechSamples(step: Int, to dir: URL, rng: RNG) throws {
        guard let eval = speechEvaluation, let spoken = pairs.spoken else { return }
        var lines: [String] = []
        for k in 0..<2 {
            let text = SpokenCaptions.text(heldOut, k)
            let own = eval.speak(text, rng: rng.split(UInt64(100 + k)))
            try AudioFile.write(own.audio, to: dir.appendingPathComponent(String(format: "speech-step-%08d-%d.wav", step, k)).path)
            let reference = try spoken.patches(heldOut, [k], cached: false)[0]
            lines.append("speech-\(k): \"\(text)\" → model hears its speech as \"\(eval.transcribe(own.patches))\", "
                         + "espeak-ng's as \"\(eval.transcribe(Tensor(reference, shape: [1, spoken.length, spoken.patchDim])))\"")
        }
        let described = transfusion.speakImage(latents: latents(heldOut, [0], cached: false), count: 1, options: imageOptions,
                                               rng: rng.split(102))
        let audio = spoken.waveform(described)
        try AudioFile.write(audio, to: dir.appendingPathComponent(String(format: "speech-step-%08d-2.wav", step)).path)
        lines.append("speech-2 (held-out image 0, truth \"\(SpokenCaptions.text(heldOut, 0))\"): model hears "
                     + "\"\(eval.transcribe(spoken.span(audio)))\"")
        try atomicWrite(Foundation.Data((lines.joined(separator: "\n") + "\n").utf8),
                        to: dir.appendingPathComponent(String(format: "speech-step-%08d.txt", step)))
    }
}
