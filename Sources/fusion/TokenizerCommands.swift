// `fusion vae reconstruct | eval | export` and `fusion vq|msvq reconstruct | encode | eval | export`:
// run a trained image tokenizer (a tokenizer.safetensors file) on one PNG, measure it on held-out
// ShapesWorld, or write a float16 copy. Argument parsing and file handling only.
import ArgumentParser
import Foundation
import Media
import Models
import NN
import Tensors
import Training

struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Use a trained ImageVAE (continuous latents).",
        subcommands: [Reconstruct.self, Eval.self, Export.self])

    struct Reconstruct: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode a PNG to VAE latents and decode it back.",
            discussion: """
                Example:
                  fusion data shapes --out data/shapes --count 4
                  fusion vae reconstruct --checkpoint checkpoints/vae-shapes.safetensors \\
                    --image data/shapes/000000.png --out recon.png
                """)
        @OptionGroup var io: ReconstructOptions
        func run() throws {
            try reportingErrors("vae reconstruct") {
                let vae = try ImageVAE.load(from: io.checkpoint)
                let x = try readImage(io.image, multipleOf: vae.config.downsample)
                let z = withoutGrad { vae.encode(x) }                          // (1, L, h, w)
                print("latents \(z.shape.dropFirst().map(String.init).joined(separator: "×")) "
                      + String(format: "(latent scale %.4f)", vae.latentScale))
                try writeReconstruction(withoutGrad { vae.decode(z) }, of: x, to: io.out)
            }
        }
    }
}

extension VAECommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Held-out PSNR of a VAE on ShapesWorld (the images a recipe's eval_psnr uses).",
            discussion: "Example:\n  fusion vae eval --checkpoint checkpoints/vae-shapes.safetensors")
        @OptionGroup var options: EvalOptions
        func run() throws {
            try reportingErrors("vae eval") {
                let vae = try ImageVAE.load(from: options.checkpoint)
                try options.evaluate(vae, downsample: vae.config.downsample)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a float16 copy of a VAE file (half the size; how checkpoints/ ships them).",
            discussion: """
                Example:
                  fusion vae export --checkpoint runs/vae-shapes/tokenizer.safetensors \\
                    --out checkpoints/vae-shapes.safetensors
                """)
        @OptionGroup var options: ExportOptions
        func run() throws {
            try reportingErrors("vae export") { try options.export(try ImageVAE.load(from: options.checkpoint)) }
        }
    }
}

struct VQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vq",
        abstract: "Use a trained VQTokenizer (discrete codes).",
        subcommands: [Reconstruct.self, Encode.self, Eval.self, Export.self])

    struct Reconstruct: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode a PNG to code ids and decode them back.",
            discussion: """
                Example:
                  fusion data shapes --out data/shapes --count 4
                  fusion vq reconstruct --checkpoint checkpoints/vq-shapes.safetensors \\
                    --image data/shapes/000000.png --out recon.png
                """)
        @OptionGroup var io: ReconstructOptions
        func run() throws {
            try reportingErrors("vq reconstruct") {
                let vq = try VQTokenizer.load(from: io.checkpoint)
                let x = try readImage(io.image, multipleOf: vq.config.downsample)
                let ids = vq.encode(x)                                         // (1, h, w)
                let usage = CodebookUsage(ids: ids, codebookSize: vq.config.codebookSize)
                print("codes \(ids.dim(1))×\(ids.dim(2)), \(usage.used) distinct of \(vq.config.codebookSize)")
                try writeReconstruction(withoutGrad { vq.decode(ids) }, of: x, to: io.out)
            }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the grid of code ids of a PNG (one row of the grid per line).",
            discussion: """
                Example:
                  fusion vq encode --checkpoint checkpoints/vq-shapes.safetensors \\
                    --image data/shapes/000000.png
                """)
        @Option(help: "Tokenizer file (safetensors written by a vq recipe).") var checkpoint: String
        @Option(help: "Input PNG (sides a multiple of the tokenizer's downsampling).") var image: String
        func run() throws {
            try reportingErrors("vq encode") {
                let vq = try VQTokenizer.load(from: checkpoint)
                let ids = vq.encode(try readImage(image, multipleOf: vq.config.downsample))   // (1, h, w)
                printCodeGrid(ids, codebookSize: vq.config.codebookSize)
            }
        }
    }
}

