// The Transfusion model (Zhou et al. 2024, arXiv 2408.11039): one decoder over mixed sequences of
// text tokens and continuous spans. Text in: embedding; text out: LM head. Each continuous modality
// is one adapter (Modalities: image latents as patches, audio frames) that turns a span's values
// and its timestep embedding into decoder inputs and the decoder's outputs back into predictions;
// the model loops over the adapters its config names. Not the adapters' layers (Modalities), not
// the sequence layout (Data), not noising or sampling loops (Diffusion, TransfusionSampling).
import Data
import Foundation
import Modalities
import NN
import Tensors

/// Sizes and switches of a Transfusion model (saved beside its checkpoints).
public struct TransfusionConfig: Codable, Equatable, Sendable {
    /// How latents become span positions and back (paper, Sec. 3.2).
    public typealias Patchifier = SpanPatchifier

    public var vocab: Int
    public var decoder: DecoderConfig
    /// Channels of the VAE latents (paper: 8).
    public var latentChannels: Int
    /// Side of the (square) latent grid, e.g. 8 for a 32×32 image under a 4× VAE.
    public var latentSize: Int
    /// Latent pixels per patch side (paper: 2); the span has (latentSize/patchSize)² positions.
    public var patchSize: Int
    public var patchifier: Patchifier
    /// Width of the U-Net blocks (unused by the linear patchifier).
    public var unetChannels: Int
    /// Timesteps are multiplied by this before the sinusoidal embedding (1000 for flow times in
    /// [0, 1], so they spread like the integer steps of a discrete schedule).
    public var timestepScale: Float
    /// D, values per audio patch (AudioCodec `patchDim`); 0: the model has no audio layers.
    public var audioDim: Int
    /// L, positions of an audio span (clips are padded with silence or cut to L patches).
    public var audioLength: Int
    /// Continuous span modalities beyond images and audio, each with its adapter (after the audio
    /// adapter, in this order). Their marker ids are ids of the vocabulary.
    public var modalities: [ModalitySpec]

    public init(vocab: Int, decoder: DecoderConfig, latentChannels: Int = 8, latentSize: Int = 8, patchSize: Int = 2,
                patchifier: Patchifier = .linear, unetChannels: Int = 64, timestepScale: Float = 1,
                audioDim: Int = 0, audioLength: Int = 0, modalities: [ModalitySpec] = []) {
        precondition(latentSize % patchSize == 0, "TransfusionConfig: latent size \(latentSize) is not a multiple of "
                     + "the patch size \(patchSize)")
        precondition(patchSize.nonzeroBitCount == 1, "TransfusionConfig: patch size \(patchSize) must be a power of 2")
        self.vocab = vocab; self.decoder = decoder; self.latentChannels = latentChannels
        self.latentSize = latentSize; self.patchSize = patchSize; self.patchifier = patchifier
        self.unetChannels = unetChannels; self.timestepScale = timestepScale
        self.audioDim = audioDim; self.audioLength = audioLength; self.modalities = modalities
    }

    enum CodingKeys: String, CodingKey {
        case vocab, decoder, latentChannels, latentSize, patchSize, patchifier, unetChannels, timestepScale
        case audioDim, audioLength, modalities
    }

    /// Configs saved before audio spans (or other modalities) existed read without them.
    public init(from coder: Swift.Decoder) throws {
        let c = try coder.container(keyedBy: CodingKeys.self)
        vocab = try c.decode(Int.self, forKey: .vocab)
        self.decoder = try c.decode(DecoderConfig.self, forKey: .decoder)
        latentChannels = try c.decode(Int.self, forKey: .latentChannels)
        latentSize = try c.decode(Int.self, forKey: .latentSize)
        patchSize = try c.decode(Int.self, forKey: .patchSize)
        patchifier = try c.decode(Patchifier.self, forKey: .patchifier)
        unetChannels = try c.decode(Int.self, forKey: .unetChannels)
        timestepScale = try c.decode(Float.self, forKey: .timestepScale)
        audioDim = try c.decodeIfPresent(Int.self, forKey: .audioDim) ?? 0
        audioLength = try c.decodeIfPresent(Int.self, forKey: .audioLength) ?? 0
        modalities = try c.decodeIfPresent([ModalitySpec].self, forKey: .modalities) ?? []
    }

