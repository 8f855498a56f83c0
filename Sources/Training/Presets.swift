// Named model sizes (DiT's DiT_S_8 … registry habit): a recipe names a preset and overrides only
// what differs. Not model construction: tasks build models from the resolved DecoderConfig.
import NN

public enum Presets {
    /// Decoder sizes by name. "ref" is the reference benchmark model of DESIGN.md.
    public static let decoders: [String: DecoderConfig] = [
        "nano": DecoderConfig(dim: 64, layers: 2, heads: 2),
        "tiny": DecoderConfig(dim: 128, layers: 4, heads: 4),
        "small": DecoderConfig(dim: 256, layers: 6, heads: 4),
        "base": DecoderConfig(dim: 384, layers: 8, heads: 6),
        "ref": DecoderConfig(dim: 256, layers: 6, heads: 4, mlpHidden: 1024),
    ]

    public struct UnknownPreset: Error, CustomStringConvertible {
        public let name: String
        public var description: String {
            "model.preset: unknown preset '\(name)'; known: \(Presets.decoders.keys.sorted().joined(separator: ", "))"
        }
    }

    /// The preset named by `model.preset` with the section's explicit fields applied.
    public static func decoder(_ m: ModelSection) throws -> DecoderConfig {
        guard let base = decoders[m.preset] else { throw UnknownPreset(name: m.preset) }
        let dim = m.dim ?? base.dim
        return DecoderConfig(dim: dim, layers: m.layers ?? base.layers, heads: m.heads ?? base.heads,
                             mlpHidden: m.mlpHidden ?? (m.dim == nil ? base.mlpHidden : 4 * dim),
                             qkNorm: m.qkNorm ?? base.qkNorm, ropeBase: m.ropeBase ?? base.ropeBase,
                             normEps: base.normEps)
    }
}
