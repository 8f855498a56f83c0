// `fusion speak` (text or an image to speech) and `fusion transcribe` (speech to text) with a
// Transfusion or Chameleon run trained with speech documents. Argument parsing and files only; the
// work is SpeakingRun's (Training) and the models'.
import ArgumentParser
import Foundation
import Data
import Media
import Models
import Tensors
import Training

struct Speak: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text to speech: sample an audio span after a prompt (or an image) and write it as a WAV.",
        discussion: """
            Examples:
              fusion speak --checkpoint runs/any-to-any-shapes --prompt "two red circles" \\
                --out speech.wav --spectrogram speech.png
              fusion speak --checkpoint runs/any-to-any-shapes --image shape.png \\
                --out described.wav

            With --image the model describes a PNG aloud (image → speech). Works with
            Transfusion runs (diffusion over audio patches: --steps, --cfg) and Chameleon
            runs (audio codes: --temperature, --cfg) trained with data.speech_fraction > 0.
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The words to speak.") var prompt: String?
    @Option(help: "Describe this PNG aloud instead of a prompt (the run's image size).") var image: String?
    @Option(help: "The WAV (or FLAC) file to write.") var out = "speech.wav"
    @Option(help: "Also write the generated log-mel spectrogram as a PNG here (with --prompt: above espeak-ng's).")
    var spectrogram: String?
    @Option(parsing: .unconditional, help: "Transfusion: diffusion steps (default: the recipe's).") var steps: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance scale (default: the recipe's).") var cfg: Float?
    @Option(parsing: .unconditional, help: "Chameleon: sampling temperature of the audio codes.") var temperature: Float = 1
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("speak", in: compute) {
            guard (prompt == nil) != (image == nil) else { throw ValidationError("give exactly one of --prompt and --image") }
            if let prompt, prompt.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--prompt is empty") }
            try checkTemperature(temperature)
            let run = try SpeakingRun(path: checkpoint, steps: steps, cfg: cfg, temperature: temperature)
            if let prompt { try run.checkSpeakable(prompt) }
            let speech: (patches: Tensor, audio: Audio)
            if let image {
                let picture = try PNG.read(image).converted(channels: 3)
                guard picture.width == run.imageSize && picture.height == run.imageSize else {
                    throw ValidationError("\(image): \(picture.width)×\(picture.height), but the run was trained on "
                                          + "\(run.imageSize)×\(run.imageSize)")
                }
                speech = run.describe(picture, rng: RNG(seed: seed))
            } else {
                speech = run.speak(prompt!, rng: RNG(seed: seed))
            }
            let audio = speech.audio
            try AudioFile.write(audio, to: out)
            if let spectrogram {
                var pictures = [run.spoken.picture(speech.patches)]
                if let prompt {
                    let reference = try Speech.speak(prompt, sampleRate: run.spoken.codec.config.sampleRate,
                                                     wordsPerMinute: run.spoken.wordsPerMinute)
                    pictures.append(run.spoken.picture(run.spoken.span(reference)))
                }
                try PNG.write(Image.grid(pictures.map { $0.upscaled(3) }, columns: 1, padding: 3, background: 1), to: spectrogram)
            }
            print(String(format: "wrote %@ (%.2f s at %d Hz)", out, Double(audio.samples.count) / Double(audio.sampleRate),
                         audio.sampleRate))
        }
    }
}

struct Transcribe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Speech to text: the model's greedy transcript of a WAV (or any file libsndfile reads).",
        discussion: """
            Example:
              espeak-ng -s 200 -w two.wav "two red circles"
              fusion transcribe --checkpoint runs/any-to-any-shapes --audio two.wav

            The clip is resampled to the run's rate and padded with silence or cut to the
            run's audio span (data.audio_patches: 40 patches, 2.56 s, by default).
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The audio file to transcribe.") var audio: String

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("transcribe", in: compute) {
            let run = try SpeakingRun(path: checkpoint)
            print(run.transcribe(try AudioFile.read(audio, sampleRate: run.spoken.codec.config.sampleRate)))
        }
    }
}
