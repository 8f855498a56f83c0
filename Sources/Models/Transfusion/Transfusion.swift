// The Transfusion model (Zhou et al. 2024, arXiv 2408.11039): one decoder over mixed sequences of
// text tokens and continuous image and audio spans. Text in: embedding; text out: LM head. An image
// span holds the VAE latents of one image as patches, each carrying a timestep embedding and a
// learned in-span position, in and out through a linear patch layer or U-Net down/up blocks. An
// audio span holds AudioCodec patches (log-mel frames), in and out through linear layers.
// Not the sequence layout (Data), not noising or sampling loops (Diffusion, TransfusionSampling).
import Foundation
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

    public init(vocab: Int, decoder: DecoderConfig, latentChannels: Int = 8, latentSize: Int = 8, patchSize: Int = 2,
                patchifier: Patchifier = .linear, unetChannels: Int = 64, timestepScale: Float = 1,
                audioDim: Int = 0, audioLength: Int = 0) {
        precondition(latentSize % patchSize == 0, "TransfusionConfig: latent size \(latentSize) is not a multiple of "
                     + "the patch size \(patchSize)")
        precondition(patchSize.nonzeroBitCount == 1, "TransfusionConfig: patch size \(patchSize) must be a power of 2")
        self.vocab = vocab; self.decoder = decoder; self.latentChannels = latentChannels
        self.latentSize = latentSize; self.patchSize = patchSize; self.patchifier = patchifier
        self.unetChannels = unetChannels; self.timestepScale = timestepScale
        self.audioDim = audioDim; self.audioLength = audioLength
    }

    enum CodingKeys: String, CodingKey {
        case vocab, decoder, latentChannels, latentSize, patchSize, patchifier, unetChannels, timestepScale
        case audioDim, audioLength
    }

    /// Configs saved before audio spans existed read with no audio layers.
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
        return nil
    }

    /// Patches per side of an image span.
    public var gridSize: Int { latentSize / patchSize }
    /// Positions of one image span.
    public var patchesPerImage: Int { gridSize * gridSize }
    /// Values per linear patch (C·p·p).
    public var patchDim: Int { latentChannels * patchSize * patchSize }
}

/// One forward pass's inputs: B rows of T positions, with `latents.dim(0)` image spans among them.
public struct TransfusionInput {
    /// Token ids (B, T), Int32. Span positions hold any valid id (the layout uses PAD); their
    /// inputs are replaced by patch embeddings.
    public var ids: Tensor
    /// RoPE positions, (T) or (B·T) Int32.
    public var positions: Tensor
    public var mask: AttentionMask
    /// Noisy latents (n, C, h, w), one per span (nil or n = 0 for text only).
    public var latents: Tensor?
    /// The n spans' timesteps.
    public var timesteps: [Float]
    /// Flat index b·T + position of each span's first patch; a span covers patchesPerImage
    /// consecutive positions in row-major patch order.
    public var spanStarts: [Int]
    /// Noisy audio patches (m, L, D), one row per audio span (nil or m = 0 for none).
    public var audio: Tensor?
    /// The m audio spans' timesteps.
    public var audioTimesteps: [Float]
    /// Flat index b·T + position of each audio span's first patch (L consecutive positions).
    public var audioStarts: [Int]

    public init(ids: Tensor, positions: Tensor, mask: AttentionMask, latents: Tensor? = nil, timesteps: [Float] = [],
                spanStarts: [Int] = [], audio: Tensor? = nil, audioTimesteps: [Float] = [], audioStarts: [Int] = []) {
        self.ids = ids; self.positions = positions; self.mask = mask; self.latents = latents
        self.timesteps = timesteps; self.spanStarts = spanStarts
        self.audio = audio; self.audioTimesteps = audioTimesteps; self.audioStarts = audioStarts
    }

    public var imageCount: Int { latents?.dim(0) ?? 0 }
    public var audioCount: Int { audio?.dim(0) ?? 0 }
}

