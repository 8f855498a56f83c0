// The typed recipe: what a YAML file in recipes/ resolves to after validation and defaults.
// Field names are the YAML keys (snake_case via CodingKeys). Not the parser (Recipe.swift).
import Diffusion
import Foundation
import NN
import Tensors

/// A resolved experiment recipe. Sections mirror the YAML file.
public struct Recipe: Codable, Equatable, Sendable {
    public var name: String
    public var seed: UInt64
    public var model: ModelSection
    public var diffusion: DiffusionSection
    public var data: DataSection
    public var optimizer: OptimizerSection
    public var train: TrainSection
    public var eval: EvalSection
    public var sample: SampleSection
    /// The image tokenizer's architecture and loss (model.kind vae or vq; RecipeTokenizer.swift).
    public var tokenizer = TokenizerSection()
}

public struct ModelSection: Codable, Equatable, Sendable {
    /// Which model family (ModelFamily.swift).
    public var kind: ModelFamily
    /// A named size preset ("tiny", "small", "base", "ref"); the fields below override it.
    public var preset: String
    public var dim: Int?
    public var layers: Int?
    public var heads: Int?
    public var mlpHidden: Int?
    public var qkNorm: Bool?
    public var ropeBase: Float?
    public var vocabSize: Int?
    public var zLoss: Float
    /// The image tokenizer checkpoint (a VAE for Transfusion, a VQ tokenizer for Chameleon).
    public var imageTokenizer: String?
    /// Latent pixels per patch side of an image span (Transfusion).
    public var patchSize: Int
    /// Transfusion's patch layers.
    public var patchifier: SpanPatchifier
    public var unetChannels: Int

    enum CodingKeys: String, CodingKey {
        case kind, preset, dim, layers, heads, zLoss = "z_loss", qkNorm = "qk_norm", ropeBase = "rope_base"
        case mlpHidden = "mlp_hidden", vocabSize = "vocab_size", imageTokenizer = "image_tokenizer"
        case patchSize = "patch_size", patchifier, unetChannels = "unet_channels"
    }
}

/// Transfusion's diffusion objective, data mixture and image sampling.
public struct DiffusionSection: Codable, Equatable, Sendable {
    /// The discrete schedule, `steps` long (unused by the flow target).
    public var schedule: NoiseScheduleName
    public var steps: Int
    public var target: DiffusionTarget
    /// λ in L = L_LM + λ·L_diffusion (paper: 5).
    public var lossWeight: Float
    /// Fraction of image–caption pairs laid out image first (captioning); the rest caption first.
    public var imageFirst: Float
    /// The largest timestep of image-first pairs (paper: 500 of 1000).
    public var imageFirstMaxT: Int
    /// Probability of dropping a caption-first pair's caption (for classifier-free guidance).
    public var captionDropout: Float
    /// Make image spans causal instead of bidirectional (the paper's ablation).
    public var causalSpans: Bool
    public var sampler: SpanSampler
    public var sampleSteps: Int
    /// Classifier-free guidance scale for samples (≤ 1: none).
    public var cfg: Float
    /// Clamp of x̂0 in DDPM/DDIM sampling steps, in latent units (0: off).
    public var clipX0: Float
    /// Probability of dropping an edit document's instruction (the unconditional branch of
    /// instruction guidance).
    public var instructionDropout: Float
    /// Probability of dropping an edit document's source image (with its instruction kept: the
    /// branch that InstructPix2Pix-style image guidance contrasts against).
    public var sourceDropout: Float

    enum CodingKeys: String, CodingKey {
        case schedule, steps, target, sampler, cfg
        case lossWeight = "loss_weight", imageFirst = "image_first", imageFirstMaxT = "image_first_max_t"
        case captionDropout = "caption_dropout", causalSpans = "causal_spans", sampleSteps = "sample_steps"
        case clipX0 = "clip_x0", instructionDropout = "instruction_dropout", sourceDropout = "source_dropout"
    }

    public init(schedule: NoiseScheduleName, steps: Int, target: DiffusionTarget, lossWeight: Float, imageFirst: Float,
                imageFirstMaxT: Int, captionDropout: Float, causalSpans: Bool, sampler: SpanSampler, sampleSteps: Int, cfg: Float,
                clipX0: Float,
                instructionDropout: Float = 0.1, sourceDropout: Float = 0.05) {
        self.schedule = schedule; self.steps = steps; self.target = target; self.lossWeight = lossWeight
        self.imageFirst = imageFirst; self.imageFirstMaxT = imageFirstMaxT; self.captionDropout = captionDropout
        self.causalSpans = causalSpans; self.sampler = sampler; self.sampleSteps = sampleSteps; self.cfg = cfg
        self.clipX0 = clipX0; self.instructionDropout = instructionDropout; self.sourceDropout = sourceDropout
    }

