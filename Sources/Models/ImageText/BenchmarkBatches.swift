// One packed training micro-batch of a task, as `fusion-bench` needs it: the benchmark times the
// model step (forward, backward, optimizer) on a fixed batch the real data pipeline built, and
// hands the same shapes to its PyTorch twin. Not used by training itself.
import Data
import Modalities
import Training
import Tensors

extension TransfusionTask {
    /// Micro-batch `index` of the training stream (the batch `loss(microBatch:rng:)` would score).
    public func benchmarkBatch(index: Int = 0, rng: RNG)
        throws -> (input: TransfusionInput, targets: Tensor, spanTargets: [Modality: SpanTargets]) {
        let b = recipe.train.batchSize
        let x = try batch(world, firstRow: index * b, rows: b, rng: rng, training: true)
        return (x.input, x.targets, x.spanTargets)
    }
}

extension ChameleonTask {
    /// Micro-batch `index` of the training stream: ids and targets (B, T), the packed-document mask.
    public func benchmarkBatch(index: Int = 0, rng: RNG)
        throws -> (ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor) {
        let b = recipe.train.batchSize
        let x = try batch(world, firstRow: index * b, rows: b, rng: rng, training: true)
        return (x.ids, x.targets, x.mask, x.positions)
    }
}