extension VQCommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Held-out PSNR, code usage and perplexity of a VQ tokenizer on ShapesWorld.",
            discussion: "Example:\n  fusion vq eval --checkpoint checkpoints/vq-shapes.safetensors")
        @OptionGroup var options: EvalOptions
        func run() throws {
            try reportingErrors("vq eval") {
                let vq = try VQTokenizer.load(from: options.checkpoint)
                try options.evaluate(vq, downsample: vq.config.downsample)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a float16 copy of a VQ tokenizer file (half the size; how checkpoints/ ships them).",
            discussion: """
                Example:
                  fusion vq export --checkpoint runs/vq-shapes/tokenizer.safetensors \\
                    --out checkpoints/vq-shapes.safetensors
                """)
        @OptionGroup var options: ExportOptions
        func run() throws {
            try reportingErrors("vq export") { try options.export(try VQTokenizer.load(from: options.checkpoint)) }
        }
    }
}

struct MSVQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msvq",
        abstract: "Use a trained MultiScaleVQTokenizer (VAR's code pyramids).",
        subcommands: [Reconstruct.self, Encode.self, Eval.self, Export.self])

    struct Reconstruct: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encode a PNG to its code pyramid and decode it back, also from the coarser scales alone.",
            discussion: """
                --coarse writes one reconstruction per number of scales (1 scale, 2, …, all), left to
                right: the residual pyramid refining the image.

                Example:
                  fusion data shapes --out data/shapes --count 4
                  fusion msvq reconstruct --checkpoint runs/msvq-shapes/tokenizer.safetensors \\
                    --image data/shapes/000000.png --out recon.png --coarse coarse.png
                """)
        @OptionGroup var io: ReconstructOptions
        @Option(help: "Also write a row of the reconstructions from the first 1, 2, … scales here.") var coarse: String?
        func run() throws {
            try reportingErrors("msvq reconstruct") {
                let msvq = try MultiScaleVQTokenizer.load(from: io.checkpoint)
                let x = try readImage(io.image, multipleOf: msvq.config.base.downsample)
                let maps = msvq.encode(x)
                print("code maps " + maps.map { "\($0.dim(1))×\($0.dim(2))" }.joined(separator: ", ")
                      + " (\(msvq.config.tokensPerImage) codes)")
                try writeReconstruction(withoutGrad { msvq.decode(maps) }, of: x, to: io.out)
                if let coarse {
                    let row = (1...maps.count).map { k in Image(chw: withoutGrad { msvq.decode(maps.prefix(k)) }.clamped(-1, 1)) }
                    try PNG.write(Image.grid(row, columns: row.count, padding: 2, background: 0.5), to: coarse)
                    print("wrote \(coarse): reconstructions from the first 1 … \(maps.count) scales")
                }
            }
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each scale's grid of code ids of a PNG, coarsest first.",
            discussion: """
                Example:
                  fusion msvq encode --checkpoint runs/msvq-shapes/tokenizer.safetensors \\
                    --image data/shapes/000000.png
                """)
        @Option(help: "Tokenizer file (safetensors written by an msvq recipe).") var checkpoint: String
        @Option(help: "Input PNG (sides a multiple of the tokenizer's downsampling).") var image: String
        func run() throws {
            try reportingErrors("msvq encode") {
                let msvq = try MultiScaleVQTokenizer.load(from: checkpoint)
                for map in msvq.encode(try readImage(image, multipleOf: msvq.config.base.downsample)) {
                    print("scale \(map.dim(1))×\(map.dim(2)):")
                    printCodeGrid(map, codebookSize: msvq.config.base.codebookSize)
                }
            }
        }
    }

    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Held-out PSNR, code usage and perplexity (over every scale's codes) of a multi-scale VQ tokenizer.",
            discussion: "Example:\n  fusion msvq eval --checkpoint runs/msvq-shapes/tokenizer.safetensors")
        @OptionGroup var options: EvalOptions
        func run() throws {
            try reportingErrors("msvq eval") {
                let msvq = try MultiScaleVQTokenizer.load(from: options.checkpoint)
                try options.evaluate(msvq, downsample: msvq.config.base.downsample)
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a float16 copy of a multi-scale VQ tokenizer file.",
            discussion: """
                Example:
                  fusion msvq export --checkpoint runs/msvq-shapes/tokenizer.safetensors \\
                    --out checkpoints/msvq-shapes.safetensors
                """)
        @OptionGroup var options: ExportOptions
        func run() throws {
            try reportingErrors("msvq export") { try options.export(try MultiScaleVQTokenizer.load(from: options.checkpoint)) }
        }
    }
}

struct EvalOptions: ParsableArguments {
    @Option(help: "Tokenizer file (safetensors written by a vae, vq or msvq recipe).") var checkpoint: String
    @Option(parsing: .unconditional, help: "Held-out images.") var images = 256
    @Option(parsing: .unconditional, help: "The recipe seed whose held-out world to use.") var seed: UInt64 = 0
    @Option(parsing: .unconditional, help: "Image size (a multiple of the downsampling, at least 24).") var size = 32

