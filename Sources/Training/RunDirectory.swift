// A run's folder (runs/<name>/): the resolved recipe, metrics.jsonl, samples/ and
// checkpoints/step-NNNNNNNN/. Checkpoints are written into a hidden temporary folder and renamed
// into place, so a crash mid-write leaves the previous checkpoint as the latest valid one.
import Foundation
import NN
import Tensors

public enum RunError: Error, CustomStringConvertible {
    case io(String, String)
    case checkpoint(String, String)
    /// Training met a NaN/Inf with `train.on_nonfinite: stop`.
    case nonFinite(step: Int, what: String)
    /// A sampling or evaluation option that does not fit the run (the message names the option).
    case option(String)

    public var description: String {
        switch self {
        case .io(let path, let m): return "\(path): \(m)"
        case .checkpoint(let path, let m): return "checkpoint \(path): \(m)"
        case .nonFinite(let step, let what):
            return "step \(step): non-finite \(what); lower optimizer.lr, raise optimizer.grad_clip or set train.on_nonfinite: skip | rollback to continue past it"
        case .option(let m): return m
        }
    }
}

extension RunError {
    /// Throws unless `scale` is a usable classifier-free guidance scale (finite, ≥ 0; 1: none),
    /// naming `--cfg`: the check of both families' samplers.
    package static func checkGuidance(_ scale: Float) throws {
        guard scale.isFinite, scale >= 0 else { throw RunError.option("--cfg must be a finite number ≥ 0 (1: no guidance), got \(scale)") }
    }
}

/// Counters saved with every checkpoint; everything else a resume needs derives from the step.
public struct TrainingState: Codable, Equatable, Sendable {
    public var step: Int
    public var examples: Int
    public var tokens: Int
    public var flops: Double
    public var wallSeconds: Double
    public var seed: UInt64
    public var optimizerStep: Int
    /// Training compute by the paper's 6·N·D: N the model's non-embedding parameters, D the real
    /// (non-padding) positions trained on; nil for tasks that do not count positions (and in
    /// states written before it was kept).
    public var flops6ND: Double? = nil
}

/// What a checkpoint folder holds.
public struct Checkpoint {
    public var model: [String: Tensor]
    public var ema: [String: Tensor]?
    public var optimizer: [String: Tensor]
    public var state: TrainingState
    /// The model config JSON (what samplers need to rebuild the model).
    public var config: Foundation.Data
    /// The resolved recipe the checkpoint was trained under (recipe.yaml in the folder): a run
    /// continued with `--resume-anyway` keeps each recipe with the steps it trained. Nil in
    /// checkpoints written before it was kept.
    public var recipe: String?

    public init(model: [String: Tensor], ema: [String: Tensor]?, optimizer: [String: Tensor],
                state: TrainingState, config: Foundation.Data, recipe: String? = nil) {
        self.model = model; self.ema = ema; self.optimizer = optimizer; self.state = state; self.config = config
        self.recipe = recipe
    }

    /// Test hook: called after each file is written during `write`, so a test can simulate a
    /// crash part-way through by throwing.
    nonisolated(unsafe) public static var afterFileWritten: ((String) throws -> Void)?

