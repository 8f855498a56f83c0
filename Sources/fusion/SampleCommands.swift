// `fusion sample | caption | generate`: text-to-image and image-to-text from a trained Transfusion,
// Chameleon or VAR run, and mixed generation from any decoder run. Argument parsing and file output
// only; the work is ImageTextModel's and TransfusionRun's.
import ArgumentParser
import Data
import Diffusion
import Foundation
import Media
import Models
import NN
import Tensors
import Text
import Training

extension SpanSampler: ExpressibleByArgument {}

struct Sample: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Text-to-image: sample images for a caption and write them as a PNG grid.",
        discussion: """
            Examples:
              fusion sample --checkpoint runs/transfusion-shapes \\
                --prompt "two red circles on the left" --num 4 --steps 50 --cfg 3 \\
                --seed 1 --out grid.png
              fusion sample --checkpoint runs/compare-chameleon-tiny \\
                --prompt "a green triangle" --cfg 1 --top-k 64

            Transfusion runs diffuse their images (--steps, --sampler, --clip); Chameleon
            runs sample image codes (--temperature, default 1; --top-k, default the
            recipe's), VAR runs the same a scale at a time. --cfg guides all three.
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The caption.") var prompt: String
    @Option(parsing: .unconditional, help: "Number of images.") var num = 4
    @Option(parsing: .unconditional, help: "Diffusion steps (default: the recipe's).") var steps: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance scale (1: none; default: the recipe's).") var cfg: Float?
    @Option(help: "Sampler: ddpm, ddim or euler (flow runs).") var sampler: SpanSampler?
    @Option(parsing: .unconditional, help: "Clamp x̂0 to ±this in DDPM/DDIM steps (0: off; default: the recipe's).") var clip: Float?
    @Option(parsing: .unconditional, help: "Chameleon and VAR runs: temperature of the image codes (default 1).") var temperature: Float?
    @Option(parsing: .unconditional, help: "Chameleon and VAR runs: keep the k most likely codes (0: all; default: the recipe's).") var topK: Int?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output PNG.") var out = "samples.png"
    @Option(parsing: .unconditional, help: "Upscale each image this many times (nearest neighbour) in the grid.") var scale = 4
    @Flag(help: "Use the raw weights even when the run kept EMA weights.") var noEMA = false

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("sample", in: compute) {
            guard num > 0 else { throw ValidationError("--num must be positive") }
            guard (1...16).contains(scale) else { throw ValidationError("--scale must be 1…16") }
            let model = try ImageTextModel.load(path: checkpoint, ema: !noEMA, cfg: cfg, sampler: sampler, steps: steps, clipX0: clip,
                                                temperature: temperature, topK: topK)
            let ids = model.prompt(prompt), positions = model.imagePositions
            try model.checkContext(ids.count + 1 + positions, "the prompt (\(ids.count) tokens with BOS), BOI and the image's \(positions) positions",
                                   shorten: "shorten --prompt")
            let plan = try model.planSampling(prompt: ids, count: num, flag: "--num")
            let start = Date()
            let images = model.images(prompt: ids, count: num, rng: RNG(seed: seed))
            let seconds = Date().timeIntervalSince(start)                // sampling and decoding, not the PNG
            try writeGrid(images, to: out, scale: scale)
            print(String(format: "wrote %@: %d images for \"%@\" (%@ run: %@) in %.2f s (%.1f ms an image); memory peak %@ (planned %@)",
                         out, num, prompt, model.kind.rawValue, model.sampling, seconds, 1000 * seconds / Double(num),
                         MemoryPlan.format(SystemMemory.peakResidentBytes), MemoryPlan.format(plan.total)))
        }
    }
}

struct Caption: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Image-to-text: caption a PNG with a trained Transfusion, Chameleon or VAR run.",
        discussion: """
            Example:
              fusion data shapes --out data/shapes --count 8
              fusion caption --checkpoint runs/transfusion-shapes \\
                --image data/shapes/000000.png
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "Input PNG (the run's image size, e.g. 32×32).") var image: String
    @Option(parsing: .unconditional, help: "Sampling temperature (0: greedy).") var temperature: Float = 0
    @Option(parsing: .unconditional, help: "Most tokens to generate.") var maxTokens = 48
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("caption", in: compute) {
            try checkCount(maxTokens, flag: "--max-tokens")
            try checkTemperature(temperature)
            let model = try ImageTextModel.load(path: checkpoint)
            let size = model.imageSize
            let picture = try PNG.read(image).converted(channels: 3)
            guard picture.width == size && picture.height == size else {
                throw ValidationError("\(image): \(picture.width)×\(picture.height), but the run was trained on \(size)×\(size)")
            }
            // BOS BOI, the image's positions and EOI come first; the caption gets what the context leaves.
            var maxTokens = maxTokens
            let prefix = 3 + model.imagePositions
            if let context = model.contextLength, prefix + maxTokens > context {
                try model.checkContext(prefix + 1, "the image (BOS, BOI, \(model.imagePositions) positions, EOI)",
                                       shorten: "this model cannot caption at all")
                warn("caption", "--max-tokens \(maxTokens) runs past the \(context) positions the model was trained on "
                     + "(the image takes \(prefix)): captions stop at \(context - prefix) tokens")
                maxTokens = context - prefix
            }
            print(model.caption(picture, maxTokens: maxTokens, options: SamplingOptions(temperature: temperature), rng: RNG(seed: seed)))
        }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a text prompt; images (BOI) and speech (BOA) the model opens are sampled and written as PNG/WAV.",
        discussion: """
            Examples:
              fusion generate --checkpoint runs/transfusion-shapes --prompt "a red" \\
                --out generated
              fusion generate --checkpoint runs/quickstart --prompt "a red" --temperature 0

            lm runs continue text; Transfusion runs diffuse the images and speech they open
            (--steps, --cfg); Chameleon runs sample their codes (--cfg; temperature 1 and
            the recipe's top-k for codes, --temperature and --top-k for text); VAR runs
            sample an image's codes a scale at a time the same way, one image a text.
            Spans of a registered modality (ModalitySpec), which have no picture or sound,
            are written as NumPy arrays: PREFIX-NAME-0.npy (values, or codes).
            """)

    @Option(help: "A run folder (newest checkpoint), one checkpoint folder, or an exported model.") var checkpoint: String
    @Option(help: "The text to continue.") var prompt: String
    @Option(parsing: .unconditional, help: "Most text tokens to generate.") var maxTokens = 64
    @Option(parsing: .unconditional, help: "Sampling temperature (0: greedy).") var temperature: Float = 0.8
    @Option(parsing: .unconditional, help: "Keep the k most likely tokens (0: all).") var topK = 0
    @Option(parsing: .unconditional, help: "Nucleus sampling mass (1: off).") var topP: Float = 1
    @Option(parsing: .unconditional, help: "Diffusion steps for images (default: the recipe's).") var steps: Int?
    @Option(parsing: .unconditional, help: "Classifier-free guidance scale for images (default: the recipe's).") var cfg: Float?
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Prefix of the files of generated images, speech and other spans (PREFIX-0.png, PREFIX-0.wav, PREFIX-NAME-0.npy, …).") var out = "generated"

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("generate", in: compute) {
            try checkCount(maxTokens, flag: "--max-tokens")
            try checkTemperature(temperature)
            guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0 (0: all tokens), got \(topK)") }
            guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1] (1: off), got \(topP)") }
            let generator = try TextGenerator.load(path: checkpoint, steps: steps, cfg: cfg)
            let ids = generator.prompt(prompt)
            try generator.checkContext(ids.count + 1, "the prompt (\(ids.count) tokens with BOS) and one generated token",
                                       shorten: "shorten --prompt")
            if let context = generator.contextLength, ids.count + maxTokens > context {
                warn("generate", "--max-tokens \(maxTokens) runs past the \(context) positions the model was trained on "
                     + "(the prompt takes \(ids.count)): generation stops there")
            }
            let pieces = generator.generate(prompt: ids, maxTokens: maxTokens,
                                            options: SamplingOptions(temperature: temperature, topK: topK, topP: topP),
                                            rng: RNG(seed: seed))
            var text = prompt, images = 0, sounds = 0, spans: [String: Int] = [:]
            for piece in pieces {
                switch piece {
                case .text(let words):
                    text += words
                case .image(let image):
                    let path = "\(out)-\(images).png"
                    try PNG.write(Image(chw: image), to: path)
                    text += " [image: \(path)] "
                    images += 1
                case .speech(let audio):
                    let path = "\(out)-\(sounds).wav"
                    try AudioFile.write(audio, to: path)
                    text += " [speech: \(path)] "
                    sounds += 1
                case .span(let modality, let values):
                    // A registered modality: its values as NumPy reads them (numpy.load).
                    let k = spans[modality.name, default: 0], path = "\(out)-\(modality.name)-\(k).npy"
                    if values.dtype == .int32 {
                        try NPY.write(values.intScalars, shape: values.shape, to: path)
                    } else {
                        try NPY.write(values.scalars, shape: values.shape, to: path)
                    }
                    text += " [\(modality.name): \(path)] "
                    spans[modality.name] = k + 1
                }
            }
            print(text)
        }
    }
}

/// A warning line on standard error: the command goes on.
func warn(_ command: String, _ message: String) {
    FileHandle.standardError.write(Foundation.Data("fusion \(command): warning: \(message)\n".utf8))
}

/// Throws unless `temperature` is a finite number ≥ 0.
func checkTemperature(_ temperature: Float) throws {
    guard temperature.isFinite && temperature >= 0 else {
        throw ValidationError("--temperature must be ≥ 0 (0: greedy), got \(temperature)")
    }
}

/// Writes images (n, 3, H, W) in [-1, 1] as a grid of up to 8 columns.
func writeGrid(_ images: Tensor, to path: String, scale: Int = 1) throws {
    let n = images.dim(0)
    let cells = (0..<n).map { Image(chw: images.slice(axis: 0, $0..<($0 + 1))).upscaled(scale) }
    try PNG.write(Image.grid(cells, columns: min(n, 8), padding: 2, background: 1), to: path)
}
