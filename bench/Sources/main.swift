// fusion-bench: the numbers `make bench` prints, one line per benchmark with its config.
// GEMM throughput of OpenBLAS at 256/512/1024, then the reference decoder training step of
// DESIGN.md ("Performance"): forward, backward and AdamW for d=256, 6 layers, 4 heads, T=128,
// batch 16, vocab 512, SwiGLU 4d, causal attention. Figures are medians over timed repeats.
import Foundation
import NN
import Tensors

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

/// Times `body` `repeats` times after `warmup` runs; returns the median seconds.
func time(warmup: Int = 2, repeats: Int = 7, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    return median((0..<repeats).map { _ in let t = now(); body(); return now() - t })
}

let args = CommandLine.arguments.dropFirst()
let only = args.first { !$0.hasPrefix("-") }
let steps = args.first { $0.hasPrefix("--steps=") }.flatMap { Int($0.dropFirst(8)) } ?? 10
print("threads=\(Parallel.threads)")

// MARK: GEMM
if only == nil || only == "gemm" {
    for n in [256, 512, 1024] {
        let a = RNG(seed: 1).normal([n, n]), b = RNG(seed: 2).normal([n, n]), c = Tensor.empty([n, n])
        let reps = n <= 256 ? 200 : n <= 512 ? 40 : 8
        let s = time { for _ in 0..<reps { sgemm(transA: false, transB: false, m: n, n: n, k: n, a.data, lda: n, b.data, ldb: n, c.data, ldc: n) } }
        let gflops = 2.0 * Double(n * n * n) * Double(reps) / s / 1e9
        print(String(format: "gemm n=%d  %.1f GFLOP/s", n, gflops))
    }
}

// MARK: Reference decoder step
if only == nil || only == "decoder" {
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
    Allocator.shared.resetPeak()
    let s = time(warmup: 2, repeats: steps, step)
    // Phase split of one more step: forward (loss), backward, optimizer.
    model.zeroGrad()
    var t0 = now()
    let loss = model.loss(ids, targets: targets, mask: mask, positions: positions)
    let fwd = now() - t0
    t0 = now(); loss.backward(); let bwd = now() - t0
    t0 = now(); opt.update(); let upd = now() - t0
    let flops = model.trainingFlops(tokens: b * t, attended: Double(t + 1) / 2)
    print(String(format: "decoder-step d=256 L=6 H=4 T=128 B=16 V=512 swiglu=4d adamw  step %.1f ms  %.0f tokens/s  %.1f GFLOP/s  (%.1f GFLOP/step, peak tensors %.0f MiB, loss %.3f)",
                 s * 1e3, Double(b * t) / s, flops / s / 1e9, flops / 1e9,
                 Double(Allocator.shared.peakLiveBytes) / 1048576, lastLoss))
    print(String(format: "decoder-step phases  forward %.0f ms  backward %.0f ms  adamw %.0f ms", fwd * 1e3, bwd * 1e3, upd * 1e3))
}
