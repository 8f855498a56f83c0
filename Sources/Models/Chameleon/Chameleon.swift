// The Chameleon-style baseline (Chameleon Team 2024): the same decoder over one token stream in
// which images are VQ code ids appended to the text vocabulary (and speech, AudioCodec code ids
// after them). Purely causal attention and
// cross-entropy everywhere (QK-norm and z-loss for stability, set by the recipe). Image sampling
// decodes the code positions with classifier-free guidance in logit space. Not the VQ tokenizer.
import Data
import Diffusion
import Foundation
import NN
import Tensors
import Text

/// Sizes of a Chameleon model: a text vocabulary followed by the image codebook (and the audio
/// codebook, for models with speech).
public struct ChameleonConfig: Codable, Equatable, Sendable {
    public var textVocab: Int
    public var codebookSize: Int
    /// Side of the code grid of one image (e.g. 8 for a 32×32 image under a 4× VQ tokenizer).
    public var gridSize: Int
    public var decoder: DecoderConfig
    /// Codes of the AudioCodec codebook and code positions of one audio span (0, 0: no speech).
    public var audioCodebookSize: Int
    public var audioLength: Int
    /// Span modalities beyond images and audio, as code ranges after the audio codes (in this
    /// order), one code per position. Their marker ids are ids of the text vocabulary.
    public var modalities: [ModalitySpec]

    public init(textVocab: Int, codebookSize: Int, gridSize: Int, decoder: DecoderConfig, audioCodebookSize: Int = 0,
                audioLength: Int = 0, modalities: [ModalitySpec] = []) {
        self.textVocab = textVocab; self.codebookSize = codebookSize; self.gridSize = gridSize
        self.decoder = decoder; self.audioCodebookSize = audioCodebookSize; self.audioLength = audioLength
        self.modalities = modalities
    }

    enum CodingKeys: String, CodingKey { case textVocab, codebookSize, gridSize, decoder, audioCodebookSize, audioLength, modalities }

    /// Configs saved before speech (or other modalities) existed read without them.
    public init(from coder: Swift.Decoder) throws {
        let c = try coder.container(keyedBy: CodingKeys.self)
        self.init(textVocab: try c.decode(Int.self, forKey: .textVocab), codebookSize: try c.decode(Int.self, forKey: .codebookSize),
                  gridSize: try c.decode(Int.self, forKey: .gridSize), decoder: try c.decode(DecoderConfig.self, forKey: .decoder),
                  audioCodebookSize: try c.decodeIfPresent(Int.self, forKey: .audioCodebookSize) ?? 0,
                  audioLength: try c.decodeIfPresent(Int.self, forKey: .audioLength) ?? 0,
                  modalities: try c.decodeIfPresent([ModalitySpec].self, forKey: .modalities) ?? [])
    }

    /// Writes `modalities` only when there are some, so configs without them read as before.
    public func encode(to coder: Swift.Encoder) throws {
        var c = coder.container(keyedBy: CodingKeys.self)
        try c.encode(textVocab, forKey: .textVocab); try c.encode(codebookSize, forKey: .codebookSize)
        try c.encode(gridSize, forKey: .gridSize); try c.encode(decoder, forKey: .decoder)
        try c.encode(audioCodebookSize, forKey: .audioCodebookSize); try c.encode(audioLength, forKey: .audioLength)
        if !modalities.isEmpty { try c.encode(modalities, forKey: .modalities) }
    }

    public var vocab: Int { textVocab + codebookSize + audioCodebookSize + modalities.reduce(0) { $0 + $1.codebookSize } }
    /// Whether the vocabulary holds audio codes.
    public var hasAudio: Bool { audioCodebookSize > 0 && audioLength > 0 }

    /// What makes the config unbuildable (see ``DecoderConfig/problem``), or nil.
    public var problem: String? {
        if let p = decoder.problem { return p }
        if textVocab <= 0 || codebookSize <= 0 || gridSize <= 0 {
            return "sizes must be positive (textVocab \(textVocab), codebookSize \(codebookSize), gridSize \(gridSize))"
        }
        if audioCodebookSize < 0 || audioLength < 0 || (audioCodebookSize > 0) != (audioLength > 0) {
            return "audio sizes must both be positive or both 0 (audioCodebookSize \(audioCodebookSize), audioLength \(audioLength))"
        }
        for spec in modalities { if let p = spec.problem(vocab: textVocab, discrete: true) { return p } }
        return nil
    }
    /// Code positions of one image.
    public var tokensPerImage: Int { gridSize * gridSize }
    /// The token id of code `c`.
    public func token(code c: Int32) -> Int32 { Int32(textVocab) + c }

