// The reference decoder training step of DESIGN.md ("Performance"): forward, backward and AdamW
// for d=256, 6 layers, 4 heads, T=128, batch 16, vocab 512, SwiGLU 4d, causal attention; and the
// same step data-parallel under MPI, each rank taking 16/N rows, gradients summed by bucketed
// allreduce. Twin: bench/torch_decoder.py.
import Collective
import Foundation
import Models
import NN
import Tensors

func benchDecoder(steps: Int) {
    let (b, t, vocab) = (16, 128, 512)
    let config = DecoderConfig(dim: 256, layers: 6, heads: 4, mlpHidden: 1024)
    let rng = RNG(seed: 0)
    let model = DecoderLM(vocab: vocab, config: config, rng: rng)
    model.decoder.initialise(rng: rng)
    let opt = AdamW(model: model, lr: 3e-4, weightDecay: 0.1)
    let ids = rng.integers([b, t], below: vocab), targets = rng.integers([b, t], below: vocab)
    let mask = AttentionMask.causal(batch: b, queries: t)
    let positions = Tensor(ints: (0..<t).map { Int32($0) })
    var lastLoss: Float = 0
    let step = {
        model.zeroGrad()
        let loss = model.loss(ids, targets: targets, mask: mask, positions: positions)
        loss.backward()
        opt.update()
        lastLoss = loss.item
    }
    let (s, memory) = measuringMemory { time(warmup: 2, repeats: steps, step) }
    // Phase split of one more step: forward (loss), backward, optimizer.
    model.zeroGrad()
    var t0 = now()
    let loss = model.loss(ids, targets: targets, mask: mask, positions: positions)
    let fwd = now() - t0
    t0 = now(); loss.backward(); let bwd = now() - t0
    t0 = now(); opt.update(); let upd = now() - t0
    let flops = model.trainingFlops(tokens: b * t, attended: Double(t + 1) / 2)
    print(String(format: "decoder-step d=256 L=6 H=4 T=128 B=16 V=512 swiglu=4d adamw  step %.1f ms  %.0f tokens/s  %.1f GFLOP/s  (%.1f GFLOP/step, peak tensors %.0f MiB, peak RSS %.0f MiB, loss %.3f)",
                 s * 1e3, Double(b * t) / s, flops / s / 1e9, flops / 1e9, memory["peak_alloc_mib"]!, memory["peak_rss_mib"]!, lastLoss))
    print(String(format: "decoder-step phases  forward %.0f ms  backward %.0f ms  adamw %.0f ms", fwd * 1e3, bwd * 1e3, upd * 1e3))
    report("decoder-step", memory.merging(["ms": s * 1e3, "gflops": flops / s / 1e9, "flops": flops,
                                           "forward_ms": fwd * 1e3, "backward_ms": bwd * 1e3, "adamw_ms": upd * 1e3]) { $1 })
}

/// Times a data-parallel step: two warm-up steps, then `steps` timed ones, each started together
/// on every rank (a barrier first). Returns the median seconds and the mean allreduce wait per step.
func timeRanks(_ comm: Communicator, _ reducer: GradientReducer, steps: Int, _ step: () -> Void) -> (seconds: Double, wait: Double) {
    for _ in 0..<2 { comm.barrier(); step() }
    let waitBefore = reducer.waitSeconds
    var times: [Double] = []
    for _ in 0..<steps { comm.barrier(); let t0 = now(); step(); times.append(now() - t0) }
    return (median(times), (reducer.waitSeconds - waitBefore) / Double(steps))
}

func benchDecoderDataParallel(steps: Int) throws {
    let comm = try Collective.fromEnvironment()
    let (b, t, vocab) = (16, 128, 512)
    precondition(b % comm.size == 0, "decoder-dp: batch \(b) is not divisible by \(comm.size) ranks")
    let rows = b / comm.size
    let config = DecoderConfig(dim: 256, layers: 6, heads: 4, mlpHidden: 1024)
    let rng = RNG(seed: 0)
    let model = DecoderLM(vocab: vocab, config: config, rng: rng)
    model.decoder.initialise(rng: rng)
    let opt = AdamW(model: model, lr: 3e-4, weightDecay: 0.1)
    // The global batch, of which this rank takes rows [rank·B/N, (rank+1)·B/N).
    let allIds = rng.integers([b, t], below: vocab).intScalars, allTargets = rng.integers([b, t], below: vocab).intScalars
    let share = (comm.rank * rows * t)..<((comm.rank + 1) * rows * t)
    let ids = Tensor(ints: Array(allIds[share]), shape: [rows, t])        // (B/N, T)
    let targets = Tensor(ints: Array(allTargets[share]), shape: [rows, t])
    let mask = AttentionMask.causal(batch: rows, queries: t)
    let positions = Tensor(ints: (0..<t).map { Int32($0) })
    let reducer = GradientReducer(params: model.parameters(), communicator: comm)
    var lastLoss: Float = 0
    let step = {
        model.zeroGrad()
        let loss = model.loss(ids, targets: targets, mask: mask, positions: positions)
        reducer.beginRound()
        loss.backward(onLeafReady: reducer.gradientReady)
        reducer.finish(average: true)   // equal token counts per rank: the mean of means is the global mean
        opt.update()
        var l = [loss.item]; comm.allreduceSum(&l)
        lastLoss = l[0] / Float(comm.size)
    }
    let (s, wait) = timeRanks(comm, reducer, steps: steps, step)
    // The communication alone: one blocking allreduce of every gradient, ranks started together.
    let gradients = model.parameters().map(\.count).reduce(0, +)
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: gradients)
    buffer.initialize(repeating: 1, count: gradients)
    let allreduce = median((0..<5).map { _ in comm.barrier(); let t0 = now(); comm.allreduceSum(buffer, count: gradients); return now() - t0 })
    buffer.deallocate()
    if comm.rank == 0 {
        let flops = model.trainingFlops(tokens: b * t, attended: Double(t + 1) / 2)
        print(String(format: "decoder-step-dp ranks=%d threads/rank=%d d=256 L=6 H=4 T=128 B=%d (%d/rank) V=512  step %.1f ms  %.0f tokens/s  %.1f GFLOP/s  (allreduce wait %.1f ms/step in %d buckets, loss %.3f)",
                     comm.size, Parallel.threads, b, rows, s * 1e3, Double(b * t) / s, flops / s / 1e9,
                     wait * 1e3, reducer.bucketCount, lastLoss))
        print(String(format: "decoder-step-dp ranks=%d allreduce of all gradients (%.1f MB) %.1f ms", comm.size,
                     Double(gradients * 4) / 1e6, allreduce * 1e3))
    }
    comm.finalize()
}
