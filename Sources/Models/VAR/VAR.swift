// VAR-style next-scale prediction (Tian et al. 2024, "Visual Autoregressive Modeling", arXiv
// 2404.02905) in Fusion's decoder: the third family beside Transfusion and Chameleon. An image is
// the code pyramid of a MultiScaleVQTokenizer (one shared codebook, scales 1×1 … h×h); the decoder
// predicts a whole scale at once from the text before it and every coarser scale.
//
// A generated image is one block of positions per scale between BOI and EOI. The rows of scale
// k's block read the coarser scales' sum f̂ₖ₋₁ area-downsampled to scale k (zeros for the first),
// through a linear layer (VAR's word embedding), plus a learned embedding of the slot (scale and
// place in one table: VAR's level and position embeddings); they predict scale k's codes by
// cross-entropy over the whole vocabulary, like Chameleon's codes. The mask is causal over text and
// across blocks, bidirectional inside a block (each block is a span of AttentionMask). An image
// read as context (before a caption, or an edit's source) is instead the full map f̂ after the last
// scale, h² positions attending to each other: the whole pyramid summed, as the tokenizer's decoder
// reads it. Sampling runs one block per step over a KV cache, guided in logit space. Not VAR's φ
// refinement convolutions, nor its AdaLN class conditioning (the caption is the prefix instead).
import Data
import Diffusion
import Foundation
import NN
import Tensors
import Text

/// Sizes of a VAR model: a text vocabulary followed by the codebook, the code vectors' dimension,
/// the tokenizer's scales and the decoder.
public struct VARConfig: Codable, Equatable, Sendable {
    public var textVocab: Int
    public var codebookSize: Int
    public var codeDim: Int
    /// Sides of the code maps, ascending (the tokenizer's), the last the full grid.
    public var scales: [Int]
    public var decoder: DecoderConfig

    public init(textVocab: Int, codebookSize: Int, codeDim: Int, scales: [Int], decoder: DecoderConfig) {
        self.textVocab = textVocab; self.codebookSize = codebookSize; self.codeDim = codeDim
        self.scales = scales; self.decoder = decoder
    }

    public var vocab: Int { textVocab + codebookSize }
    /// Positions (and predicted codes) of one generated image: Σ s².
    public var blockPositions: Int { scales.map { $0 * $0 }.reduce(0, +) }
    /// Positions of one image read as context: the full map, h².
    public var contextPositions: Int { scales.last! * scales.last! }
    /// Where each scale's block begins inside a generated image's positions.
    public var blockStarts: [Int] { scales.indices.map { k in scales[..<k].map { $0 * $0 }.reduce(0, +) } }
    /// The token id of code `c`.
    public func token(code c: Int32) -> Int32 { Int32(textVocab) + c }

    /// What makes the config unbuildable, or nil.
    public var problem: String? {
        if let p = decoder.problem { return p }
        if textVocab <= 0 || codebookSize <= 0 || codeDim <= 0 {
            return "sizes must be positive (textVocab \(textVocab), codebookSize \(codebookSize), codeDim \(codeDim))"
        }
        guard let first = scales.first, first >= 1 else { return "scales must be a non-empty list of sides ≥ 1" }
        if zip(scales, scales.dropFirst()).contains(where: { $0 >= $1 }) { return "scales \(scales) must ascend" }
        return nil
    }
}

extension VARConfig {
    /// A caption-first document `BOS caption BOI [blocks] EOI EOS` whose image is generated:
    /// one span per scale (bidirectional inside, causal across), each position's target its own
    /// code's id; text targets as every family's (``MixedSequence``). `codes` is the pyramid,
    /// every scale's codes coarsest first (``blockPositions`` of them).
    public func sequence(caption: [Int32], codes: [Int32]) -> MixedSequence {
        precondition(codes.count == blockPositions, "VAR: \(codes.count) codes, expected \(blockPositions)")
        var seq = MixedSequence(segments: [.text(caption), .image(patches: blockPositions)])
        let image = seq.spans[0]
        seq.spans = zip(scales.indices, blockStarts).map { k, start in
            var block = image
            (block.start, block.length, block.index) = (image.start + start, scales[k] * scales[k], k)
            return block
        }
        for (k, span) in seq.spans.enumerated() { for i in span.range { seq.spanIDs[i] = Int32(k) } }
        for (j, code) in codes.enumerated() { seq.targets[image.start + j] = token(code: code) }
        return seq
    }

