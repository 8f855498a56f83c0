// The recipe's `tokenizer:` section: architecture and loss of an image tokenizer (model.kind vae
// or vq): its keys for the schema table, the rules between them, the typed struct and the model
// configs it becomes (Models/ImageTokenizers/TokenizerRecipe.swift). Not the training task nor the models.
import Foundation
import NN

/// The `tokenizer:` section. VAE keys: latent_channels, kl_weight; VQ keys: codebook_size,
/// code_dim, commitment_weight, ema, ema_decay, restart_after_steps (and scales for msvq); the rest
/// is shared.
///
/// ```yaml
/// model: {kind: vae}
/// tokenizer:
///   channels: 128
///   channel_multipliers: [1]
///   patch_size: 4          # 4×4 pixel patches: every conv runs on the 8×8 grid
///   downsample: 4          # 8×8 latents
///   latent_channels: 8
///   reconstruction: mse
/// ```
public struct TokenizerSection: RecipeSection {
    /// Width of the first level (level i: channels · channel_multipliers[i]).
    public var channels = 128
    /// One multiplier per level, log2(downsample / patch_size) + 1 of them; nil: [1, 2, 2, …].
    public var channelMultipliers: [Int]?
    /// f: an H×W image becomes an H/f × W/f latent or code grid (a power of two).
    public var downsample = 4
    /// p ≤ f: pixels folded into channels before the first conv (1: full-resolution convs).
    /// The default p = f = 4 runs every conv on the 8×8 latent grid of a 32×32 image: about 3×
    /// faster on a CPU than p = 2 at equal width, and better per second of training.
    public var patchSize = 4
    public var latentChannels = 8
    public var klWeight: Float = 1e-6
    /// GroupNorm groups (must divide every width).
    public var groups = 8
    /// The pixel loss.
    public var reconstruction = ReconstructionLoss.mse
    public var codebookSize = 512
    public var codeDim = 8
    public var commitmentWeight: Float = 0.25
    /// Codebook updated by exponential moving averages instead of the codebook loss.
    public var ema = true
    public var emaDecay: Float = 0.99
    /// Codes idle for this many steps are restarted from encoder outputs (0: never).
    public var restartAfterSteps = 32
    /// msvq: sides of the code maps, ascending, the last the full grid; nil: ``defaultScales(grid:)``.
    public var scales: [Int]?

    public static let fields: [RecipeField<Self>] = [
        .key("channels", \.channels, .positive),
        .key("channel_multipliers", \.channelMultipliers, .positive),
        .key("downsample", \.downsample, .positive),
        .key("patch_size", \.patchSize, .positive),
        .key("latent_channels", \.latentChannels, .positive),
        .key("kl_weight", \.klWeight, .nonNegative),
        .key("groups", \.groups, .positive),
        .key("reconstruction", \.reconstruction),
        .key("codebook_size", \.codebookSize, .positive),
        .key("code_dim", \.codeDim, .positive),
        .key("commitment_weight", \.commitmentWeight, .nonNegative),
        .key("ema", \.ema),
        .key("ema_decay", \.emaDecay, .openFraction),
        .key("restart_after_steps", \.restartAfterSteps, .nonNegative),
        .key("scales", \.scales, .positive),
    ]

    /// The schema's defaults.
    public init() {}

    /// VAR's kind of pyramid for an h×h grid: 1, 2, 3, 4, 6, 8, 12, 16, … below h, then h (for
    /// an 8×8 grid: 1, 2, 3, 4, 6, 8).
    public static func defaultScales(grid h: Int) -> [Int] {
        var ladder = [1, 2, 3, 4], side = 4
        while side < h { ladder += [side * 3 / 2, side * 2]; side *= 2 }
        return ladder.filter { $0 < h } + [h]
    }

    /// The resolution levels of the backbone: log2(downsample / patch_size) + 1.
    public var levels: Int { (downsample / max(patchSize, 1)).trailingZeroBitCount + 1 }
}

// MARK: - Schema

extension RecipeSchema {
    /// Rules between tokenizer keys that would otherwise stop the model's constructor: powers of
    /// two, one channel multiplier per level, widths that split into the GroupNorm groups.
    static func checkTokenizerRules(_ values: [String: Value], _ root: RecipeNode) throws {
        guard case .section(let t) = values["tokenizer"], case .int(let f) = t["downsample"],
            case .int(let p) = t["patch_size"], case .int(let channels) = t["channels"],
            case .int(let groups) = t["groups"]
        else { return }
        let section = root.child("tokenizer")
        func at(_ key: String) -> Location { section?.child(key)?.at ?? section?.at ?? root.at }
        func isPowerOfTwo(_ x: Int) -> Bool { x > 0 && x & (x - 1) == 0 }
        guard isPowerOfTwo(f) else {
            throw RecipeError.invalidValue(at("downsample"), path: "tokenizer.downsample",
                                           message: "must be a power of two (4 or 8 for images), got \(f)")
        }
        guard isPowerOfTwo(p) && p <= f else {
            throw RecipeError.invalidValue(at("patch_size"), path: "tokenizer.patch_size",
                                           message: "must be a power of two no larger than downsample \(f), got \(p)")
        }
        let levels = (f / p).trailingZeroBitCount + 1
        var multipliers = [1] + Array(repeating: 2, count: levels - 1)
        if case .ints(let m) = t["channel_multipliers"] {
            guard m.count == levels else {
                throw RecipeError.invalidValue(
                    at("channel_multipliers"), path: "tokenizer.channel_multipliers",
                    message: "needs \(levels) \(levels == 1 ? "entry" : "entries") (one per level: log2(downsample / patch_size) + 1), got \(m.count)")
            }
            multipliers = m
        }
        if let bad = multipliers.map({ $0 * channels }).first(where: { $0 % groups != 0 }) {
            throw RecipeError.invalidValue(at("groups"), path: "tokenizer.groups",
                                           message: "must divide every width, but width \(bad) is not a multiple of \(groups)")
        }
    }
}