    /// The discrete modalities of the vocabulary, in id order after the text: image codes, then
    /// audio codes in models with speech. The model, its loss parts and its samplers loop over them.
    public var codeSpans: [CodeSpans] {
        var spans = [CodeSpans(modality: .image, offset: textVocab, codebookSize: codebookSize, length: tokensPerImage)]
        if hasAudio {
            spans.append(CodeSpans(modality: .audio, offset: textVocab + codebookSize, codebookSize: audioCodebookSize,
                                   length: audioLength))
        }
        var offset = textVocab + codebookSize + audioCodebookSize
        for spec in modalities {
            guard let modality = try? spec.register() else { preconditionFailure("Chameleon: \(problem ?? "modality '\(spec.name)'")") }
            spans.append(CodeSpans(modality: modality, offset: offset, codebookSize: spec.codebookSize, length: spec.length))
            offset += spec.codebookSize
        }
        return spans
    }

    /// The code range of `modality`, or nil when the vocabulary has none.
    public func codes(_ modality: Modality) -> CodeSpans? { codeSpans.first { $0.modality == modality } }
}

/// A discrete modality's place in a Chameleon vocabulary (its adapter, as ``SpanAdapter`` is a
/// continuous one's in Transfusion): its codes are the token ids `offset ..< offset + codebookSize`,
/// and a span holds `length` of them between the modality's opening and closing ids.
public struct CodeSpans: Equatable, Sendable {
    public var modality: Modality
    public var offset: Int
    public var codebookSize: Int
    public var length: Int

    /// The token ids of the codes.
    public var ids: Range<Int32> { Int32(offset)..<Int32(offset + codebookSize) }
    /// The token id of code `c`.
    public func token(code c: Int32) -> Int32 { Int32(offset) + c }
}

public final class Chameleon: Module {
    public let config: ChameleonConfig
    public let lm: DecoderLM

    public init(_ config: ChameleonConfig, rng: RNG) {
        self.config = config
        lm = DecoderLM(vocab: config.vocab, config: config.decoder, rng: rng)
    }

    public func initialise(rng: RNG) { lm.decoder.initialise(rng: rng) }

    /// Ids of one span of `modality`'s codes framed by its opening and closing ids.
    public func tokens(_ modality: Modality, codes: [Int32]) -> [Int32] {
        guard let range = config.codes(modality) else { preconditionFailure("Chameleon: this model has no \(modality) codes") }
        precondition(codes.count == range.length, "Chameleon: \(codes.count) \(modality) codes, expected \(range.length)")
        return [modality.opening] + codes.map(range.token(code:)) + [modality.closing]
    }

    /// Ids of one image's codes (row-major grid) framed by BOI … EOI.
    public func imageTokens(codes: [Int32]) -> [Int32] { tokens(.image, codes: codes) }

    /// Ids of one audio span's codes framed by BOA … EOA.
    public func audioTokens(codes: [Int32]) -> [Int32] { tokens(.audio, codes: codes) }

    /// The LM loss over all targets and its parts by the target's id range: text, and each
    /// modality's codes. Returns (total with z-loss, text CE, CE per modality); a part with no
    /// targets is 0. The text part leaves out the ids that close a span of codes (EOI, EOA):
    /// Transfusion never predicts them (its sampler inserts them), so its text part and this one
    /// score the same targets.
    public func loss(_ ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor, zLoss: Float = 0)
        -> (total: Tensor, text: Float, spans: [Modality: Float]) {
        let logits = lm(ids, mask: mask, positions: positions)
        let total = crossEntropy(logits, targets, ignoreIndex: -1, zLoss: zLoss)
        // The parts are reported, not trained: recompute them without the tape.
        let parts = withoutGrad {
            partTargets(targets.intScalars).map { crossEntropy(logits, Tensor(ints: $0, shape: targets.shape), ignoreIndex: -1).item }
        }
        let spans = Dictionary(uniqueKeysWithValues: zip(config.codeSpans.map(\.modality), parts.dropFirst()))
        return (total, parts[0], spans)
    }

    /// `targets` split by what the loss reports them as (−1 elsewhere): text first (the structural
    /// closing ids left out: the other family never predicts them), then each of
    /// ``ChameleonConfig/codeSpans``'s codes.
    public func partTargets(_ targets: [Int32]) -> [[Int32]] {
        splitTargets(targets, textVocab: config.textVocab, codes: config.codeSpans.map(\.ids), modalities: config.codeSpans.map(\.modality))
    }

