// Bucketed gradient allreduce for data parallelism (the DDP scheme): parameters are grouped
// into buckets of about `bucketBytes`, in reverse order because backward produces the last
// layers' gradients first; a bucket's non-blocking allreduce starts as soon as backward reports
// all of its gradients final, so communication overlaps the rest of backward.
// Not an optimizer: it only sums (or averages) `grad` over ranks.
import Foundation
import Tensors

/// Sums parameter gradients over a communicator's ranks, bucket by bucket.
///
/// ```swift
/// let reducer = GradientReducer(params: model.parameters(), communicator: comm)
/// model.zeroGrad()
/// reducer.beginRound()
/// loss.backward(onLeafReady: reducer.gradientReady)   // buckets start while backward runs
/// reducer.finish(average: true)                       // every rank now holds the mean gradient
/// optimizer.update()
/// ```
public final class GradientReducer {
    public let communicator: Communicator
    public let params: [Tensor]
    /// Seconds spent blocked in `finish` waiting for reductions (communication not overlapped).
    public private(set) var waitSeconds = 0.0

    final class Bucket {
        let members: [Int]         // indices into params
        let offsets: [Int]         // start of each member in buffer
        let count: Int
        let buffer: UnsafeMutablePointer<Float>
        var waiting = 0            // members not yet reported ready this round
        var hadGrad: [Bool]
        var reduction: PendingReduction?

        init(members: [Int], sizes: [Int]) {
            self.members = members
            var o = 0
            offsets = sizes.map { s in defer { o += s }; return o }
            count = o
            buffer = .allocate(capacity: max(o, 1))
            hadGrad = Array(repeating: false, count: members.count)
        }
        deinit { buffer.deallocate() }
    }

    let buckets: [Bucket]
    /// param identity → (bucket, slot)
    let place: [ObjectIdentifier: (Int, Int)]
    var started: [Int] = []

    /// Groups `params` into buckets of at most `bucketBytes` (a parameter larger than that gets
    /// a bucket of its own).
    public init(params: [Tensor], communicator: Communicator, bucketBytes: Int = 4 << 20) {
        self.params = params
        self.communicator = communicator
        var buckets: [Bucket] = [], place: [ObjectIdentifier: (Int, Int)] = [:]
        var members: [Int] = [], sizes: [Int] = []
        func close() {
            guard !members.isEmpty else { return }
            for (slot, i) in members.enumerated() { place[ObjectIdentifier(params[i])] = (buckets.count, slot) }
            buckets.append(Bucket(members: members, sizes: sizes))
            members = []; sizes = []
        }
        for i in params.indices.reversed() {
            if !members.isEmpty && (sizes.reduce(0, +) + params[i].count) * 4 > bucketBytes { close() }
            members.append(i); sizes.append(params[i].count)
        }
        close()
        self.buckets = buckets
        self.place = place
    }

    /// How many buckets the parameters were grouped into.
    public var bucketCount: Int { buckets.count }

    /// Starts a round: call before the backward whose gradients are to be reduced.
    public func beginRound() {
        for b in buckets { b.waiting = b.members.count; b.reduction = nil }
        started = []
    }

    /// Reports that backward has finished `param`'s gradient; starts its bucket's allreduce
    /// once the whole bucket is ready. Tensors that are not managed parameters are ignored.
    public func gradientReady(_ param: Tensor) {
        guard let (bi, _) = place[ObjectIdentifier(param)] else { return }
        let b = buckets[bi]
        b.waiting -= 1
        if b.waiting == 0 { start(bi) }
        // Let MPI move data of buckets already in flight.
        for i in started.suffix(2) { _ = buckets[i].reduction?.test() }
    }

    private func start(_ bi: Int) {
        let b = buckets[bi]
        guard b.reduction == nil else { return }
        for (slot, i) in b.members.enumerated() {
            let dst = b.buffer + b.offsets[slot], n = params[i].count
            if let g = params[i].grad {
                dst.update(from: g.data, count: n); b.hadGrad[slot] = true
            } else {
                dst.update(repeating: 0, count: n); b.hadGrad[slot] = false
            }
        }
        b.reduction = communicator.startAllreduceSum(b.buffer, count: b.count)
        started.append(bi)
    }

    /// Starts the buckets backward did not complete (parameters it never reached), waits for
    /// every reduction and writes the sums — divided by the rank count with `average` — back
    /// into `grad`. A parameter without a gradient on this rank keeps none.
    public func finish(average: Bool = false) {
        for bi in buckets.indices where buckets[bi].reduction == nil { start(bi) }
        let t0 = Date()
        for b in buckets { b.reduction!.wait() }
        waitSeconds += Date().timeIntervalSince(t0)
        let scale = average ? 1 / Float(communicator.size) : 1
        for b in buckets {
            for (slot, i) in b.members.enumerated() where b.hadGrad[slot] {
                let g = params[i].grad!, src = b.buffer + b.offsets[slot]
                if scale == 1 { g.data.update(from: src, count: g.count) } else {
                    for k in 0..<g.count { g.data[k] = src[k] * scale }
                }
            }
        }
    }

    /// Copies every parameter's values from rank `root` to all ranks (identical starting weights).
    public func broadcastParameters(root: Int = 0) {
        for p in params { communicator.broadcast(UnsafeMutableRawPointer(p.data), bytes: p.count * 4, root: root) }
    }
}