    func evaluate<M: ImageTokenizer>(_ model: M, downsample: Int) throws {
        guard images > 0, size >= 24 else { throw ValidationError("--images must be positive and --size at least 24") }
        guard size % downsample == 0 else {
            throw ValidationError("--size must be a multiple of the tokenizer's downsampling \(downsample) (e.g. 32), got \(size)")
        }
        let heldOut = ImageTokenizerTask.shapesHeldOut(seed: seed, count: images, imageSize: size)
        print("\(checkpoint): \(evaluateImageTokenizer(model, heldOut: imageBatch(heldOut)))")
    }
}

struct ExportOptions: ParsableArguments {
    @Option(help: "Tokenizer file to read.") var checkpoint: String
    @Option(help: "Output safetensors file (float16 weights, same config).") var out: String

    func export<M: ImageTokenizer>(_ model: M) throws {
        try model.save(to: out, metadata: ["exported_from": checkpoint], dtype: .f16)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print(String(format: "wrote %@ (%.2f MB, float16)", out, Double(bytes) / 1e6))
    }
}

struct ReconstructOptions: ParsableArguments {
    @Option(help: "Tokenizer file (safetensors written by a vae/vq recipe).") var checkpoint: String
    @Option(help: "Input PNG (sides a multiple of the tokenizer's downsampling).") var image: String
    @Option(help: "Output PNG for the reconstruction.") var out: String
}

/// Prints one image's code ids (1, h, w), a grid row per line, right-aligned to the widest id.
func printCodeGrid(_ ids: Tensor, codebookSize: Int) {
    let (h, w) = (ids.dim(1), ids.dim(2)), values = ids.intScalars
    let width = String(codebookSize - 1).count
    for r in 0..<h {
        print((0..<w).map { c in
            let s = String(values[r * w + c])
            return String(repeating: " ", count: width - s.count) + s
        }.joined(separator: " "))
    }
}

/// One image as (1, 3, H, W) in [-1, 1]; errors name the file.
func readImage(_ path: String, multipleOf f: Int) throws -> Tensor {
    let image = try PNG.read(path).converted(channels: 3)
    guard image.width % f == 0 && image.height % f == 0 else {
        throw ValidationError("\(path): \(image.width)×\(image.height) is not a multiple of the tokenizer's "
                              + "downsampling \(f) (ShapesWorld images are 32×32)")
    }
    return imageBatch([image])
}

/// Writes a decoded (1, 3, H, W) image and prints its PSNR against the input.
func writeReconstruction(_ decoded: Tensor, of x: Tensor, to path: String) throws {
    let clamped = decoded.scalars.map { (min(max($0, -1), 1) + 1) / 2 }
    let db = psnr(clamped, x.scalars.map { ($0 + 1) / 2 }, images: 1)[0]
    try PNG.write(Image(chw: decoded), to: path)
    print(String(format: "wrote %@ (PSNR %.2f dB against the input)", path, db))
}

/// Runs `body`, printing any error as "fusion NAME: error: …" and exiting with failure.
/// Runs a subcommand's body; an error is printed as one line, `fusion NAME: error: …`, and exit 1.
/// `--precision` for the commands that run a model.
struct PrecisionOption: ParsableArguments {
    @Option(help: "Matrix products in fp32, or bf16 (CPUs with AVX512-BF16: faster, within bf16 rounding).")
    var precision: MatmulPrecision = .fp32
}

extension MatmulPrecision: ExpressibleByArgument {}

/// `reportingErrors` with every matrix product of `body` in the `--precision` chosen.
func reportingErrors(_ name: String, in compute: PrecisionOption, _ body: () throws -> Void) throws {
    try reportingErrors(name) {
        guard compute.precision.isAvailable else {
            throw ValidationError("--precision \(compute.precision.rawValue) needs a CPU with AVX512-BF16, and this one has none (use fp32)")
        }
        try MatmulPrecision.with(compute.precision, body)
    }
}

func reportingErrors(_ name: String, _ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write(Foundation.Data("fusion \(name): error: \(describe(error))\n".utf8))
        throw ExitCode.failure
    }
}

/// An error as one line. Foundation's file errors become "PATH: reason" instead of their NSError dump.
func describe(_ error: Error) -> String {
    let ns = error as NSError
    guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return "\(error)" }
    let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
    // "The operation could not be completed. The file doesn’t exist." → "The file doesn’t exist."
    var reason = ns.localizedDescription.replacingOccurrences(of: "The operation could not be completed. ", with: "")
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(underlying.code)))
    } else if ns.domain == NSPOSIXErrorDomain {
        reason = String(cString: strerror(Int32(ns.code)))
    }
    return path.map { "\($0): \(reason)" } ?? reason
}
