// A trained Chameleon baseline read back from a run: the newest checkpoint's weights (EMA when
// kept; or an exported model), its tokenizer and VQ tokenizer. What edit fine-tuning (`train.init_from`) starts from.
// Not training and not sampling (Models/Chameleon).
import Foundation
import Models
import NN
import Tensors
import Text

public struct ChameleonRun {
    public let model: Chameleon
    public let tokenizer: BPETokenizer
    public let vq: VQTokenizer
    public let config: ChameleonTask.Config
    /// The checkpoint folder the weights came from.
    public let checkpoint: URL
    /// The run folder (where the VQ tokenizer copy lives).
    public let run: URL

    /// `path` is a run folder (its newest complete checkpoint is used), one checkpoint folder, or
    /// an exported model (``ModelExport``). `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let saved = try SavedModel(path: path, ema: ema)
        (checkpoint, run) = (saved.checkpoint, saved.run)
        config = try saved.config(ChameleonTask.Config.self, kind: "chameleon") { $0.model.problem }
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        vq = try VQTokenizer.load(from: run.appendingPathComponent(config.vq).path)
        model = Chameleon(config.model, rng: RNG(seed: 0))
        do { try model.load(saved.weights) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }
}
