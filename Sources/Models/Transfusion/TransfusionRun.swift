// A trained Transfusion model read back from a run: the newest checkpoint's weights (EMA when
// the run kept them), its tokenizer, its VAE and sampling defaults. What `fusion sample`,
// `caption` and `generate` (and notebooks) start from. Not training.
import Diffusion
import Foundation
import Training
import NN
import Tensors
import Text

public struct TransfusionRun {
    public let model: Transfusion
    public let tokenizer: BPETokenizer
    public let vae: ImageVAE
    public let config: TransfusionTask.Config
    /// The checkpoint folder the weights came from.
    public let checkpoint: URL
    /// The VAE file the run decodes with.
    public let vaeURL: URL
    /// Spoken captions (the run's AudioCodec, span length, reference voice), for runs with speech.
    public let spoken: SpokenCaptions?
    /// The folder the model files came from (a run or an exported model).
    public let folder: URL
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?

    /// `path` is a run folder (its newest complete checkpoint is used), one checkpoint folder, or
    /// an exported model (``ModelExport``). `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let saved = try SavedModel(path: path, ema: ema)
        checkpoint = saved.checkpoint
        config = try saved.config(TransfusionTask.Config.self, family: .transfusion) { $0.model.problem }
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        vaeURL = saved.run.appendingPathComponent(config.vae)
        vae = try ImageVAE.load(from: vaeURL.path)
        folder = saved.run
        contextLength = saved.trainedContext(config.contextLength)
        if let file = config.audioCodec {
            let codec = try AudioCodec.load(from: saved.run.appendingPathComponent(file).path)
            guard codec.config.patchDim == config.model.audioDim else {
                throw RunError.checkpoint(checkpoint.path, "the audio codec \(file) makes patches of \(codec.config.patchDim) "
                                          + "values, the model reads \(config.model.audioDim)")
            }
            spoken = SpokenCaptions(codec: codec, length: config.model.audioLength, wordsPerMinute: config.speechWPM ?? 200)
        } else {
            spoken = nil
        }
        model = Transfusion(config.model, rng: RNG(seed: 0))
        do { try model.load(saved.weights) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }

    /// Throws when `positions` (a prompt and what is generated after it) run past the trained
    /// context: `what` names them, e.g. "the prompt (12 tokens) and the image's 16 patches".
    public func checkContext(_ positions: Int, _ what: String, shorten: String) throws {
        try ContextLengthError.check(positions, context: contextLength, what: what, shorten: shorten)
    }

    /// Token ids of a prompt, BOS first.
    public func prompt(_ text: String) -> [Int32] { [SpecialTokens.bos] + tokenizer.encode(text) }

    /// The run's image sampling settings with the given overrides.
    /// `clipX0` 0 turns clipping off.
    public func imageOptions(sampler: SpanSampler? = nil, steps: Int? = nil, cfg: Float? = nil, clipX0: Float? = nil) throws
        -> ImageSamplingOptions {
        let d = config.diffusion
        let clip = clipX0 ?? d.clipX0
        let diffusion = try TransfusionTask.diffusion(d)
        let flow = d.target == .flow
        let chosen = sampler ?? d.sampler
        let count = steps ?? d.sampleSteps
        // Checked here, with the option names, because the samplers trap on them.
        if flow != (chosen == .euler) {
            throw RunError.option("--sampler \(chosen.rawValue) does not fit this run's \(d.target.rawValue) target (use \(flow ? "euler" : "ddim or ddpm"))")
        }
        if count < 1 || (!flow && count > d.steps) {
            let range = flow ? "≥ 1" : "1…\(d.steps) (the run's diffusion steps)"
            throw RunError.option("--steps must be \(range), got \(count)")
        }
        let scale = cfg ?? d.cfg
        try RunError.checkGuidance(scale)
        guard clip.isFinite, clip >= 0 else { throw RunError.option("--clip must be ≥ 0 (0: off), got \(clip)") }
        return ImageSamplingOptions(diffusion: diffusion, sampler: chosen, steps: count, cfgScale: scale,
                                    clipX0: clip > 0 ? clip : nil)
    }

    /// Latents (n, C, h, w) → images in [-1, 1] (n, 3, H, W).
    public func decode(_ latents: Tensor) -> Tensor { withoutGrad { vae.decode(latents) } }

    /// Images (n, 3, H, W) in [-1, 1] → clean latents.
    public func encode(_ images: Tensor) -> Tensor { withoutGrad { vae.encode(images) } }
}

/// A prompt, or a prompt and what follows it, longer than the rows a model was trained on.
public struct ContextLengthError: Error, CustomStringConvertible {
    public let positions: Int
    public let context: Int
    public let what: String
    public let shorten: String

    public var description: String {
        "\(what) take \(positions) positions, past the \(context) the model was trained on (its recipe's data.seq_len): \(shorten)"
    }

    /// Throws when `positions` exceed `context` (nil: unknown, nothing is checked).
    public static func check(_ positions: Int, context: Int?, what: String, shorten: String) throws {
        guard let context, positions > context else { return }
        throw ContextLengthError(positions: positions, context: context, what: what, shorten: shorten)
    }
}
