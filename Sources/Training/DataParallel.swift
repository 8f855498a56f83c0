// Data-parallel steps for the Trainer: with N ranks and batch B each rank computes rows
// [r·B/N, (r+1)·B/N) of every global micro-batch, weights its mean loss by its share of the
// micro-batch's terms (tokens), or takes the share the task computed (a loss of several means),
// and the gradients are summed over ranks bucket by bucket while
// backward runs. The sum equals the single-process gradient of the same global batch up to float
// rounding, so the loss curve and resume behave as on one process. Not a launcher: mpirun is.
import Collective
import Foundation
import NN
import Tensors

public enum DataParallelError: Error, Equatable, CustomStringConvertible {
    case notShardable(String)
    case indivisibleBatch(batch: Int, ranks: Int)

    public var description: String {
        switch self {
        case .notShardable(let task):
            return "\(task) cannot split a micro-batch across ranks yet: run it without mpirun, or use a family whose task implements loss(microBatch:rows:rng:) (\(ModelFamily.names(with: .dataParallel)) do)"
        case .indivisibleBatch(let b, let n):
            return "train.batch_size \(b) is not divisible by the \(n) MPI ranks: pick a batch size that is a multiple of \(n)"
        }
    }
}

/// The Trainer's data-parallel state; inactive (every method a no-op) on a single process.
final class DataParallel {
    let communicator: Communicator
    let task: TrainingTask
    /// This rank's rows of each micro-batch.
    let rows: Range<Int>
    let gradAccum: Int
    let reducer: GradientReducer?
    var isActive: Bool { reducer != nil }

    init(trainer: Trainer) throws {
        communicator = trainer.communicator
        task = trainer.task
        gradAccum = max(trainer.recipe.train.gradAccum, 1)
        let b = trainer.recipe.train.batchSize, n = communicator.size, r = communicator.rank
        guard n > 1 else { rows = 0..<b; reducer = nil; return }
        guard b % n == 0 else { throw DataParallelError.indivisibleBatch(batch: b, ranks: n) }
        rows = (r * b / n)..<((r + 1) * b / n)
        reducer = GradientReducer(params: trainer.params.map(\.1), communicator: communicator)
        task.joinDataParallel(rows: rows, batchRows: b, communicator: communicator)
    }

    /// Rank 0's weights everywhere (they already agree when every rank built the model from the
    /// recipe seed or loaded the same checkpoint; this makes it a guarantee).
    func synchroniseWeights() { reducer?.broadcastParameters(root: 0) }

    /// Forward and backward of this rank's rows of micro-batch `index`. The loss is weighted by
    /// meanOver_rank / meanOver_all / gradAccum (or 1 / gradAccum when the task returns its
    /// share, `isShare`) so the summed gradients are the global mean's; the last micro-batch of a
    /// step reduces gradients as backward produces them. Adds this rank's weighted loss and parts
    /// to `lossSum`/`parts` (summed over ranks in `finishStep`) and returns the micro-batch's
    /// tokens, examples, FLOPs and real positions over all ranks (the last two nil when the task
    /// does not count them per batch).
    func accumulate(microBatch index: Int, rng: RNG, last: Bool, lossSum: inout Float, parts: inout [String: Float])
        throws -> (tokens: Int, examples: Int, flops: Double?, positions: Int?) {
        let r = try task.loss(microBatch: index, rows: rows, rng: rng)
        var counts = [Double(r.meanOver), Double(r.tokens), Double(r.examples), r.flops ?? 0, Double(r.positions ?? 0)]
        communicator.allreduceSum(&counts)
        let share = r.isShare ? 1 : counts[0] > 0 ? Float(Double(r.meanOver) / counts[0]) : 0
        let weight = share / Float(gradAccum)
        let scaled = r.total * weight
        if last {
            reducer!.beginRound()
            scaled.backward(onLeafReady: reducer!.gradientReady)
        } else {
            scaled.backward()
        }
        lossSum += r.total.item * weight
        for (k, v) in r.parts { parts[k, default: 0] += v * weight }
        return (Int(counts[1]), Int(counts[2]), r.flops == nil ? nil : counts[3], r.positions == nil ? nil : Int(counts[4]))
    }

    /// Waits for the gradient sums, then sums the step's loss and its parts over ranks.
    func finishStep(lossSum: inout Float, parts: inout [String: Float]) {
        guard let reducer else { return }
        reducer.finish()
        let keys = parts.keys.sorted()
        var values = [Double(lossSum)] + keys.map { Double(parts[$0]!) }
        communicator.allreduceSum(&values)
        lossSum = Float(values[0])
        for (i, k) in keys.enumerated() { parts[k] = Float(values[1 + i]) }
    }

    /// True on every rank when `flag` is true on any (a stop request reaches ranks at different
    /// steps; they must stop together).
    func anyRank(_ flag: Bool) -> Bool {
        guard isActive else { return flag }
        var v = [flag ? 1.0 : 0.0]
        communicator.allreduceSum(&v)
        return v[0] > 0
    }
}
