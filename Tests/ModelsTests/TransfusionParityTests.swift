// Parity with the PyTorch reference (Tests/Fixtures/make_transfusion_reference.py): the mixed-modal
// forward (hidden states and image predictions), both loss parts and every parameter gradient of a
// small Transfusion with the linear patchifier, on a packed batch of two rows (caption-first,
// text-only and image-first documents); and the same for a model with the U-Net patchifier and
// audio spans (an image-first document followed by speech). The reference runs in float64; Fusion
// runs float32.
import Data
import Foundation
import Modalities
import Models
import NN
import Tensors
import TestSupport
import Testing

@Suite struct TransfusionParityTests {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/transfusion_reference.safetensors")

    @Test func forwardLossAndGradientsMatchPyTorch() throws {
        let fixture = try Safetensors.read(Self.url).tensors
        func get(_ name: String) throws -> Tensor {
            guard let t = fixture[name] else { throw FixtureError(description: "\(Self.url.lastPathComponent) has no tensor \(name)") }
            return t
        }
        let config = TransfusionConfig(vocab: 40, decoder: DecoderConfig(dim: 32, layers: 2, heads: 4, mlpHidden: 48),
                                       latentChannels: 2, latentSize: 4, patchSize: 2)
        let model = Transfusion(config, rng: RNG(seed: 0))
        let weights = Dictionary(uniqueKeysWithValues: fixture.filter { $0.key.hasPrefix("weight.") }
            .map { (String($0.key.dropFirst(7)), $0.value) })
        try model.load(weights)

        let ids = try get("ids")
        let mask = try AttentionMask(documents: try get("documents").intScalars.chunked(16),
                                     spans: try get("spans").intScalars.chunked(16))
        let input = TransfusionInput(ids: ids, positions: try get("positions"), mask: mask,
                                     spans: [.image: try spanBatch(get, "latents", "timesteps", "span_starts")])
        let out = withoutGrad { model(input) }
        expectClose(out.hidden.scalars, try get("hidden").scalars, atol: 2e-5, rtol: 1e-4)
        expectClose(out.images!.scalars, try get("images").scalars, atol: 2e-5, rtol: 1e-4)

        let loss = model.loss(input, targets: try get("targets"),
                              spanTargets: [.image: SpanTargets(try get("image_targets"), weight: 5)])
        expectClose([loss.total.item, loss.text.item, loss.spans[.image]!.item], try get("loss").scalars, atol: 1e-5, rtol: 1e-5)
        loss.total.backward()
        expectGradients(model, fixture, weights: weights.count)
    }
}

extension TransfusionParityTests {
    /// The U-Net patchifier (stem, a down block with its timestep-conditioned ResBlock, an up block
    /// with the skip, GroupNorm, output conv) and audio spans (linear in and out, learned in-span
    /// positions, the shared timestep embedding), against Tests/Fixtures/make_transfusion_reference.py.
    @Test func unetAndAudioSpansMatchPyTorch() throws {
        let url = TransfusionParityTests.url.deletingLastPathComponent().appendingPathComponent("transfusion_unet_audio_reference.safetensors")
        let fixture = try Safetensors.read(url).tensors
        func get(_ name: String) throws -> Tensor {
            guard let t = fixture[name] else { throw FixtureError(description: "\(url.lastPathComponent) has no tensor \(name)") }
            return t
        }
        let config = TransfusionConfig(vocab: 40, decoder: DecoderConfig(dim: 32, layers: 2, heads: 4, mlpHidden: 48),
                                       latentChannels: 2, latentSize: 4, patchSize: 2, patchifier: .unet, unetChannels: 16,
                                       audioDim: 5, audioLength: 3)
        let model = Transfusion(config, rng: RNG(seed: 0))
        let weights = Dictionary(uniqueKeysWithValues: fixture.filter { $0.key.hasPrefix("weight.") }
            .map { (String($0.key.dropFirst(7)), $0.value) })
        try model.load(weights)

        let mask = try AttentionMask(documents: try get("documents").intScalars.chunked(16), spans: try get("spans").intScalars.chunked(16))
        let input = TransfusionInput(ids: try get("ids"), positions: try get("positions"), mask: mask,
                                     spans: [.image: try spanBatch(get, "latents", "timesteps", "span_starts"),
                                             .audio: try spanBatch(get, "audio", "audio_timesteps", "audio_starts")])
        let out = withoutGrad { model(input) }
        expectClose(out.hidden.scalars, try get("hidden").scalars, atol: 2e-5, rtol: 1e-4)
        expectClose(out.images!.scalars, try get("images").scalars, atol: 2e-5, rtol: 1e-4)
        expectClose(out.audio!.scalars, try get("speech").scalars, atol: 2e-5, rtol: 1e-4)

        let loss = model.loss(input, targets: try get("targets"),
                              spanTargets: [.image: SpanTargets(try get("image_targets"), weight: 5),
                                            .audio: SpanTargets(try get("audio_targets"), weight: 5)])
        expectClose([loss.total.item, loss.text.item, loss.spans[.image]!.item, loss.spans[.audio]!.item], try get("loss").scalars,
                    atol: 1e-5, rtol: 1e-5)
        loss.total.backward()
        expectGradients(model, fixture, weights: weights.count)
    }
}

/// A fixture's spans of one modality: their values, timesteps and starts, read by `get`.
private func spanBatch(_ get: (String) throws -> Tensor, _ values: String, _ timesteps: String, _ starts: String) throws -> SpanBatch {
    SpanBatch(try get(values), timesteps: try get(timesteps).scalars, starts: try get(starts).intScalars.map(Int.init))
}

/// Every parameter of `model` has a gradient within 1e-5 + 1e-4·scale of the fixture's
/// "grad.<name>", and the model has as many parameters as the fixture has weights.
private func expectGradients(_ model: Module, _ fixture: [String: Tensor], weights: Int,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    let params = model.namedParameters()
    #expect(params.count == weights, sourceLocation: sourceLocation)
    for (name, p) in params {
        guard let g = p.grad, let r = fixture["grad." + name] else {
            Issue.record("no gradient for \(name)", sourceLocation: sourceLocation)
            continue
        }
        let scale = r.scalars.map(abs).max() ?? 0
        let worst = zip(g.scalars, r.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-5 + 1e-4 * scale, "\(name): max |Δ| \(worst), reference scale \(scale)", sourceLocation: sourceLocation)
    }
}

extension Array where Element == Int32 {
    fileprivate func chunked(_ n: Int) -> [[Int32]] { stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) } }
}