    /// Checkpoint configs written before `clip_x0` existed read with clipping off; before the edit
    /// dropouts, with their defaults.
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(schedule: try c.decode(NoiseScheduleName.self, forKey: .schedule), steps: try c.decode(Int.self, forKey: .steps),
                  target: try c.decode(DiffusionTarget.self, forKey: .target), lossWeight: try c.decode(Float.self, forKey: .lossWeight),
                  imageFirst: try c.decode(Float.self, forKey: .imageFirst),
                  imageFirstMaxT: try c.decode(Int.self, forKey: .imageFirstMaxT),
                  captionDropout: try c.decode(Float.self, forKey: .captionDropout),
                  causalSpans: try c.decode(Bool.self, forKey: .causalSpans), sampler: try c.decode(SpanSampler.self, forKey: .sampler),
                  sampleSteps: try c.decode(Int.self, forKey: .sampleSteps), cfg: try c.decode(Float.self, forKey: .cfg),
                  clipX0: try c.decodeIfPresent(Float.self, forKey: .clipX0) ?? 0,
                  instructionDropout: try c.decodeIfPresent(Float.self, forKey: .instructionDropout) ?? 0.1,
                  sourceDropout: try c.decodeIfPresent(Float.self, forKey: .sourceDropout) ?? 0.05)
    }
}

/// Where a recipe's training data comes from (`data.source`).
public enum DataSourceKind: String, Codable, Sendable, CaseIterable {
    /// ShapesWorld, generated on the fly from the recipe seed.
    case shapes
    /// An imagefolder (or audio folder) on disk at `data.path`.
    case folder
    /// Text alone (no family trains on it yet; each says which sources it takes).
    case text
}

public struct DataSection: Codable, Equatable, Sendable {
    public var source: DataSourceKind
    public var path: String?
    public var imageSize: Int
    /// Fraction of a folder's rows held out for evaluation, by a hash of the file name
    /// (``FolderImageCaptions``): every family and the image tokenizers split a folder alike.
    public var heldOut: Float = 0.1
    /// Leave out a folder's bad rows (empty captions, images that do not read), reported at start,
    /// instead of stopping at the first with its file and line.
    public var skipBad = false
    /// Text corpus files (plain text, or JSONL with a "text" per line) mixed into an image–text
    /// recipe, and the fraction of training rows — so of positions — that are corpus text
    /// (TextCorpus.swift; ImageCaptionPairs+Corpus.swift).
    public var text: [String] = []
    public var textFraction: Float = 0
    /// Tokenizer JSON; when absent a byte-level BPE is trained on the data at start-up.
    public var tokenizer: String?
    public var tokenizerVocab: Int
    public var seqLen: Int
    /// Distinct training examples, cycled (0: a new example every time). A finite pool lets
    /// image tasks encode each image once and reuse its latents.
    public var pool: Int
    /// Image–caption documents per packed row (0: as many as fit on average). Setting it equal in
    /// two recipes whose images take different numbers of positions gives them the same data per
    /// step, as a matched comparison needs.
    public var docsPerRow: Int
    /// Fraction of Transfusion documents that are ShapesWorld edit triplets
    /// (`BOS BOI [source] EOI instruction BOI [target] EOI EOS`); the rest are caption/image pairs.
    public var editFraction: Float
    /// Fraction of mixed-modal documents that are speech documents (ShapesWorld captions spoken by
    /// espeak-ng, or the recordings of `speech`); `speechMix` weighs their kinds: caption → speech,
    /// speech → caption, image → speech.
    public var speechFraction: Float = 0
    /// A folder of recordings (`.wav` rows with their transcripts in `metadata.jsonl`) that speech
    /// documents read instead of espeak-ng's ShapesWorld captions; split like images (`held_out`).
    public var speech: String?
    public var speechMix: [Int] = [1, 1, 1]
    /// espeak-ng's speaking rate, words per minute.
    public var speechWPM: Int = 200
    /// L, patches per audio span (clips are padded with silence or cut).
    public var audioPatches: Int = 40
    /// The AudioCodec of speech documents: sample rate, STFT size and hop, mel bins, frames per
    /// patch, and the codebook size of its discrete variant (Chameleon).
    public var audioSampleRate: Int = 8000
    public var audioFFT: Int = 256
    public var audioHop: Int = 128
    public var audioMels: Int = 32
    public var audioFramesPerPatch: Int = 4
    public var audioCodebook: Int = 256