    /// An image-first document `BOS BOI [full map] EOI caption EOS`: the image is read (one span of
    /// ``contextPositions``, no targets), the caption predicted.
    public func contextSequence(caption: [Int32]) -> MixedSequence {
        MixedSequence(segments: [.image(patches: contextPositions), .text(caption)])
    }

    /// Pyramids (each every scale's codes, coarsest first) as one code map per scale, (N, s, s).
    public func maps(_ pyramids: [[Int32]]) -> [Tensor] {
        zip(scales, blockStarts).map { s, start in
            Tensor(ints: pyramids.flatMap { $0[start..<(start + s * s)] }, shape: [pyramids.count, s, s])
        }
    }
}

/// How an image sits in a VAR sequence.
public enum VARImageRole: Sendable {
    /// Generated: one block per scale (``VARConfig/blockPositions`` positions), each reading the
    /// coarser scales and predicting its own codes.
    case blocks
    /// Read: the full map (``VARConfig/contextPositions`` positions).
    case context
}

/// A packed batch for ``VAR``: token ids, positions and mask, and the images' positions with the
/// code vectors they read.
public struct VARInput {
    /// (B, T) Int32 ids; at image positions any id (they read `vectors` instead).
    public var ids: Tensor
    public var positions: Tensor
    public var mask: AttentionMask
    /// Each image's first flat position (into B·T) and role, in the order of `vectors`' rows.
    public var images: [(start: Int, role: VARImageRole)]
    /// The rows every image position reads, image after image: (Σ positions, codeDim).
    public var vectors: Tensor?

    public init(ids: Tensor, positions: Tensor, mask: AttentionMask, images: [(start: Int, role: VARImageRole)] = [],
                vectors: Tensor? = nil) {
        self.ids = ids; self.positions = positions; self.mask = mask; self.images = images; self.vectors = vectors
    }
}

public final class VAR: Module {
    public let config: VARConfig
    /// Text embedding, decoder and the head over text and codes.
    public let lm: DecoderLM
    /// Code vectors → the decoder's width (VAR's word embedding).
    public let codeIn: Linear
    /// One learned row per image slot: every block position, then every context position.
    public let slots: Embedding

    public init(_ config: VARConfig, rng: RNG) {
        precondition(config.problem == nil, "VAR: \(config.problem!)")
        self.config = config
        let d = config.decoder.dim
        lm = DecoderLM(vocab: config.vocab, config: config.decoder, rng: rng)
        codeIn = Linear(config.codeDim, d, rng: rng)
        slots = Embedding(config.blockPositions + config.contextPositions, d, std: 0.02, rng: rng)
    }

    public func initialise(rng: RNG) { lm.decoder.initialise(rng: rng) }

    /// Positions an image of `role` takes.
    public func length(_ role: VARImageRole) -> Int { role == .blocks ? config.blockPositions : config.contextPositions }

    /// The decoder's input (B·T, d): text embeddings, with every image position replaced by its
    /// code vector through ``codeIn`` plus its slot's embedding.
    func inputs(_ input: VARInput) -> Tensor {
        let (b, t) = (input.ids.dim(0), input.ids.dim(1))
        let text = lm.embed(input.ids).reshaped([b * t, config.decoder.dim])
        guard !input.images.isEmpty else { return text }
        guard let vectors = input.vectors else { preconditionFailure("VAR: images need their code vectors") }
        var index = (0..<(b * t)).map { Int32($0) }, slotIds: [Int32] = []
        for (start, role) in input.images {
            let n = length(role), first = role == .blocks ? 0 : config.blockPositions
            precondition(start >= 0 && (start % t) + n <= t, "VAR: an image of \(n) positions at \(start) does not fit rows of \(t)")
            for j in 0..<n { index[start + j] = Int32(b * t + slotIds.count + j) }
            slotIds += (0..<n).map { Int32(first + $0) }
        }
        precondition(vectors.shape == [slotIds.count, config.codeDim],
                     "VAR: \(slotIds.count) image positions need (\(slotIds.count), \(config.codeDim)) vectors, got \(vectors.shape)")
        let images = codeIn(vectors) + slots(Tensor(ints: slotIds))
        return embedding(concat([text, images], axis: 0), Tensor(ints: index))
    }

