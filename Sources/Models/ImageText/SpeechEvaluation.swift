// Speech evaluation of a model with audio spans (Transfusion: continuous patches; Chameleon: audio
// codes), on held-out utterances (ShapesWorld captions spoken by espeak-ng, or a folder's held-out
// recordings): the model transcribes the reference speech; speaks each transcript (written through
// Griffin–Lim and read back, as a WAV would be) and is scored by the spectral distance to the
// reference and by how well it transcribes its own speech. Used by eval rows, sample files and
// `fusion eval --suite speech`. Not the metrics (Evaluation/SpeechMetrics).
// Legend: L patches per audio span, D values per patch.
import Data
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

public struct SpeechEvaluation {
    let spoken: SpokenCaptions
    let heldOut: any SpokenTexts
    let tokenizer: BPETokenizer
    /// The model's speech for prompt ids (BOS + words), as patches (1, L, D).
    let speakIDs: ([Int32], RNG) -> Tensor
    /// The model's transcript ids of patches (1, L, D), greedy.
    let transcribeIDs: (Tensor) -> [Int32]

    /// A Transfusion model's speech: the diffusion sampler of `options` over audio patches.
    public init(transfusion model: Transfusion, tokenizer: BPETokenizer, spoken: SpokenCaptions, heldOut: any SpokenTexts,
                options: ImageSamplingOptions, maxTokens: Int) {
        self.spoken = spoken; self.heldOut = heldOut; self.tokenizer = tokenizer
        speakIDs = { model.sampleSpeech(prompt: $0, count: 1, options: options, rng: $1) }
        transcribeIDs = {
            model.transcribe(patches: $0, maxTokens: maxTokens, options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
        }
    }

    /// A Chameleon model's speech: audio codes sampled with `options` and CFG `cfgScale`, decoded
    /// through the codec's codebook; transcripts read the nearest codes of the patches.
    public init(chameleon model: Chameleon, tokenizer: BPETokenizer, spoken: SpokenCaptions, heldOut: any SpokenTexts,
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

    /// How many held-out utterances a report of `count` scores: `count`, or all but one of a
    /// folder's fewer recordings (each clip's baseline distance is to the next clip).
    public func scored(_ count: Int) -> Int { min(count, (heldOut.count ?? .max) - 1) }

    /// Held-out utterances 0..<``scored(_:)`` (the words spoken in each), clip i drawing from
    /// `RNG(0x5BEE).split(i)`; `progress` runs after each clip.
    /// - Throws: `RunError` when the held-out side has fewer than two recordings.
    public func report(count: Int, progress: (Int) -> Void = { _ in }) throws -> SpeechEvalReport {
        precondition(count > 0, "SpeechEvaluation: count must be positive")
        let count = scored(count)
        guard count > 0 else {
            throw RunError.option("the speech suite needs at least 2 held-out recordings (each clip is compared with the next); "
                                  + "this source holds out \(heldOut.count ?? 0): raise data.held_out or add recordings")
        }
        let base = RNG(seed: 0x5BEE)
        let references = try spoken.patches(heldOut, Array(0...count), cached: false)
        let items = (0..<count).map { i -> SpeechEvalItem in
            let text = heldOut.transcript(i)
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

    /// samples/speech-step-N-K.wav: the model speaking held-out utterances 0 and 1 (0 alone when a
    /// folder holds out one), and (`describe`, patches (1, L, D) for held-out image 0, when the run
    /// trains image → speech) describing an image aloud; samples/speech-step-N.txt: what the model
    /// hears in each, and in the reference speech; samples/speech-step-N.png: the spectrograms,
    /// each above the reference's for the same words.
    func writeSamples(step: Int, to dir: URL, rng: RNG, describe: ((RNG) throws -> Tensor)?) throws {
        func file(_ k: Int) -> String { dir.appendingPathComponent(String(format: "speech-step-%08d-%d.wav", step, k)).path }
        var lines: [String] = [], pictures: [Image] = []
        let shape = [1, spoken.length, spoken.patchDim]
        let shown = Array(0..<min(2, heldOut.count ?? 2))
        let references = try spoken.patches(heldOut, shown, cached: false).map { Tensor($0, shape: shape) }
        for k in shown {
            let text = heldOut.transcript(k)
            let own = speak(text, rng: rng.split(UInt64(100 + k)))
            try AudioFile.write(own.audio, to: file(k))
            lines.append("speech-\(k): \"\(text)\" → the model hears its speech as \"\(transcribe(own.patches))\", "
                         + "the reference's as \"\(transcribe(references[k]))\"")
            pictures += [spoken.picture(own.patches), spoken.picture(references[k])]
        }
        if let describe {
            let audio = spoken.waveform(try describe(rng.split(102)))
            try AudioFile.write(audio, to: file(2))
            let described = spoken.span(audio)
            lines.append("speech-2 (held-out image 0, whose words are \"\(heldOut.transcript(0))\"): the model hears "
                         + "\"\(transcribe(described))\"")
            pictures += [spoken.picture(described), spoken.picture(references[0])]
        }
        try atomicWrite(Foundation.Data((lines.joined(separator: "\n") + "\n").utf8),
                        to: dir.appendingPathComponent(String(format: "speech-step-%08d.txt", step)))
        try PNG.write(Image.grid(pictures.map { $0.upscaled(3) }, columns: 1, padding: 3, background: 1),
                      to: dir.appendingPathComponent(String(format: "speech-step-%08d.png", step)).path)
    }
}

extension TransfusionTask {
    var speechEvaluation: SpeechEvaluation? {
        pairs.spoken.map {
            SpeechEvaluation(transfusion: transfusion, tokenizer: tokenizer, spoken: $0, heldOut: pairs.speechSource(.heldOut),
                             options: imageOptions, maxTokens: recipe.sample.maxTokens)
        }
    }

    /// `speech_*` metrics over `count` held-out spoken captions (empty without speech documents).
    func speechEvalMetrics(count: Int) throws -> [String: Double] {
        try speechEvaluation?.report(count: count).metrics ?? [:]
    }

    /// Speech sample files (see ``SpeechEvaluation/writeSamples``), for runs with speech documents.
    func writeSpeechSamples(step: Int, to dir: URL, rng: RNG) throws {
        func describe(_ r: RNG) throws -> Tensor {
            return transfusion.speakImage(latents: try latents(heldOut, [0], cached: false), count: 1, options: imageOptions, rng: r)
        }
        try speechEvaluation?.writeSamples(step: step, to: dir, rng: rng, describe: pairs.describesImages ? describe : nil)
    }
}
