// Parity with the PyTorch reference (Tests/Fixtures/make_tokenizer_reference.py): the ImageVAE's
// posterior, decoded images, losses and every parameter gradient; the VQTokenizer's code ids,
// decoded images, losses and gradients (straight-through, codebook, commitment), on the same
// weights and inputs. The reference runs in float64; Fusion runs float32.
import Foundation
import Models
import NN
import Tensors
import TestSupport
import Testing

private enum TokenizerFixture {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizer_reference.safetensors")
    static let tensors: [String: Tensor] = (try? Safetensors.read(url).tensors) ?? [:]

    /// A missing fixture or tensor fails the test that asks for it (it used to trap the whole run).
    static func get(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else {
            throw FixtureError(description: tensors.isEmpty ? "the tokenizer fixture \(url.path) is missing or unreadable "
                                   + "(make it with Tests/Fixtures/make_tokenizer_reference.py)"
                               : "the tokenizer fixture has no tensor \(name) (\(url.path))")
        }
        return t
    }

    /// The tensors under "<prefix>." with the prefix removed.
    static func group(_ prefix: String) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: tensors.filter { $0.key.hasPrefix(prefix + ".") }
            .map { (String($0.key.dropFirst(prefix.count + 1)), $0.value) })
    }
}

/// Each parameter's gradient against the reference, relative to the largest reference entry.
private func expectGradientsMatch(_ model: Module, _ prefix: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let reference = TokenizerFixture.group(prefix + ".grad")
    #expect(reference.count == model.namedParameters().count, sourceLocation: sourceLocation)
    for (name, p) in model.namedParameters() {
        guard let g = p.grad, let r = reference[name] else {
            Issue.record("no gradient for \(name)", sourceLocation: sourceLocation)
            continue
        }
        let scale = r.scalars.map(abs).max() ?? 0
        let worst = zip(g.scalars, r.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-4 + 1e-3 * scale, "\(name): max |Δ| \(worst), reference scale \(scale)",
                sourceLocation: sourceLocation)
    }
}

@Suite struct TokenizerParityTests {
    @Test func imageVAEMatchesPyTorch() throws {
        let vae = ImageVAE(.init(channels: 4, latentChannels: 4, downsample: 4, groups: 4, klWeight: 0.1,
                                 reconstruction: .l1), rng: RNG(seed: 0))
        try vae.load(TokenizerFixture.group("vae.weight"))
        let x = try TokenizerFixture.get("vae.images"), eps = try TokenizerFixture.get("vae.noise")
        let (mean, logvar) = withoutGrad { vae.posterior(x) }
        expectClose(mean.scalars, try TokenizerFixture.get("vae.mean").scalars, atol: 1e-5, rtol: 1e-4)
        expectClose(logvar.scalars, try TokenizerFixture.get("vae.logvar").scalars, atol: 1e-5, rtol: 1e-4)
        let decoded = withoutGrad { vae.decoder(mean + (logvar * 0.5).exp() * eps) }
        expectClose(decoded.scalars, try TokenizerFixture.get("vae.decoded").scalars, atol: 1e-5, rtol: 1e-4)

        let (total, recon, kl) = vae.loss(x, noise: eps)
        expectClose([total.item, recon.item, kl.item], try TokenizerFixture.get("vae.loss").scalars, atol: 1e-6, rtol: 1e-5)
        total.backward()
        expectGradientsMatch(vae, "vae")
    }

    @Test func vqTokenizerMatchesPyTorch() throws {
        let vq = VQTokenizer(.init(channels: 4, channelMultipliers: [1, 2], patchSize: 2, downsample: 4, groups: 4,
                                   codebookSize: 16, codeDim: 4, reconstruction: .mse), rng: RNG(seed: 0))
        try vq.load(TokenizerFixture.group("vq.weight"))
        vq.eval()  // no EMA, restarts or idle counters: the loss alone
        let x = try TokenizerFixture.get("vq.images")
        let ids = vq.encode(x)
        let referenceIDs = try TokenizerFixture.get("vq.ids").intScalars
        #expect(ids.shape == [2, 4, 4] && ids.intScalars == referenceIDs)
        let decoded = withoutGrad { vq.decode(ids) }
        expectClose(decoded.scalars, try TokenizerFixture.get("vq.decoded").scalars, atol: 1e-5, rtol: 1e-4)

        let l = vq.loss(x, rng: RNG(seed: 0))
        expectClose([l.total.item, l.reconstruction.item, l.codebook.item, l.commitment.item],
                    try TokenizerFixture.get("vq.loss").scalars, atol: 1e-6, rtol: 1e-5)
        l.total.backward()
        expectGradientsMatch(vq, "vq")
    }
}

struct FixtureError: Error, CustomStringConvertible { let description: String }
