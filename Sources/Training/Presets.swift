// Named model sizes (DiT's DiT_S_8 … registry habit): a recipe names a preset and overrides only
// what differs. Not model construction: tasks build models from the resolved DecoderConfig.
import NN

/// `model.preset`: a named decoder size. "ref" is the reference benchmark model of DESIGN.md.
public enum ModelPreset: String, Codable, Sendable, CaseIterable {
    case nano, tiny, small, base, ref

    public var decoder: DecoderConfig {
        switch self {
        case .nano: DecoderConfig(dim: 64, layers: 2, heads: 2)
        case .tiny: DecoderConfig(dim: 128, layers: 4, heads: 4)
        case .small: DecoderConfig(dim: 256, layers: 6, heads: 4)
        case .base: DecoderConfig(dim: 384, layers: 8, heads: 6)
        case .ref: DecoderConfig(dim: 256, layers: 6, heads: 4, mlpHidden: 1024)
        }
    }
}

public enum Presets {
    /// The preset named by `model.preset` with the section's explicit fields applied.
    public static func decoder(_ m: ModelSection) -> DecoderConfig {
        let base = m.preset.decoder
        let dim = m.dim ?? base.dim
        return DecoderConfig(dim: dim, layers: m.layers ?? base.layers, heads: m.heads ?? base.heads,
                             mlpHidden: m.mlpHidden ?? (m.dim == nil ? base.mlpHidden : 4 * dim),
                             qkNorm: m.qkNorm ?? base.qkNorm, ropeBase: m.ropeBase ?? base.ropeBase,
                             normEps: base.normEps)
    }
}
