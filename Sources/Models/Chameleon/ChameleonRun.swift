// A trained Chameleon baseline read back from a run: the newest checkpoint's weights (EMA when
// kept; or an exported model), its tokenizer and VQ tokenizer. What edit fine-tuning (`train.init_from`) starts from.
// Not training and not sampling (Models/Chameleon).
import Foundation
import Training
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
    /// Spoken captions (the run's AudioCodec with its codebook), for runs with speech.
    public let spoken: SpokenCaptions?
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?

    /// `path` is a run folder (its newest complete checkpoint is used), one checkpoint folder, or
    /// an exported model (``ModelExport``). `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let saved = try SavedModel(path: path, ema: ema)
        (checkpoint, run) = (saved.checkpoint, saved.run)
        config = try saved.config(ChameleonTask.Config.self, family: .chameleon) { $0.model.problem }
        contextLength = saved.trainedContext(config.contextLength)
        tokenizer = try JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(config.tokenizer.utf8))
        vq = try VQTokenizer.load(from: run.appendingPathComponent(config.vq).path)
        let (config, checkpoint, run) = (self.config, self.checkpoint, self.run)
        spoken = try config.audioCodec.map { file in
            let codec = try AudioCodec.load(from: run.appendingPathComponent(file).path)
            guard codec.quantizerTrained, codec.config.codebookSize == config.model.audioCodebookSize else {
                throw RunError.checkpoint(checkpoint.path, "the audio codec \(file) has no codebook of the model's "
                                          + "\(config.model.audioCodebookSize) codes")
            }
            return SpokenCaptions(codec: codec, length: config.model.audioLength, wordsPerMinute: config.speechWPM ?? 200)
        }
        model = Chameleon(config.model, rng: RNG(seed: 0))
        do { try model.load(saved.weights) } catch {
            throw RunError.checkpoint(checkpoint.path, "\(error)")
        }
        model.eval()
    }
}