public final class Transfusion: Module {
    public let config: TransfusionConfig
    public let embed: Embedding
    public let decoder: Decoder
    public let head: Linear
    public let timeEmbed: TimestepEmbedding
    /// Learned position of each patch inside its span (np, d), added to the patch embedding.
    public let spanPosition: Tensor
    public let patchIn: Linear
    public let patchOut: Linear
    public let unet: PatchUNet?
    /// Audio patches in (D → d) and predictions out (d → D), and the learned position of each
    /// patch inside an audio span (L, d); nil without audio.
    public let audioIn: Linear?
    public let audioOut: Linear?
    public let audioPosition: Tensor?

    public init(_ config: TransfusionConfig, rng: RNG) {
        let d = config.decoder.dim
        self.config = config
        embed = Embedding(config.vocab, d, std: 0.02, rng: rng)
        decoder = Decoder(config.decoder, rng: rng)
        head = Linear(d, config.vocab, bias: false, rng: rng)
        timeEmbed = TimestepEmbedding(dim: d, rng: rng)
        spanPosition = parameter(rng.normal([config.patchesPerImage, d], std: 0.02))
        switch config.patchifier {
        case .linear:
            unet = nil
            patchIn = Linear(config.patchDim, d, rng: rng)
            patchOut = Linear(d, config.patchDim, rng: rng)
        case .unet:
            let ch = config.unetChannels
            unet = PatchUNet(latentChannels: config.latentChannels, channels: ch, levels: config.patchSize.trailingZeroBitCount,
                             timeDim: d, rng: rng)
            patchIn = Linear(ch, d, rng: rng)
            patchOut = Linear(d, ch, rng: rng)
        }
        // Created last, so models without audio draw the same initial weights as before.
        if config.hasAudio {
            audioIn = Linear(config.audioDim, d, rng: rng)
            audioOut = Linear(d, config.audioDim, rng: rng)
            audioPosition = parameter(rng.normal([config.audioLength, d], std: 0.02))
        } else {
            audioIn = nil; audioOut = nil; audioPosition = nil
        }
    }

    /// GPT-2-style decoder initialisation (Decoder.initialise) and a zero output projection for
    /// patches, so an untrained model predicts 0 (DiT's zero-initialised final layer).
    public func initialise(rng: RNG) {
        decoder.initialise(rng: rng)
        patchOut.weight.data.update(repeating: 0, count: patchOut.weight.count)
        if let b = patchOut.bias { b.data.update(repeating: 0, count: b.count) }
        if let unet { unet.zeroOutput() }
        if let audioOut {
            audioOut.weight.data.update(repeating: 0, count: audioOut.weight.count)
            if let b = audioOut.bias { b.data.update(repeating: 0, count: b.count) }
        }
    }

    public var vocab: Int { config.vocab }

