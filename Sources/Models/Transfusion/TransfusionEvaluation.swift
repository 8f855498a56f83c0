// What evaluating a Transfusion model's edits needs (model, tokenizer, VAE; the edit suites are in
// TransfusionEditEvaluation), and the in-training ShapesEval of Transfusion runs, scored through
// ImageTextModel like Chameleon's. Not the metrics themselves (Evaluation/) nor the sampler (Models/).
import Data
import Diffusion
import Evaluation
import Foundation
import Media
import Training
import NN
import Tensors
import Text

/// What a Transfusion edit evaluation needs: the model, its tokenizer and VAE.
public struct TransfusionEvaluator {
    public let model: Transfusion
    public let tokenizer: BPETokenizer
    public let vae: ImageVAE
    public let imageSize: Int

    public init(model: Transfusion, tokenizer: BPETokenizer, vae: ImageVAE, imageSize: Int) {
        self.model = model; self.tokenizer = tokenizer; self.vae = vae; self.imageSize = imageSize
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
        var options = imageOptions
        options.steps = min(options.steps, 25)
        return ImageTextModel(transfusion: transfusion, tokenizer: tokenizer, vae: vae, imageSize: recipe.data.imageSize,
                              contextLength: recipe.data.seqLen, options: options).trainingShapesEval(prompts: count)
    }
}

extension TransfusionRun {
    /// The evaluator of the loaded run.
    public var evaluator: TransfusionEvaluator {
        TransfusionEvaluator(model: model, tokenizer: tokenizer, vae: vae, imageSize: config.imageSize)
    }
}