    /// `count` images after `prompt` (BOS + caption ids; BOI is appended): each code position is
    /// sampled from the code logits only, guided as l_u + s·(l_c − l_u) against
    /// `unconditionalPrompt` when `cfgScale` > 1. Returns the code ids (count, grid, grid).
    public func sampleCodes(prompt: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                            unconditionalPrompt: [Int32] = [SpecialTokens.bos], rng: RNG) -> Tensor {
        sampleCodes(.image, prompt: prompt, count: count, options: options, cfgScale: cfgScale,
                    unconditionalPrompt: unconditionalPrompt, rng: rng).reshaped([count, config.gridSize, config.gridSize])
    }

    /// `count` audio spans after `prompt` (e.g. BOS + words; BOA is appended), sampled like images
    /// from the audio code logits, guided against `unconditionalPrompt` + BOA. Returns the audio
    /// code ids (count, L).
    public func sampleSpeechCodes(prompt: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                                  unconditionalPrompt: [Int32] = [SpecialTokens.bos], rng: RNG) -> Tensor {
        sampleCodes(.audio, prompt: prompt, count: count, options: options, cfgScale: cfgScale,
                    unconditionalPrompt: unconditionalPrompt, rng: rng)
    }

    /// `count` spans of `modality`'s codes after `prompt` (its opening id is appended), each code
    /// position sampled from that modality's code logits only, guided against
    /// `unconditionalPrompt` + the opening id when `cfgScale` > 1. Returns the code ids (count, length).
    public func sampleCodes(_ modality: Modality, prompt: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                            unconditionalPrompt: [Int32] = [SpecialTokens.bos], rng: RNG) -> Tensor {
        guard let range = config.codes(modality) else { preconditionFailure("Chameleon: this model has no \(modality) codes") }
        let codes = sampleSpan(prompt: prompt + [modality.opening], count: count, offset: range.offset,
                               codebook: range.codebookSize, length: range.length, options: options,
                               cfgScale: cfgScale, unconditionalPrompt: unconditionalPrompt + [modality.opening], rng: rng)
        return Tensor(ints: codes, shape: [count, range.length])
    }

    /// `length` codes of the codebook at token ids `offset ..< offset + codebook` after `prompt`
    /// (which ends with the span's opening id), for `count` rows; flat (count·length) code ids.
    func sampleSpan(prompt: [Int32], count: Int, offset: Int, codebook k: Int, length: Int, options: SamplingOptions,
                    cfgScale: Float, unconditionalPrompt: [Int32], rng: RNG) -> [Int32] {
        precondition(count > 0 && prompt.count > 1, "Chameleon: need a prompt and at least one span")
        return inferring {
            let isGuided = cfgScale > 1
            // Guided: the conditional rows, then the unconditional ones, in one batch over a
            // stacked cache (the shorter prefix left-padded and masked out).
            var cache = KVCache(layers: config.decoder.layers), starts: [Int]? = nil
            var logits = step(Array(repeating: prompt, count: count), cache: cache)
            if isGuided {
                let uncond = KVCache(layers: config.decoder.layers)
                let u = step(Array(repeating: unconditionalPrompt, count: count), cache: uncond)
                (cache, starts) = KVCache.stacking([cache, uncond])
                logits = concat([logits, u], axis: 0)
            }
            var codes = [Int32](repeating: 0, count: count * length)
            for j in 0..<length {
                // The span's codebook columns, guided by the one CFG helper (Diffusion/Guidance.swift)
                // in logit space: l_u + s·(l_c − l_u).
                let span = logits.slice(axis: 1, offset..<(offset + k))
                let picked = isGuided
                    ? guided(cond: span.slice(axis: 0, 0..<count), uncond: span.slice(axis: 0, count..<(2 * count)), scale: cfgScale)
                    : span
                for b in 0..<count { codes[b * length + j] = options.pick(picked, row: b, rng: rng) }
                if j == length - 1 { break }
                let next = (0..<count).map { [Int32(offset) + codes[$0 * length + j]] }
                logits = step(isGuided ? next + next : next, cache: cache, starts: starts)
            }
            return codes
        }
    }

    /// `count` edits of the image with `source` codes following `instruction` (ids, no BOS): codes
    /// sampled after `BOS BOI source EOI instruction BOI`, guided against the instruction dropped
    /// (`BOS BOI source EOI BOI`, the layout of edit documents whose instruction was dropped).
    /// Returns the code ids (count, grid, grid).
    public func sampleEdit(source: [Int32], instruction: [Int32], count: Int, options: SamplingOptions, cfgScale: Float = 1,
                           rng: RNG) -> Tensor {
        let prefix = [SpecialTokens.bos] + imageTokens(codes: source)
        return sampleCodes(prompt: prefix + instruction, count: count, options: options, cfgScale: cfgScale,
                           unconditionalPrompt: prefix, rng: rng)
    }

