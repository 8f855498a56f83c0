// ImageVAE: shapes for 4× and 8× downsampling, the latent scale, the loss parts, the L1 loss's
// gradient, a checkpoint round trip, and a tiny model whose loss falls under AdamW.
// Not a quality test: TokenizerTraining measures PSNR on ShapesWorld.
import Foundation
import Media
import Models
import NN
import Tensors
import TestSupport
import Testing

/// A VAE small enough for tests: widths 8/16/16 (4×) or 8/16/16/16 (8×).
func tinyVAE(downsample: Int = 4, seed: UInt64 = 0) -> ImageVAE {
    ImageVAE(.init(channels: 8, latentChannels: 4, downsample: downsample, groups: 4), rng: RNG(seed: seed))
}

/// Mean and variance of all elements.
func moments(_ t: Tensor) -> (mean: Double, variance: Double) {
    let s = t.scalars.map(Double.init)
    let m = s.reduce(0, +) / Double(s.count)
    return (m, s.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(s.count))
}

@Suite struct ImageVAETests {
    @Test(arguments: [4, 8])
    func encodeDecodeShapes(downsample: Int) {
        let vae = tinyVAE(downsample: downsample)
        let x = TestImages.batch(2, size: 16)
        let z = withoutGrad { vae.encode(x) }
        #expect(z.shape == [2, 4, 16 / downsample, 16 / downsample])
        #expect(vae.latentShape(height: 16, width: 16) == [4, 16 / downsample, 16 / downsample])
        let sampled = withoutGrad { vae.encode(x, rng: RNG(seed: 1)) }
        #expect(sampled.shape == z.shape && sampled.scalars != z.scalars)
        let y = withoutGrad { vae.decode(z) }
        #expect(y.shape == [2, 3, 16, 16])
        let finite = y.scalars.allSatisfy { $0.isFinite }
        #expect(finite)
    }

    @Test func patchStemShapesAndPixelShuffle() {
        let vae = ImageVAE(.init(channels: 8, channelMultipliers: [1, 2], patchSize: 2, latentChannels: 4, downsample: 4,
                                 groups: 4), rng: RNG(seed: 0))
        let x = TestImages.batch(2, size: 16)
        let z = withoutGrad { vae.encode(x) }
        #expect(z.shape == [2, 4, 4, 4])
        #expect(withoutGrad { vae.decode(z) }.shape == [2, 3, 16, 16])
        // Pixel-unshuffle in PyTorch's channel order, and its inverse.
        let t = Tensor((0..<32).map(Float.init), shape: [1, 2, 4, 4])
        let folded = spaceToDepth(t, 2)
        #expect(folded.shape == [1, 8, 2, 2])
        #expect(Array(folded.scalars.prefix(8)) == [0, 2, 8, 10, 1, 3, 9, 11])   // c0 (i0,j0) then (i0,j1)
        #expect(depthToSpace(folded, 2).scalars == t.scalars)
        gradCheck([randomInput([1, 2, 4, 4], seed: 1)]) { x in
            depthToSpace(spaceToDepth(x[0], 2) * x[0].reshaped([1, 8, 2, 2]), 2)
        }
    }

    @Test func configRoundTripsThroughJSON() throws {
        let config = ImageVAE.Config(channels: 32, channelMultipliers: [1, 2, 4], latentChannels: 8, downsample: 4,
                                     klWeight: 1e-3, reconstruction: .mse, latentScale: 0.5)
        let back = try JSONDecoder().decode(ImageVAE.Config.self, from: JSONEncoder().encode(config))
        #expect(back == config)
        #expect(config.widths == [32, 64, 128])
        #expect(ImageVAE.Config(channels: 16, downsample: 8).widths == [16, 32, 32, 32])
    }

