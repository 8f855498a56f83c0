// A trained VAR model read back from a run: the newest checkpoint's weights (EMA when kept; or an
// exported model), its tokenizer and multi-scale VQ tokenizer. Not training and not sampling.
import Foundation
import NN
import Tensors
import Text
import Training

public struct VARRun {
    public let model: VAR
    public let tokenizer: BPETokenizer
    public let msvq: MultiScaleVQTokenizer
    public let config: VARTask.Config
    /// The checkpoint folder the weights came from.
    public let checkpoint: URL
    /// The run folder (where the tokenizer copy lives).
    public let run: URL

    /// `path` is a run folder (its newest complete checkpoint is used), one checkpoint folder, or
    /// an exported model. `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let saved = try SavedModel(path: path, ema: ema)
        (checkpoint, run) = (saved.checkpoint, saved.run)
        config = try saved.config(VARTask.Config.self, family: .var) { $0.model.problem }
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        msvq = try MultiScaleVQTokenizer.load(from: run.appendingPathComponent(config.msvq).path)
        guard msvq.config.scales == config.model.scales, msvq.config.base.codebookSize == config.model.codebookSize,
              msvq.config.base.codeDim == config.model.codeDim else {
            throw RunError.checkpoint(checkpoint.path, "\(config.msvq) is not the tokenizer the model was trained with "
                                      + "(its scales, codebook or code dimension differ)")
        }
        model = VAR(config.model, rng: RNG(seed: 0))
        do { try model.load(saved.weights) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }
}