    /// The decoder's output (B, T, d). With a cache, these positions' keys and values are appended.
    public func callAsFunction(_ input: VARInput, cache: KVCache? = nil) -> Tensor {
        let (b, t) = (input.ids.dim(0), input.ids.dim(1))
        return lm.decoder(inputs(input).reshaped([b, t, config.decoder.dim]), mask: input.mask, positions: input.positions,
                          cache: cache)
    }

    /// Logits (rows, vocab) at flat positions `rows` of `hidden` (B, T, d).
    func logits(_ hidden: Tensor, rows: [Int]) -> Tensor {
        let d = config.decoder.dim
        return lm.head(hidden.reshaped([hidden.count / d, d]).indexSelect(axis: 0, rows))
    }

    /// Cross-entropy over every position with a target (`targets` (B·T) Int32, −1 where none:
    /// text positions hold the next id, block positions their own scale's code id) plus z-loss,
    /// and its parts as Chameleon splits them: text (the ids that close spans left out) and codes.
    public func loss(_ input: VARInput, targets: Tensor, zLoss: Float = 0) -> (total: Tensor, text: Float, image: Float) {
        let flat = targets.intScalars
        precondition(flat.count == input.ids.count, "VAR.loss: \(flat.count) targets for \(input.ids.count) positions")
        let rows = flat.indices.filter { flat[$0] >= 0 }
        guard !rows.isEmpty else { return (Tensor.zeros([]), 0, 0) }
        let logits = logits(self(input), rows: rows), picked = rows.map { flat[$0] }
        let total = crossEntropy(logits, Tensor(ints: picked), ignoreIndex: -1, zLoss: zLoss)
        let parts = withoutGrad {
            partTargets(picked).map { crossEntropy(logits, Tensor(ints: $0), ignoreIndex: -1).item }
        }
        return (total, parts[0], parts[1])
    }

    /// `targets` split into text (structural closing ids left out, as Chameleon's) and code ids.
    public func partTargets(_ targets: [Int32]) -> [[Int32]] {
        splitTargets(targets, textVocab: config.textVocab, codes: [Int32(config.textVocab)..<Int32(config.vocab)])
    }

    /// Analytic training FLOPs of `tokens` positions seeing `attended` keys on average, the head
    /// on `scoredRows` rows and the code input layer on `imageRows`.
    public func trainingFlops(tokens: Int, attended: Double, scoredRows: Int, imageRows: Int) -> Double {
        config.decoder.trainingFlops(tokens: tokens, attended: attended)
            + 6 * Double(config.vocab * config.decoder.dim) * Double(scoredRows)
            + 6 * Double(config.codeDim * config.decoder.dim) * Double(imageRows)
    }

    // MARK: - Sampling