    /// Writes the checkpoint to `dir` atomically (temporary folder + rename).
    public func write(to dir: URL) throws {
        let fm = FileManager.default
        let parent = dir.deletingLastPathComponent()
        let tmp = parent.appendingPathComponent(".\(dir.lastPathComponent).tmp-\(getpid())")
        try? fm.removeItem(at: tmp)
        do { try fm.createDirectory(at: tmp, withIntermediateDirectories: true) } catch {
            throw RunError.io(tmp.path, "cannot create checkpoint folder: \(error.localizedDescription)")
        }
        do {
            let meta = ["step": String(state.step)]
            try Safetensors.write(model, metadata: meta, to: tmp.appendingPathComponent("model.safetensors"))
            try Checkpoint.afterFileWritten?("model.safetensors")
            if let ema {
                try Safetensors.write(ema, metadata: meta, to: tmp.appendingPathComponent("ema.safetensors"))
                try Checkpoint.afterFileWritten?("ema.safetensors")
            }
            try Safetensors.write(optimizer, metadata: meta, to: tmp.appendingPathComponent("optimizer.safetensors"))
            try Checkpoint.afterFileWritten?("optimizer.safetensors")
            try atomicWrite(config, to: tmp.appendingPathComponent("config.json"))
            if let recipe { try atomicWrite(Foundation.Data(recipe.utf8), to: tmp.appendingPathComponent("recipe.yaml")) }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            // state.json last: a folder without it is never a complete checkpoint.
            try atomicWrite(try enc.encode(state), to: tmp.appendingPathComponent("state.json"))
            try Checkpoint.afterFileWritten?("state.json")
        } catch {
            try? fm.removeItem(at: tmp)
            throw RunError.io(dir.path, "cannot write the checkpoint (\(error)); the previous checkpoint is kept. "
                              + "Free disk space (or fix the folder) and run again to resume from it")
        }
        if fm.fileExists(atPath: dir.path) {
            let old = parent.appendingPathComponent(".\(dir.lastPathComponent).old-\(getpid())")
            try? fm.removeItem(at: old)
            try fm.moveItem(at: dir, to: old)
            try fm.moveItem(at: tmp, to: dir)
            try? fm.removeItem(at: old)
        } else {
            guard rename(tmp.path, dir.path) == 0 else {
                throw RunError.io(dir.path, "cannot move checkpoint into place: \(String(cString: strerror(errno)))")
            }
        }
        let fd = open(parent.path, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Reads a checkpoint folder, with errors naming the file at fault.
    public static func read(_ dir: URL) throws -> Checkpoint {
        let stateURL = dir.appendingPathComponent("state.json")
        guard let stateData = try? Foundation.Data(contentsOf: stateURL) else {
            throw RunError.checkpoint(dir.path, "state.json is missing: not a complete checkpoint")
        }
        let state: TrainingState
        do { state = try JSONDecoder().decode(TrainingState.self, from: stateData) } catch {
            throw RunError.checkpoint(stateURL.path, "cannot decode: \(error)")
        }
        let model = try Safetensors.read(dir.appendingPathComponent("model.safetensors")).tensors
        let emaURL = dir.appendingPathComponent("ema.safetensors")
        let ema = FileManager.default.fileExists(atPath: emaURL.path) ? try Safetensors.read(emaURL).tensors : nil
        let optimizer = try Safetensors.read(dir.appendingPathComponent("optimizer.safetensors")).tensors
        guard let config = try? Foundation.Data(contentsOf: dir.appendingPathComponent("config.json")) else {
            throw RunError.checkpoint(dir.path, "config.json is missing")
        }
        let recipe = try? String(contentsOf: dir.appendingPathComponent("recipe.yaml"), encoding: .utf8)
        return Checkpoint(model: model, ema: ema, optimizer: optimizer, state: state, config: config, recipe: recipe)
    }
}

/// runs/<name>/ and what lives in it.
public struct RunDirectory {
    public let url: URL

    public init(_ url: URL) { self.url = url }

    public var recipeURL: URL { url.appendingPathComponent("recipe.yaml") }
    public var metricsURL: URL { url.appendingPathComponent("metrics.jsonl") }
    public var checkpointsURL: URL { url.appendingPathComponent("checkpoints") }
    public var samplesURL: URL { url.appendingPathComponent("samples") }
    /// TensorBoard event files (`tensorboard --logdir runs`), rebuilt from metrics.jsonl and samples/.
    public var tensorboardURL: URL { url.appendingPathComponent("tensorboard") }

    /// metrics.jsonl opened for appending, its rows (and the samples of steps ≤ `step`) mirrored
    /// into a fresh TensorBoard event file that then receives every row appended.
    public func openMetrics(step: Int, recipe: Recipe) throws -> MetricsLog {
        let log = try MetricsLog(url: metricsURL)
        let rows = (try? MetricsLog.read(metricsURL)) ?? []
        log.mirror = try TensorBoardLog(folder: tensorboardURL, rows: rows, samples: samplesURL, upToStep: step, recipe: recipe.yaml())
        return log
    }

    public func checkpointURL(step: Int) -> URL {
        checkpointsURL.appendingPathComponent(String(format: "step-%08d", step))
    }

    /// Creates the folders.
    /// With `fresh`, earlier training outputs (checkpoints, samples, metrics, plot) are removed
    /// first; files a task keeps in the run (tokenizer, VAE) stay. `delete()` removes everything.
    public func prepare(fresh: Bool) throws {
        let fm = FileManager.default
        if fresh {
            for old in [checkpointsURL, samplesURL, metricsURL, url.appendingPathComponent("loss.png"), url.appendingPathComponent("loss.svg")]
            where fm.fileExists(atPath: old.path) {
                do { try fm.removeItem(at: old) } catch {
                    throw RunError.io(old.path, "cannot remove old run output: \(error.localizedDescription)")
                }
            }
        }
        for d in [url, checkpointsURL, samplesURL] {
            do { try fm.createDirectory(at: d, withIntermediateDirectories: true) } catch {
                throw RunError.io(d.path, "cannot create the run folder (\(Self.reason(error))); pass --runs a writable folder")
            }
        }
        guard fm.isWritableFile(atPath: url.path) else { throw RunError.io(url.path, "folder is not writable") }
    }

    /// The POSIX reason inside a Foundation error ("No such file or directory"), or its description.
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }

    /// Removes the whole run folder (`fusion train --fresh`).
    public func delete() throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        do { try FileManager.default.removeItem(at: url) } catch {
            throw RunError.io(url.path, "cannot remove old run: \(error.localizedDescription)")
        }
    }

