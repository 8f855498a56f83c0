// VQTokenizer and VectorQuantizer: nearest-code search against brute force, straight-through
// gradients, finite-difference checks of the codebook and commitment losses, dead-code restarts,
// EMA updates, usage statistics, shapes, and a tiny tokenizer whose loss falls under AdamW.
import Foundation
import Models
import NN
import Tensors
import TestSupport
import Testing

/// A VQ tokenizer small enough for tests: widths 8/16/16, 16 codes of dimension 4.
func tinyVQ(ema: Bool = false, restartAfterSteps: Int = 8, seed: UInt64 = 0) -> VQTokenizer {
    VQTokenizer(.init(channels: 8, downsample: 4, groups: 4, codebookSize: 16, codeDim: 4, ema: ema,
                      restartAfterSteps: restartAfterSteps), rng: RNG(seed: seed))
}

/// Trains `model` for `steps` AdamW steps (lr 3e-3, gradients clipped to 1) on `loss`; returns the
/// mean reconstruction loss of the first three steps and of the last three.
func trainBriefly<Codes>(_ model: Module, steps: Int, loss: () -> QuantizedLoss<Codes>) -> (first: Float, last: Float) {
    let optimizer = AdamW(model: model, lr: 3e-3, weightDecay: 0)
    var recon: [Float] = []
    for _ in 0..<steps {
        let l = loss()
        model.zeroGrad()
        l.total.backward()
        clipGradNorm(model.parameters(), maxNorm: 1)
        optimizer.update()
        recon.append(l.reconstruction.item)
    }
    return (recon.prefix(3).reduce(0, +) / 3, recon.suffix(3).reduce(0, +) / 3)
}

/// Brute-force nearest code of each row: full squared distances, first minimum.
private func bruteForceNearest(_ z: Tensor, _ codebook: Tensor) -> [Int32] {
    let (m, d, k) = (z.dim(0), z.dim(1), codebook.dim(0))
    let zs = z.scalars, cs = codebook.scalars
    return (0..<m).map { i in
        var best = Double.infinity, arg = 0
        for j in 0..<k {
            var dist = 0.0
            for t in 0..<d { let e = Double(zs[i * d + t]) - Double(cs[j * d + t]); dist += e * e }
            if dist < best { best = dist; arg = j }
        }
        return Int32(arg)
    }
}

@Suite struct VQTokenizerTests {
    @Test func nearestCodeMatchesBruteForce() {
        let vq = VectorQuantizer(codes: 37, dim: 5, rng: RNG(seed: 1))
        vq.codebook.assign(RNG(seed: 2).normal([37, 5]))
        let z = RNG(seed: 3).normal([200, 5], std: 1.5)
        let ids = vq.nearestCodes(z)
        #expect(ids.shape == [200] && ids.dtype == .int32)
        #expect(ids.intScalars == bruteForceNearest(z, vq.codebook))
        // A code vector itself maps to its own id.
        #expect(vq.nearestCodes(vq.codebook.copy()).intScalars == (0..<37).map { Int32($0) })
    }

    @Test func encodeDecodeShapes() {
        let vq = tinyVQ()
        vq.eval()
        let x = TestImages.batch(3, size: 16)
        let ids = vq.encode(x)
        #expect(ids.shape == [3, 4, 4] && ids.dtype == .int32)
        #expect(ids.intScalars.allSatisfy { $0 >= 0 && $0 < 16 })
        let y = withoutGrad { vq.decode(ids) }
        #expect(y.shape == [3, 3, 16, 16])
        // encode uses the same assignment as the loss's quantiser.
        let l = withoutGrad { vq.loss(x, rng: RNG(seed: 0)) }
        #expect(l.ids.intScalars == ids.intScalars)
    }

    @Test func straightThroughPassesGradientsToEncoder() {
        let x = randomInput([4, 3], seed: 5), q = RNG(seed: 6).normal([4, 3])
        let y = straightThrough(x, q)
        #expect(y.scalars == q.scalars)
        let r = RNG(seed: 7).normal([4, 3])
        (y * r).sum().backward()
        #expect(x.grad?.scalars == r.scalars)

        // Through the whole tokenizer: the reconstruction loss alone reaches the encoder.
        let vq = tinyVQ()
        vq.eval()
        let l = vq.loss(TestImages.batch(2, size: 16), rng: RNG(seed: 0))
        l.reconstruction.backward()
        let g = vq.encoder.convIn.weight.grad
        #expect(g != nil && g!.scalars.contains { $0 != 0 })
        #expect(vq.encoder.convOut.weight.grad!.scalars.contains { $0 != 0 })
        #expect(vq.quantizer.codebook.grad == nil)   // the codebook learns only from its own loss
    }

    @Test func codebookAndCommitmentLossGradients() {
        let vq = VectorQuantizer(codes: 6, dim: 3, rng: RNG(seed: 1))
        vq.codebook.assign(RNG(seed: 2).normal([6, 3]))
        vq.eval()
        let z = randomInput([2, 3, 2, 2], seed: 3, lo: -2, hi: 2)
        let rng = RNG(seed: 0)
        // d/d codebook of mean ‖sg(z) − e_id‖², and d/dz of mean ‖z − sg(e_id)‖².
        gradCheck([vq.codebook]) { _ in vq(z, rng: rng).codebookLoss }
        gradCheck([z]) { inputs in vq(inputs[0], rng: rng).commitmentLoss }
        // The total's codebook gradient is the codebook loss's alone (commitment stops it).
        vq.codebook.grad = nil
        vq(z, rng: rng).loss.backward()
        let total = vq.codebook.grad!.scalars
        vq.codebook.grad = nil
        vq(z, rng: rng).codebookLoss.backward()
        expectClose(total, vq.codebook.grad!.scalars, atol: 1e-7, rtol: 1e-6)
        // Commitment weight β = 0.25.
        let out = withoutGrad { vq(z, rng: rng) }
        #expect(abs(out.loss.item - (out.codebookLoss.item + 0.25 * out.commitmentLoss.item)) < 1e-6)
    }