    /// Writes `modalities` only when there are some, so configs without them read as before.
    public func encode(to coder: Swift.Encoder) throws {
        var c = coder.container(keyedBy: CodingKeys.self)
        try c.encode(vocab, forKey: .vocab); try c.encode(decoder, forKey: .decoder)
        try c.encode(latentChannels, forKey: .latentChannels); try c.encode(latentSize, forKey: .latentSize)
        try c.encode(patchSize, forKey: .patchSize); try c.encode(patchifier, forKey: .patchifier)
        try c.encode(unetChannels, forKey: .unetChannels); try c.encode(timestepScale, forKey: .timestepScale)
        try c.encode(audioDim, forKey: .audioDim); try c.encode(audioLength, forKey: .audioLength)
        if !modalities.isEmpty { try c.encode(modalities, forKey: .modalities) }
    }

    /// Whether the model reads and writes audio spans.
    public var hasAudio: Bool { audioDim > 0 && audioLength > 0 }

    /// What makes the config unbuildable (see ``DecoderConfig/problem``), or nil.
    public var problem: String? {
        if let p = decoder.problem { return p }
        if vocab <= 0 || latentChannels <= 0 || latentSize <= 0 || unetChannels <= 0 {
            return "sizes must be positive (vocab \(vocab), latentChannels \(latentChannels), latentSize \(latentSize), unetChannels \(unetChannels))"
        }
        if patchSize <= 0 || patchSize.nonzeroBitCount != 1 || latentSize % patchSize != 0 {
            return "patch size \(patchSize) must be a power of 2 dividing the latent size \(latentSize)"
        }
        if audioDim < 0 || audioLength < 0 || (audioDim > 0) != (audioLength > 0) {
            return "audio sizes must both be positive or both 0 (audioDim \(audioDim), audioLength \(audioLength))"
        }
        for spec in modalities {
            if let p = spec.problem(vocab: vocab, continuous: true) { return p }
            if !SpanAdapters.has(spec.adapter) { return "modality '\(spec.name)': no adapter kind '\(spec.adapter)' is registered" }
        }
        return nil
    }

    /// Patches per side of an image span.
    public var gridSize: Int { latentSize / patchSize }
    /// Positions of one image span.
    public var patchesPerImage: Int { gridSize * gridSize }
    /// Values per linear patch (C·p·p).
    public var patchDim: Int { latentChannels * patchSize * patchSize }
}

/// One forward pass's inputs: B rows of T positions, with the spans of each continuous modality
/// among them.
public struct TransfusionInput {
    /// Token ids (B, T), Int32. Span positions hold any valid id (the layout uses PAD); their
    /// inputs are replaced by the adapters' embeddings.
    public var ids: Tensor
    /// RoPE positions, (T) or (B·T) Int32.
    public var positions: Tensor
    public var mask: AttentionMask
    /// The spans of each modality (a modality without spans is absent or has none).
    public var spans: [Modality: SpanBatch]

    public init(ids: Tensor, positions: Tensor, mask: AttentionMask, spans: [Modality: SpanBatch] = [:]) {
        self.ids = ids; self.positions = positions; self.mask = mask; self.spans = spans
    }

    /// Spans of `modality` in the batch.
    public func count(_ modality: Modality) -> Int { spans[modality]?.count ?? 0 }
}

/// One forward pass's outputs: the decoder's hidden states and each modality's predictions.
public struct TransfusionOutput {
    /// The decoder's output (B, T, d).
    public var hidden: Tensor
    /// Predictions shaped like each modality's span values (absent for a modality without spans).
    public var predictions: [Modality: Tensor]

    public var images: Tensor? { predictions[.image] }
    public var audio: Tensor? { predictions[.audio] }
}

/// What one modality's predictions are regressed on: a row per scored span.
public struct SpanTargets {
    /// Diffusion targets (ε, v or the flow velocity), one row per scored span.
    public var values: Tensor
    /// The spans that carry the loss (nil: all); clean conditioning spans (an edit's source image,
    /// speech to transcribe) are left out.
    public var scored: [Int]?
    /// λ of the modality's term (paper, eq. 4).
    public var weight: Float

    public init(_ values: Tensor, scored: [Int]? = nil, weight: Float) {
        self.values = values; self.scored = scored; self.weight = weight
    }

    /// How many spans carry the loss, of `count` in the batch.
    public func scoredCount(of count: Int) -> Int { count == 0 ? 0 : scored?.count ?? values.dim(0) }
}

public final class Transfusion: Module {
    public let config: TransfusionConfig
    public let embed: Embedding
    public let decoder: Decoder
    public let head: Linear
    public let timeEmbed: TimestepEmbedding
    /// One adapter per continuous modality, in the config's order (images, then audio if the
    /// config has it, then its other modalities). Their layers are saved under their own keys
    /// (`patchIn`, `audioIn`, `<name>In` …).
    @Inline public var adapters: [any SpanAdapter]

