// `fusion vae reconstruct` and `fusion vq reconstruct | encode`: run a trained image tokenizer
// (a tokenizer.safetensors file) on one PNG. Argument parsing and file handling only.
import ArgumentParser
import Foundation
import Media
import Models
import Tensors

struct VAECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae",
        abstract: "Use a trained ImageVAE (continuous latents).",
        subcommands: [Reconstruct.self])

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

struct VQCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vq",
        abstract: "Use a trained VQTokenizer (discrete codes).",
        subcommands: [Reconstruct.self, Encode.self])

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
                  fusion vq encode --checkpoint checkpoints/vq-shapes.safetensors --image data/shapes/000000.png
                """)
        @Option(help: "Tokenizer file (safetensors written by a vq recipe).") var checkpoint: String
        @Option(help: "Input PNG (sides a multiple of the tokenizer's downsampling).") var image: String
        func run() throws {
            try reportingErrors("vq encode") {
                let vq = try VQTokenizer.load(from: checkpoint)
                let ids = vq.encode(try readImage(image, multipleOf: vq.config.downsample))   // (1, h, w)
                let (h, w) = (ids.dim(1), ids.dim(2)), values = ids.intScalars
                let width = String(vq.config.codebookSize - 1).count
                for r in 0..<h {
                    print((0..<w).map { c in
                        let s = String(values[r * w + c])
                        return String(repeating: " ", count: width - s.count) + s
                    }.joined(separator: " "))
                }
            }
        }
    }
}

struct ReconstructOptions: ParsableArguments {
    @Option(help: "Tokenizer file (safetensors written by a vae/vq recipe).") var checkpoint: String
    @Option(help: "Input PNG (sides a multiple of the tokenizer's downsampling).") var image: String
    @Option(help: "Output PNG for the reconstruction.") var out: String
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
func reportingErrors(_ name: String, _ body: () throws -> Void) throws {
    do { try body() } catch let e as ExitCode { throw e } catch {
        FileHandle.standardError.write("fusion \(name): error: \(error)\n".data(using: .utf8)!)
        throw ExitCode.failure
    }
}
