// A trained Chameleon baseline read back from a run: the newest checkpoint's weights (EMA when
// kept), its tokenizer and VQ tokenizer. What edit fine-tuning (`train.init_from`) starts from.
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

    /// `path` is a run folder (its newest complete checkpoint is used) or one checkpoint folder.
    public init(path: String, ema: Bool = true) throws {
        (checkpoint, run) = try RunDirectory.resolveCheckpoint(path)
        let saved = try Checkpoint.read(checkpoint)
        do {
            config = try JSONDecoder().decode(ChameleonTask.Config.self, from: saved.config)
        } catch {
            throw RunError.checkpoint(checkpoint.appendingPathComponent("config.json").path,
                                      "not a chameleon checkpoint config: \(error)")
        }
        if let problem = config.model.problem {
            throw RunError.checkpoint(checkpoint.appendingPathComponent("config.json").path,
                                      "\(problem); the file was edited or comes from another version")
        }
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        vq = try VQTokenizer.load(from: run.appendingPathComponent(config.vq).path)
        model = Chameleon(config.model, rng: RNG(seed: 0))
        do { try model.load(ema ? (saved.ema ?? saved.model) : saved.model) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }
}