    /// Complete checkpoints (folders named step-N holding state.json), newest first.
    public func checkpoints() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        return names.filter { $0.hasPrefix("step-") && Int($0.dropFirst(5)) != nil }
            .sorted { Int($0.dropFirst(5))! > Int($1.dropFirst(5))! }
            .map { checkpointsURL.appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("state.json").path) }
    }

    /// The checkpoint folder `path` names and its run folder: `path` is a run folder (its newest
    /// complete checkpoint) or one checkpoint folder (runs/<name>/checkpoints/step-N).
    public static func resolveCheckpoint(_ path: String) throws -> (checkpoint: URL, run: URL) {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
            throw RunError.io(path, "no such run or checkpoint folder")
        }
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("state.json").path) {
            return (url, url.deletingLastPathComponent().deletingLastPathComponent())
        }
        guard let newest = RunDirectory(url).checkpoints().first else {
            throw RunError.checkpoint(path, "no complete checkpoint under checkpoints/ (train the run first)")
        }
        return (newest, url)
    }

    /// Deletes all but the newest `keep` checkpoints (and leftovers of interrupted writes).
    public func prune(keep: Int) {
        let fm = FileManager.default
        for old in checkpoints().dropFirst(max(keep, 1)) { try? fm.removeItem(at: old) }
        let names = (try? fm.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        for n in names where n.hasPrefix(".step-") && !n.hasSuffix("-\(getpid())") {
            try? fm.removeItem(at: checkpointsURL.appendingPathComponent(n))
        }
    }
}

/// One writer per run: an advisory lock (flock) on `<runs>/.<name>.lock`, beside the run folder so
/// that `--fresh` can delete the folder while holding it. The kernel releases it when the process
/// ends, however it ends (kill -9 included). The file holds the holder's pid, for the message a
/// second writer gets. Readers (sample, eval, export) do not take it.
public final class RunLock {
    let fd: Int32
    public let path: String

    /// Takes the lock of `run`, or throws naming the process that holds it.
    public init(_ run: RunDirectory) throws {
        let parent = run.url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw RunError.io(run.url.path, "cannot create the run folder (\(RunDirectory.reason(error))); pass --runs a writable folder")
        }
        path = parent.appendingPathComponent(".\(run.url.lastPathComponent).lock").path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw RunError.io(run.url.path, "cannot create the run folder's lock \(path) (\(String(cString: strerror(errno)))); "
                              + "pass --runs a writable folder")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw RunError.io(run.url.path, "another process\(holder.isEmpty ? "" : " (pid \(holder))") is training this run; "
                              + "wait for it to finish or stop it, or train under another --name")
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    /// Removes the lock file while holding it: for a run refused before it wrote anything, so that
    /// it leaves nothing behind (a process that opened the file meanwhile still finds it locked).
    public func removeFile() { unlink(path) }

    deinit {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
