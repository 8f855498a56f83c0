// The typed recipe: what a YAML file in recipes/ resolves to after validation and defaults.
// Each key once: a property with its default, and its YAML name and bounds in `fields`
// (RecipeField.swift). Not the parser (Recipe.swift) nor the walker (RecipeSchema.swift).
import Diffusion
import Foundation
import NN
import Tensors

/// A resolved experiment recipe. Sections mirror the YAML file; each key is declared once, as a
/// property with its default and an entry of its section's `fields` (RecipeField.swift).
public struct Recipe: RecipeSection {
    public var name = ""
    public var seed: UInt64 = 0
    public var model = ModelSection()
    public var diffusion = DiffusionSection()
    public var data = DataSection()
    public var optimizer = OptimizerSection()
    public var train = TrainSection()
    public var eval = EvalSection()
    public var sample = SampleSection()
    /// The image tokenizer's architecture and loss (model.kind vae or vq; RecipeTokenizer.swift).
    public var tokenizer = TokenizerSection()

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("name", \.name, required: true),
        .key("seed", \.seed, .nonNegative),
        .section("model", \.model),
        .section("diffusion", \.diffusion),
        .section("data", \.data),
        .section("optimizer", \.optimizer),
        .section("train", \.train),
        .section("eval", \.eval),
        .section("sample", \.sample),
        .section("tokenizer", \.tokenizer),
    ]
}

public struct ModelSection: RecipeSection {
    /// Which model family (ModelFamily.swift); required.
    public var kind = ModelFamily.lm
    /// A named size (nano, tiny, small, base, ref: ``ModelPreset``); the fields below override it.
    public var preset = ModelPreset.tiny
    public var dim: Int?
    public var layers: Int?
    public var heads: Int?
    public var mlpHidden: Int?
    public var qkNorm: Bool?
    public var ropeBase: Float?
    public var vocabSize: Int?
    public var zLoss: Float = 0
    /// The image tokenizer checkpoint (a VAE for Transfusion, a VQ tokenizer for Chameleon).
    public var imageTokenizer: String?
    /// Latent pixels per patch side of an image span (Transfusion).
    public var patchSize = 2
    /// Transfusion's patch layers.
    public var patchifier = SpanPatchifier.linear
    public var unetChannels = 64

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("kind", \.kind, required: true),
        .key("preset", \.preset),
        .key("dim", \.dim, .positive),
        .key("layers", \.layers, .positive),
        .key("heads", \.heads, .positive),
        .key("mlp_hidden", \.mlpHidden, .positive),
        .key("qk_norm", \.qkNorm),
        .key("rope_base", \.ropeBase, .positive),
        .key("vocab_size", \.vocabSize, .positive),
        .key("z_loss", \.zLoss, .nonNegative),
        .key("image_tokenizer", \.imageTokenizer),
        .key("patch_size", \.patchSize, .positive),
        .key("patchifier", \.patchifier),
        .key("unet_channels", \.unetChannels, .positive),
    ]
}

/// Transfusion's diffusion objective, data mixture and image sampling. Also a Transfusion
/// checkpoint's `diffusion` (its config.json), so keys added later say what older files read as.
public struct DiffusionSection: RecipeSection {
    /// The discrete schedule, `steps` long (unused by the flow target).
    public var schedule = NoiseScheduleName.cosine
    public var steps = 1000
    public var target = DiffusionTarget.eps
    /// λ in L = L_LM + λ·L_diffusion (paper: 5).
    public var lossWeight: Float = 5
    /// Fraction of image–caption pairs laid out image first (captioning); the rest caption first.
    public var imageFirst: Float = 0.2
    /// The largest timestep of image-first pairs (paper: 500 of 1000).
    public var imageFirstMaxT = 500
    /// Probability of dropping a caption-first pair's caption (for classifier-free guidance).
    public var captionDropout: Float = 0.1
    /// Make image spans causal instead of bidirectional (the paper's ablation).
    public var causalSpans = false
    public var sampler = SpanSampler.ddim
    public var sampleSteps = 50
    /// Classifier-free guidance scale for samples (≤ 1: none).
    public var cfg: Float = 3
    /// Clamp of x̂0 in DDPM/DDIM sampling steps, in latent units (0: off).
    public var clipX0: Float = 5
    /// Probability of dropping an edit document's instruction (the unconditional branch of
    /// instruction guidance).
    public var instructionDropout: Float = 0.1
    /// Probability of dropping an edit document's source image (with its instruction kept: the
    /// branch that InstructPix2Pix-style image guidance contrasts against).
    public var sourceDropout: Float = 0.05

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("schedule", \.schedule),
        .key("steps", \.steps, .positive),
        .key("target", \.target),
        .key("loss_weight", \.lossWeight, .nonNegative),
        .key("image_first", \.imageFirst, .fraction),
        .key("image_first_max_t", \.imageFirstMaxT, .nonNegative),
        .key("caption_dropout", \.captionDropout, .fraction),
        .key("causal_spans", \.causalSpans),
        .key("sampler", \.sampler),
        .key("sample_steps", \.sampleSteps, .positive),
        .key("cfg", \.cfg, .nonNegative),
        // Checkpoints written before clipping existed sample without it.
        .key("clip_x0", \.clipX0, .nonNegative, absent: 0),
        // Before the edit dropouts: their defaults.
        .key("instruction_dropout", \.instructionDropout, .fraction, absent: 0.1),
        .key("source_dropout", \.sourceDropout, .fraction, absent: 0.05),
    ]
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