    /// The decoder's output (B, T, d), the image predictions (n, C, h, w) and the audio predictions
    /// (m, L, D) (each nil without spans of its kind). With a cache, keys/values of these positions
    /// are appended and `mask` indexes cached keys.
    public func callAsFunction(_ input: TransfusionInput, cache: KVCache? = nil)
        -> (hidden: Tensor, images: Tensor?, audio: Tensor?) {
        let (b, t) = (input.ids.shape[0], input.ids.shape[1])
        let d = config.decoder.dim, np = config.patchesPerImage
        var x = embed(input.ids).reshaped([b * t, d])
        // Every position reads row `index[i]` of [text embeddings; image patches; audio patches].
        var rows = [x], index = (0..<(b * t)).map { Int32($0) }, extra = b * t
        func place(_ starts: [Int], length: Int, _ what: String) {
            for (k, start) in starts.enumerated() {
                precondition(start >= 0 && start + length <= b * t && (start % t) + length <= t,
                             "Transfusion: \(what) span \(k) at \(start) does not fit rows of \(t)")
                for j in 0..<length { index[start + j] = Int32(extra + k * length + j) }
            }
            extra += starts.count * length
        }
        var skips: [Tensor] = [], cond: Tensor? = nil
        if let latents = input.latents, latents.dim(0) > 0 {
            let n = latents.dim(0)
            precondition(latents.shape == [n, config.latentChannels, config.latentSize, config.latentSize],
                         "Transfusion: latents \(latents.shape), expected (n, \(config.latentChannels), "
                         + "\(config.latentSize), \(config.latentSize))")
            precondition(input.timesteps.count == n && input.spanStarts.count == n,
                         "Transfusion: \(n) images need \(n) timesteps and span starts")
            let temb = timeEmbed(input.timesteps.map { $0 * config.timestepScale })      // (n, d)
            cond = temb
            let tokens: Tensor                                                           // (n·np, in)
            if let unet {
                let (grid, s) = unet.down(latents, t: temb)
                skips = s
                tokens = gridToPatches(grid)
            } else {
                tokens = patchify(latents, config.patchSize)
            }
            let patches = patchIn(tokens).reshaped([n, np, d]) + temb.reshaped([n, 1, d]) + spanPosition
            rows.append(patches.reshaped([n * np, d]))
            place(input.spanStarts, length: np, "image")
        }
        if let audio = input.audio, audio.dim(0) > 0 {
            guard let audioIn, let audioPosition else { preconditionFailure("Transfusion: audio spans need a model with audio") }
            let (m, l) = (audio.dim(0), config.audioLength)
            precondition(audio.shape == [m, l, config.audioDim],
                         "Transfusion: audio \(audio.shape), expected (m, \(l), \(config.audioDim))")
            precondition(input.audioTimesteps.count == m && input.audioStarts.count == m,
                         "Transfusion: \(m) audio spans need \(m) timesteps and span starts")
            let temb = timeEmbed(input.audioTimesteps.map { $0 * config.timestepScale })  // (m, d)
            let frames = audioIn(audio.reshaped([m * l, config.audioDim])).reshaped([m, l, d])
                + temb.reshaped([m, 1, d]) + audioPosition                               // (m, L, d)
            rows.append(frames.reshaped([m * l, d]))
            place(input.audioStarts, length: l, "audio")
        }
        if rows.count > 1 { x = embedding(concat(rows, axis: 0), Tensor(ints: index)) }
        let hidden = decoder(x.reshaped([b, t, d]), mask: input.mask, positions: input.positions, cache: cache)
        let flat = hidden.reshaped([b * t, d])
        var images: Tensor? = nil, audio: Tensor? = nil
        if let latents = input.latents, latents.dim(0) > 0 {
            let n = latents.dim(0)
            let out = patchOut(flat.indexSelect(axis: 0, input.spanStarts.flatMap { s in (s..<(s + np)) }))  // (n·np, out)
            if let unet {
                images = unet.up(patchesToGrid(out, n: n, grid: config.gridSize), skips: skips, t: cond!)
            } else {
                images = unpatchify(out, n: n, channels: config.latentChannels, grid: config.gridSize, patch: config.patchSize)
            }
        }
        if let spans = input.audio, spans.dim(0) > 0, let audioOut {
            let l = config.audioLength
            audio = audioOut(flat.indexSelect(axis: 0, input.audioStarts.flatMap { s in (s..<(s + l)) }))
                .reshaped([spans.dim(0), l, config.audioDim])                           // (m, L, D)
        }
        return (hidden, images, audio)
    }

    /// Logits (rows, vocab) of the decoder outputs at flat positions `rows` of `hidden` (B, T, d).
    public func logits(_ hidden: Tensor, rows: [Int]) -> Tensor {
        let d = config.decoder.dim
        return head(hidden.reshaped([hidden.count / d, d]).indexSelect(axis: 0, rows))
    }

