// `fusion edit`: edit a PNG with a Transfusion run, by instruction (a run fine-tuned on edit
// triplets, e.g. recipes/edit-shapes.yaml) or training-free by inversion (any text-to-image run),
// or with a Chameleon run by instruction (recipes/edit-chameleon-shapes.yaml).
// Argument parsing and file output only; the work is ImageEditor's (Training).
import ArgumentParser
import Foundation
import Media
import Models
import Tensors
import Training

extension EditMethod: ExpressibleByArgument {}

struct Edit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Edit an image: by instruction (an edit fine-tuned run) or by inversion (any text-to-image run).",
        discussion: """
            Examples:
              fusion edit --checkpoint runs/edit-shapes --image in.png \\
                --instruction "make the square blue" --steps 50 --cfg 3 --out out.png
              fusion edit --checkpoint runs/transfusion-shapes --image in.png \\
                --method inversion --source-prompt "a red square" \\
                --prompt "a blue square" --out out.png
              fusion edit --checkpoint runs/edit-chameleon-shapes --image in.png \\
                --instruction "make the square blue"

            instruction: the target image is denoised after
                         BOS BOI [input] EOI instruction BOI, with guidance against the
                         instruction dropped (--cfg) and optionally against the input image
                         dropped too (--image-cfg, InstructPix2Pix-style).
            inversion:   the input's latents are integrated back to noise under
                         --source-prompt (no guidance), then sampled forward under --prompt
                         with --cfg.
            Chameleon runs edit by instruction: the target's codes are sampled after
            BOS BOI [input codes] EOI instruction BOI (--temperature, --top-k), guided
            against the instruction dropped (--cfg).
            PNGs of another size are resized to the run's image size (with a note).
            """)

    @Option(help: "A run folder (newest checkpoint) or one checkpoint folder.") var checkpoint: String
    @Option(help: "The input PNG.") var image: String
    @Option(help: "instruction or inversion.") var method: EditMethod = .instruction
    @Option(help: "instruction: what to change, e.g. \"make the square blue\".") var instruction: String?
    @Option(help: "inversion: a caption of the input image.") var sourcePrompt: String?
    @Option(help: "inversion: the caption of the edited image.") var prompt: String?
    @Option(help: "Diffusion steps (Transfusion; default: the recipe's).") var steps: Int?
    @Option(help: "Guidance scale: instruction (instruction) or prompt (inversion) (default: the recipe's).") var cfg: Float?
    @Option(help: "instruction: image guidance scale (InstructPix2Pix s_I; default: none).") var imageCfg: Float?
    @Option(help: "inversion: fixed-point refinements per inversion step.") var refinements = 2
    @Option(help: "Chameleon: sampling temperature of the codes (default 1).") var temperature: Float?
    @Option(help: "Chameleon: sample among the k most likely codes (default: the recipe's).") var topK: Int?
    @Option(help: "Number of edits (instruction; inversion is deterministic).") var num = 1
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Output PNG: the input then the edits, side by side.") var out = "edited.png"
    @Flag(help: "Use the raw weights even when the run kept EMA weights.") var noEMA = false

    @OptionGroup var compute: PrecisionOption

    func run() throws {
        try reportingErrors("edit", in: compute) {
            let request = try EditRequest(method: method, instruction: instruction, sourcePrompt: sourcePrompt, prompt: prompt)
            guard num > 0 else { throw ValidationError("--num must be positive") }
            guard refinements >= 0 else { throw ValidationError("--refinements must be ≥ 0") }
            let editor = try ImageEditor.load(path: checkpoint, ema: !noEMA, steps: steps, cfg: cfg, imageCfg: imageCfg,
                                              refinements: refinements, temperature: temperature, topK: topK)
            try editor.check(request.method, path: checkpoint)
            let (input, note) = try EditRequest.loadImage(image, size: editor.imageSize)
            if let note { FileHandle.standardError.write((note + "\n").data(using: .utf8)!) }
            let start = Date()
            let count = request.method == .inversion ? 1 : num
            let base = RNG(seed: seed)
            let edits = (0..<count).map { i in
                editor.edit(input, method: request.method, instruction: request.instruction,
                            sourcePrompt: request.sourcePrompt, targetPrompt: request.prompt, rng: base.split(UInt64(i)))
            }
            try PNG.write(Image.grid([input] + edits, columns: 1 + edits.count, padding: 2, background: 1), to: out)
            let what = request.method == .instruction ? "\"\(request.instruction)\""
                : "\"\(request.sourcePrompt)\" → \"\(request.prompt)\""
            print(String(format: "wrote %@: input | %d edit(s), %@ %@ (%@) in %.1f s", out, edits.count,
                         request.method.rawValue, what, editor.sampling, Date().timeIntervalSince(start)))
        }
    }
}
