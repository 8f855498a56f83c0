// Crash safety of whole `fusion train` processes: killed with SIGKILL at random moments (mid
// step, mid checkpoint, mid metrics write) and restarted, a run ends with the same metrics as one
// that was never interrupted; a full disk or an unusable runs folder is reported and loses nothing. Needs the release `fusion` binary beside the tests (`make test`
// builds it); without it the test is skipped, visibly.
import Data
import Foundation
import Testing
@testable import Models
@testable import Training

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let fusionBinary = packageRoot.appendingPathComponent(".build/release/fusion").path

@Suite(.serialized) struct CrashSafetyTests {
    static let recipe = """
        name: crashy
        seed: 11
        model: {kind: lm, preset: nano, dim: 32, layers: 2, heads: 2}
        data: {tokenizer_vocab: 300, seq_len: 32}
        optimizer: {lr: 3.0e-3, warmup_steps: 2}
        train: {steps: 150, batch_size: 4, log_every: 1, checkpoint_every: 3, keep_checkpoints: 2, ema_decay: 0.9, threads: 1}
        eval: {every: 20, batches: 1}
        sample: {every: 0}
        """

    /// Starts `fusion train` on the recipe in `dir`; returns the process (not waited for).
    func start(_ dir: URL) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fusionBinary)
        p.arguments = ["train", dir.appendingPathComponent("crashy.yaml").path, "--runs", dir.appendingPathComponent("runs").path]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Runs `executable arguments` to the end; returns its exit status and what it wrote to stderr.
    func runCapturingErrors(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, message)
    }

    /// The metrics rows without timing fields, as comparable strings.
    func rows(_ dir: URL) throws -> [String] {
        try MetricsLog.read(dir.appendingPathComponent("runs/crashy/metrics.jsonl")).map { row in
            row.filter { !["wall_s", "tokens_per_s"].contains($0.key) }.sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
    }

    func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Self.recipe.write(to: dir.appendingPathComponent("crashy.yaml"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func killedAtRandomMomentsTheRunEndsWithTheSameCurve() throws {
        let clean = try scratch(), crashy = try scratch()
        defer { try? FileManager.default.removeItem(at: clean); try? FileManager.default.removeItem(at: crashy) }
        let straight = try start(clean)
        straight.waitUntilExit()
        try #require(straight.terminationStatus == 0)
        let expected = try rows(clean)
        #expect(expected.count == 158)                    // 150 steps and 8 eval rows

        var rng = SplitMix64(seed: 7, stream: 0, index: 0)   // the same kill delays every run (timing still varies)
        var kills = 0, attempts = 0, finished = false
        let metrics = crashy.appendingPathComponent("runs/crashy/metrics.jsonl")
        func rowCount() -> Int {
            (try? String(contentsOf: metrics, encoding: .utf8))?.split(separator: "\n").count ?? 0
        }
        while attempts < 12 && !finished {                // 12 kills at most, then it may finish
            attempts += 1
            let before = rowCount()
            let p = try start(crashy)
            // Kill once the run has made some progress (new metrics rows), 0–250 ms later: kills land
            // mid-step, mid-checkpoint and mid-append; a fixed early kill also hits start-up.
            let extra = attempts == 1 ? 0.05 : Double.random(in: 0...0.25, using: &rng)
            while p.isRunning && attempts > 1 && rowCount() <= before { usleep(2_000) }
            let deadline = Date().addingTimeInterval(extra)
            while p.isRunning && Date() < deadline { usleep(2_000) }
            if !p.isRunning {
                try #require(p.terminationStatus == 0, "fusion train failed on restart \(attempts)")
                finished = true
                continue
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            kills += 1
        }
        if !finished {                                   // finish without kills
            let p = try start(crashy)
            p.waitUntilExit()
            try #require(p.terminationStatus == 0)
        }
        print("crash safety: \(kills) SIGKILLs over \(attempts) starts")
        #expect(kills >= 3, "only \(kills) kills landed before the run finished")
        let got = try rows(crashy)
        #expect(got == expected)
        if got != expected, let i = zip(got, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            Issue.record("first difference at row \(i): \(got[i]) vs \(expected[i])")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func aFullDiskIsReportedAndLosesNothing() throws {
        let clean = try scratch(), full = try scratch()
        defer { try? FileManager.default.removeItem(at: clean); try? FileManager.default.removeItem(at: full) }
        let straight = try start(clean)
        straight.waitUntilExit()
        // A 40 kB file-size limit (what a full disk looks like to write(2): the call fails) lets
        // metrics rows through and stops the first checkpoint (about 600 kB).
        let (status, message) = try runCapturingErrors("/bin/bash", [
            "-c", "trap '' XFSZ; ulimit -f 40; exec \"$0\" train \"$1\" --runs \"$2\"", fusionBinary,
            full.appendingPathComponent("crashy.yaml").path, full.appendingPathComponent("runs").path])
        #expect(status != 0)
        #expect(message.contains("cannot write the checkpoint") && message.contains("previous checkpoint is kept"), "\(message)")
        let checkpoints = full.appendingPathComponent("runs/crashy/checkpoints")
        #expect(try FileManager.default.contentsOfDirectory(atPath: checkpoints.path).isEmpty, "half-written checkpoint left")
        // With space again the run goes on and ends with the curve of an undisturbed run.
        let again = try start(full)
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
        #expect(try rows(full) == rows(clean))
    }

    /// One writer per run: a second `fusion train` on a run being trained refuses, naming the
    /// holder's pid (before, both ran to "done" and the run kept only the second one's metrics); the
    /// lock dies with its holder, kill -9 included, and the run then resumes with one metrics row
    /// per step.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func aSecondWriterRefusesAndTheLockDiesWithItsHolder() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lock = dir.appendingPathComponent("runs/.crashy.lock")
        let metrics = dir.appendingPathComponent("runs/crashy/metrics.jsonl")
        let first = try start(dir)
        let deadline = Date().addingTimeInterval(60)
        func started() -> Bool {
            // The holder's pid is in the lock file and the run has logged a step.
            let holder = (try? String(contentsOf: lock, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            return holder == "\(first.processIdentifier)" && ((try? String(contentsOf: metrics, encoding: .utf8))?.isEmpty == false)
        }
        while first.isRunning && !started() && Date() < deadline { usleep(5_000) }
        try #require(first.isRunning, "the first run ended before the second could start")
        let (status, message) = try runCapturingErrors(fusionBinary, [
            "train", dir.appendingPathComponent("crashy.yaml").path, "--runs", dir.appendingPathComponent("runs").path,
            "optimizer.lr=0.0001"])
        #expect(status == 1)
        #expect(message.contains("another process (pid \(first.processIdentifier)) is training this run"), "\(message)")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let again = try start(dir)
        again.waitUntilExit()
        #expect(again.terminationStatus == 0)
        let steps = try MetricsLog.read(metrics).filter { $0["kind"] == nil }.compactMap { $0["step"] as? Int }
        #expect(steps == Array(1...150))
        let recipe = try String(contentsOf: dir.appendingPathComponent("runs/crashy/recipe.yaml"), encoding: .utf8)
        #expect(!recipe.contains("0.0001"), "the refused process rewrote the run's recipe")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func anUnusableRunsFolderIsNamed() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blocker = dir.appendingPathComponent("file")
        try "x".write(to: blocker, atomically: true, encoding: .utf8)     // a file where a folder must go
        let (status, message) = try runCapturingErrors(fusionBinary, [
            "train", dir.appendingPathComponent("crashy.yaml").path, "--runs", blocker.path])
        #expect(status != 0)
        #expect(message.contains(blocker.path + "/crashy") && message.contains("pass --runs a writable folder"), "\(message)")
    }
}
