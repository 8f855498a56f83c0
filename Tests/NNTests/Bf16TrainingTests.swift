// Mixed-precision training (bf16 products, fp32 everything else) follows the fp32 loss curve.
import Testing
import Models
import NN
import Tensors

@Suite(.enabled(if: MatmulPrecision.bf16Available, "needs a CPU with AVX512-BF16"))
struct Bf16TrainingTests {
    /// The same seed and batches, 40 AdamW steps of a small decoder on a learnable sequence
    /// task: the bf16 run's loss stays within 2% of the fp32 run's at every step, and both learn.
    @Test func decoderLossCurveMatchesFP32() {
        func curve(_ precision: MatmulPrecision) -> [Float] {
            let (b, t, vocab) = (8, 32, 64)
            let rng = RNG(seed: 0)
            let model = DecoderLM(vocab: vocab, config: DecoderConfig(dim: 64, layers: 2, heads: 2, mlpHidden: 192), rng: rng)
            model.decoder.initialise(rng: rng)
            let opt = AdamW(model: model, lr: 3e-3, weightDecay: 0.1)
            // Each row counts up from a random start: the next token is the current one plus one.
            var inputs: [Int32] = [], next: [Int32] = []
            for start in rng.integers([b], below: vocab).intScalars {
                for i in 0..<t {
                    inputs.append(Int32((Int(start) + i) % vocab))
                    next.append(Int32((Int(start) + i + 1) % vocab))
                }
            }
            let ids = Tensor(ints: inputs, shape: [b, t]), targets = Tensor(ints: next, shape: [b, t])
            let mask = AttentionMask.causal(batch: b, queries: t)
            let positions = Tensor(ints: (0..<t).map { Int32($0) })
            return MatmulPrecision.with(precision) {
                (0..<40).map { _ in
                    model.zeroGrad()
                    let loss = model.loss(ids, targets: targets, mask: mask, positions: positions)
                    loss.backward()
                    opt.update()
                    return loss.item
                }
            }
        }
        let exact = curve(.fp32), rounded = curve(.bf16)
        for (step, (e, r)) in zip(exact, rounded).enumerated() {
            #expect(abs(e - r) <= 0.02 * e, "step \(step): fp32 \(e), bf16 \(r)")
        }
        #expect(exact.last! < 0.5 * exact.first! && rounded.last! < 0.5 * rounded.first!,
                "both runs should learn: fp32 \(exact.first!) → \(exact.last!), bf16 \(rounded.first!) → \(rounded.last!)")
    }
}
