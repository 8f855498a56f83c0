// A trained model that draws images for captions and captions images, whichever family: a
// Transfusion model (diffused VAE latents) or a Chameleon model (VQ codes). The ShapesWorld
// suites (ShapesEval, caption accuracy, the Fréchet distance) score either through it, in
// training and in `fusion eval`, and `fusion sample` / `caption` use it, so both families are
// looked at the same way. Not the samplers (Models) and not the metrics (Evaluation).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

public struct ImageTextModel {
    /// Which family drew it: transfusion or chameleon.
    public let kind: ModelFamily
    public let tokenizer: BPETokenizer
    public let imageSize: Int
    /// Positions one image takes between BOI and EOI (latent patches or codes).
    public let imagePositions: Int
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?
    /// How images are sampled, for reports ("ddim, 50 steps, cfg 3.0").
    public private(set) var sampling: String
    /// `count` images (n, 3, H, W) in [-1, 1] for prompt ids (BOS first), drawing from the RNG.
    let draw: ([Int32], Int, RNG) -> Tensor
    /// Caption ids of one image (1, 3, H, W) in [-1, 1], at most the given count.
    let describe: (Tensor, Int, SamplingOptions, RNG) -> [Int32]
    /// Cheaper stand-in of `draw` for memory probes (one denoising step; codes are cheap already).
    let probe: ([Int32], Int) -> Void
    /// Images (n, 3, H, W) in [-1, 1] through the family's image tokenizer and back (VAE latents
    /// or VQ codes): what the model could draw at best (``ceiling``).
    let roundTrip: (Tensor) -> Tensor
    /// Whether this is the tokenizer ceiling: "images for a prompt" are the prompt's reference
    /// scene (a real render) through the tokenizer, not samples.
    public private(set) var isCeiling = false

    /// A Transfusion model sampled with `options`, its VAE decoding the latents.
    public init(transfusion model: Transfusion, tokenizer: BPETokenizer, vae: ImageVAE, imageSize: Int, contextLength: Int?,
                options: ImageSamplingOptions) {
        (kind, self.tokenizer, self.imageSize, self.contextLength) = (.transfusion, tokenizer, imageSize, contextLength)
        imagePositions = model.config.patchesPerImage
        sampling = String(format: "%@, %d steps, cfg %.1f", options.sampler.rawValue, options.steps, options.cfgScale)
        draw = { ids, n, rng in withoutGrad { vae.decode(model.sampleImages(prompt: ids, count: n, options: options, rng: rng)) } }
        describe = { image, maxTokens, text, rng in
            model.caption(latents: withoutGrad { vae.encode(image) }, maxTokens: maxTokens, options: text, rng: rng)
        }
        roundTrip = { x in withoutGrad { vae.decode(vae.encode(x)) } }
        var oneStep = options
        oneStep.steps = 1
        probe = { ids, n in _ = withoutGrad { vae.decode(model.sampleImages(prompt: ids, count: n, options: oneStep, rng: RNG(seed: 0))) } }
    }

    /// A Chameleon model whose codes are sampled with `options` and guided at `cfgScale`, its VQ
    /// tokenizer decoding them.
    public init(chameleon model: Chameleon, tokenizer: BPETokenizer, vq: VQTokenizer, imageSize: Int, contextLength: Int?,
                options: SamplingOptions, cfgScale: Float) {
        (kind, self.tokenizer, self.imageSize, self.contextLength) = (.chameleon, tokenizer, imageSize, contextLength)
        imagePositions = model.config.tokensPerImage
        sampling = String(format: "temperature %g, top-k %@, cfg %.1f", options.temperature,
                          options.topK > 0 ? "\(options.topK)" : "off", cfgScale)
        let sample: ([Int32], Int, RNG) -> Tensor = { ids, n, rng in
            withoutGrad { vq.decode(model.sampleCodes(prompt: ids, count: n, options: options, cfgScale: cfgScale, rng: rng)) }
        }
        draw = sample
        describe = { image, maxTokens, text, rng in
            model.caption(codes: withoutGrad { vq.encode(image) }.intScalars, maxTokens: maxTokens, options: text, rng: rng)
        }
        probe = { ids, n in _ = sample(ids, n, RNG(seed: 0)) }                 // codes cost the same probed or not
        roundTrip = { x in withoutGrad { vq.decode(vq.encode(x)) } }
    }

