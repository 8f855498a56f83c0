// Evaluation of Transfusion models: ShapesEval images sampled from prompts, caption accuracy on
// held-out images, and held-out text perplexity; used at eval time in training (eval.shapes_eval)
// and by `fusion eval`. Not the metrics themselves (Evaluation/) nor the sampler (Models/).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Models
import NN
import Tensors
import Text

/// What a Transfusion evaluation needs: the model, its tokenizer and VAE.
public struct TransfusionEvaluator {
    public let model: Transfusion
    public let tokenizer: BPETokenizer
    public let vae: ImageVAE
    public let imageSize: Int

    public init(model: Transfusion, tokenizer: BPETokenizer, vae: ImageVAE, imageSize: Int) {
        self.model = model; self.tokenizer = tokenizer; self.vae = vae; self.imageSize = imageSize
    }

    /// `imagesPerPrompt` images for each prompt of `eval`, prompt i drawing from `RNG(seed).split(i)`,
    /// so the same seed gives the same images.
    public func images(for eval: ShapesEval, imagesPerPrompt: Int, options: ImageSamplingOptions, seed: UInt64,
                       progress: ((Int) -> Void)? = nil) -> [[Image]] {
        let base = RNG(seed: seed)
        return eval.prompts.enumerated().map { i, p in
            let z = model.sampleImages(prompt: [SpecialTokens.bos] + tokenizer.encode(p.text), count: imagesPerPrompt,
                                       options: options, rng: base.split(UInt64(i)))
            let x = withoutGrad { vae.decode(z) }                                  // (n, 3, H, W) in [-1, 1]
            progress?(i + 1)
            return (0..<imagesPerPrompt).map { Image(chw: x.slice(axis: 0, $0..<($0 + 1))) }
        }
    }

    /// ShapesEval of the model: sample, detect, score.
    public func shapesEval(_ eval: ShapesEval, imagesPerPrompt: Int, options: ImageSamplingOptions, seed: UInt64,
                           progress: ((Int) -> Void)? = nil) -> ShapesEvalReport {
        eval.score(images: images(for: eval, imagesPerPrompt: imagesPerPrompt, options: options, seed: seed,
                                  progress: progress))
    }

    /// Greedy captions of `count` held-out scenes of `world`, scored against their object lists.
    public func captionAccuracy(world: ShapesWorld, count: Int, maxTokens: Int = 48,
                                progress: ((Int) -> Void)? = nil) -> (CaptionAccuracyReport, [String]) {
        let scenes = (0..<count).map(world.scene)
        var captions: [String] = []
        for scene in scenes {
            defer { progress?(captions.count) }
            let image = Image(width: imageSize, height: imageSize, channels: 3, pixels: scene.render(imageSize: imageSize))
            let z = withoutGrad { vae.encode(image.toTensorCHW().reshaped([1, 3, imageSize, imageSize])) }
            let ids = model.caption(latents: z, maxTokens: maxTokens, options: SamplingOptions(temperature: 0), rng: RNG(seed: 0))
            captions.append(tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) }))
        }
        return (CaptionAccuracy.score(captions: captions, scenes: scenes), captions)
    }
}

extension TransfusionTask {
    /// The evaluator of the model being trained.
    public var evaluator: TransfusionEvaluator {
        TransfusionEvaluator(model: transfusion, tokenizer: tokenizer, vae: vae, imageSize: recipe.data.imageSize)
    }

    /// ShapesEval on about `count` prompts (spread over the categories), one image each, sampled
    /// with at most 25 steps and fixed randomness so evaluations at different steps compare.
    func shapesEvalMetrics(count: Int) -> [String: Double] {
        let eval = ShapesEval(seed: 0, totalPrompts: count, imageSize: recipe.data.imageSize)
        var options = imageOptions
        options.steps = min(options.steps, 25)
        return evaluator.shapesEval(eval, imagesPerPrompt: 1, options: options, seed: 0x5EE7).metrics
    }
}

extension TransfusionRun {
    /// The evaluator of the loaded run.
    public var evaluator: TransfusionEvaluator {
        TransfusionEvaluator(model: model, tokenizer: tokenizer, vae: vae, imageSize: config.imageSize)
    }
}