    enum CodingKeys: String, CodingKey {
        case source, path, tokenizer, pool
        case heldOut = "held_out", text, textFraction = "text_fraction", skipBad = "skip_bad"
        case imageSize = "image_size", tokenizerVocab = "tokenizer_vocab", seqLen = "seq_len", docsPerRow = "docs_per_row"
        case editFraction = "edit_fraction", speech, speechFraction = "speech_fraction", speechMix = "speech_mix"
        case speechWPM = "speech_wpm", audioPatches = "audio_patches", audioSampleRate = "audio_sample_rate"
        case audioFFT = "audio_fft", audioHop = "audio_hop", audioMels = "audio_mels"
        case audioFramesPerPatch = "audio_frames_per_patch", audioCodebook = "audio_codebook"
    }

    public init(source: DataSourceKind, path: String?, imageSize: Int, tokenizer: String?, tokenizerVocab: Int, seqLen: Int,
                pool: Int, docsPerRow: Int = 0, editFraction: Float = 0) {
        self.source = source; self.path = path; self.imageSize = imageSize; self.tokenizer = tokenizer
        self.tokenizerVocab = tokenizerVocab; self.seqLen = seqLen; self.pool = pool; self.docsPerRow = docsPerRow
        self.editFraction = editFraction
    }

    /// Run folders written before `docs_per_row` or `edit_fraction` existed read with 0.
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(source: try c.decode(DataSourceKind.self, forKey: .source), path: try c.decodeIfPresent(String.self, forKey: .path),
                  imageSize: try c.decode(Int.self, forKey: .imageSize),
                  tokenizer: try c.decodeIfPresent(String.self, forKey: .tokenizer),
                  tokenizerVocab: try c.decode(Int.self, forKey: .tokenizerVocab), seqLen: try c.decode(Int.self, forKey: .seqLen),
                  pool: try c.decode(Int.self, forKey: .pool),
                  docsPerRow: try c.decodeIfPresent(Int.self, forKey: .docsPerRow) ?? 0,
                  editFraction: try c.decodeIfPresent(Float.self, forKey: .editFraction) ?? 0)
        heldOut = try c.decodeIfPresent(Float.self, forKey: .heldOut) ?? 0.1
        text = try c.decodeIfPresent([String].self, forKey: .text) ?? []
        skipBad = try c.decodeIfPresent(Bool.self, forKey: .skipBad) ?? false
        textFraction = try c.decodeIfPresent(Float.self, forKey: .textFraction) ?? 0
        // Written before speech documents existed: none.
        speechFraction = try c.decodeIfPresent(Float.self, forKey: .speechFraction) ?? 0
        speech = try c.decodeIfPresent(String.self, forKey: .speech)
        speechMix = try c.decodeIfPresent([Int].self, forKey: .speechMix) ?? [1, 1, 1]
        speechWPM = try c.decodeIfPresent(Int.self, forKey: .speechWPM) ?? 200
        audioPatches = try c.decodeIfPresent(Int.self, forKey: .audioPatches) ?? 40
        audioSampleRate = try c.decodeIfPresent(Int.self, forKey: .audioSampleRate) ?? 8000
        audioFFT = try c.decodeIfPresent(Int.self, forKey: .audioFFT) ?? 256
        audioHop = try c.decodeIfPresent(Int.self, forKey: .audioHop) ?? 128
        audioMels = try c.decodeIfPresent(Int.self, forKey: .audioMels) ?? 32
        audioFramesPerPatch = try c.decodeIfPresent(Int.self, forKey: .audioFramesPerPatch) ?? 4
        audioCodebook = try c.decodeIfPresent(Int.self, forKey: .audioCodebook) ?? 256
    }
}

/// `optimizer.name`.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable { case adamw, sgd }

/// `train.on_nonfinite`: what a step whose loss or gradient is NaN/Inf does.
public enum NonFinitePolicy: String, Codable, Sendable, CaseIterable {
    /// No update for the step; training goes on.
    case skip
    /// Back to the last checkpoint, replaying the steps after it without the bad one.
    case rollback
    /// The run stops with an error.
    case stop
}

public struct OptimizerSection: Codable, Equatable, Sendable {
    public var name: OptimizerKind
    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    public var momentum: Float
    public var gradClip: Float         // 0 = off
    public var warmupSteps: Int
    public var schedule: LRSchedule.Decay
    public var minLRRatio: Float

    enum CodingKeys: String, CodingKey {
        case name, lr, beta1, beta2, eps, momentum, schedule
        case weightDecay = "weight_decay", gradClip = "grad_clip", warmupSteps = "warmup_steps", minLRRatio = "min_lr_ratio"
    }
}