    /// The Transfusion objective (paper, eq. 4): L = L_LM + λ·L_DDPM.
    ///
    /// `targets` (B·T) Int32 hold the next token at text positions and −1 elsewhere; the LM head
    /// runs only where a target exists. `imageTargets` (n, C, h, w) is what the diffusion
    /// prediction is regressed on (ε, v or the flow velocity). Returns the total and both parts
    /// (unweighted); a part with nothing to score is 0. `scoredImages` lists the spans that carry
    /// the diffusion loss (default: all); `imageTargets` then holds one row per listed span. Clean
    /// conditioning spans (an edit's source image, at t = 0) are left out of it. Audio spans
    /// likewise: `audioTargets` (m', L, D) for the spans `scoredAudio` lists (default: all), weighted
    /// by `audioWeight` (default: `imageWeight`); clean speech given as a condition is left out.
    public func loss(_ input: TransfusionInput, targets: Tensor, imageTargets: Tensor?, imageWeight: Float,
                     zLoss: Float = 0, scoredImages: [Int]? = nil, audioTargets: Tensor? = nil,
                     audioWeight: Float? = nil, scoredAudio: [Int]? = nil)
        -> (total: Tensor, text: Tensor, image: Tensor, audio: Tensor) {
        let (hidden, images, speech) = self(input)
        let flat = targets.intScalars
        precondition(flat.count == input.ids.count, "Transfusion.loss: \(flat.count) targets for \(input.ids.count) positions")
        let rows = flat.indices.filter { flat[$0] >= 0 }
        let text = rows.isEmpty ? Tensor.zeros([])
            : crossEntropy(logits(hidden, rows: rows), Tensor(ints: rows.map { flat[$0] }), ignoreIndex: -1, zLoss: zLoss)
        let image = Self.spanLoss(images, imageTargets, scored: scoredImages, "image")
        let audio = Self.spanLoss(speech, audioTargets, scored: scoredAudio, "audio")
        return (text + image * imageWeight + audio * (audioWeight ?? imageWeight), text, image, audio)
    }

    /// Held-out scores, without the tape: the cross-entropy of each position's target (NaN where
    /// the target is −1) and the span losses as ``loss(_:targets:imageTargets:imageWeight:zLoss:scoredImages:audioTargets:audioWeight:scoredAudio:)``
    /// computes them, so an evaluation can split the text loss by kind of target.
    public func scores(_ input: TransfusionInput, targets: [Int32], imageTargets: Tensor?, scoredImages: [Int]? = nil,
                       audioTargets: Tensor? = nil, scoredAudio: [Int]? = nil) -> (text: [Float], image: Float, audio: Float) {
        withoutGrad {
            let (hidden, images, speech) = self(input)
            precondition(targets.count == input.ids.count, "Transfusion.scores: \(targets.count) targets for \(input.ids.count) positions")
            let rows = targets.indices.filter { targets[$0] >= 0 }
            var text = [Float](repeating: .nan, count: targets.count)
            if !rows.isEmpty {
                for (row, loss) in zip(rows, rowCrossEntropies(logits(hidden, rows: rows), rows.map { targets[$0] })) { text[row] = loss }
            }
            return (text, Self.spanLoss(images, imageTargets, scored: scoredImages, "image").item,
                    Self.spanLoss(speech, audioTargets, scored: scoredAudio, "audio").item)
        }
    }

    /// The diffusion MSE of span predictions against `targets` (one row per scored span): over the
    /// rows `scored` lists, or all (nil); 0 without spans of the kind or with none scored.
    static func spanLoss(_ predicted: Tensor?, _ targets: Tensor?, scored: [Int]?, _ kind: String) -> Tensor {
        guard let predicted else { return Tensor.zeros([]) }
        guard let targets else { preconditionFailure("Transfusion.loss: \(kind) spans need \(kind)Targets") }
        guard let scored else { return mse(predicted, targets) }
        return scored.isEmpty ? Tensor.zeros([]) : mse(predicted.indexSelect(axis: 0, scored), targets)
    }

    /// Analytic training FLOPs (forward + backward) of one batch: the decoder over `tokens`
    /// positions seeing `attended` keys on average, the LM head on `textRows` rows, and the patch
    /// layers (plus U-Net convolutions) for `images` spans, and the audio layers for `audioSpans`.
    public func trainingFlops(tokens: Int, attended: Double, textRows: Int, images: Int, audioSpans: Int = 0) -> Double {
        let d = Double(config.decoder.dim)
        var flops = config.decoder.trainingFlops(tokens: tokens, attended: attended)
        flops += 6 * Double(config.vocab) * d * Double(textRows)
        let patchRows = Double(images * config.patchesPerImage)
        flops += 6 * patchRows * d * Double(patchIn.inFeatures + patchOut.outFeatures)
        if let unet { flops += 3 * Double(images) * unet.forwardFlops(latentSize: config.latentSize) }
        flops += 6 * Double(audioSpans * config.audioLength) * d * Double(2 * config.audioDim)
        return flops
    }
}

// MARK: - Patch layout

