// Sampling from a Transfusion model with a KV cache: text decoding, and on BOI a diffusion loop
// over the image span with the prefix cached (paper, Sec. 3.3), classifier-free guidance, then
// EOI and back to text. Also captioning (an image prefix, then text). Not training.
import Data
import Diffusion
import Foundation
import Modalities
import NN
import Tensors
import Text

/// How image spans are sampled.
public struct ImageSamplingOptions: Sendable {
    public var diffusion: GaussianDiffusion
    public var sampler: SpanSampler
    public var steps: Int
    /// Classifier-free guidance scale (1 = conditional only; 0 is treated as 1).
    public var cfgScale: Float
    /// The prompt of the unconditional branch (BOS alone: the caption dropped, as in training).
    public var unconditionalPrompt: [Int32]
    /// Clamp x̂0 to [−clipX0, clipX0] in DDPM/DDIM steps (latents have unit variance); nil: off.
    public var clipX0: Float?

    public init(diffusion: GaussianDiffusion = GaussianDiffusion(), sampler: SpanSampler = .ddim, steps: Int = 50,
                cfgScale: Float = 1, unconditionalPrompt: [Int32] = [SpecialTokens.bos], clipX0: Float? = 5) {
        self.diffusion = diffusion; self.sampler = sampler; self.steps = steps
        self.cfgScale = cfgScale; self.unconditionalPrompt = unconditionalPrompt; self.clipX0 = clipX0
    }

    /// The sampler object for this configuration.
    public func makeSampler() -> any Sampler {
        switch sampler {
        case .ddpm: return DDPMSampler(diffusion, steps: steps, clipX0: clipX0)
        case .ddim: return DDIMSampler(diffusion, steps: steps, clipX0: clipX0)
        case .euler: return EulerSampler(diffusion, steps: steps)
        }
    }
}

extension Transfusion {
    /// Runs `rows` (B rows of equal length, text ids) after what `cache` holds; returns the
    /// hidden states (B, n, d). Positions continue from the cache.
    func extend(_ rows: [[Int32]], cache: KVCache) -> Tensor {
        let b = rows.count, n = rows[0].count, start = cache.length
        precondition(rows.allSatisfy { $0.count == n }, "Transfusion: rows of different lengths")
        let input = TransfusionInput(ids: Tensor(ints: rows.flatMap { $0 }, shape: [b, n]),
                                     positions: Tensor(ints: (start..<(start + n)).map { Int32($0) }),
                                     mask: .causal(batch: b, queries: n, keys: start + n))
        return self(input, cache: cache).hidden
    }

    /// Runs one span of `kind` per row (`x`: latents or audio patches) at timesteps `t` after the
    /// cached prefix: the span attends to the whole prefix and bidirectionally to itself. With
    /// `keep` false the cache is cut back afterwards (a denoising step); with `keep` true the span
    /// stays cached. `starts` (from `KVCache.stacking`) says where each row's prefix begins in a
    /// left-padded cache. Returns the predictions, shaped like `x`.
    func span(_ x: Tensor, _ kind: Modality = .image, t: [Float], cache: KVCache, keep: Bool, starts: [Int]? = nil) -> Tensor {
        let b = x.dim(0), start = cache.length
        guard let n = adapter(kind)?.length else { preconditionFailure("Transfusion: the model has no \(kind) spans") }
        let lo = starts ?? [Int](repeating: 0, count: b)
        let positions = starts.map { cache.positions(continuing: $0, count: n) }
            ?? Tensor(ints: (start..<(start + n)).map { Int32($0) })
        let input = TransfusionInput(
            ids: Tensor(ints: [Int32](repeating: SpecialTokens.pad, count: b * n), shape: [b, n]),
            positions: positions,
            mask: AttentionMask(batch: b, queries: n, keys: start + n, lo: lo.flatMap { [Int32](repeating: Int32($0), count: n) },
                                hi: [Int32](repeating: Int32(start + n), count: b * n)),
            spans: [kind: SpanBatch(x, timesteps: t, starts: (0..<b).map { $0 * n })])
        let out = self(input, cache: cache)
        if !keep { cache.truncate(to: start) }
        return out.predictions[kind]!
    }

    /// The diffusion sampler over one span of `kind` per row of `noise`, after the prefix `prefill`
    /// writes into a fresh cache (ending with the span's opening id), guided against
    /// `options.unconditionalPrompt` + the opening id when `cfgScale` > 1.
    func diffuse(_ kind: Modality, noise: Tensor, options: ImageSamplingOptions, rng: RNG,
                 prefill: (KVCache) -> Void) -> Tensor {
        inferring {
            let layers = config.decoder.layers
            let cond = KVCache(layers: layers)
            prefill(cond)
            guard options.cfgScale > 1 else {
                return options.makeSampler().sample(from: noise, rng: rng) { [self] xt, t in
                    span(xt, kind, t: t, cache: cond, keep: false)
                }
            }
            let b = noise.dim(0), uncond = KVCache(layers: layers)
            _ = extend(Array(repeating: options.unconditionalPrompt + [kind.opening], count: b), cache: uncond)
            // Batched guidance: the conditional and unconditional rows in one forward pass, their
            // prefixes left-padded to one length (the padding masked out).
            let (both, starts) = KVCache.stacking([cond, uncond])
            let denoiser: Denoiser = { [self] xt, t in
                let out = span(concat([xt, xt], axis: 0), kind, t: t + t, cache: both, keep: false, starts: starts)
                return guided(cond: out.slice(axis: 0, 0..<b), uncond: out.slice(axis: 0, b..<(2 * b)), scale: options.cfgScale)
            }
            return options.makeSampler().sample(from: noise, rng: rng, model: denoiser)
        }
    }