public struct DataSection: RecipeSection {
    public var source = DataSourceKind.shapes
    /// The folder of `source: folder` (required then: RecipeSchema.checkRules).
    public var path: String?
    public var imageSize = 32
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
    public var tokenizerVocab = 512
    public var seqLen = 128
    /// Distinct training examples, cycled (0: a new example every time). A finite pool lets
    /// image tasks encode each image once and reuse its latents.
    public var pool = 0
    /// Image–caption documents per packed row (0: as many as fit on average). Setting it equal in
    /// two recipes whose images take different numbers of positions gives them the same data per
    /// step, as a matched comparison needs.
    public var docsPerRow = 0
    /// Fraction of Transfusion documents that are ShapesWorld edit triplets
    /// (`BOS BOI [source] EOI instruction BOI [target] EOI EOS`); the rest are caption/image pairs.
    public var editFraction: Float = 0
    /// A folder of recordings (`.wav` rows with their transcripts in `metadata.jsonl`) that speech
    /// documents read instead of espeak-ng's ShapesWorld captions; split like images (`held_out`).
    public var speech: String?
    /// Fraction of mixed-modal documents that are speech documents (ShapesWorld captions spoken by
    /// espeak-ng, or the recordings of `speech`); `speechMix` weighs their kinds: caption → speech,
    /// speech → caption, image → speech.
    public var speechFraction: Float = 0
    public var speechMix = [1, 1, 1]
    /// espeak-ng's speaking rate, words per minute.
    public var speechWPM = 200
    /// L, patches per audio span (clips are padded with silence or cut).
    public var audioPatches = 40
    /// The AudioCodec of speech documents: sample rate, STFT size and hop, mel bins, frames per
    /// patch, and the codebook size of its discrete variant (Chameleon).
    public var audioSampleRate = 8000
    public var audioFFT = 256
    public var audioHop = 128
    public var audioMels = 32
    public var audioFramesPerPatch = 4
    public var audioCodebook = 256

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("source", \.source),
        .key("path", \.path),
        .key("image_size", \.imageSize, .positive),
        .key("held_out", \.heldOut, .fraction),
        .key("skip_bad", \.skipBad),
        .key("text", \.text),
        .key("text_fraction", \.textFraction, .fraction),
        .key("tokenizer", \.tokenizer),
        .key("tokenizer_vocab", \.tokenizerVocab, .positive),
        .key("seq_len", \.seqLen, .positive),
        .key("pool", \.pool, .nonNegative),
        .key("docs_per_row", \.docsPerRow, .nonNegative),
        .key("edit_fraction", \.editFraction, .fraction),
        .key("speech", \.speech),
        .key("speech_fraction", \.speechFraction, .fraction),
        .key("speech_mix", \.speechMix, .nonNegative),
        .key("speech_wpm", \.speechWPM, .positive),
        .key("audio_patches", \.audioPatches, .positive),
        .key("audio_sample_rate", \.audioSampleRate, .positive),
        .key("audio_fft", \.audioFFT, .positive),
        .key("audio_hop", \.audioHop, .positive),
        .key("audio_mels", \.audioMels, .positive),
        .key("audio_frames_per_patch", \.audioFramesPerPatch, .positive),
        .key("audio_codebook", \.audioCodebook, .positive),
    ]
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

