// A trained language model (model.kind lm) read back from a run, a checkpoint folder or an
// exported model: its decoder and tokenizer. What `fusion generate` continues text with.
// Not training (LMTask) and not the decoding loop (NN/Generation.swift).
import Foundation
import NN
import Tensors
import Text
import Training

public struct LMRun {
    public let lm: DecoderLM
    public let tokenizer: BPETokenizer
    public let config: LMTask.Config
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?

    /// `path` is a run folder (its newest complete checkpoint), one checkpoint folder, or an
    /// exported model; `ema` picks the EMA weights when the checkpoint has them.
    public init(path: String, ema: Bool = true) throws {
        let saved = try SavedModel(path: path, ema: ema)
        config = try saved.config(LMTask.Config.self, family: .lm) { $0.decoder.problem }
        contextLength = saved.trainedContext(config.contextLength)
        tokenizer = try BPETokenizer.decode(Foundation.Data(config.tokenizer.utf8), name: "the tokenizer in \(path)'s config.json")
        lm = DecoderLM(vocab: config.vocab, config: config.decoder, rng: RNG(seed: 0))
        do { try lm.load(saved.weights) } catch {
            throw RunError.checkpoint(saved.checkpoint.path, "\(error)")
        }
        lm.eval()
    }
}
