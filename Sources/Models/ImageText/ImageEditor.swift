// Image editing behind one interface, whichever family: a Transfusion run edits by instruction (a
// run fine-tuned on edit triplets) or by inversion (any text-to-image run); a Chameleon run edits
// by instruction, its codes sampled after `BOS BOI [source codes] EOI instruction BOI` and guided
// against the instruction dropped. `fusion edit`, `fusion eval --suite edits` and Transfusion's
// in-training edit evaluation use it; the scoring is Evaluation's EditEval. Not the samplers (Models).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

public struct ImageEditor {
    public let family: ModelFamily
    public let imageSize: Int
    /// The methods this family edits by (Chameleon: instruction only; inversion needs diffusion).
    public let methods: [EditMethod]
    /// How edits are sampled, for reports ("euler, 50 steps, cfg 3.0").
    public let sampling: String
    /// One edit of an image of the run's size by a method of `methods`, drawing from the RNG.
    let editImage: (Image, EditMethod, Prompts, RNG) -> Image

    /// What an edit is asked: the instruction (instruction method), the captions of the input and
    /// of the edited image (inversion method).
    struct Prompts { var instruction = "", source = "", target = "" }

    /// A Transfusion model's editor with `settings`.
    public init(transfusion evaluator: TransfusionEvaluator, settings: EditSettings) {
        family = .transfusion
        imageSize = evaluator.imageSize
        methods = EditMethod.allCases
        let o = settings.options
        sampling = String(format: "%@, %d steps, cfg %.1f", o.sampler.rawValue, o.steps, o.cfgScale)
            + (settings.guidance.imageScale.map { String(format: ", image cfg %.1f", $0) } ?? "")
        editImage = { image, method, p, rng in
            evaluator.edit(image, method: method, instruction: p.instruction, sourcePrompt: p.source, targetPrompt: p.target,
                           settings: settings, rng: rng)
        }
    }

    /// A Chameleon model's editor: the target's codes sampled with `options`, guided at `cfgScale`
    /// against the instruction dropped, and decoded by its VQ tokenizer.
    public init(chameleon model: Chameleon, tokenizer: BPETokenizer, vq: VQTokenizer, imageSize: Int, options: SamplingOptions,
                cfgScale: Float) {
        family = .chameleon
        self.imageSize = imageSize
        methods = [.instruction]
        sampling = String(format: "temperature %g, top-k %@, cfg %.1f", options.temperature,
                          options.topK > 0 ? "\(options.topK)" : "off", cfgScale)
        editImage = { image, _, p, rng in
            let codes = withoutGrad { vq.encode(imageBatch([image])) }.intScalars
            let ids = model.sampleEdit(source: codes, instruction: tokenizer.encode(p.instruction), count: 1, options: options,
                                       cfgScale: cfgScale, rng: rng)
            return Image(chw: withoutGrad { vq.decode(ids) })
        }
    }

    /// The editor of the run at `path` (a run folder, a checkpoint folder or an exported model) with
    /// its recipe's sampling settings and these overrides: diffusion settings (`sampler`, `steps`,
    /// `imageCfg`, `refinements`) for Transfusion runs, `temperature` and `topK` for Chameleon
    /// runs; naming one for the other family is an error naming the flag.
    public static func load(path: String, ema: Bool = true, sampler: SpanSampler? = nil, steps: Int? = nil, cfg: Float? = nil,
                            imageCfg: Float? = nil, refinements: Int = 2, temperature: Float? = nil,
                            topK: Int? = nil) throws -> ImageEditor {
        switch try ModelFamily.saved(try SavedModel.kind(path: path), path: path, needs: .editTriplets, for: "edit images") {
        case .transfusion:
            try ImageTextModel.checkTransfusionFlags(path: path, temperature: temperature, topK: topK)
            let run = try TransfusionRun(path: path, ema: ema)
            let options = try run.imageOptions(sampler: sampler, steps: steps, cfg: cfg)
            return ImageEditor(transfusion: run.evaluator,
                               settings: EditSettings(options: options, guidance: EditGuidance(textScale: options.cfgScale, imageScale: imageCfg),
                                                      refinements: refinements))
        case .chameleon:
            if imageCfg != nil {
                throw RunError.option("--image-cfg guides diffusion towards the source image; \(path) is a chameleon run "
                                      + "(its edits are guided against the instruction dropped: --cfg)")
            }
            try ImageTextModel.checkChameleonFlags(path: path, sampler: sampler, steps: steps, clipX0: nil)
            let run = try ChameleonRun(path: path, ema: ema)
            let (options, scale) = try ImageTextModel.chameleonSampling(run, cfg: cfg, temperature: temperature, topK: topK)
            return ImageEditor(chameleon: run.model, tokenizer: run.tokenizer, vq: run.vq, imageSize: run.config.imageSize,
                               options: options, cfgScale: scale)
        case let family:
            preconditionFailure("ImageEditor: the \(family) family draws images but has no editor here")
        }
    }