    /// Text after an image: `BOS BOI codes EOI`, then decoding until EOS (image-first layout).
    public func caption(codes: [Int32], maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        text(after: [SpecialTokens.bos] + imageTokens(codes: codes), maxTokens: maxTokens, options: options, rng: rng)
    }

    /// Text after speech: `BOS BOA codes EOA`, then decoding until EOS (speech-to-text layout).
    public func transcribe(codes: [Int32], maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        precondition(config.hasAudio, "Chameleon: this model has no audio codes")
        return text(after: [SpecialTokens.bos] + audioTokens(codes: codes), maxTokens: maxTokens, options: options, rng: rng)
    }

    /// Decodes text after `prompt` with a KV cache, like ``Transfusion/generate``: when the model
    /// picks BOI, the image's codes are sampled (``sampleCodes``, guided at `cfgScale` against
    /// BOS + BOI) and enter the cache with their EOI; BOA likewise samples audio codes (models with
    /// speech). Text is picked from the text logits only. Stops at EOS, after `maxTokens` text
    /// tokens, or where the next token or span would take the sequence past `maxPositions`.
    /// Segments: `.text` ids, `.image` code ids (1, grid, grid), `.audio` and other modalities' code ids (1, length).
    public func generate(prompt: [Int32], maxTokens: Int, text: SamplingOptions, codes: SamplingOptions, cfgScale: Float,
                         maxPositions: Int? = nil, rng: RNG) -> [GeneratedSegment] {
        precondition(!prompt.isEmpty, "generate: empty prompt")
        return inferring {
            let cache = KVCache(layers: config.decoder.layers)
            return generateMixed(
                prompt: prompt, maxTokens: maxTokens, maxPositions: maxPositions,
                spanLength: { id in Modality(opening: id).flatMap { config.codes($0)?.length } },
                step: { step([$0], cache: cache) },
                pick: { logits in withExtendedLifetime(logits) { text.pick(logits.data, count: config.textVocab, rng: rng) } },
                open: { id, context in
                    // The span is sampled with its own caches; then its ids enter this one.
                    let modality = Modality(opening: id)!
                    let sampled = sampleCodes(modality, prompt: context, count: 1, options: codes, cfgScale: cfgScale, rng: rng)
                    let span = tokens(modality, codes: sampled.intScalars)
                    let segment = GeneratedSegment.span(
                        of: modality, modality == .image ? sampled.reshaped([1, config.gridSize, config.gridSize]) : sampled)
                    return (segment, Array(span.dropFirst()), span)
                })
        }
    }

    /// Text ids decoded after `prefix` until EOS or `maxTokens`, from the text logits only.
    func text(after prefix: [Int32], maxTokens: Int, options: SamplingOptions, rng: RNG) -> [Int32] {
        inferring {
            let cache = KVCache(layers: config.decoder.layers)
            // Text only: image and audio codes are not words, nor the ids that open spans.
            return decodeLoop(from: step([prefix], cache: cache), maxTokens: maxTokens, keepStop: false,
                              stop: { $0 == SpecialTokens.eos },
                              pick: { options.pickWord($0, count: config.textVocab, allowEnd: !$1.isEmpty, rng: rng) },
                              step: { step([[$0]], cache: cache) })
        }
    }

    /// Runs rows (equal lengths) after the cache; returns the last position's logits (B, vocab).
    func step(_ rows: [[Int32]], cache: KVCache, starts: [Int]? = nil) -> Tensor {
        let b = rows.count, n = rows[0].count, start = cache.length
        // Causal over the new tokens; in a stacked cache, row r sees its keys from starts[r] on.
        let lo = (starts ?? [Int](repeating: 0, count: b)).flatMap { [Int32](repeating: Int32($0), count: n) }
        let hi = (0..<b).flatMap { _ in (0..<n).map { Int32(start + $0 + 1) } }
        let positions = starts.map { cache.positions(continuing: $0, count: n) }
            ?? Tensor(ints: (start..<(start + n)).map { Int32($0) })
        let logits = lm(Tensor(ints: rows.flatMap { $0 }, shape: [b, n]),
                        mask: AttentionMask(batch: b, queries: n, keys: start + n, lo: lo, hi: hi),
                        positions: positions, cache: cache)
        let v = config.vocab
        let out = Tensor.empty([b, v])
        withExtendedLifetime(logits) {
            for r in 0..<b { (out.data + r * v).update(from: logits.data + (r * n + n - 1) * v, count: v) }
        }
        return out
    }

    /// Analytic training FLOPs of `tokens` positions seeing `attended` keys on average.
    public func trainingFlops(tokens: Int, attended: Double) -> Double {
        lm.trainingFlops(tokens: tokens, attended: attended)
    }
}