    /// A VAR model whose code pyramids are sampled a scale at a time with `options`, guided at
    /// `cfgScale`, its multi-scale VQ tokenizer decoding them.
    public init(var model: VAR, tokenizer: BPETokenizer, msvq: MultiScaleVQTokenizer, imageSize: Int, contextLength: Int?,
                options: SamplingOptions, cfgScale: Float) {
        (kind, self.tokenizer, self.imageSize, self.contextLength) = (.var, tokenizer, imageSize, contextLength)
        imagePositions = model.config.blockPositions
        sampling = String(format: "temperature %g, top-k %@, cfg %.1f, %d scales", options.temperature,
                          options.topK > 0 ? "\(options.topK)" : "off", cfgScale, model.config.scales.count)
        let sample: ([Int32], Int, RNG) -> Tensor = { ids, n, rng in
            withoutGrad { msvq.decode(model.sampleCodes(prompt: ids, count: n, tokenizer: msvq, options: options, cfgScale: cfgScale, rng: rng)) }
        }
        draw = sample
        describe = { image, maxTokens, text, rng in
            model.caption(maps: withoutGrad { msvq.encode(image) }, tokenizer: msvq, maxTokens: maxTokens, options: text, rng: rng)
        }
        probe = { ids, n in _ = sample(ids, n, RNG(seed: 0)) }
        roundTrip = { x in withoutGrad { msvq.reconstruct(x) } }
    }

    /// The run at `path` (a run folder, a checkpoint folder or an exported model), Transfusion,
    /// Chameleon or VAR, with its recipe's sampling settings and these overrides. Diffusion settings
    /// (`sampler`, `steps`, `clipX0`) apply to Transfusion runs, `temperature` and `topK` to
    /// Chameleon runs; naming one for the other family is an error naming the flag.
    public static func load(path: String, ema: Bool = true, cfg: Float? = nil, sampler: SpanSampler? = nil, steps: Int? = nil,
                            clipX0: Float? = nil, temperature: Float? = nil, topK: Int? = nil) throws -> ImageTextModel {
        switch try ModelFamily.saved(try SavedModel.kind(path: path), path: path, needs: .imageText, for: "draw or caption images") {
        case .transfusion:
            try checkTransfusionFlags(path: path, temperature: temperature, topK: topK)
            let run = try TransfusionRun(path: path, ema: ema)
            return ImageTextModel(transfusion: run.model, tokenizer: run.tokenizer, vae: run.vae, imageSize: run.config.imageSize,
                                  contextLength: run.contextLength,
                                  options: try run.imageOptions(sampler: sampler, steps: steps, cfg: cfg, clipX0: clipX0))
        case .chameleon:
            try checkChameleonFlags(path: path, sampler: sampler, steps: steps, clipX0: clipX0)
            let run = try ChameleonRun(path: path, ema: ema)
            let (options, scale) = try chameleonSampling(run, cfg: cfg, temperature: temperature, topK: topK)
            return ImageTextModel(chameleon: run.model, tokenizer: run.tokenizer, vq: run.vq, imageSize: run.config.imageSize,
                                  contextLength: run.contextLength, options: options, cfgScale: scale)
        case .var:
            try checkChameleonFlags(path: path, sampler: sampler, steps: steps, clipX0: clipX0, family: .var)
            let run = try VARRun(path: path, ema: ema)
            let (options, scale) = try codeSampling(cfg: cfg ?? run.config.cfg, temperature: temperature, topK: topK ?? run.config.topK ?? 0)
            return ImageTextModel(var: run.model, tokenizer: run.tokenizer, msvq: run.msvq, imageSize: run.config.imageSize,
                                  contextLength: run.config.contextLength, options: options, cfgScale: scale)
        case let family:
            preconditionFailure("ImageTextModel: the \(family) family draws images but has no loader here")
        }
    }

    /// Refuses Chameleon's code-sampling flags for the Transfusion run at `path`.
    static func checkTransfusionFlags(path: String, temperature: Float?, topK: Int?) throws {
        if temperature != nil || topK != nil {
            throw RunError.option("--temperature and --top-k sample image codes of Chameleon runs; \(path) is a transfusion run "
                                  + "(its images are diffused: use --steps, --sampler, --cfg)")
        }
    }

