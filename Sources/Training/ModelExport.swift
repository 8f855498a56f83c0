// Exported models: a run's newest checkpoint reduced to what sampling needs (weights — EMA when
// kept — in float16 or float32, the model config, the run's tokenizer and image tokenizer files)
// plus its recipe, metrics and loss plot, in one small folder that can be committed or shared.
// Not a training checkpoint: no optimizer state, so it cannot be resumed (fine-tune from it).
import Foundation
import NN
import Tensors

public enum ModelExport {
    /// Files of the run folder an export carries along when present.
    static let runFiles = ["recipe.yaml", "metrics.jsonl", "loss.png", "tokenizer.json"]

    /// Whether `dir` is an exported model folder (config.json and model.safetensors, no state.json).
    public static func isExport(_ dir: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: dir.appendingPathComponent("model.safetensors").path)
            && fm.fileExists(atPath: dir.appendingPathComponent("config.json").path)
            && !fm.fileExists(atPath: dir.appendingPathComponent("state.json").path)
    }

    /// The weights and config of an exported model folder.
    public static func read(_ dir: URL) throws -> (weights: [String: Tensor], config: Foundation.Data) {
        let weights = try Safetensors.read(dir.appendingPathComponent("model.safetensors")).tensors
        guard let config = try? Foundation.Data(contentsOf: dir.appendingPathComponent("config.json")) else {
            throw RunError.checkpoint(dir.path, "config.json is missing")
        }
        return (weights, config)
    }

    /// Exports the newest checkpoint of `run` (or the checkpoint folder `run` names) to `out`,
    /// replacing it atomically; returns the checkpoint used. `float16` halves the size (weights of
    /// these models round-trip with relative error ~5e-4, far below what sampling notices).
    @discardableResult
    public static func export(run path: String, to out: String, float16: Bool = true, ema: Bool = true) throws -> URL {
        let fm = FileManager.default
        let (checkpoint, url, saved) = try SavedModel.newestReadable(path)
        try writeFolder(out) { tmp in
            let weights = ema ? (saved.ema ?? saved.model) : saved.model
            try Safetensors.write(weights, metadata: ["step": "\(saved.state.step)", "weights": ema && saved.ema != nil ? "ema" : "model"],
                                  dtype: float16 ? .f16 : .f32, to: tmp.appendingPathComponent("model.safetensors"))
            try atomicWrite(saved.config, to: tmp.appendingPathComponent("config.json"))
            let state = try JSONEncoder().encode(saved.state)
            try atomicWrite(state, to: tmp.appendingPathComponent("trained.json"))
            let carried = try fm.contentsOfDirectory(atPath: url.path)
                .filter { runFiles.contains($0) || $0.hasSuffix(".safetensors") && !EncodingCache.isCacheFile($0) }
            for name in carried {
                try fm.copyItem(at: url.appendingPathComponent(name), to: tmp.appendingPathComponent(name))
            }
            // The recipe these weights were trained under, where the checkpoint keeps its own (it
            // differs from the run's after a --resume-anyway).
            let trainedUnder = checkpoint.appendingPathComponent("recipe.yaml")
            if checkpoint != url, fm.fileExists(atPath: trainedUnder.path) {
                try? fm.removeItem(at: tmp.appendingPathComponent("recipe.yaml"))
                try fm.copyItem(at: trainedUnder, to: tmp.appendingPathComponent("recipe.yaml"))
            }
        }
        return checkpoint
    }

    /// Writes an export folder at `out` whole or not at all: `fill` writes into a temporary folder
    /// beside it, which then replaces `out`; on any error it is removed and `out` is untouched.
    package static func writeFolder(_ out: String, _ fill: (URL) throws -> Void) throws {
        let fm = FileManager.default
        let target = URL(fileURLWithPath: out)
        let parent = target.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(target.lastPathComponent).\(getpid()).tmp")
        try? fm.removeItem(at: tmp)
        do {
            try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
            try fill(tmp)
            if fm.fileExists(atPath: target.path) { try fm.removeItem(at: target) }
            try fm.moveItem(at: tmp, to: target)
        } catch {
            try? fm.removeItem(at: tmp)
            throw RunError.io(out, "cannot export: \(error)")
        }
    }
}