/// Latents (n, C, g·p, g·p) → patches (n·g·g, C·p·p) in row-major patch order.
public func patchify(_ x: Tensor, _ p: Int) -> Tensor {
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (gh, gw) = (h / p, w / p)
    return x.reshaped([n, c, gh, p, gw, p]).permuted([0, 2, 4, 1, 3, 5]).reshaped([n * gh * gw, c * p * p])
}

/// Patches (n·g·g, C·p·p) → latents (n, C, g·p, g·p); the inverse of `patchify`.
public func unpatchify(_ x: Tensor, n: Int, channels c: Int, grid g: Int, patch p: Int) -> Tensor {
    x.reshaped([n, g, g, c, p, p]).permuted([0, 3, 1, 4, 2, 5]).reshaped([n, c, g * p, g * p])
}

/// A feature grid (n, ch, g, g) → one row per grid cell (n·g·g, ch).
func gridToPatches(_ x: Tensor) -> Tensor {
    let (n, c, g) = (x.shape[0], x.shape[1], x.shape[2])
    return x.permuted([0, 2, 3, 1]).reshaped([n * g * x.shape[3], c])
}

/// Rows (n·g·g, ch) → a feature grid (n, ch, g, g).
func patchesToGrid(_ x: Tensor, n: Int, grid g: Int) -> Tensor {
    x.reshaped([n, g, g, x.dim(-1)]).permuted([0, 3, 1, 2])
}

/// The U-Net patchifier (paper, Sec. 3.2 / Fig. 3): a conv stem and `levels` down blocks take the
/// latents to the patch grid; up blocks with skips take the decoder's outputs back. Each block
/// is conditioned on the span's timestep embedding.
public final class PatchUNet: Module {
    public let stem: Conv2d
    public let downs: [DownBlock]
    public let ups: [UpBlock]
    public let outNorm: GroupNorm
    public let outConv: Conv2d
    let channels: Int

    public init(latentChannels: Int, channels: Int, levels: Int, timeDim: Int, groups: Int = 8, rng: RNG) {
        self.channels = channels
        stem = Conv2d(latentChannels, channels, kernel: 3, rng: rng)
        downs = (0..<levels).map { _ in DownBlock(channels, channels, timeDim: timeDim, groups: groups, rng: rng) }
        ups = (0..<levels).map { _ in UpBlock(channels, skipChannels: channels, channels, timeDim: timeDim, groups: groups,
                                              rng: rng) }
        outNorm = GroupNorm(groups: min(groups, channels), channels: channels)
        outConv = Conv2d(channels, latentChannels, kernel: 3, rng: rng)
    }

    func zeroOutput() {
        outConv.weight.data.update(repeating: 0, count: outConv.weight.count)
        if let b = outConv.bias { b.data.update(repeating: 0, count: b.count) }
    }

    /// Latents (n, C, h, w) → the patch grid (n, ch, h/p, w/p) and the skips, finest first.
    public func down(_ x: Tensor, t: Tensor) -> (Tensor, skips: [Tensor]) {
        var h = stem(x)
        var skips: [Tensor] = []
        for block in downs {
            let (next, skip) = block(h, t: t)
            skips.append(skip)
            h = next
        }
        return (h, skips)
    }

    /// The decoder's patch grid (n, ch, h/p, w/p) → predictions (n, C, h, w).
    public func up(_ x: Tensor, skips: [Tensor], t: Tensor) -> Tensor {
        var h = x
        for (block, skip) in zip(ups, skips.reversed()) { h = block(h, skip: skip, t: t) }
        return outConv(outNorm(h).silu())
    }

    /// Forward FLOPs of one image through the stem, down and up blocks (3×3 convs dominate).
    func forwardFlops(latentSize: Int) -> Double {
        let c = Double(channels), k = 9.0
        var flops = 2 * k * Double(stem.weight.shape[1]) * c * Double(latentSize * latentSize) * 2   // stem + out conv
        var side = latentSize
        for _ in downs {
            let px = Double(side * side)
            flops += 2 * k * c * c * px * 2 + 2 * k * c * c * px / 4                          // res block + strided conv
            flops += 2 * k * c * c * px + 2 * k * (2 * c) * c * px + 2 * k * c * c * px       // up conv + res block
            side /= 2
        }
        return flops
    }
}