public struct OptimizerSection: RecipeSection {
    public var name = OptimizerKind.adamw
    public var lr: Float = 3e-4
    public var beta1: Float = 0.9
    public var beta2: Float = 0.95
    public var eps: Float = 1e-8
    public var weightDecay: Float = 0.1
    public var momentum: Float = 0.9
    /// 0: off.
    public var gradClip: Float = 1
    public var warmupSteps = 100
    public var schedule = LRSchedule.Decay.cosine
    public var minLRRatio: Float = 0.1

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("name", \.name),
        .key("lr", \.lr, .positive),
        .key("beta1", \.beta1, .openFraction),
        .key("beta2", \.beta2, .openFraction),
        .key("eps", \.eps, .positive),
        .key("weight_decay", \.weightDecay, .nonNegative),
        .key("momentum", \.momentum, .openFraction),
        .key("grad_clip", \.gradClip, .nonNegative),
        .key("warmup_steps", \.warmupSteps, .nonNegative),
        .key("schedule", \.schedule),
        .key("min_lr_ratio", \.minLRRatio, .fraction),
    ]
}

public struct TrainSection: RecipeSection {
    /// Required.
    public var steps = 0
    public var batchSize = 16
    public var gradAccum = 1
    public var logEvery = 10
    public var checkpointEvery = 500
    public var keepCheckpoints = 3
    /// 0: no EMA.
    public var emaDecay: Float = 0
    /// Default: all cores.
    public var threads: Int?
    /// fp32, or bf16: every matrix product of the run (training, evals, samples) with bf16
    /// operands and fp32 sums; weights, gradients and optimizer state stay fp32.
    public var matmulPrecision = MatmulPrecision.fp32
    /// A step whose loss or gradient is NaN/Inf: skip it, roll back, or stop (``NonFinitePolicy``).
    public var onNonFinite = NonFinitePolicy.skip
    /// A Transfusion run (or one checkpoint folder) whose weights (EMA when kept), tokenizer and
    /// VAE the run starts from: fine-tuning. Resuming the run itself still wins.
    public var initFrom: String?
    /// A cap on the run's resident memory ("6GiB", "512MiB", bytes), checked against the memory
    /// plan before the first step; "off" skips the check (RecipeSchema.checkRules reads it).
    /// Absent: what the machine has free.
    public var memoryLimit: String?

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("steps", \.steps, .positive, required: true),
        .key("batch_size", \.batchSize, .positive),
        .key("grad_accum", \.gradAccum, .positive),
        .key("log_every", \.logEvery, .positive),
        .key("checkpoint_every", \.checkpointEvery, .positive),
        .key("keep_checkpoints", \.keepCheckpoints, .positive),
        .key("ema_decay", \.emaDecay, .openFraction),
        .key("threads", \.threads, .positive),
        .key("matmul_precision", \.matmulPrecision),
        .key("on_nonfinite", \.onNonFinite),
        .key("init_from", \.initFrom),
        .key("memory_limit", \.memoryLimit),
    ]

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
}

public struct EvalSection: RecipeSection {
    /// Steps between evaluations; 0: only at the end.
    public var every = 0
    /// Held-out batches of the lm, tokenizer and classifier tasks.
    public var batches = 4
    /// Held-out documents of the Transfusion and Chameleon tasks (HeldOutSet.swift): the same
    /// documents for both families.
    public var documents = 1024
    /// ShapesEval prompts sampled at each eval of a Transfusion run (0: none); adds shapes_eval
    /// and per-category scores to the eval rows.
    public var shapesEval = 0
    /// Held-out edit triplets edited at each eval of a Transfusion run with `data.edit_fraction`
    /// > 0 (0: none); adds edit accuracy and preservation per kind to the eval rows.
    public var edits = 0
    /// Held-out spoken captions scored at each eval of a run with speech documents (0: none):
    /// transcription accuracy, the mel distance of generated speech to espeak-ng's, and how well the
    /// model transcribes its own speech.
    public var speech = 0
    /// Held-out chunks of the `data.text` corpus scored at each eval (loss, perplexity and bits
    /// per byte of corpus text).
    public var textChunks = 256

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("every", \.every, .nonNegative),
        .key("batches", \.batches, .positive),
        .key("documents", \.documents, .positive),
        .key("shapes_eval", \.shapesEval, .nonNegative),
        .key("edits", \.edits, .nonNegative),
        .key("speech", \.speech, .nonNegative),
        .key("text_chunks", \.textChunks, .positive),
    ]
}

public struct SampleSection: RecipeSection {
    /// Steps between samples; 0: only at the end.
    public var every = 0
    public var prompts: [String] = []
    public var temperature: Float = 1
    public var topK = 0
    public var maxTokens = 64

    /// Every key at its default.
    public init() {}

    public static let fields: [RecipeField<Self>] = [
        .key("every", \.every, .nonNegative),
        .key("prompts", \.prompts),
        .key("temperature", \.temperature, .nonNegative),
        .key("top_k", \.topK, .nonNegative),
        .key("max_tokens", \.maxTokens, .positive),
    ]
}