/// The weights and config a `--checkpoint` path names, whatever its form: an exported model
/// (``ModelExport``), a run folder (its newest complete checkpoint) or one checkpoint folder.
/// What every trained-model loader (``TransfusionRun``, ``ChameleonRun``) starts from.
public struct SavedModel {
    /// The model weights (EMA when asked for and kept).
    public let weights: [String: Tensor]
    public let configData: Foundation.Data
    /// The checkpoint folder (for an export, the export folder).
    public let checkpoint: URL
    /// The folder that files named in the config (tokenizer copies) are relative to.
    public let run: URL
    /// The training state of the checkpoint read (nil for an exported model).
    public let state: TrainingState?

    public init(path: String, ema: Bool) throws {
        let url = URL(fileURLWithPath: path)
        if Self.isHuggingFace(path) {
            throw RunError.checkpoint(path, "a Hugging Face checkpoint (fusion export --format hf), which transformers loads; "
                                      + "Fusion's verbs read a run, a checkpoint folder or a fusion export folder "
                                      + "(train.init_from starts a run from it)")
        }
        if ModelExport.isExport(url) {
            (weights, configData) = try ModelExport.read(url)
            checkpoint = url
            run = url
            state = nil
        } else {
            let saved: Checkpoint
            (checkpoint, run, saved) = try Self.newestReadable(path)
            weights = ema ? (saved.ema ?? saved.model) : saved.model
            configData = saved.config
            state = saved.state
        }
    }

    /// Whether `path` is a Hugging Face checkpoint folder (config.json with a `model_type`), which
    /// `train.init_from` reads through HuggingFaceImport and the verbs refuse.
    public static func isHuggingFace(_ path: String) -> Bool {
        let url = URL(fileURLWithPath: path).appendingPathComponent("config.json")
        guard let data = try? Foundation.Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return object["model_type"] is String
    }

    /// Test hook: called with the checkpoint chosen, before it is read (a test prunes it there).
    nonisolated(unsafe) public static var beforeRead: ((URL) -> Void)?

    /// The checkpoint `path` names, read. A run being trained prunes old checkpoints while this
    /// process reads: when the one chosen vanishes under the reader, the newest is chosen again.
    static func newestReadable(_ path: String) throws -> (checkpoint: URL, run: URL, saved: Checkpoint) {
        var attempt = 0
        while true {
            let (checkpoint, run) = try RunDirectory.resolveCheckpoint(path)
            beforeRead?(checkpoint)
            do {
                return (checkpoint, run, try Checkpoint.read(checkpoint))
            } catch {
                let pruned = !FileManager.default.fileExists(atPath: checkpoint.appendingPathComponent("state.json").path)
                guard pruned && attempt < 8 else { throw error }
                attempt += 1
            }
        }
    }

    /// The positions the model was trained on: `saved` (the config's `contextLength`), else the
    /// `data.seq_len` of the recipe.yaml beside the model (runs and exports written before configs
    /// kept it), else nil (unknown: nothing is checked).
    public func trainedContext(_ saved: Int?) -> Int? {
        if let saved { return saved }
        let recipe = run.appendingPathComponent("recipe.yaml").path
        return (try? Recipe.load(recipe))?.data.seqLen
    }

    /// The config decoded as `C`; an error names config.json when it is not a `family` config or
    /// when `problem` finds it unbuildable (a hand-edited file skips the initialisers' checks).
    public func config<C: Decodable>(_ type: C.Type, family: ModelFamily, problem: (C) -> String?) throws -> C {
        try config(type, what: family.rawValue, problem: problem)
    }

    /// The saved config as `type`, for a message that calls it "a `what` checkpoint config".
    public func config<C: Decodable>(_ type: C.Type, what kind: String, problem: (C) -> String?) throws -> C {
        let file = checkpoint.appendingPathComponent("config.json").path
        let config: C
        do { config = try JSONDecoder().decode(C.self, from: configData) } catch {
            throw RunError.checkpoint(file, "not a \(kind) checkpoint config: \(error)")
        }
        if let problem = problem(config) {
            throw RunError.checkpoint(file, "\(problem); the file was edited or comes from another version: re-export the run")
        }
        return config
    }
}