    /// Refuses Transfusion's diffusion flags for the Chameleon (or VAR: `family`) run at `path`.
    static func checkChameleonFlags(path: String, sampler: SpanSampler?, steps: Int?, clipX0: Float?,
                                    family: ModelFamily = .chameleon) throws {
        if sampler != nil || steps != nil || clipX0 != nil {
            throw RunError.option("--sampler, --steps and --clip are diffusion settings of Transfusion runs; \(path) is a "
                                  + "\(family) run (its image codes are sampled: use --temperature, --top-k, --cfg)")
        }
    }

    /// A Chameleon run's code sampling: `temperature` (default 1), `topK` (default the recipe's)
    /// and the guidance scale (default the recipe's), checked.
    static func chameleonSampling(_ run: ChameleonRun, cfg: Float?, temperature: Float?, topK: Int?) throws -> (SamplingOptions, Float) {
        try codeSampling(cfg: cfg ?? run.config.cfg, temperature: temperature, topK: topK ?? run.sampleTopK)
    }

    /// Code sampling of a Chameleon or VAR run at `temperature` (default 1), checked.
    static func codeSampling(cfg scale: Float, temperature: Float?, topK k: Int) throws -> (SamplingOptions, Float) {
        try RunError.checkGuidance(scale)
        let t = temperature ?? 1
        guard t.isFinite, t >= 0 else { throw RunError.option("--temperature must be ≥ 0 (0: greedy), got \(t)") }
        guard k >= 0 else { throw RunError.option("--top-k must be ≥ 0 (0: all codes), got \(k)") }
        return (SamplingOptions(temperature: t, topK: k), scale)
    }

    /// The ceiling of this model's scores: the same suites, with real renders passed through its
    /// image tokenizer in place of samples (ShapesEval: each prompt's reference scene, the same
    /// image for every sample of it; FD: the held-out scenes whose captions would be the prompts).
    public var ceiling: ImageTextModel {
        var c = self
        c.isCeiling = true
        c.sampling = "\([.chameleon: "VQ", .var: "multi-scale VQ"][kind] ?? "VAE") reconstructions of real renders (the tokenizer's ceiling)"
        return c
    }

    /// Token ids of a prompt, BOS first.
    public func prompt(_ text: String) -> [Int32] { [SpecialTokens.bos] + tokenizer.encode(text) }

    /// `count` images (n, 3, H, W) in [-1, 1] for prompt ids (BOS first).
    public func images(prompt ids: [Int32], count: Int, rng: RNG) -> Tensor { draw(ids, count, rng) }

