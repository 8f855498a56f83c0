// The Transfusion model: patch layout, gradients through both patchifiers, loss parts that stay
// apart, causality across spans, and KV-cached decoding and span sampling equal to the full forward.
import Diffusion
import Data
import Foundation
import Modalities
@testable import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

private func tinyConfig(_ patchifier: TransfusionConfig.Patchifier = .linear, patch: Int = 2) -> TransfusionConfig {
    TransfusionConfig(vocab: 24, decoder: DecoderConfig(dim: 16, layers: 2, heads: 2), latentChannels: 2, latentSize: 4,
                      patchSize: patch, patchifier: patchifier, unetChannels: 8)
}

/// BOS a b BOI [np patches] EOI c EOS, one row, with its positions, mask, targets and span start.
private func layout(_ config: TransfusionConfig, causalSpans: Bool = false)
    -> (ids: [Int32], targets: [Int32], mask: AttentionMask, start: Int) {
    let np = config.patchesPerImage
    let ids: [Int32] = [SpecialTokens.bos, 10, 11, SpecialTokens.boi]
        + [Int32](repeating: SpecialTokens.pad, count: np) + [SpecialTokens.eoi, 12, SpecialTokens.eos]
    let spans: [Int32] = [-1, -1, -1, -1] + [Int32](repeating: 0, count: np) + [-1, -1, -1]
    let targets = ids.indices.map { i in i + 1 < ids.count && spans[i] < 0 && spans[i + 1] < 0 ? ids[i + 1] : -1 }
    let mask = try! AttentionMask(documents: [[Int32](repeating: 0, count: ids.count)], spans: [spans],
                                  causalSpans: causalSpans)
    return (ids, targets, mask, 4)
}

private func input(_ config: TransfusionConfig, latents: Tensor, t: Float = 300, causalSpans: Bool = false)
    -> (TransfusionInput, targets: Tensor) {
    let l = layout(config, causalSpans: causalSpans)
    let x = TransfusionInput(ids: Tensor(ints: l.ids, shape: [1, l.ids.count]),
                             positions: Tensor(ints: (0..<l.ids.count).map { Int32($0) }), mask: l.mask,
                             spans: [.image: SpanBatch(latents, timesteps: [t], starts: [l.start])])
    return (x, Tensor(ints: l.targets))
}

private func model(_ config: TransfusionConfig, seed: UInt64 = 1) -> Transfusion {
    let m = Transfusion(config, rng: RNG(seed: seed))
    m.initialise(rng: RNG(seed: seed + 1))
    // A nonzero output layer, so that gradients reach everything in the checks below.
    let rng = RNG(seed: seed + 2)
    rng.fillNormal(m.image.output.weight.data, m.image.output.weight.count, std: 0.2)
    if let unet = m.image.unet { rng.fillNormal(unet.outConv.weight.data, unet.outConv.weight.count, std: 0.2) }
    return m
}

@Suite struct TransfusionTests {
    @Test func patchifyRoundTripsAndOrdersPatchesRowMajor() {
        let x = Tensor((0..<(2 * 2 * 4 * 4)).map(Float.init), shape: [2, 2, 4, 4])
        let p = patchify(x, 2)
        #expect(p.shape == [8, 8])
        // Patch 1 of image 0 is the top-right 2×2 block: channel 0 then channel 1.
        #expect(Array(p.scalars[8..<16]) == [2, 3, 6, 7, 18, 19, 22, 23])
        #expect(unpatchify(p, n: 2, channels: 2, grid: 2, patch: 2).scalars == x.scalars)
    }

    @Test(arguments: TransfusionConfig.Patchifier.allCases)
    func gradientsMatchFiniteDifferences(_ patchifier: TransfusionConfig.Patchifier) {
        let config = tinyConfig(patchifier)
        let m = model(config)
        let latents = randomInput([1, 2, 4, 4], seed: 3)
        let targets = RNG(seed: 4).normal([1, 2, 4, 4])
        gradCheck([latents, m.image.position, m.image.input.weight] + (m.image.direct.map { [$0.weight] } ?? []),
                  rtol: 3e-2, atol: 3e-3) { xs in
            let (x, tg) = input(config, latents: xs[0])
            return m.loss(x, targets: tg, spanTargets: [.image: SpanTargets(targets, weight: 5)]).total
        }
    }

