// The typed recipe: what a YAML file in recipes/ resolves to after validation and defaults.
// Field names are the YAML keys (snake_case via CodingKeys). Not the parser (Recipe.swift).
import Foundation

/// A resolved experiment recipe. Sections mirror the YAML file.
public struct Recipe: Codable, Equatable, Sendable {
    public var name: String
    public var seed: UInt64
    public var model: ModelSection
    public var data: DataSection
    public var optimizer: OptimizerSection
    public var train: TrainSection
    public var eval: EvalSection
    public var sample: SampleSection
    /// The image tokenizer's architecture and loss (model.kind vae or vq; RecipeTokenizer.swift).
    public var tokenizer = TokenizerSection()
}

public struct ModelSection: Codable, Equatable, Sendable {
    /// Which model family: "lm" (text decoder), later "transfusion", "chameleon", "vae", "vq".
    public var kind: String
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

    enum CodingKeys: String, CodingKey {
        case kind, preset, dim, layers, heads, zLoss = "z_loss", qkNorm = "qk_norm", ropeBase = "rope_base"
        case mlpHidden = "mlp_hidden", vocabSize = "vocab_size"
    }
}

public struct DataSection: Codable, Equatable, Sendable {
    /// "shapes" (ShapesWorld generated on the fly) or "folder" (an imagefolder on disk).
    public var source: String
    public var path: String?
    public var imageSize: Int
    /// Tokenizer JSON; when absent a byte-level BPE is trained on the data at start-up.
    public var tokenizer: String?
    public var tokenizerVocab: Int
    public var seqLen: Int

    enum CodingKeys: String, CodingKey {
        case source, path, tokenizer
        case imageSize = "image_size", tokenizerVocab = "tokenizer_vocab", seqLen = "seq_len"
    }
}

public struct OptimizerSection: Codable, Equatable, Sendable {
    public var name: String            // "adamw" or "sgd"
    public var lr: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    public var weightDecay: Float
    public var momentum: Float
    public var gradClip: Float         // 0 = off
    public var warmupSteps: Int
    public var schedule: String        // "cosine", "linear", "constant"
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

    enum CodingKeys: String, CodingKey {
        case steps, threads
        case batchSize = "batch_size", gradAccum = "grad_accum", logEvery = "log_every"
        case checkpointEvery = "checkpoint_every", keepCheckpoints = "keep_checkpoints", emaDecay = "ema_decay"
    }
}

public struct EvalSection: Codable, Equatable, Sendable {
    public var every: Int              // steps; 0 = only at the end
    public var batches: Int

    enum CodingKeys: String, CodingKey { case every, batches }
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
