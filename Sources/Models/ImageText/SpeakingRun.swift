// A trained model that speaks and listens, whichever kind: a Transfusion run (speech as diffused
// audio patches) or a Chameleon run (speech as audio codes), both trained with speech documents.
// What `fusion speak`, `fusion transcribe` and `fusion eval --suite speech` start from.
// Not the models' sampling (Models) and not the scoring (SpeechEvaluation).
import Data
import Foundation
import Media
import Training
import NN
import Tensors
import Text

public struct SpeakingRun {
    /// Which family speaks: transfusion or chameleon.
    public let kind: ModelFamily
    public let spoken: SpokenCaptions
    public let imageSize: Int
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?
    /// Speech for prompt ids, patches (1, L, D).
    let speakIDs: ([Int32], RNG) -> Tensor
    /// Speech describing an image (3, H, W in [-1, 1] as a batch of one), patches (1, L, D).
    let describe: (Tensor, RNG) -> Tensor
    let makeEvaluation: (any SpokenTexts) -> SpeechEvaluation
    let tokenizer: BPETokenizer
    /// The run folder (its recipe.yaml says where its speech came from).
    let runFolder: URL

    /// The run at `path` (a run folder, a checkpoint folder or an exported model). Transfusion runs
    /// sample with `steps` and `cfg` (default: the recipe's); Chameleon runs sample audio codes at
    /// `temperature` with the recipe's CFG (or `cfg`). Throws when the run has no speech.
    public init(path: String, steps: Int? = nil, cfg: Float? = nil, temperature: Float = 1, maxTokens: Int = 48) throws {
        let saved = try SavedModel(path: path, ema: true)
        kind = try ModelFamily.saved(try saved.kind(), path: path, needs: .speech, for: "speak or transcribe")
        runFolder = saved.run
        let noSpeech = RunError.option("\(path) was trained without speech (its recipe has data.speech_fraction 0): "
                                       + "train recipes/any-to-any-shapes.yaml for a model that speaks")
        if kind == .chameleon {
            let run = try ChameleonRun(path: path)
            guard let spoken = run.spoken else { throw noSpeech }
            let options = SamplingOptions(temperature: temperature)
            let scale = cfg ?? run.config.cfg
            let (l, d) = (spoken.length, spoken.patchDim)
            (self.spoken, imageSize, tokenizer) = (spoken, run.config.imageSize, run.tokenizer)
            contextLength = run.contextLength
            func patches(_ codes: Tensor) -> Tensor { spoken.codec.patches(fromCodes: codes.reshaped([l])).reshaped([1, l, d]) }
            speakIDs = { patches(run.model.sampleSpeechCodes(prompt: $0, count: 1, options: options, cfgScale: scale, rng: $1)) }
            describe = { image, rng in
                let codes = withoutGrad { run.vq.encode(image) }.intScalars
                return patches(run.model.sampleSpeechCodes(prompt: [SpecialTokens.bos] + run.model.imageTokens(codes: codes),
                                                           count: 1, options: options, rng: rng))
            }
            makeEvaluation = {
                SpeechEvaluation(chameleon: run.model, tokenizer: run.tokenizer, spoken: spoken, heldOut: $0, options: options,
                                 cfgScale: scale, maxTokens: maxTokens)
            }
        } else {
            let run = try TransfusionRun(path: path)
            guard let spoken = run.spoken else { throw noSpeech }
            let options = try run.imageOptions(steps: steps, cfg: cfg)
            (self.spoken, imageSize, tokenizer) = (spoken, run.config.imageSize, run.tokenizer)
            contextLength = run.contextLength
            speakIDs = { run.model.sampleSpeech(prompt: $0, count: 1, options: options, rng: $1) }
            describe = { run.model.speakImage(latents: run.encode($0), count: 1, options: options, rng: $1) }
            makeEvaluation = {
                SpeechEvaluation(transfusion: run.model, tokenizer: run.tokenizer, spoken: spoken, heldOut: $0, options: options,
                                 maxTokens: maxTokens)
            }
        }
    }

    /// Throws when `text`, BOA and the speech span run past the trained context.
    public func checkSpeakable(_ text: String) throws {
        let ids = 1 + tokenizer.encode(text).count
        try ContextLengthError.check(ids + 1 + spoken.length, context: contextLength,
                                     what: "the prompt (\(ids) tokens with BOS), BOA and the \(spoken.length) speech patches",
                                     shorten: "shorten --prompt")
    }

    /// The model saying `text`: the patches it generated (1, L, D) and their waveform at the codec's rate.
    public func speak(_ text: String, rng: RNG) -> (patches: Tensor, audio: Audio) {
        let patches = speakIDs([SpecialTokens.bos] + tokenizer.encode(text), rng)
        return (patches, spoken.waveform(patches))
    }

    /// The model describing `image` (the run's size) aloud: patches (1, L, D) and waveform.
    public func describe(_ image: Image, rng: RNG) -> (patches: Tensor, audio: Audio) {
        let patches = describe(imageBatch([image]), rng)
        return (patches, spoken.waveform(patches))
    }

    /// The model's transcript of `audio` (resampled, padded with silence or cut to the span).
    public func transcribe(_ audio: Audio) -> String {
        evaluation(heldOut: ShapesSpeech(world: ShapesWorld(seed: 0))).transcribe(spoken.span(audio))
    }

    /// Speech evaluation on `heldOut`'s utterances.
    public func evaluation(heldOut: any SpokenTexts) -> SpeechEvaluation { makeEvaluation(heldOut) }

    /// The held-out utterances the run is scored on: its recipe's `data.speech` folder's held-out
    /// side, or (speech spoken by espeak-ng) the captions of the ShapesWorld of seed `shapesSeed`.
    public func heldOutSpeech(shapesSeed: UInt64) throws -> any SpokenTexts {
        let recipePath = runFolder.appendingPathComponent("recipe.yaml").path
        if FileManager.default.fileExists(atPath: recipePath) {
            let recipe = try Recipe.load(recipePath)                  // a run's broken recipe is an error, not ShapesWorld speech
            if let folder = recipe.data.speech {
                return try FolderSpeech(folder: folder, split: .heldOut, heldOut: Double(recipe.data.heldOut), skipBad: recipe.data.skipBad)
            }
        }
        return ShapesSpeech(world: ShapesWorld(seed: shapesSeed, imageSize: imageSize), wordsPerMinute: spoken.wordsPerMinute)
    }
}

extension SavedModel {
    /// The `kind` its config names ("transfusion", "chameleon", …) of the model saved at `path`.
    public static func kind(path: String) throws -> String {
        try SavedModel(path: path, ema: true).kind()
    }

    /// The `kind` its config names.
    public func kind() throws -> String {
        struct Kind: Decodable { var kind: String }
        return try config(Kind.self, what: "model") { _ in nil }.kind
    }
}