    /// The caption of `image` (the run's size, RGB): decoded text without special tokens.
    public func caption(_ image: Image, maxTokens: Int = 48, options: SamplingOptions = SamplingOptions(temperature: 0),
                        rng: RNG = RNG(seed: 0)) -> String {
        let ids = describe(imageBatch([image]), maxTokens, options, rng)
        return tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) })
    }

    /// Throws when `positions` (a prompt and what is generated after it) run past the trained context.
    public func checkContext(_ positions: Int, _ what: String, shorten: String) throws {
        try ContextLengthError.check(positions, context: contextLength, what: what, shorten: shorten)
    }

    /// The memory plan of sampling and decoding `count` images at once for `prompt` (probed with
    /// 1 and 2 images); throws, naming `flag`, when it does not fit what the process may take.
    public func planSampling(prompt: [Int32], count: Int, flag: String) throws -> MemoryPlan {
        let plan = MemoryPlan.generation(count: count) { n in probe(prompt, n) }
        let budget = MemoryBudget.current()
        try plan.check(budget: budget) {
            "lower \(flag) (\(count); about \(MemoryPlanError.itemsThatFit(plan, budget: budget)) images fit at once)"
        }
        return plan
    }

    // MARK: The ShapesWorld suites

    /// `imagesPerPrompt` images for each prompt of `eval`, prompt i drawing from `RNG(seed).split(i)`,
    /// so the same seed gives the same images.
    public func images(for eval: ShapesEval, imagesPerPrompt: Int, seed: UInt64, progress: ((Int) -> Void)? = nil) -> [[Image]] {
        let base = RNG(seed: seed)
        return eval.prompts.enumerated().map { i, p in
            let x = isCeiling
                ? roundTrip(imageBatch(Array(repeating: Image(width: imageSize, height: imageSize, channels: 3,
                                                              pixels: p.scene.render(imageSize: imageSize)), count: imagesPerPrompt)))
                : images(prompt: prompt(p.text), count: imagesPerPrompt, rng: base.split(UInt64(i)))
            progress?(i + 1)
            return (0..<imagesPerPrompt).map { Image(chw: x.slice(axis: 0, $0..<($0 + 1))) }
        }
    }

    /// The in-training ShapesEval rows (`eval.shapes_eval`): about `count` prompts spread over the
    /// categories, one image each, with the prompts and randomness every family's task uses, so
    /// evaluations at different steps and of different families compare.
    func trainingShapesEval(prompts count: Int) -> [String: Double] {
        shapesEval(ShapesEval(seed: 0, totalPrompts: count, imageSize: imageSize), imagesPerPrompt: 1, seed: 0x5EE7).metrics
    }

    /// ShapesEval of the model: sample, detect, score.
    public func shapesEval(_ eval: ShapesEval, imagesPerPrompt: Int, seed: UInt64, progress: ((Int) -> Void)? = nil) -> ShapesEvalReport {
        eval.score(images: images(for: eval, imagesPerPrompt: imagesPerPrompt, seed: seed, progress: progress))
    }

    /// Greedy captions of `count` held-out scenes of `world`, scored against their object lists.
    public func captionAccuracy(world: ShapesWorld, count: Int, maxTokens: Int = 48,
                                progress: ((Int) -> Void)? = nil) -> (CaptionAccuracyReport, [String]) {
        let scenes = (0..<count).map(world.scene)
        var captions: [String] = []
        for scene in scenes {
            captions.append(caption(Image(width: imageSize, height: imageSize, channels: 3, pixels: scene.render(imageSize: imageSize)),
                                    maxTokens: maxTokens))
            progress?(captions.count)
        }
        return (CaptionAccuracy.score(captions: captions, scenes: scenes), captions)
    }

    /// The Fréchet distance, in `classifier`'s features, between images generated from the
    /// captions of held-out scenes 0..<count of `world` (scene i drawing from `RNG(seed).split(i)`)
    /// and renders of scenes count..<2·count, beside the real-vs-real floor (renders of
    /// 2·count..<3·count) at the same number of images.
    public func frechetDistance(classifier net: ShapesClassifier, world: ShapesWorld, count: Int, seed: UInt64,
                                progress: ((Int) -> Void)? = nil) -> FDReport {
        let base = RNG(seed: seed)
        func real(_ range: Range<Int>) -> [Image] {
            range.map { Image(width: imageSize, height: imageSize, channels: 3, pixels: world.scene($0).render(imageSize: imageSize)) }
        }
        let generated = (0..<count).map { i -> Image in
            defer { progress?(i + 1) }
            if isCeiling { return Image(chw: roundTrip(imageBatch(real(i..<(i + 1))))) }
            return Image(chw: images(prompt: prompt(world.example(i).caption), count: 1, rng: base.split(UInt64(i))))
        }
        let reference = net.features(real(count..<(2 * count)))
        let (fd, se) = Alignment.frechet(reference, net.features(generated))
        return FDReport(images: count, fd: fd, realVsReal: Evaluation.frechetDistance(reference, net.features(real((2 * count)..<(3 * count)))),
                        standardError: se)
    }
}

/// A Fréchet distance of generated images to real ones, with its bootstrap standard error and
/// the real-vs-real floor at the same count.
public struct FDReport: Codable, Sendable, CustomStringConvertible {
    public var images: Int
    public var fd: Double
    public var realVsReal: Double
    /// The spread of the distance over 20 bootstrap resamples of both image sets (nil in reports
    /// written before it was kept); `fusion compare` reads it as `final_fd_se`.
    public var standardError: Double?

    public var description: String {
        String(format: "FD generated vs real  %.4f", fd) + (standardError.map { String(format: " ± %.4f (bootstrap)", $0) } ?? "")
            + String(format: "\nFD real vs real       %.4f  (the floor at %d images)", realVsReal, images)
    }
}

extension ChameleonRun {
    /// The top-k its recipe sampled codes with (`sample.top_k`; 0 when the run folder has no recipe).
    public var sampleTopK: Int {
        config.topK ?? (try? Recipe.load(run.appendingPathComponent("recipe.yaml").path))?.sample.topK ?? 0
    }
}
