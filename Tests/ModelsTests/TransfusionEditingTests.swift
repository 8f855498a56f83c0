// Editing with a Transfusion model: inversion then regeneration with the same prompt reconstructs
// the source latents (flow and DDIM), instruction edits condition on the cached source image, image
// guidance at scale 1 is a no-op, and clean spans can be left out of the diffusion loss.
import Diffusion
import Data
import Foundation
import Modalities
import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

private func editConfig() -> TransfusionConfig {
    TransfusionConfig(vocab: 24, decoder: DecoderConfig(dim: 16, layers: 2, heads: 2), latentChannels: 2, latentSize: 4,
                      patchSize: 2, timestepScale: 1000)
}

/// A randomly initialised model whose output layer is not zero (an untrained model predicting 0
/// would make every round trip exact).
private func randomModel(_ config: TransfusionConfig = editConfig()) -> Transfusion {
    let m = Transfusion(config, rng: RNG(seed: 3))
    m.initialise(rng: RNG(seed: 4))
    RNG(seed: 5).fillNormal(m.image.output.weight.data, m.image.output.weight.count, std: 0.3)
    return m
}

private func rms(_ a: Tensor, _ b: Tensor) -> Double {
    let d = (a - b).scalars
    return (d.map { Double($0) * Double($0) }.reduce(0, +) / Double(d.count)).squareRoot()
}

@Suite struct TransfusionEditingTests {
    let prompt: [Int32] = [SpecialTokens.bos, 10, 11]

    @Test func flowInversionThenRegenerationReconstructsTheLatents() {
        // The deterministic Euler ODE, inverted on the same 50 nodes with 2 fixed-point refinements
        // per step, is inverted up to the iteration's residual: each refinement multiplies the step's
        // error by about h·Lip(v) (h = 1/50), so what is left is orders below the classic inversion's
        // O(h) error. Bound: RMS < 1e-3 on unit-variance latents (Float32 round-off is ~1e-6).
        let model = randomModel()
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(flow: FlowSchedule()), sampler: .euler, steps: 50,
                                           cfgScale: 1)
        let x0 = RNG(seed: 7).normal([2, 2, 4, 4])
        func roundTrip(_ refinements: Int, steps: Int = 50) -> Double {
            var o = options
            o.steps = steps
            let noise = model.invert(latents: x0, prompt: prompt, options: o, refinements: refinements)
            return rms(model.sampleImages(prompt: prompt, noise: noise, options: o, rng: RNG(seed: 0)), x0)
        }
        let classic = roundTrip(0), classic200 = roundTrip(0, steps: 200), refined = roundTrip(2)
        print("Transfusion flow inversion RMS: classic 50 \(classic), classic 200 \(classic200), refined 50 \(refined)")
        #expect(refined < 1e-3)
        #expect(classic200 < 0.5 * classic, "first order: 4× the steps, at least 2× less error")
        #expect(refined < 0.1 * classic)
        // inversionEdit with the same prompt on both sides is that round trip.
        let same = model.inversionEdit(latents: x0, sourcePrompt: prompt, targetPrompt: prompt, options: options)
        #expect(rms(same, x0) < 1e-3)
    }

    @Test func ddimInversionThenRegenerationReconstructsTheLatents() {
        // v-prediction on the cosine schedule (x̂0 and ε̂ without dividing by a vanishing √ᾱ, which
        // makes an untrained ε-network's round trip blow up): the noisiest DDIM steps contract
        // poorly (as in DDIMInversion's own test), so the bound is looser than for flow.
        var config = editConfig()
        config.timestepScale = 1
        let model = randomModel(config)
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(), target: .v), sampler: .ddim,
                                           steps: 50, cfgScale: 1, clipX0: nil)
        let x0 = RNG(seed: 8).normal([2, 2, 4, 4])
        let back = model.inversionEdit(latents: x0, sourcePrompt: prompt, targetPrompt: prompt, options: options,
                                       refinements: 3)
        print("Transfusion DDIM (v) inversion RMS, 3 refinements: \(rms(back, x0))")
        #expect(rms(back, x0) < 0.05)
    }

    @Test func instructionEditsDependOnTheSourceAndImageGuidanceOneIsANoOp() {
        let model = randomModel()
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(flow: FlowSchedule()), sampler: .euler, steps: 4)
        let a = RNG(seed: 9).normal([1, 2, 4, 4]), b = RNG(seed: 10).normal([1, 2, 4, 4])
        func edit(_ source: Tensor, _ guidance: EditGuidance) -> Tensor {
            model.sampleEdit(source: source, instruction: [12, 13], count: 2, options: options, guidance: guidance,
                             rng: RNG(seed: 11))
        }
        let plain = edit(a, EditGuidance(textScale: 3))
        #expect(plain.shape == [2, 2, 4, 4])
        #expect(rms(plain, edit(b, EditGuidance(textScale: 3))) > 1e-5, "the cached source image conditions the edit")
        expectClose(edit(a, EditGuidance(textScale: 3, imageScale: 1)).scalars, plain.scalars, atol: 1e-5, rtol: 1e-5)
        #expect(rms(edit(a, EditGuidance(textScale: 3, imageScale: 2)), plain) > 1e-4, "image guidance changes it")
    }

    @Test func unscoredSpansCarryNoDiffusionLoss() {
        // Two spans in one row; scoring only the second equals the MSE on its rows alone.
        let config = editConfig(), np = config.patchesPerImage
        let model = randomModel()
        let ids: [Int32] = [SpecialTokens.bos, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
            + [SpecialTokens.eoi, 12, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
            + [SpecialTokens.eoi, SpecialTokens.eos]
        let spans: [Int32] = [-1, -1] + [Int32](repeating: 0, count: np) + [-1, -1, -1]
            + [Int32](repeating: 1, count: np) + [-1, -1]
        let input = TransfusionInput(ids: Tensor(ints: ids, shape: [1, ids.count]),
                                     positions: Tensor(ints: (0..<ids.count).map { Int32($0) }),
                                     mask: try! AttentionMask(documents: [[Int32](repeating: 0, count: ids.count)], spans: [spans]),
                                     spans: [.image: SpanBatch(RNG(seed: 12).normal([2, 2, 4, 4]), timesteps: [0, 0.5],
                                                               starts: [2, np + 5])])
        let target = RNG(seed: 13).normal([1, 2, 4, 4])
        let targets = Tensor(ints: [Int32](repeating: -1, count: ids.count))
        let scored = model.loss(input, targets: targets, spanTargets: [.image: SpanTargets(target, scored: [1], weight: 1)])
        let predicted = model(input).images!.slice(axis: 0, 1..<2)
        #expect(abs(scored.spans[.image]!.item - mse(predicted, target).item) < 1e-6)
    }
}