    @Test func latentScaleGivesUnitVariance() {
        let vae = tinyVAE()
        let calibration = TestImages.batch(16, size: 16)
        let raw = withoutGrad { vae.encode(calibration) }                // scale 1 so far
        let scale = vae.calibrateLatentScale(calibration)
        #expect(vae.latentScale == scale && vae.config.latentScale == scale)
        #expect(abs(Double(scale) - 1 / moments(raw).variance.squareRoot()) < 1e-3 * Double(scale))
        let z = withoutGrad { vae.encode(calibration) }
        #expect(abs(moments(z).variance - 1) < 1e-3)
        // Other images of the same kind: close to unit variance too.
        let other = withoutGrad { vae.encode(TestImages.batch(16, first: 100, size: 16)) }
        #expect(abs(moments(other).variance - 1) < 0.3)
        // decode undoes the scale: the same images as decoding the unscaled mean.
        let viaScaled = withoutGrad { vae.decode(z) }
        let viaRaw = withoutGrad { vae.decoder(raw) }
        expectClose(viaScaled.scalars, viaRaw.scalars, atol: 1e-4, rtol: 1e-3)
    }

    @Test func lossPartsAndKL() {
        let vae = tinyVAE()
        let x = TestImages.batch(2, size: 16)
        let (total, recon, kl) = vae.loss(x, rng: RNG(seed: 3))
        #expect(abs(total.item - (recon.item + vae.config.klWeight * kl.item)) < 1e-5)
        // The KL against the posterior computed by hand.
        let (mean, logvar) = withoutGrad { vae.posterior(x) }
        let m = mean.scalars, lv = logvar.scalars
        var expected = 0.0
        for i in 0..<m.count { expected += 0.5 * Double(m[i] * m[i] + exp(lv[i]) - 1 - lv[i]) }
        #expect(abs(Double(kl.item) - expected / Double(m.count)) < 1e-4)
        // Every parameter gets a gradient.
        total.backward()
        #expect(vae.parameters().allSatisfy { $0.grad != nil })
    }

    @Test func l1LossGradient() {
        let a = randomInput([3, 5], seed: 1), b = randomInput([3, 5], seed: 2)
        gradCheck([a, b]) { l1Loss($0[0], $0[1]) }
        let l = withoutGrad { l1Loss(a, b) }
        let expected = zip(a.scalars, b.scalars).map { abs($0 - $1) }.reduce(0, +) / 15
        #expect(abs(l.item - expected) < 1e-6)
    }

    @Test func checkpointRoundTrip() throws {
        let vae = tinyVAE(seed: 1)
        vae.calibrateLatentScale(TestImages.batch(4, size: 16))
        let json = String(decoding: try JSONEncoder().encode(vae.config), as: UTF8.self)
        let data = try Safetensors.encode(vae.stateDict(), metadata: ["config": json])
        let (tensors, meta) = try Safetensors.decode(data, name: "vae")
        let config = try JSONDecoder().decode(ImageVAE.Config.self, from: Foundation.Data(meta["config"]!.utf8))
        let back = ImageVAE(config, rng: RNG(seed: 99))
        try back.load(tensors)
        let x = TestImages.batch(2, size: 16)
        expectClose(withoutGrad { back.encode(x) }.scalars, withoutGrad { vae.encode(x) }.scalars, atol: 0, rtol: 0)
    }

    @Test func tinyVAETrainingLowersLoss() {
        let vae = tinyVAE(seed: 2)
        let x = TestImages.batch(8, size: 16)
        let optimizer = AdamW(model: vae, lr: 3e-3, weightDecay: 0)
        let rng = RNG(seed: 4)
        var losses: [Float] = []
        for _ in 0..<30 {
            let (total, _, _) = vae.loss(x, rng: rng)
            vae.zeroGrad()
            total.backward()
            clipGradNorm(vae.parameters(), maxNorm: 1)
            optimizer.update()
            losses.append(total.item)
        }
        let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
        #expect(last < 0.6 * first, "loss \(first) → \(last)")
    }

    @Test func aHandEditedConfigIsRefusedNamingTheFile() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("checkpoints/vae-shapes.safetensors")
        let (tensors, metadata) = try Safetensors.read(shipped)
        var edited = metadata
        edited["config"] = metadata["config"]!.replacingOccurrences(of: "\"groups\":8", with: "\"groups\":7")
        #expect(edited["config"] != metadata["config"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("edited-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: path) }
        try Safetensors.write(tensors, metadata: edited, to: path)
        do {
            _ = try ImageVAE.load(from: path.path)
            Issue.record("an impossible config loaded")
        } catch {
            #expect("\(error)".contains(path.path) && "\(error)".contains("7 groups"), "\(error)")
        }
    }
}