    public init(_ config: TransfusionConfig, rng: RNG) {
        let d = config.decoder.dim
        self.config = config
        embed = Embedding(config.vocab, d, std: 0.02, rng: rng)
        decoder = Decoder(config.decoder, rng: rng)
        head = Linear(d, config.vocab, bias: false, rng: rng)
        timeEmbed = TimestepEmbedding(dim: d, rng: rng)
        var adapters: [any SpanAdapter] = [
            ImageSpans(latentChannels: config.latentChannels, latentSize: config.latentSize, patchSize: config.patchSize,
                       patchifier: config.patchifier, unetChannels: config.unetChannels, width: d, rng: rng)]
        if config.hasAudio {
            adapters.append(FrameSpans(.audio, name: "audio", dim: config.audioDim, length: config.audioLength, width: d, rng: rng))
        }
        for spec in config.modalities {
            guard let adapter = try? SpanAdapters.make(spec, width: d, rng: rng) else {
                preconditionFailure("Transfusion: modality '\(spec.name)': \(config.problem ?? "no adapter")")
            }
            adapters.append(adapter)
        }
        _adapters = Inline(wrappedValue: adapters)
    }

    /// GPT-2-style decoder initialisation (Decoder.initialise) and zero output layers for the
    /// spans, so an untrained model predicts 0 (DiT's zero-initialised final layer).
    public func initialise(rng: RNG) {
        decoder.initialise(rng: rng)
        for adapter in adapters { adapter.zeroOutput() }
    }

    public var vocab: Int { config.vocab }

    /// The adapter of `modality`, or nil when the model has none.
    public func adapter(_ modality: Modality) -> (any SpanAdapter)? { adapters.first { $0.modality == modality } }

    /// The image adapter (every Transfusion model has one).
    public var image: ImageSpans { adapters[0] as! ImageSpans }
    /// The audio adapter, nil in a model without audio.
    public var audio: FrameSpans? { adapter(.audio) as? FrameSpans }

    /// The decoder's output (B, T, d) and each modality's predictions. With a cache, keys/values of
    /// these positions are appended and `mask` indexes cached keys.
    public func callAsFunction(_ input: TransfusionInput, cache: KVCache? = nil) -> TransfusionOutput {
        let (b, t) = (input.ids.shape[0], input.ids.shape[1])
        let d = config.decoder.dim
        for modality in input.spans.keys where adapter(modality) == nil && input.count(modality) > 0 {
            preconditionFailure("Transfusion: \(modality) spans need a model with \(modality) layers")
        }
        var x = embed(input.ids).reshaped([b * t, d])
        // Every position reads row `index[i]` of [text embeddings; each modality's span rows].
        var rows = [x], index = (0..<(b * t)).map { Int32($0) }, extra = b * t
        var contexts: [Modality: SpanContext] = [:]
        for adapter in adapters {
            guard let spans = input.spans[adapter.modality], spans.count > 0 else { continue }
            let (n, length) = (spans.count, adapter.length)
            precondition(spans.timesteps.count == n && spans.starts.count == n,
                         "Transfusion: \(n) \(adapter.modality) spans need \(n) timesteps and span starts")
            for (k, start) in spans.starts.enumerated() {
                precondition(start >= 0 && start + length <= b * t && (start % t) + length <= t,
                             "Transfusion: \(adapter.modality) span \(k) at \(start) does not fit rows of \(t)")
                for j in 0..<length { index[start + j] = Int32(extra + k * length + j) }
            }
            extra += n * length
            let (embedded, context) = adapter.embed(spans.values, time: timeEmbed(spans.timesteps.map { $0 * config.timestepScale }))
            rows.append(embedded)
            contexts[adapter.modality] = context
        }
        if rows.count > 1 { x = embedding(concat(rows, axis: 0), Tensor(ints: index)) }
        let hidden = decoder(x.reshaped([b, t, d]), mask: input.mask, positions: input.positions, cache: cache)
        let flat = hidden.reshaped([b * t, d])
        var predictions: [Modality: Tensor] = [:]
        for adapter in adapters {
            guard let spans = input.spans[adapter.modality], let context = contexts[adapter.modality] else { continue }
            let length = adapter.length
            predictions[adapter.modality] = adapter.predict(flat.indexSelect(axis: 0, spans.starts.flatMap { s in (s..<(s + length)) }),
                                                            context: context)
        }
        return TransfusionOutput(hidden: hidden, predictions: predictions)
    }

