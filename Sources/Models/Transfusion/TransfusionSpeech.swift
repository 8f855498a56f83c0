// Speech from a Transfusion model with audio spans: text-to-speech (a caption, BOA, then the
// diffusion sampler over an audio span of AudioCodec patches with the prefix cached and CFG) and
// speech-to-text (clean patches at t = 0 between BOA and EOA, then text decoding). Not the codec
// (AudioCodec turns patches into a waveform) and not training.
// Legend: B spans sampled at once, L patches per audio span, D values per patch.
import Diffusion
import Foundation
import NN
import Tensors
import Text

extension Transfusion {
    /// `count` audio spans continuing `prompt` (ids from BOS, e.g. `BOS caption`; BOA is appended),
    /// guided against `options.unconditionalPrompt` + BOA when `cfgScale` > 1. Returns clean
    /// AudioCodec patches (count, L, D) for `AudioCodec.decode`.
    ///
    /// ```swift
    /// let patches = model.sampleSpeech(prompt: [bos] + tok.encode("a red circle"), count: 1,
    ///                                  options: .init(sampler: .euler, steps: 25, cfgScale: 3), rng: RNG(seed: 1))
    /// let wav = codec.decode(patches.slice(axis: 0, 0..<1).reshaped([l, d]))
    /// ```
    public func sampleSpeech(prompt: [Int32], count: Int, options: ImageSamplingOptions, rng: RNG) -> Tensor {
        precondition(count > 0 && !prompt.isEmpty, "sampleSpeech: need a prompt and at least one span")
        return sampleAudio(count: count, options: options, rng: rng) { cache in
            _ = extend(Array(repeating: prompt + [SpecialTokens.boa], count: count), cache: cache)
        }
    }

    /// The diffusion sampler over `count` audio spans after the prefix `prefill` writes (ending with BOA).
    func sampleAudio(count: Int, options: ImageSamplingOptions, rng: RNG, prefill: (KVCache) -> Void) -> Tensor {
        precondition(config.hasAudio, "Transfusion: this model has no audio spans")
        return diffuse(.audio, noise: rng.normal([count, config.audioLength, config.audioDim]), options: options, rng: rng,
                       prefill: prefill)
    }

    /// Text after speech: `BOS BOA [clean patches at t = 0] EOA` then decoding until EOS (the layout
    /// of speech-to-text training documents). `patches` is (1, L, D); returns the ids without EOS.
    public func transcribe(patches: Tensor, maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        precondition(config.hasAudio, "Transfusion: this model has no audio spans")
        precondition(patches.shape == [1, config.audioLength, config.audioDim],
                     "transcribe: patches must be (1, \(config.audioLength), \(config.audioDim)), got \(patches.shape)")
        return words(after: patches, .audio, maxTokens: maxTokens, options: options, rng: rng)
    }

    /// Speech for an image: `BOS BOI [clean latents at t = 0] EOI BOA`, then the audio span is
    /// sampled (guided against the image dropped, `BOS BOA`, when `cfgScale` > 1). `latents` is
    /// (1, C, h, w); returns patches (count, L, D).
    public func speakImage(latents: Tensor, count: Int, options: ImageSamplingOptions, rng: RNG) -> Tensor {
        precondition(latents.rank == 4 && latents.dim(0) == 1, "speakImage: latents must be (1, C, h, w)")
        return sampleAudio(count: count, options: options, rng: rng) { cache in
            _ = extend(Array(repeating: [SpecialTokens.bos, SpecialTokens.boi], count: count), cache: cache)
            let repeated = concat(Array(repeating: latents, count: count), axis: 0)          // (count, C, h, w)
            _ = span(repeated, t: [Float](repeating: 0, count: count), cache: cache, keep: true)
            _ = extend(Array(repeating: [SpecialTokens.eoi, SpecialTokens.boa], count: count), cache: cache)
        }
    }
}