    @Test func deadCodesAreRestartedFromEncoderOutputs() {
        let vq = VectorQuantizer(codes: 8, dim: 2, restartAfterSteps: 3, rng: RNG(seed: 1))
        // Codes 0 and 1 sit on the data; codes 2…7 are far away and never chosen.
        let far: [Float] = (0..<6).flatMap { j -> [Float] in [Float(100 + j), 100] }
        vq.codebook.assign(Tensor([0, 0, 1, 1] + far, shape: [8, 2]))
        let points: [Float] = [0.1, 0, 0.9, 1, 0, 0.2, 1.1, 0.9, 0.5, 0.4, 0.2, 0.1, 0.8, 0.8, 1, 0.1]
        let z = Tensor(points, shape: [1, 1, 8, 2]).permuted([0, 3, 1, 2])    // (1, 2, 1, 8): 8 vectors
        let rng = RNG(seed: 9)
        for step in 1...2 {
            let out = vq(z, rng: rng)
            #expect(Set(out.ids.intScalars).isSubset(of: [0, 1]))
            #expect(vq.idleSteps[2...].allSatisfy { $0 == step } && vq.restartCount == 0)
        }
        _ = vq(z, rng: rng)                                   // third idle step: restart
        #expect(vq.restartCount == 6)
        let rows = Set(stride(from: 0, to: 16, by: 2).map { [points[$0], points[$0 + 1]] })
        let book = vq.codebook.scalars
        for j in 2..<8 {
            #expect(rows.contains([book[2 * j], book[2 * j + 1]]), "code \(j) = \(book[2 * j]), \(book[2 * j + 1])")
        }
        // Revived codes now win some of the vectors.
        let ids = withoutGrad { vq.nearestCodes(Tensor(points, shape: [8, 2])) }.intScalars
        #expect(Set(ids).contains { $0 >= 2 })
        // Eval mode leaves the state alone.
        vq.eval()
        let before = vq.idleSteps
        for _ in 0..<5 { _ = vq(z, rng: rng) }
        #expect(vq.idleSteps == before && vq.restartCount == 6)
    }

    @Test func emaCodebookMovesToAssignedMeans() {
        let vq = VectorQuantizer(codes: 2, dim: 2, ema: true, emaDecay: 0.5, restartAfterSteps: 0, rng: RNG(seed: 1))
        vq.codebook.assign(Tensor([0, 0, 10, 10], shape: [2, 2]))
        vq.emaCodeSum!.assign(vq.codebook)
        #expect(!vq.codebook.requiresGrad)
        // Two vectors near code 0 with mean (1, 2); none near code 1.
        let z = Tensor([0.5, 1.5, 1.5, 2.5], shape: [1, 1, 2, 2]).permuted([0, 3, 1, 2])   // (1, 2, 1, 2)
        for _ in 0..<20 { _ = vq(z, rng: RNG(seed: 0)) }
        let book = vq.codebook.scalars
        #expect(abs(book[0] - 1) < 1e-2 && abs(book[1] - 2) < 1e-2, "code 0 = \(book[0]), \(book[1])")
        // The unused code only shrinks along its own direction (Laplace smoothing of a decaying N_k).
        #expect(book[2] == book[3] && book[2] > 0 && book[2] <= 10, "unused code 1 = \(book[2]), \(book[3])")
        #expect(withoutGrad { vq(z, rng: RNG(seed: 0)) }.codebookLoss.item == 0)
    }

    @Test func usageAndPerplexity() {
        let uniform = CodebookUsage(ids: Tensor(ints: (0..<64).map { Int32($0 % 8) }), codebookSize: 16)
        #expect(uniform.used == 8 && uniform.fraction == 0.5 && abs(uniform.perplexity - 8) < 1e-9)
        let single = CodebookUsage(counts: [0, 5, 0])
        #expect(single.used == 1 && abs(single.perplexity - 1) < 1e-12)
        let vq = tinyVQ()
        let usage = vq.codebookUsage(TestImages.batch(2, size: 16))
        #expect(usage.codebookSize == 16 && usage.used >= 1 && usage.used <= 16)
    }

    @Test(arguments: [false, true])
    func tinyVQTrainingLowersLoss(ema: Bool) {
        let vq = tinyVQ(ema: ema, seed: 3)
        let x = TestImages.batch(8, size: 16)
        let rng = RNG(seed: 4)
        let (first, last) = trainBriefly(vq, steps: 30) { vq.loss(x, rng: rng) }
        #expect(last < 0.7 * first, "reconstruction loss \(first) → \(last)")
        if !ema { #expect(vq.quantizer.restartCount > 0) }   // idle codes of the small uniform init
        #expect(vq.codebookUsage(x).used > 1)
    }
}