    /// Logits (rows, vocab) of the decoder outputs at flat positions `rows` of `hidden` (B, T, d).
    public func logits(_ hidden: Tensor, rows: [Int]) -> Tensor {
        let d = config.decoder.dim
        return head(hidden.reshaped([hidden.count / d, d]).indexSelect(axis: 0, rows))
    }

    /// The Transfusion objective (paper, eq. 4): L = L_LM + Σ λ_m · L_diffusion,m over modalities.
    ///
    /// `targets` (B·T) Int32 hold the next token at text positions and −1 elsewhere; the LM head
    /// runs only where a target exists. `spanTargets` holds, per modality with spans, what its
    /// predictions are regressed on, which spans are scored and the term's weight. Returns the
    /// total, the text part and each modality's part (unweighted); a part with nothing to score is 0.
    public func loss(_ input: TransfusionInput, targets: Tensor, spanTargets: [Modality: SpanTargets], zLoss: Float = 0)
        -> (total: Tensor, text: Tensor, spans: [Modality: Tensor]) {
        let out = self(input)
        let flat = targets.intScalars
        precondition(flat.count == input.ids.count, "Transfusion.loss: \(flat.count) targets for \(input.ids.count) positions")
        let rows = flat.indices.filter { flat[$0] >= 0 }
        let text = rows.isEmpty ? Tensor.zeros([])
            : crossEntropy(logits(out.hidden, rows: rows), Tensor(ints: rows.map { flat[$0] }), ignoreIndex: -1, zLoss: zLoss)
        var total = text, parts: [Modality: Tensor] = [:]
        for adapter in adapters {
            let part = Self.spanLoss(out.predictions[adapter.modality], spanTargets[adapter.modality], adapter.modality)
            parts[adapter.modality] = part
            total = total + part * (spanTargets[adapter.modality]?.weight ?? 0)
        }
        return (total, text, parts)
    }

    /// Held-out scores, without the tape: the cross-entropy of each position's target (NaN where
    /// the target is −1) and each modality's span loss as ``loss(_:targets:spanTargets:zLoss:)``
    /// computes it, so an evaluation can split the text loss by kind of target.
    public func scores(_ input: TransfusionInput, targets: [Int32], spanTargets: [Modality: SpanTargets])
        -> (text: [Float], spans: [Modality: Float]) {
        withoutGrad {
            let out = self(input)
            precondition(targets.count == input.ids.count, "Transfusion.scores: \(targets.count) targets for \(input.ids.count) positions")
            let rows = targets.indices.filter { targets[$0] >= 0 }
            var text = [Float](repeating: .nan, count: targets.count)
            if !rows.isEmpty {
                for (row, loss) in zip(rows, rowCrossEntropies(logits(out.hidden, rows: rows), rows.map { targets[$0] })) { text[row] = loss }
            }
            var parts: [Modality: Float] = [:]
            for m in adapters.map(\.modality) { parts[m] = Self.spanLoss(out.predictions[m], spanTargets[m], m).item }
            return (text, parts)
        }
    }

    /// The diffusion MSE of span predictions against their targets (one row per scored span): over
    /// the rows `scored` lists, or all (nil); 0 without spans of the kind or with none scored.
    static func spanLoss(_ predicted: Tensor?, _ targets: SpanTargets?, _ modality: Modality) -> Tensor {
        guard let predicted else { return Tensor.zeros([]) }
        guard let targets else { preconditionFailure("Transfusion.loss: \(modality) spans need targets") }
        guard let scored = targets.scored else { return mse(predicted, targets.values) }
        return scored.isEmpty ? Tensor.zeros([]) : mse(predicted.indexSelect(axis: 0, scored), targets.values)
    }

    /// Analytic training FLOPs (forward + backward) of one batch: the decoder over `tokens`
    /// positions seeing `attended` keys on average, the LM head on `textRows` rows, and each
    /// modality's adapter for its `spans` count.
    public func trainingFlops(tokens: Int, attended: Double, textRows: Int, spans: [Modality: Int]) -> Double {
        let d = config.decoder.dim
        var flops = config.decoder.trainingFlops(tokens: tokens, attended: attended)
        flops += 6 * Double(config.vocab) * Double(d) * Double(textRows)
        for adapter in adapters { flops += adapter.trainingFlops(spans: spans[adapter.modality] ?? 0, dim: d) }
        return flops
    }
}