public struct TrainSection: Codable, Equatable, Sendable {
    public var steps: Int
    public var batchSize: Int
    public var gradAccum: Int
    public var logEvery: Int
    public var checkpointEvery: Int
    public var keepCheckpoints: Int
    public var emaDecay: Float         // 0 = no EMA
    public var threads: Int?           // default: all cores
    /// fp32, or bf16: every matrix product of the run (training, evals, samples) with bf16
    /// operands and fp32 sums; weights, gradients and optimizer state stay fp32.
    public var matmulPrecision: MatmulPrecision = .fp32
    /// A step whose loss or gradient is NaN/Inf: skip it, roll back, or stop (``NonFinitePolicy``).
    public var onNonFinite: NonFinitePolicy = .skip
    /// A Transfusion run (or one checkpoint folder) whose weights (EMA when kept), tokenizer and
    /// VAE the run starts from: fine-tuning. Resuming the run itself still wins.
    public var initFrom: String? = nil
    /// A cap on the run's resident memory ("6GiB", "512MiB", bytes), checked against the memory
    /// plan before the first step; "off" skips the check. Absent: what the machine has free.
    public var memoryLimit: String? = nil

    /// `memoryLimit` in bytes (nil: none, or "off").
    public var memoryLimitBytes: Int? { memoryLimit.flatMap { TrainSection.parseBytes($0) } }
    /// Whether the memory plan is checked before the first step (`memory_limit: off` skips it).
    public var checksMemory: Bool { memoryLimit?.lowercased() != "off" }

    /// "6GiB", "6G", "512MiB", "512M", "4096KiB" or a byte count; nil when it is none of these.
    public static func parseBytes(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let gib = 1073741824.0, mib = 1048576.0, kib = 1024.0
        let units: [(String, Double)] = [("GiB", gib), ("GB", 1e9), ("G", gib), ("MiB", mib), ("MB", 1e6),
                                         ("M", mib), ("KiB", kib), ("KB", 1e3), ("K", kib), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v > 0, v * scale < 9e18 else { return nil }
            return Int(v * scale)
        }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }

    enum CodingKeys: String, CodingKey {
        case steps, threads, initFrom = "init_from", memoryLimit = "memory_limit"
        case batchSize = "batch_size", gradAccum = "grad_accum", logEvery = "log_every"
        case checkpointEvery = "checkpoint_every", keepCheckpoints = "keep_checkpoints", emaDecay = "ema_decay"
        case onNonFinite = "on_nonfinite", matmulPrecision = "matmul_precision"
    }
}

public struct EvalSection: Codable, Equatable, Sendable {
    public var every: Int              // steps; 0 = only at the end
    /// Held-out batches of the lm, tokenizer and classifier tasks.
    public var batches: Int
    /// Held-out documents of the Transfusion and Chameleon tasks (HeldOutSet.swift): the same
    /// documents for both families.
    public var documents: Int = 1024
    /// ShapesEval prompts sampled at each eval of a Transfusion run (0: none); adds shapes_eval
    /// and per-category scores to the eval rows.
    public var shapesEval: Int
    /// Held-out edit triplets edited at each eval of a Transfusion run with `data.edit_fraction`
    /// > 0 (0: none); adds edit accuracy and preservation per kind to the eval rows.
    public var edits: Int
    /// Held-out spoken captions scored at each eval of a run with speech documents (0: none):
    /// transcription accuracy, the mel distance of generated speech to espeak-ng's, and how well the
    /// model transcribes its own speech.
    public var speech: Int = 0
    /// Held-out chunks of the `data.text` corpus scored at each eval (loss, perplexity and bits
    /// per byte of corpus text).
    public var textChunks: Int = 256

    public init(every: Int, batches: Int, documents: Int = 1024, shapesEval: Int = 0, edits: Int = 0, speech: Int = 0) {
        self.every = every; self.batches = batches; self.documents = documents; self.shapesEval = shapesEval
        self.edits = edits; self.speech = speech
    }

    enum CodingKeys: String, CodingKey {
        case every, batches, documents, edits, speech, shapesEval = "shapes_eval", textChunks = "text_chunks"
    }

    /// Written before speech evaluation existed: none (and before held-out documents: 1024).
    public init(from decoder: Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(every: try c.decode(Int.self, forKey: .every), batches: try c.decode(Int.self, forKey: .batches),
                  documents: try c.decodeIfPresent(Int.self, forKey: .documents) ?? 1024,
                  shapesEval: try c.decodeIfPresent(Int.self, forKey: .shapesEval) ?? 0,
                  edits: try c.decodeIfPresent(Int.self, forKey: .edits) ?? 0,
                  speech: try c.decodeIfPresent(Int.self, forKey: .speech) ?? 0)
        textChunks = try c.decodeIfPresent(Int.self, forKey: .textChunks) ?? 256
    }
}

public struct SampleSection: Codable, Equatable, Sendable {
    public var every: Int              // steps; 0 = only at the end
    public var prompts: [String]
    public var temperature: Float
    public var topK: Int
    public var maxTokens: Int

    enum CodingKeys: String, CodingKey {
        case every, prompts, temperature
        case topK = "top_k", maxTokens = "max_tokens"
    }
}