    /// `count` images after `prompt` (BOS + caption ids; BOI is appended), one scale per decoder
    /// call over a KV cache: each block reads the coarser scales' sum from `tokenizer` and its
    /// codes are sampled from the code logits, guided as l_u + s·(l_c − l_u) against
    /// `unconditionalPrompt` + BOI when `cfgScale` > 1. Returns one code map (count, s, s) per scale.
    public func sampleCodes(prompt: [Int32], count: Int, tokenizer: MultiScaleVQTokenizer, options: SamplingOptions,
                            cfgScale: Float = 1, unconditionalPrompt: [Int32] = [SpecialTokens.bos], rng: RNG) -> [Tensor] {
        precondition(count > 0 && !prompt.isEmpty, "VAR: need a prompt and at least one image")
        precondition(tokenizer.config.scales == config.scales && tokenizer.config.base.codeDim == config.codeDim
                     && tokenizer.config.base.codebookSize == config.codebookSize,
                     "VAR: the tokenizer's scales, code dimension or codebook differ from the model's")
        return inferring {
            let isGuided = cfgScale > 1, rows = isGuided ? 2 * count : count
            var cache = KVCache(layers: config.decoder.layers), starts = [Int](repeating: 0, count: count)
            _ = prefill(Array(repeating: prompt + [SpecialTokens.boi], count: count), cache: cache)
            if isGuided {
                let uncond = KVCache(layers: config.decoder.layers)
                _ = prefill(Array(repeating: unconditionalPrompt + [SpecialTokens.boi], count: count), cache: uncond)
                (cache, starts) = KVCache.stacking([cache, uncond])
            }
            let (k0, v) = (config.textVocab, config.codebookSize)
            var partial: Tensor? = nil, maps: [Tensor] = []
            for (k, s) in config.scales.enumerated() {
                let input = tokenizer.blockInput(partial, scale: k, count: count).reshaped([count * s * s, config.codeDim])
                let vectors = isGuided ? concat([input, input], axis: 0) : input
                let hidden = block(vectors, slot: config.blockStarts[k], rows: rows, cache: cache, starts: starts)
                let logits = lm.head(hidden).reshaped([rows * s * s, config.vocab]).slice(axis: 1, k0..<(k0 + v))
                let picked = isGuided
                    ? guided(cond: logits.slice(axis: 0, 0..<(count * s * s)),
                             uncond: logits.slice(axis: 0, (count * s * s)..<(2 * count * s * s)), scale: cfgScale)
                    : logits
                let codes = (0..<(count * s * s)).map { options.pick(picked, row: $0, rng: rng) }
                let map = Tensor(ints: codes, shape: [count, s, s])
                maps.append(map)
                partial = tokenizer.accumulate(partial, codes: map)
            }
            return maps
        }
    }

    /// Text after an image: `BOS BOI [full map] EOI`, then decoding until EOS (image-first layout).
    public func caption(maps: [Tensor], tokenizer: MultiScaleVQTokenizer, maxTokens: Int, options: SamplingOptions, rng: RNG)
        -> [Int32] {
        precondition(maps.first?.dim(0) == 1, "VAR.caption: one image's code maps")
        return inferring {
            let cache = KVCache(layers: config.decoder.layers)
            _ = prefill([[SpecialTokens.bos, SpecialTokens.boi]], cache: cache)
            let full = tokenizer.nextScaleInputs(maps).full.reshaped([config.contextPositions, config.codeDim])
            _ = block(full, slot: config.blockPositions, rows: 1, cache: cache, starts: [0])
            let step = { (id: Int32) in self.nextLogits([id], cache: cache) }
            return decodeLoop(from: step(SpecialTokens.eoi), maxTokens: maxTokens, keepStop: false,
                              stop: { $0 == SpecialTokens.eos },
                              pick: { options.pickWord($0, count: config.textVocab, allowEnd: !$1.isEmpty, rng: rng) },
                              step: step)
        }
    }