    /// `unet_linear` is the U-Net plus one linear layer on the raw patches, drawn after the others,
    /// so the same seed gives a `unet` model's weights and the new layer.
    @Test func theDirectPathIsOneLayerAddedToTheUNet() {
        let plain = Transfusion(tinyConfig(.unet), rng: RNG(seed: 1)), direct = Transfusion(tinyConfig(.unetLinear), rng: RNG(seed: 1))
        let a = plain.stateDict(), b = direct.stateDict()
        #expect(Set(b.keys).subtracting(a.keys) == ["patchDirect.weight", "patchDirect.bias"] && Set(a.keys).isSubset(of: b.keys))
        for (name, t) in a { #expect(b[name]!.scalars == t.scalars, "\(name)") }
        #expect(plain.image.direct == nil && direct.image.direct?.inFeatures == 2 * 2 * 2)
    }

    @Test func lossPartsStayApart() {
        let config = tinyConfig()
        let m = model(config)
        let (x, targets) = input(config, latents: RNG(seed: 5).normal([1, 2, 4, 4]))
        let imageTargets = RNG(seed: 6).normal([1, 2, 4, 4])
        let parts = m.loss(x, targets: targets, spanTargets: [.image: SpanTargets(imageTargets, weight: 5)])
        #expect(abs(parts.total.item - (parts.text.item + 5 * parts.spans[.image]!.item)) < 1e-4)

        // The text loss never reaches the patch output layer; the image loss never reaches the LM head.
        m.zeroGrad()
        parts.text.backward()
        #expect(m.image.output.weight.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true)
        #expect(m.head.weight.grad!.scalars.contains { $0 != 0 })
        m.zeroGrad()
        m.loss(x, targets: targets, spanTargets: [.image: SpanTargets(imageTargets, weight: 5)]).spans[.image]!.backward()
        #expect(m.head.weight.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true)
        #expect(m.image.output.weight.grad!.scalars.contains { $0 != 0 })
    }

    @Test func textBeforeAnImageCannotSeeIt() {
        let config = tinyConfig()
        let m = model(config)
        let a = withoutGrad { m(input(config, latents: RNG(seed: 7).normal([1, 2, 4, 4])).0) }
        let b = withoutGrad { m(input(config, latents: RNG(seed: 8).normal([1, 2, 4, 4])).0) }
        let d = config.decoder.dim, np = config.patchesPerImage
        // Positions 0…3 (BOS a b BOI) precede the span: identical. Inside and after it: changed.
        #expect(Array(a.hidden.scalars[0..<(4 * d)]) == Array(b.hidden.scalars[0..<(4 * d)]))
        #expect(Array(a.hidden.scalars[(4 * d)..<((5 + np) * d)]) != Array(b.hidden.scalars[(4 * d)..<((5 + np) * d)]))
    }

    @Test func spansAreBidirectionalUnlessCausal() {
        let config = tinyConfig()
        let m = model(config)
        let l1 = RNG(seed: 9).normal([1, 2, 4, 4])
        var l2 = l1.copy()
        l2.data[3] += 1; l2.data[7] += 1           // change the last patch column of row 0 (patch 1)
        l2 = l2.detached()
        let d = config.decoder.dim
        for causal in [false, true] {
            let a = withoutGrad { m(input(config, latents: l1, causalSpans: causal).0).hidden.scalars }
            let b = withoutGrad { m(input(config, latents: l2, causalSpans: causal).0).hidden.scalars }
            // Patch 0 (position 4) sees patch 1 only with bidirectional spans.
            let first = Array(a[(4 * d)..<(5 * d)]) == Array(b[(4 * d)..<(5 * d)])
            #expect(first == causal)
        }
    }

    @Test(arguments: TransfusionConfig.Patchifier.allCases)
    func cachedDecodingEqualsTheFullForward(_ patchifier: TransfusionConfig.Patchifier) {
        let config = tinyConfig(patchifier)
        let m = model(config)
        let latents = RNG(seed: 10).normal([1, 2, 4, 4])
        let (x, _) = input(config, latents: latents, t: 0)
        let l = layout(config)
        let full = withoutGrad { m(x) }
        let cache = KVCache(layers: config.decoder.layers)
        let np = config.patchesPerImage, d = config.decoder.dim
        var hidden: [Float] = []
        withoutGrad {
            for k in 0..<l.start {                                  // BOS a b BOI, one at a time
                let input = TransfusionInput(ids: Tensor(ints: [l.ids[k]], shape: [1, 1]),
                                             positions: Tensor(ints: [Int32(k)]),
                                             mask: .causal(batch: 1, queries: 1, keys: k + 1))
                hidden += m(input, cache: cache).hidden.scalars
            }
            let spanInput = TransfusionInput(
                ids: Tensor(ints: [Int32](repeating: SpecialTokens.pad, count: np), shape: [1, np]),
                positions: Tensor(ints: (l.start..<(l.start + np)).map { Int32($0) }),
                mask: AttentionMask(batch: 1, queries: np, keys: l.start + np, lo: [Int32](repeating: 0, count: np),
                                    hi: [Int32](repeating: Int32(l.start + np), count: np)),
                spans: [.image: SpanBatch(latents, timesteps: [0], starts: [0])])
            let out = m(spanInput, cache: cache)
            hidden += out.hidden.scalars
            expectClose(out.images!.scalars, full.images!.scalars, atol: 2e-5)
            let rest = Array(l.ids[(l.start + np)...])
            let tail = TransfusionInput(ids: Tensor(ints: rest, shape: [1, rest.count]),
                                        positions: Tensor(ints: ((l.start + np)..<l.ids.count).map { Int32($0) }),
                                        mask: .causal(batch: 1, queries: rest.count, keys: l.ids.count))
            hidden += m(tail, cache: cache).hidden.scalars
        }
        #expect(hidden.count == l.ids.count * d)
        expectClose(hidden, full.hidden.scalars, atol: 2e-5)
    }

    /// What `generate` caches after it samples an image: BOI, then the clean span, then EOI, so
    /// the text after it reads the training layout (before, the span was cached without its BOI,
    /// one position early).
    @Test func generationCachesAFinishedImageAsTheFullForwardSeesIt() {
        let config = tinyConfig()
        let m = model(config)
        let latents = RNG(seed: 10).normal([1, 2, 4, 4])
        let (x, _) = input(config, latents: latents, t: 0)
        let l = layout(config)
        let full = withoutGrad { m(x) }.hidden.scalars                  // BOS a b BOI [patches] EOI c EOS
        let cache = KVCache(layers: config.decoder.layers)
        let d = config.decoder.dim, eoi = l.start + config.patchesPerImage
        let afterEOI = withoutGrad { () -> [Float] in
            _ = m.extend([Array(l.ids[..<(l.start - 1)])], cache: cache)   // BOS a b
            m.cacheClean(latents, .image, cache: cache)
            return m.extend([[SpecialTokens.eoi]], cache: cache).scalars
        }
        #expect(cache.length == eoi + 1)
        expectClose(afterEOI, Array(full[(eoi * d)..<((eoi + 1) * d)]), atol: 2e-5)
    }

    /// The second image of a free generation is sampled after the first one's clean latents (not
    /// PAD ids in their place): equal to denoising the full sequence `BOS a BOI [first] EOI b BOI
    /// [xt]` recomputed, the first span at t = 0.
    @Test func aSecondGeneratedImageSeesTheFirst() {
        let config = tinyConfig()
        let m = model(config)
        let np = config.patchesPerImage
        let first = RNG(seed: 20).normal([1, 2, 4, 4])
        let context = KVCache(layers: config.decoder.layers)
        withoutGrad {
            _ = m.extend([[SpecialTokens.bos, 10]], cache: context)
            m.cacheClean(first, .image, cache: context)
            _ = m.extend([[SpecialTokens.eoi, 11]], cache: context)
        }
        let length = context.length
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 100)), sampler: .ddim, steps: 4)
        let sampled = m.sampleSpan(.image, after: context, options: options, rng: RNG(seed: 21))
        #expect(context.length == length, "the generation's cache is left as it was")

        let ids = [SpecialTokens.bos, 10, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
            + [SpecialTokens.eoi, 11, SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
        let spans = [Int32](repeating: -1, count: 3) + [Int32](repeating: 0, count: np) + [-1, -1, -1]
            + [Int32](repeating: 1, count: np)
        let mask = try! AttentionMask(documents: [[Int32](repeating: 0, count: ids.count)], spans: [spans])
        let denoiser: Denoiser = { xt, t in
            m(TransfusionInput(ids: Tensor(ints: ids, shape: [1, ids.count]),
                               positions: Tensor(ints: (0..<ids.count).map { Int32($0) }), mask: mask,
                               spans: [.image: SpanBatch(concat([first, xt], axis: 0), timesteps: [0] + t,
                                                         starts: [3, 3 + np + 3])])).images!.slice(axis: 0, 1..<2)
        }
        let reference = withoutGrad { options.makeSampler().sample(shape: [1, 2, 4, 4], rng: RNG(seed: 21), model: denoiser) }
        expectClose(sampled.scalars, reference.scalars, atol: 1e-4)
        // With PAD ids where the first image was (what generate used to sample after), it differs.
        let blind = m.sampleImages(prompt: Array(ids[..<(ids.count - np - 1)]), count: 1, options: options, rng: RNG(seed: 21))
        #expect(zip(blind.scalars, reference.scalars).map { abs($0 - $1) }.max()! > 1e-3)
    }

    @Test func sampledImagesUseTheCachedPrefix() {
        // Sampling with the prefix cached equals denoising with the full sequence recomputed.
        let config = tinyConfig()
        let m = model(config)
        let prompt: [Int32] = [SpecialTokens.bos, 10, 11]
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 100)), sampler: .ddim,
                                           steps: 4)
        let sampled = m.sampleImages(prompt: prompt, count: 2, options: options, rng: RNG(seed: 11))
        #expect(sampled.shape == [2, 2, 4, 4])
        let np = config.patchesPerImage
        let ids = prompt + [SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
        let spans = [Int32](repeating: -1, count: 4) + [Int32](repeating: 0, count: np)
        let mask = try! AttentionMask(documents: [[Int32]](repeating: [Int32](repeating: 0, count: ids.count), count: 2),
                                      spans: [spans, spans])
        let denoiser: Denoiser = { xt, t in
            m(TransfusionInput(ids: Tensor(ints: ids + ids, shape: [2, ids.count]),
                               positions: Tensor(ints: (0..<ids.count).map { Int32($0) }), mask: mask,
                               spans: [.image: SpanBatch(xt, timesteps: t, starts: [4, ids.count + 4])])).images!
        }
        let reference = withoutGrad {
            options.makeSampler().sample(shape: [2, 2, 4, 4], rng: RNG(seed: 11), model: denoiser)
        }
        expectClose(sampled.scalars, reference.scalars, atol: 1e-4)
    }

    @Test func guidedSamplingBatchesBothPromptsExactly() {
        // Guidance runs the conditional and unconditional rows in one pass over a left-padded
        // cache; it equals denoising each prompt's full sequence apart (the prompts' lengths differ).
        let config = tinyConfig(.unet)
        let m = model(config)
        let prompt: [Int32] = [SpecialTokens.bos, 10, 11, 12]
        var options = ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 100)), sampler: .ddim,
                                           steps: 4, cfgScale: 3)
        options.unconditionalPrompt = [SpecialTokens.bos]
        let sampled = m.sampleImages(prompt: prompt, count: 2, options: options, rng: RNG(seed: 12))
        let np = config.patchesPerImage
        func full(_ prefix: [Int32], _ xt: Tensor, _ t: [Float]) -> Tensor {
            let ids = prefix + [SpecialTokens.boi] + [Int32](repeating: SpecialTokens.pad, count: np)
            let spans = [Int32](repeating: -1, count: prefix.count + 1) + [Int32](repeating: 0, count: np)
            let mask = try! AttentionMask(documents: [[Int32]](repeating: [Int32](repeating: 0, count: ids.count), count: 2),
                                          spans: [spans, spans])
            return m(TransfusionInput(ids: Tensor(ints: ids + ids, shape: [2, ids.count]),
                                      positions: Tensor(ints: (0..<ids.count).map { Int32($0) }), mask: mask,
                                      spans: [.image: SpanBatch(xt, timesteps: t,
                                                                starts: [prefix.count + 1, ids.count + prefix.count + 1])])).images!
        }
        let denoiser: Denoiser = { xt, t in
            guided(cond: full(prompt, xt, t), uncond: full(options.unconditionalPrompt, xt, t), scale: 3)
        }
        let reference = withoutGrad {
            options.makeSampler().sample(shape: [2, 2, 4, 4], rng: RNG(seed: 12), model: denoiser)
        }
        expectClose(sampled.scalars, reference.scalars, atol: 1e-4)
    }

    @Test func captionAndGenerateRun() {
        let config = tinyConfig()
        let m = model(config)
        let ids = m.caption(latents: RNG(seed: 12).normal([1, 2, 4, 4]), maxTokens: 5, options: SamplingOptions(temperature: 0),
                            rng: RNG(seed: 1))
        #expect(ids.count <= 5)
        // Point the LM head's BOI row along the hidden state after BOS: BOI is generated first.
        let bos = withoutGrad {
            m(TransfusionInput(ids: Tensor(ints: [SpecialTokens.bos], shape: [1, 1]), positions: Tensor(ints: [0]),
                               mask: .causal(batch: 1, queries: 1))).hidden.scalars
        }
        let d = config.decoder.dim
        m.head.weight.data.update(repeating: 0, count: m.head.weight.count)
        for j in 0..<d { m.head.weight.data[Int(SpecialTokens.boi) * d + j] = 100 * bos[j] }
        let out = m.generate(prompt: [SpecialTokens.bos], maxTokens: 2, text: SamplingOptions(temperature: 0),
                             images: ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 50)),
                                                          steps: 2), rng: RNG(seed: 2))
        let shapes = out.compactMap { if case .image(let t) = $0 { return t.shape } else { return nil } }
        #expect(shapes.first == [1, 2, 4, 4])
        // The trained context bounds generation: BOS, BOI, 4 patches and EOI need 7 positions, so a
        // limit of 6 ends before the span opens, and 7 lets it through.
        for (limit, images) in [(6, 0), (7, 1)] {
            let bounded = m.generate(prompt: [SpecialTokens.bos], maxTokens: 2, text: SamplingOptions(temperature: 0),
                                     images: ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 50)), steps: 2),
                                     maxPositions: limit, rng: RNG(seed: 2))
            #expect(bounded.filter { if case .image = $0 { return true } else { return false } }.count == images, "limit \(limit)")
        }
    }
}
