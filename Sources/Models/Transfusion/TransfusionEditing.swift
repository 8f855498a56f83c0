// Image editing with a Transfusion model, two ways: instruction editing by a model fine-tuned on
// `BOS BOI [clean source] EOI instruction BOI [target] EOI EOS` (the target span is denoised after
// the cached prefix, guided InstructPix2Pix-style), and training-free inversion editing (invert the
// source latents under the source caption, regenerate under the target caption). Not training.
import Diffusion
import Foundation
import NN
import Tensors
import Text

/// How an instruction edit is guided (Brooks et al. 2023, InstructPix2Pix, eq. 3).
public struct EditGuidance: Sendable {
    /// s_T: guidance towards the instruction, against the same prefix with the instruction dropped
    /// (≤ 1: the conditional prediction alone).
    public var textScale: Float
    /// s_I: guidance towards the source image, against a prefix with neither image nor
    /// instruction; nil: no image guidance (two branches instead of three).
    public var imageScale: Float?

    public init(textScale: Float = 3, imageScale: Float? = nil) {
        self.textScale = textScale; self.imageScale = imageScale
    }
}

extension Transfusion {
    /// A cache holding `rows` (text ids from BOS; equal lengths), or `BOS BOI [source at t = 0] EOI`
    /// followed by `after` when `source` (1, C, h, w) is given, repeated `count` times.
    func prefixCache(source: Tensor?, after: [Int32], count: Int) -> KVCache {
        let cache = KVCache(layers: config.decoder.layers)
        if let source {
            _ = extend(Array(repeating: [SpecialTokens.bos, SpecialTokens.boi], count: count), cache: cache)
            let batch = count == 1 ? source : concat(Array(repeating: source, count: count), axis: 0)   // (count, C, h, w)
            _ = span(batch, t: [Float](repeating: 0, count: count), cache: cache, keep: true)
            _ = extend(Array(repeating: [SpecialTokens.eoi] + after, count: count), cache: cache)
        } else {
            _ = extend(Array(repeating: after, count: count), cache: cache)
        }
        return cache
    }

    /// `count` edits of the clean `source` latents (1, C, h, w) following `instruction` (token ids,
    /// no BOS): the target span is denoised after the cached prefix
    /// `BOS BOI [source] EOI instruction BOI`. With guidance the prediction is
    ///
    ///     ε̂ = ε(∅, ∅) + s_I·(ε(I, ∅) − ε(∅, ∅)) + s_T·(ε(I, T) − ε(I, ∅))      (InstructPix2Pix eq. 3)
    ///
    /// where ε(I, ∅) drops the instruction (`BOS BOI [source] EOI BOI`) and ε(∅, ∅) drops both
    /// (`BOS BOI`); without an image scale it is ε(I, ∅) + s_T·(ε(I, T) − ε(I, ∅)). Training with
    /// instruction and source dropout (`diffusion.instruction_dropout`, `source_dropout`) makes
    /// these branches meaningful. Returns clean latents (count, C, h, w).
    ///
    /// ```swift
    /// let edited = model.sampleEdit(source: vae.encode(image), instruction: tok.encode("make the square blue"),
    ///                               count: 1, options: .init(sampler: .euler, steps: 50),
    ///                               guidance: EditGuidance(textScale: 3), rng: RNG(seed: 0))
    /// ```
    public func sampleEdit(source: Tensor, instruction: [Int32], count: Int, options: ImageSamplingOptions,
                           guidance: EditGuidance, rng: RNG) -> Tensor {
        precondition(source.rank == 4 && source.dim(0) == 1, "sampleEdit: source latents must be (1, C, h, w)")
        precondition(count > 0, "sampleEdit: need at least one image")
        let shape = [count, config.latentChannels, config.latentSize, config.latentSize]
        let noise = rng.normal(shape)
        return inferring {
            let boi = SpecialTokens.boi
            let full = prefixCache(source: source, after: instruction + [boi], count: count)
            let textGuided = guidance.textScale > 1
            let imageGuided = guidance.imageScale.map { $0 != 1 } ?? false
            let noInstruction = textGuided || imageGuided ? prefixCache(source: source, after: [boi], count: count) : nil
            let nothing = imageGuided ? prefixCache(source: nil, after: [SpecialTokens.bos, boi], count: count) : nil
            let denoiser: Denoiser = { [self] xt, t in
                let c = span(xt, t: t, cache: full, keep: false)
                guard let noInstruction else { return c }
                let i = span(xt, t: t, cache: noInstruction, keep: false)
                // ε(I, ∅) + s_T·(ε(I, T) − ε(I, ∅)), then + s_I·(ε(I, ∅) − ε(∅, ∅)) − (ε(I, ∅) − ε(∅, ∅))
                var out = textGuided ? guided(cond: c, uncond: i, scale: guidance.textScale) : c
                if let nothing, let s = guidance.imageScale {
                    let u = span(xt, t: t, cache: nothing, keep: false)
                    out = out + (i - u) * (s - 1)
                }
                return out
            }
            return options.makeSampler().sample(from: noise, rng: rng, model: denoiser)
        }
    }

    // MARK: - Inversion editing

    /// The noise that `prompt`'s deterministic sampler (Euler on the flow path, DDIM otherwise, no
    /// guidance) maps to `latents` (n, C, h, w): the probability-flow ODE integrated backwards
    /// over the same `options.steps` nodes (FlowInversion, DDIMInversion), each step refined
    /// `refinements` times.
    public func invert(latents: Tensor, prompt: [Int32], options: ImageSamplingOptions, refinements: Int = 0) -> Tensor {
        precondition(!prompt.isEmpty, "invert: empty prompt")
        return inferring {
            let cache = prefixCache(source: nil, after: prompt + [SpecialTokens.boi], count: latents.dim(0))
            let denoiser: Denoiser = { [self] xt, t in span(xt, t: t, cache: cache, keep: false) }
            if case .flow = options.diffusion.process {
                return FlowInversion(options.diffusion, steps: options.steps, refinements: refinements)
                    .invert(latents, model: denoiser)
            }
            return DDIMInversion(options.diffusion, steps: options.steps, refinements: refinements)
                .invert(latents, model: denoiser)
        }
    }

    /// Training-free editing of `latents` (n, C, h, w) for any text-to-image checkpoint: invert them
    /// under `sourcePrompt` without guidance, then regenerate from that noise under `targetPrompt`
    /// with the deterministic sampler and `options.cfgScale` (guidance against the unconditional
    /// prompt). With the same prompt and no guidance it reconstructs `latents`.
    ///
    /// ```swift
    /// let edited = model.inversionEdit(latents: z, sourcePrompt: [bos] + tok.encode("a red square"),
    ///                                  targetPrompt: [bos] + tok.encode("a blue square"), options: options)
    /// ```
    public func inversionEdit(latents: Tensor, sourcePrompt: [Int32], targetPrompt: [Int32],
                              options: ImageSamplingOptions, refinements: Int = 2) -> Tensor {
        var deterministic = options
        if case .flow = options.diffusion.process { deterministic.sampler = .euler } else { deterministic.sampler = .ddim }
        let noise = invert(latents: latents, prompt: sourcePrompt, options: deterministic, refinements: refinements)
        return sampleImages(prompt: targetPrompt, noise: noise, options: deterministic, rng: RNG(seed: 0))
    }
}
