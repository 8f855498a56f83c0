// `fusion generate` for every decoder family: an lm run continues text; a Transfusion run also
// diffuses the images (BOI) and speech (BOA) it opens; a Chameleon run samples their codes. The
// family is looked up once here, so the verb reads the same for all three. Not the decoding
// loops (NN/Generation.swift, Transfusion.generate, Chameleon.generate).
import Data
import Foundation
import Media
import NN
import Tensors
import Text
import Training

public struct TextGenerator {
    /// A piece of the output, ready to show or write.
    public enum Piece {
        case text(String)
        /// An image (1, 3, H, W) in [-1, 1].
        case image(Tensor)
        case speech(Audio)
        /// A span of a registered modality, which has no picture or sound of its own: its values
        /// (Transfusion: (1, L, D) floats) or codes (Chameleon: L Int32 ids).
        case span(Modality, Tensor)
    }

    public let family: ModelFamily
    public let tokenizer: BPETokenizer
    /// The positions of the rows it was trained on (`data.seq_len`), or nil when unknown.
    public let contextLength: Int?
    /// The pieces after prompt ids (BOS first), for at most the given text tokens.
    let continuing: ([Int32], Int, SamplingOptions, RNG) -> [Piece]

    /// The run at `path`, whichever decoder family. `steps` (diffusion) applies to Transfusion
    /// runs, `cfg` to the images and speech of Transfusion and Chameleon runs; naming one for a
    /// family that cannot use it is an error naming the flag.
    public static func load(path: String, steps: Int? = nil, cfg: Float? = nil) throws -> TextGenerator {
        let family = try ModelFamily.saved(try SavedModel.kind(path: path), path: path, needs: .decoder, for: "generate text")
        switch family {
        case .lm:
            if steps != nil || cfg != nil {
                throw RunError.option("--steps and --cfg sample images and speech; \(path) is an lm run (text only)")
            }
            let run = try LMRun(path: path)
            return TextGenerator(family: family, tokenizer: run.tokenizer, contextLength: run.contextLength) { ids, n, options, rng in
                let limit = min(n, max(0, (run.contextLength ?? .max) - ids.count))
                let out = run.lm.generate(prompt: ids, maxTokens: limit, options: options, stop: [SpecialTokens.eos], rng: rng)
                return [words(out, run.tokenizer)]
            }
        case .transfusion:
            let run = try TransfusionRun(path: path)
            let images = try run.imageOptions(steps: steps, cfg: cfg)
            return TextGenerator(family: family, tokenizer: run.tokenizer, contextLength: run.contextLength) { ids, n, options, rng in
                run.model.generate(prompt: ids, maxTokens: n, text: options, images: images, maxPositions: run.contextLength,
                                   rng: rng).compactMap { segment in
                    switch segment {
                    case .text(let ids): return words(ids, run.tokenizer)
                    case .image(let latents): return .image(run.decode(latents))
                    case .audio(let patches): return run.spoken.map { .speech($0.waveform(patches)) }
                    case .span(let m, let values): return .span(m, values)
                    }
                }
            }
        case .chameleon:
            try ImageTextModel.checkChameleonFlags(path: path, sampler: nil, steps: steps, clipX0: nil)
            let run = try ChameleonRun(path: path)
            let (codes, scale) = try ImageTextModel.chameleonSampling(run, cfg: cfg, temperature: nil, topK: nil)
            return TextGenerator(family: family, tokenizer: run.tokenizer, contextLength: run.contextLength) { ids, n, options, rng in
                run.model.generate(prompt: ids, maxTokens: n, text: options, codes: codes, cfgScale: scale,
                                   maxPositions: run.contextLength, rng: rng).compactMap { segment in
                    switch segment {
                    case .text(let ids): return words(ids, run.tokenizer)
                    case .image(let codes): return .image(withoutGrad { run.vq.decode(codes) })
                    case .audio(let codes):
                        return run.spoken.map { spoken in
                            let patches = spoken.codec.patches(fromCodes: codes.reshaped([spoken.length]))
                            return .speech(spoken.waveform(patches.reshaped([1, spoken.length, spoken.patchDim])))
                        }
                    case .span(let m, let codes): return .span(m, codes)
                    }
                }
            }
        case .var:
            try ImageTextModel.checkChameleonFlags(path: path, sampler: nil, steps: steps, clipX0: nil, family: .var)
            let run = try VARRun(path: path)
            let (codes, scale) = try ImageTextModel.codeSampling(cfg: cfg ?? run.config.cfg, temperature: nil, topK: run.config.topK ?? 0)
            return TextGenerator(family: family, tokenizer: run.tokenizer, contextLength: run.config.contextLength) { ids, n, options, rng in
                run.model.generate(prompt: ids, maxTokens: n, text: options, codes: codes, cfgScale: scale, tokenizer: run.msvq,
                                   maxPositions: run.config.contextLength, rng: rng).compactMap { segment in
                    switch segment {
                    case .text(let ids): return words(ids, run.tokenizer)
                    case .image(let pixels): return .image(pixels)
                    case .audio, .span: return nil
                    }
                }
            }
        case let family:
            preconditionFailure("TextGenerator: the \(family) family has a decoder but no loader here")
        }
    }

    /// The words of generated ids (the ids that frame documents and spans left out).
    static func words(_ ids: [Int32], _ tokenizer: BPETokenizer) -> Piece {
        .text(tokenizer.decode(ids.filter { !SpecialTokens.isSpecial($0) }))
    }

    /// Token ids of a prompt, BOS first.
    public func prompt(_ text: String) -> [Int32] { [SpecialTokens.bos] + tokenizer.encode(text) }

    /// Throws unless `positions` fit the trained context (see ``ContextLengthError``).
    public func checkContext(_ positions: Int, _ what: String, shorten: String) throws {
        try ContextLengthError.check(positions, context: contextLength, what: what, shorten: shorten)
    }

    /// Up to `maxTokens` text tokens after `prompt` ids (BOS first), with the images and speech the
    /// model opens on the way.
    public func generate(prompt ids: [Int32], maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Piece] {
        continuing(ids, maxTokens, options, rng)
    }
}