    /// Decodes text after `prompt` with a KV cache, like ``Chameleon/generate``: when the model
    /// picks BOI, an image's pyramid is sampled (``sampleCodes``, guided at `cfgScale` against
    /// BOS + BOI) and its blocks enter the cache with their EOI, then text goes on. Text is picked
    /// from the text logits only. Stops at EOS, after `maxTokens` text tokens, where the next
    /// token or image would pass `maxPositions`, or at a second BOI (a VAR document holds one
    /// image: a second would be sampled without seeing the first). Segments: `.text` ids,
    /// `.image` the decoded image (1, 3, H, W) in [-1, 1].
    public func generate(prompt: [Int32], maxTokens: Int, text: SamplingOptions, codes: SamplingOptions, cfgScale: Float,
                         tokenizer msvq: MultiScaleVQTokenizer, maxPositions: Int? = nil, rng: RNG) -> [GeneratedSegment] {
        precondition(!prompt.isEmpty, "generate: empty prompt")
        return inferring {
            let cache = KVCache(layers: config.decoder.layers)
            var images = 0
            return generateMixed(
                prompt: prompt, maxTokens: maxTokens, maxPositions: maxPositions,
                spanLength: { $0 == SpecialTokens.boi ? self.config.blockPositions : nil },
                step: { self.nextLogits($0, cache: cache) },
                pick: { logits in
                    let id = withExtendedLifetime(logits) { text.pick(logits.data, count: self.config.textVocab, rng: rng) }
                    return id == SpecialTokens.boi && images > 0 ? SpecialTokens.eos : id
                },
                open: { _, context in
                    images += 1
                    let maps = self.sampleCodes(prompt: context, count: 1, tokenizer: msvq, options: codes, cfgScale: cfgScale, rng: rng)
                    // The image enters this cache as training laid it out: BOI, then each block.
                    _ = self.prefill([[SpecialTokens.boi]], cache: cache)
                    let blocks = msvq.nextScaleInputs(maps).blocks.reshaped([self.config.blockPositions, self.config.codeDim])
                    for (k, s) in self.config.scales.enumerated() {
                        let start = self.config.blockStarts[k]
                        _ = self.block(blocks.slice(axis: 0, start..<(start + s * s)), slot: start, rows: 1, cache: cache, starts: [0])
                    }
                    let pixels = withoutGrad { msvq.decode(maps) }
                    return (.image(pixels), [Int32](repeating: SpecialTokens.pad, count: self.config.blockPositions) + [SpecialTokens.eoi],
                            [SpecialTokens.eoi])
                })
        }
    }

    /// Runs `ids` (one row) causally after the cache; returns the last position's logits (1, vocab).
    func nextLogits(_ ids: [Int32], cache: KVCache) -> Tensor {
        let hidden = prefill([ids], cache: cache)
        return lm.head(hidden.slice(axis: 1, (ids.count - 1)..<ids.count).reshaped([1, config.decoder.dim]))
    }

    /// Runs id rows (equal lengths) causally after the cache; returns their hidden states (B, n, d).
    func prefill(_ rows: [[Int32]], cache: KVCache) -> Tensor {
        let b = rows.count, n = rows[0].count, start = cache.length
        let mask = AttentionMask(batch: b, queries: n, keys: start + n, lo: [Int32](repeating: 0, count: b * n),
                                 hi: (0..<b).flatMap { _ in (0..<n).map { Int32(start + $0 + 1) } })
        let input = VARInput(ids: Tensor(ints: rows.flatMap { $0 }, shape: [b, n]),
                             positions: Tensor(ints: (start..<(start + n)).map { Int32($0) }), mask: mask)
        return self(input, cache: cache)
    }

    /// Runs one block of image positions after the cache: `vectors` (rows·n, codeDim) read by
    /// slots `slot ..< slot + n`, each row seeing its own keys from `starts[r]` on and the whole
    /// block. Returns the block's hidden states (rows, n, d).
    func block(_ vectors: Tensor, slot: Int, rows: Int, cache: KVCache, starts: [Int]) -> Tensor {
        let n = vectors.dim(0) / rows, start = cache.length, d = config.decoder.dim
        let x = codeIn(vectors) + slots(Tensor(ints: (0..<rows).flatMap { _ in (0..<n).map { Int32(slot + $0) } }))
        let mask = AttentionMask(batch: rows, queries: n, keys: start + n,
                                 lo: starts.flatMap { [Int32](repeating: Int32($0), count: n) },
                                 hi: [Int32](repeating: Int32(start + n), count: rows * n))
        return lm.decoder(x.reshaped([rows, n, d]), mask: mask, positions: cache.positions(continuing: starts, count: n),
                          cache: cache)
    }
}
