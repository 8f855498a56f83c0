// Edit evaluation of Transfusion models in training (eval.edits): held-out ShapesWorld triplets
// edited by instruction (a model fine-tuned on edit triplets) and by inversion (any text-to-image
// run) through ImageEditor, scored by EditEval (accuracy and preservation per kind), and
// before/after PNG grids; the edit methods and their settings. Not the editing (Models/).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

/// How an image is edited.
public enum EditMethod: String, CaseIterable, Codable, Sendable {
    /// `BOS BOI [source] EOI instruction BOI` → target span (needs an edit fine-tuned run).
    case instruction
    /// Invert under the source caption, regenerate under the target caption (any run).
    case inversion
}

/// The settings of one edit method.
public struct EditSettings: Sendable {
    public var options: ImageSamplingOptions
    public var guidance: EditGuidance
    /// Fixed-point refinements per inversion step.
    public var refinements: Int

    public init(options: ImageSamplingOptions, guidance: EditGuidance = EditGuidance(), refinements: Int = 2) {
        self.options = options; self.guidance = guidance; self.refinements = refinements
    }
}

extension TransfusionEvaluator {
    /// Clean latents (1, C, h, w) of an image (RGB, the run's size, samples in [0, 1]).
    public func encode(_ image: Image) -> Tensor { withoutGrad { vae.encode(imageBatch([image])) } }

    /// One edit of `source` (an image of the run's size): by `instruction`, or by inversion from
    /// `sourcePrompt` to `targetPrompt`. Returns the edited image.
    public func edit(_ source: Image, method: EditMethod, instruction: String = "", sourcePrompt: String = "",
                     targetPrompt: String = "", settings: EditSettings, rng: RNG) -> Image {
        let z = encode(source)
        let edited: Tensor
        switch method {
        case .instruction:
            edited = model.sampleEdit(source: z, instruction: tokenizer.encode(instruction), count: 1,
                                      options: settings.options, guidance: settings.guidance, rng: rng)
        case .inversion:
            edited = model.inversionEdit(latents: z, sourcePrompt: [SpecialTokens.bos] + tokenizer.encode(sourcePrompt),
                                         targetPrompt: [SpecialTokens.bos] + tokenizer.encode(targetPrompt),
                                         options: settings.options, refinements: settings.refinements)
        }
        return Image(chw: withoutGrad { vae.decode(edited) })
    }
}

extension TransfusionTask {
    /// The edit settings of the recipe: its sampler with at most `maxSteps` steps, cfg as the
    /// instruction scale.
    func editSettings(maxSteps: Int = 25) -> EditSettings {
        var options = imageOptions
        options.steps = min(options.steps, maxSteps)
        return EditSettings(options: options, guidance: EditGuidance(textScale: recipe.diffusion.cfg))
    }

    /// Edit metrics on `count` held-out triplets: the instruction method (`edit_*`) and the
    /// inversion method (`inversion_edit_*`), with fixed randomness so evaluations compare.
    func editEvalMetrics(count: Int) throws -> [String: Double] {
        let settings = editSettings()
        let editor = ImageEditor(transfusion: evaluator, settings: settings)
        var metrics = editor.editEval(world: heldOutShapes, count: count, method: .instruction, seed: 0xED17).0.metrics()
        metrics.merge(editor.editEval(world: heldOutShapes, count: count, method: .inversion, seed: 0xED17).0
            .metrics(prefix: "inversion_")) { $1 }
        return metrics
    }

    /// samples/edits-step-N.png: eight held-out triplets, one row each: source | target | instruction
    /// edit | inversion edit (a folder's triplets: source | target | instruction edit, the inversion
    /// method needing scene captions); and edits-step-N.txt with the instructions.
    func writeEditSamples(step: Int, to dir: URL) throws {
        let settings = editSettings(maxSteps: recipe.diffusion.sampleSteps)
        guard heldOut is ShapesWorld else {
            let edits = ImageCaptionPairs.editing(heldOut), base = RNG(seed: 0xED17)
            var cells: [Image] = [], lines: [String] = []
            for i in 0..<min(8, edits.editCount ?? 8) {
                let (source, target) = try edits.editImages(i)
                let instruction = edits.editInstruction(i)
                cells += [source, target, evaluator.edit(source, method: .instruction, instruction: instruction, settings: settings,
                                                         rng: base.split(UInt64(i)))]
                lines.append("\(i): \(instruction)")
            }
            try PNG.write(Image.grid(cells, columns: 3, padding: 2, background: 1),
                          to: dir.appendingPathComponent(String(format: "edits-step-%08d.png", step)).path)
            try atomicWrite(Foundation.Data(("columns: source | target | instruction\n" + lines.joined(separator: "\n") + "\n").utf8),
                            to: dir.appendingPathComponent(String(format: "edits-step-%08d.txt", step)))
            return
        }
        let editor = ImageEditor(transfusion: evaluator, settings: settings)
        let edited = EditMethod.allCases.map { editor.edits(world: heldOutShapes, count: 8, method: $0, seed: 0xED17) }
        let (grid, text) = editor.editGrid(world: heldOutShapes, edited: edited)
        try PNG.write(grid, to: dir.appendingPathComponent(String(format: "edits-step-%08d.png", step)).path)
        try atomicWrite(Foundation.Data(("columns: source | target | instruction | inversion\n" + text).utf8),
                        to: dir.appendingPathComponent(String(format: "edits-step-%08d.txt", step)))
    }
}
