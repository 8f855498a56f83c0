// `fusion speak` (text to speech) and `fusion transcribe` (speech to text) with a Transfusion run
// trained with speech documents. Argument parsing and files only; the work is the model's
// (TransfusionSpeech) and the run's audio codec's.
import ArgumentParser
import Foundation
import Media
import Models
import NN
import Tensors
import Text
import Training

/// The run at `checkpoint`, which must have been trained with speech documents.
func speechRun(_ checkpoint: String) throws -> (TransfusionRun, SpokenCaptions) {
    let run = try TransfusionRun(path: checkpoint)
    guard let spoken = run.spoken else {
        throw ValidationError("\(checkpoint) was trained without speech (its recipe has data.speech_fraction 0): "
                              + "train recipes/any-to-any-shapes.yaml for a model that speaks")
    }
    return (run, spoken)
}

struct Speak: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text to speech: sample an audio span after a prompt and write it as a WAV.",
        discussion: """
            Example:
              fusion speak --checkpoint runs/any-to-any-shapes --prompt "two red circles" --out speech.wav
              fusion speak --checkpoint runs/any-to-any-shapes --image shape.png --out described.wav

            With --image the model describes a PNG aloud instead (image → speech).
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The words to speak.") var prompt: String?
    @Option(help: "Describe this PNG aloud instead of a prompt (the run's image size).") var image: String?
    @Option(help: "The WAV (or FLAC) file to write.") var out = "speech.wav"
    @Option(parsing: .unconditional, help: "Diffusion steps (default: the recipe's).") var steps: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance scale (default: the recipe's).") var cfg: Float?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        try reportingErrors("speak") {
            guard (prompt == nil) != (image == nil) else { throw ValidationError("give exactly one of --prompt and --image") }
            if let prompt, prompt.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--prompt is empty") }
            let (run, spoken) = try speechRun(checkpoint)
            let options = try run.imageOptions(steps: steps, cfg: cfg)
            let patches: Tensor
            if let image {
                let size = run.config.imageSize
                let picture = try PNG.read(image).converted(channels: 3)
                guard picture.width == size && picture.height == size else {
                    throw ValidationError("\(image): \(picture.width)×\(picture.height), but the run was trained on \(size)×\(size)")
                }
                patches = run.model.speakImage(latents: run.encode(imageBatch([picture])), count: 1, options: options,
                                               rng: RNG(seed: seed))
            } else {
                patches = run.model.sampleSpeech(prompt: run.prompt(prompt!), count: 1, options: options, rng: RNG(seed: seed))
            }
            let audio = spoken.waveform(patches)
            try AudioFile.write(audio, to: out)
            print(String(format: "wrote %@ (%.2f s at %d Hz)", out, Double(audio.samples.count) / Double(audio.sampleRate),
                         audio.sampleRate))
        }
    }
}

struct Transcribe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Speech to text: the model's transcript of a WAV (or any file libsndfile reads).",
        discussion: """
            Example:
              espeak-ng -s 200 -w two.wav "two red circles"
              fusion transcribe --checkpoint runs/any-to-any-shapes --audio two.wav

            The clip is resampled to the run's rate and padded with silence or cut to the
            run's audio span (data.audio_patches, about 2.5 s by default).
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The audio file to transcribe.") var audio: String
    @Option(parsing: .unconditional, help: "Sampling temperature (0: greedy).") var temperature: Float = 0
    @Option(parsing: .unconditional, help: "Most tokens to generate.") var maxTokens = 48
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0

    func run() throws {
        try reportingErrors("transcribe") {
            try checkCount(maxTokens, flag: "--max-tokens")
            try checkTemperature(temperature)
            let (run, spoken) = try speechRun(checkpoint)
            let clip = try AudioFile.read(audio, sampleRate: spoken.codec.config.sampleRate)
            let ids = run.model.transcribe(patches: spoken.span(clip), maxTokens: maxTokens,
                                           options: SamplingOptions(temperature: temperature), rng: RNG(seed: seed))
            print(run.tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) }))
        }
    }
}