    /// One span of `kind` (one row) sampled after what `context` caches, its opening id appended to
    /// a copy (`context` itself is left as it was): the sampler's prefix holds earlier spans as
    /// clean latents or patches, exactly as the generation cached them. Guided against
    /// `options.unconditionalPrompt` + the opening id when `cfgScale` > 1.
    func sampleSpan(_ kind: Modality, after context: KVCache, options: ImageSamplingOptions, rng: RNG) -> Tensor {
        guard let shape = adapter(kind)?.valueShape else { preconditionFailure("Transfusion: the model has no \(kind) spans") }
        return diffuse(kind, noise: rng.normal([1] + shape), options: options, rng: rng) { cache in
            cache.copy(from: context)
            _ = extend([[kind.opening]], cache: cache)
        }
    }

    /// Caches one finished span of `kind` (`x`, one row) after the cached prefix: its opening id,
    /// then the span at t = 0, as the text after a finished image or clip sees it in training. The
    /// closing id is the caller's next token.
    func cacheClean(_ x: Tensor, _ kind: Modality, cache: KVCache) {
        _ = extend([[kind.opening]], cache: cache)
        _ = span(x, kind, t: [0], cache: cache, keep: true)
    }

    /// `count` images continuing `prompt` (ids from BOS; BOI is appended): the diffusion sampler
    /// runs over the span with the prompt's keys and values cached, guided by the unconditional
    /// prompt when `cfgScale` > 1. Returns clean latents (count, C, h, w).
    ///
    /// ```swift
    /// let latents = model.sampleImages(prompt: [bos] + tok.encode("a red circle"), count: 4,
    ///                                  options: .init(steps: 50, cfgScale: 3), rng: RNG(seed: 1))
    /// let images = vae.decode(latents)
    /// ```
    public func sampleImages(prompt: [Int32], count: Int, options: ImageSamplingOptions, rng: RNG) -> Tensor {
        precondition(count > 0, "sampleImages: need at least one image")
        let shape = [count, config.latentChannels, config.latentSize, config.latentSize]
        return sampleImages(prompt: prompt, noise: rng.normal(shape), options: options, rng: rng)
    }

    /// Images continuing `prompt` from given starting noise (count, C, h, w) — e.g. the latents
    /// an inversion returned; `rng` feeds only stochastic samplers (DDPM).
    public func sampleImages(prompt: [Int32], noise: Tensor, options: ImageSamplingOptions, rng: RNG) -> Tensor {
        let count = noise.dim(0)
        precondition(count > 0 && !prompt.isEmpty, "sampleImages: need a prompt and at least one image")
        return diffuse(.image, noise: noise, options: options, rng: rng) { cache in
            _ = extend(Array(repeating: prompt + [SpecialTokens.boi], count: count), cache: cache)
        }
    }

    /// Decodes text after `prompt` with a KV cache; when the model emits BOI, samples an image
    /// span (with guidance against `options.unconditionalPrompt`), caches the clean image at
    /// t = 0, appends EOI and goes on; likewise BOA samples an audio span (models with audio).
    /// Stops at EOS, after `maxTokens` text tokens, or where the next token or span would take the
    /// sequence past `maxPositions` (the trained context; nil: no limit).
    public func generate(prompt: [Int32], maxTokens: Int, text: SamplingOptions, images: ImageSamplingOptions,
                         maxPositions: Int? = nil, rng: RNG) -> [GeneratedSegment] {
        precondition(!prompt.isEmpty, "generate: empty prompt")
        return inferring {
            let cache = KVCache(layers: config.decoder.layers)
            func spanLength(_ id: Int32) -> Int? { Modality(opening: id).flatMap { adapter($0)?.length } }
            return generateMixed(
                prompt: prompt, maxTokens: maxTokens, maxPositions: maxPositions, spanLength: spanLength,
                step: { next in self.logits(extend([next], cache: cache), rows: [next.count - 1]) },
                pick: { text.pick($0, rng: rng) },
                open: { id, _ in
                    // The span is sampled after a copy of this cache (so it sees every earlier
                    // image and clip as it was generated), then the clean span enters this one.
                    let kind = Modality(opening: id)!
                    let x = sampleSpan(kind, after: cache, options: images, rng: rng)
                    cacheClean(x, kind, cache: cache)
                    let segment = GeneratedSegment.span(of: kind, x)
                    return (segment, [Int32](repeating: SpecialTokens.pad, count: spanLength(id)!) + [kind.closing], [kind.closing])
                })
        }
    }

    /// Text after an image: `BOS BOI [clean latents at t = 0] EOI` then decoding until EOS (the
    /// layout of image-first training pairs). Returns the generated ids without EOS.
    public func caption(latents: Tensor, maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        precondition(latents.rank == 4 && latents.dim(0) == 1, "caption: latents must be (1, C, h, w)")
        return words(after: latents, .image, maxTokens: maxTokens, options: options, rng: rng)
    }

    /// Text after one clean span of `kind` (`x` with one row): `BOS open [x at t = 0] close`, then
    /// decoding words until EOS (``SamplingOptions/pickWord``). Returns the ids without EOS.
    func words(after x: Tensor, _ kind: Modality, maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        inferring {
            let cache = KVCache(layers: config.decoder.layers)
            _ = extend([[SpecialTokens.bos, kind.opening]], cache: cache)
            _ = span(x, kind, t: [0], cache: cache, keep: true)
            func step(_ id: Int32) -> Tensor { self.logits(extend([[id]], cache: cache), rows: [0]) }
            return decodeLoop(from: step(kind.closing), maxTokens: maxTokens, keepStop: false, stop: { $0 == SpecialTokens.eos },
                              pick: { options.pickWord($0, count: vocab, allowEnd: !$1.isEmpty, rng: rng) }, step: step)
        }
    }
}
