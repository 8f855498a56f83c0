// A trained Transfusion model read back from a run: the newest checkpoint's weights (EMA when
// the run kept them), its tokenizer, its VAE and sampling defaults. What `fusion sample`,
// `caption` and `generate` (and notebooks) start from. Not training.
import Diffusion
import Foundation
import Models
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

    /// `path` is a run folder (its newest complete checkpoint is used), one checkpoint folder, or
    /// an exported model (``ModelExport``). `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let url = URL(fileURLWithPath: path)
        let runURL: URL
        let weights: [String: Tensor], configData: Foundation.Data
        if ModelExport.isExport(url) {                    // an exported model (e.g. checkpoints/shapes-tiny)
            checkpoint = url
            runURL = url
            (weights, configData) = try ModelExport.read(url)
        } else {
            (checkpoint, runURL) = try RunDirectory.resolveCheckpoint(path)
            let saved = try Checkpoint.read(checkpoint)
            weights = ema ? (saved.ema ?? saved.model) : saved.model
            configData = saved.config
        }
        do {
            config = try JSONDecoder().decode(TransfusionTask.Config.self, from: configData)
        } catch {
            throw RunError.checkpoint(checkpoint.appendingPathComponent("config.json").path,
                                      "not a transfusion checkpoint config: \(error)")
        }
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        vaeURL = runURL.appendingPathComponent(config.vae)
        vae = try ImageVAE.load(from: vaeURL.path)
        model = Transfusion(config.model, rng: RNG(seed: 0))
        do { try model.load(weights) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }

    /// Token ids of a prompt, BOS first.
    public func prompt(_ text: String) -> [Int32] { [SpecialTokens.bos] + tokenizer.encode(text) }

    /// The run's image sampling settings with the given overrides.
    /// `clipX0` 0 turns clipping off.
    public func imageOptions(sampler: SpanSampler? = nil, steps: Int? = nil, cfg: Float? = nil, clipX0: Float? = nil) throws
        -> ImageSamplingOptions {
        let d = config.diffusion
        let clip = clipX0 ?? d.clipX0
        return ImageSamplingOptions(diffusion: try TransfusionTask.diffusion(d),
                                    sampler: sampler ?? SpanSampler(rawValue: d.sampler) ?? .ddim,
                                    steps: steps ?? d.sampleSteps, cfgScale: cfg ?? d.cfg, clipX0: clip > 0 ? clip : nil)
    }

    /// Latents (n, C, h, w) → images in [-1, 1] (n, 3, H, W).
    public func decode(_ latents: Tensor) -> Tensor { withoutGrad { vae.decode(latents) } }

    /// Images (n, 3, H, W) in [-1, 1] → clean latents.
    public func encode(_ images: Tensor) -> Tensor { withoutGrad { vae.encode(images) } }
}
