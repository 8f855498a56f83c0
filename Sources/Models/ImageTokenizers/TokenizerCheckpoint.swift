// Reading and writing tokenizer checkpoints: one safetensors file whose metadata key "config" holds
// the model's JSON config and "kind" says vae or vq (readable by Python's safetensors). Not
// training (ImageTokenizerTask in Sources/Training).
import Foundation
import NN
import Tensors

/// A tokenizer checkpoint that cannot be used, naming the file.
public struct TokenizerCheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let problem: String
    public var description: String { "\(path): \(problem)" }
}

extension ImageTokenizer {
    /// "vae", "vq" or "msvq": written to the metadata key "kind", so loading the wrong kind says so.
    static var kind: String { Self.self == VQTokenizer.self ? "vq" : Self.self == MultiScaleVQTokenizer.self ? "msvq" : "vae" }
    var kind: String { Self.kind }

    /// Writes the weights and the JSON config (metadata "config") atomically to `path`; `dtype`
    /// .f16 halves the file (what checkpoints/ ships; `load` reads either).
    public func save(to path: String, metadata: [String: String] = [:], dtype: SafetensorsDType = .f32) throws {
        let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try Safetensors.write(stateDict(), metadata: metadata.merging(["config": json, "kind": kind]) { $1 },
                              dtype: dtype, to: URL(fileURLWithPath: path))
    }

    /// Reads a checkpoint written by `save(to:)` (or a tokenizer run), building the model from its
    /// config: `let vae = try ImageVAE.load(from: "checkpoints/vae-shapes.safetensors")`.
    public static func load(from path: String, make: (Config) -> Self) throws -> Self {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerCheckpointError(path: path, problem: "no such file (train one with a tokenizer recipe, e.g. "
                                           + "`fusion train recipes/\(kind)-shapes.yaml`)")
        }
        let (tensors, metadata) = try Safetensors.read(URL(fileURLWithPath: path))
        guard let json = metadata["config"] else {
            throw TokenizerCheckpointError(path: path, problem: "no 'config' entry in the safetensors metadata")
        }
        if let found = metadata["kind"], found != kind {
            throw TokenizerCheckpointError(path: path, problem: "holds a \(found) tokenizer, not a \(kind) one "
                                           + "(use `fusion \(found) …` or \(Self.typeName(kind: found)).load)")
        }
        let config: Config
        do {
            config = try JSONDecoder().decode(Config.self, from: Foundation.Data(json.utf8))
        } catch {
            throw TokenizerCheckpointError(path: path, problem: "config is not a \(Self.self) config: \(error)")
        }
        if let problem = Self.problem(config) {
            throw TokenizerCheckpointError(path: path, problem: "config: \(problem) (the file was edited or comes from another version)")
        }
        let model = make(config)
        do { try model.load(tensors) } catch {
            throw TokenizerCheckpointError(path: path, problem: "\(error)")
        }
        model.eval()
        return model
    }
}

extension ImageTokenizer {
    /// The Swift type that loads tokenizer files of `kind`.
    static func typeName(kind: String) -> String {
        ["vq": "VQTokenizer", "msvq": "MultiScaleVQTokenizer"][kind] ?? "ImageVAE"
    }
}

extension MultiScaleVQTokenizer {
    public static func load(from path: String) throws -> MultiScaleVQTokenizer {
        try load(from: path) { MultiScaleVQTokenizer($0, rng: RNG(seed: 0)) }
    }
}

extension ImageVAE {
    public static func load(from path: String) throws -> ImageVAE {
        try load(from: path) { ImageVAE($0, rng: RNG(seed: 0)) }
    }
}

extension VQTokenizer {
    public static func load(from path: String) throws -> VQTokenizer {
        try load(from: path) { VQTokenizer($0, rng: RNG(seed: 0)) }
    }
}

extension ImageVAE {
    public static func problem(_ c: Config) -> String? {
        backboneProblem(channels: c.channels, downsample: c.downsample, patchSize: c.patchSize,
                        multipliers: c.channelMultipliers, groups: c.groups)
            ?? (c.latentChannels > 0 && c.imageChannels > 0 && c.latentScale > 0 && c.klWeight >= 0 ? nil
                : "latentChannels, imageChannels and latentScale must be positive")
    }
}

extension VQTokenizer {
    public static func problem(_ c: Config) -> String? {
        backboneProblem(channels: c.channels, downsample: c.downsample, patchSize: c.patchSize,
                        multipliers: c.channelMultipliers, groups: c.groups)
            ?? (c.codebookSize > 0 && c.codeDim > 0 ? nil : "codebookSize and codeDim must be positive")
    }
}