    /// Refuses a method this family cannot edit by, saying which it can.
    public func check(_ method: EditMethod, path: String) throws {
        guard methods.contains(method) else {
            throw RunError.option("--method \(method.rawValue) needs a diffusion model (transfusion runs); \(path) is a \(family) "
                                  + "run, which edits by \(methods.map(\.rawValue).joined(separator: " or "))")
        }
    }

    /// One edit of `source` (an image of the run's size): by `instruction`, or by inversion from
    /// `sourcePrompt` to `targetPrompt`.
    public func edit(_ source: Image, method: EditMethod, instruction: String = "", sourcePrompt: String = "",
                     targetPrompt: String = "", rng: RNG) -> Image {
        precondition(methods.contains(method), "ImageEditor: a \(family) run does not edit by \(method)")
        return editImage(source, method, Prompts(instruction: instruction, source: sourcePrompt, target: targetPrompt), rng)
    }

    /// The caption the inversion method describes a scene with: every object with its size and
    /// place, then the background ("a large red circle in the top left on a black background").
    public static func inversionCaption(_ scene: Scene) -> String {
        var rng = SplitMix64(seed: 0, stream: 0xED17, index: 0)
        return Captioner.caption(scene, style: .background, mentionSizes: true, rng: &rng)
    }

    /// Edits of triplets `0..<count` of `world` by `method` (triplet i draws from `RNG(seed).split(i)`).
    public func edits(world: ShapesWorld, count: Int, method: EditMethod, seed: UInt64, progress: ((Int) -> Void)? = nil) -> [Image] {
        let base = RNG(seed: seed)
        return (0..<count).map { i in
            let triplet = world.edit(i)
            let out = edit(render(triplet.source), method: method, instruction: triplet.instruction,
                           sourcePrompt: Self.inversionCaption(triplet.source), targetPrompt: Self.inversionCaption(triplet.target),
                           rng: base.split(UInt64(i)))
            progress?(i + 1)
            return out
        }
    }

    /// Edit accuracy and preservation of `method` on triplets `0..<count` of `world`, and the edited images.
    public func editEval(world: ShapesWorld, count: Int, method: EditMethod, seed: UInt64,
                         progress: ((Int) -> Void)? = nil) -> (EditEvalReport, [Image]) {
        let images = edits(world: world, count: count, method: method, seed: seed, progress: progress)
        let eval = EditEval(imageSize: imageSize)
        return (EditEvalReport(checks: zip(0..<count, images).map { eval.check(world.edit($0), image: $1) }), images)
    }

    /// The image of a scene at the run's size.
    public func render(_ scene: Scene) -> Image {
        Image(width: imageSize, height: imageSize, channels: 3, pixels: scene.render(imageSize: imageSize))
    }

    /// A before/after grid, one row per triplet: source | target (the truth) | each method's edit;
    /// and the instructions, one line per row.
    public func editGrid(world: ShapesWorld, edited: [[Image]]) -> (Image, String) {
        let rows = edited.first?.count ?? 0
        var cells: [Image] = [], lines: [String] = []
        for i in 0..<rows {
            let triplet = world.edit(i)
            cells += [render(triplet.source), render(triplet.target)] + edited.map { $0[i] }
            lines.append("\(i): [\(triplet.kind.rawValue)] \(triplet.instruction)")
        }
        return (Image.grid(cells, columns: 2 + edited.count, padding: 2, background: 1), lines.joined(separator: "\n") + "\n")
    }
}
