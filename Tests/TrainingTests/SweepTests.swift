// `fusion sweep` through the binary: one recipe over sizes × budgets, each run its own process
// and its own schedule to its budget, resumable (a second sweep trains nothing), and the runs
// feed `fusion compare --fit`. Needs the release `fusion` binary (`make test` builds it); skipped without.
import Foundation
import Testing
import TestSupport
@testable import Models
@testable import Training

private let packageRoot = FusionBinary.packageRoot

@Suite(.serialized) struct SweepTests {
    /// Runs fusion; stdout and stderr together (a sweep's children write to both).
    func fusion(_ arguments: [String], in dir: URL) throws -> (status: Int32, stdout: String) {
        let r = try FusionBinary.run(arguments, in: dir)
        return (r.status, r.stdout + r.stderr)
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func aSweepTrainsEachBudgetToItsOwnScheduleAndResumes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = packageRoot.appendingPathComponent("recipes/quickstart.yaml").path
        let arguments = ["sweep", recipe, "--sizes", "nano", "--steps", "4,8,12", "--runs", "runs", "eval.every=0", "sample.every=0", "train.log_every=1", "optimizer.warmup_steps=1"]
        let planned = try fusion(arguments + ["--dry-run"], in: dir)
        #expect(planned.status == 0 && planned.stdout.contains("[3/3] quickstart-nano-12"), "\(planned.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path), "a dry run trains nothing")
        let swept = try fusion(arguments, in: dir)
        try #require(swept.status == 0, "\(swept.stdout)")
        for steps in [4, 8, 12] {
            let rows = try MetricsLog.read(dir.appendingPathComponent("runs/quickstart-nano-\(steps)/metrics.jsonl"))
            let trained = rows.filter { $0["kind"] == nil }.compactMap { $0["step"] as? Int }
            #expect(trained.last == steps, "run of \(steps) steps: \(trained)")
            // Its own schedule: the learning rate decays to the end of its own budget.
            let lrs = rows.filter { $0["kind"] == nil }.compactMap { $0["lr"] as? Double }
            #expect(lrs.count == steps && lrs.last! < lrs.max()!, "lr \(lrs)")
        }
        let again = try fusion(arguments, in: dir)
        #expect(again.status == 0 && again.stdout.components(separatedBy: "already at step").count == 4, "\(again.stdout)")
        let fitted = try fusion(["compare", "runs/quickstart-nano-4", "runs/quickstart-nano-8", "runs/quickstart-nano-12", "--fit",
                                 "--metrics", "eval_loss", "--out", "cmp"], in: dir)
        #expect(fitted.status == 0 && fitted.stdout.contains("| eval_loss | lm | 3 | -"), "\(fitted.stdout)")
        // A launcher starts each training (here a script that leaves a mark, then runs it), and
        // --then commands score each finished run: one that fails stops the sweep naming the run
        // and the command; one whose --json file exists is skipped, so the sweep goes on.
        let launcher = dir.appendingPathComponent("launch.sh")
        try "#!/bin/sh\necho launched >> \"$(dirname \"$0\")/launches.txt\"\nexec \"$@\"\n".write(to: launcher, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: launcher.path)
        let scored = ["--launcher", launcher.path, "--then", "export --checkpoint {run} --out {run}/exported",
                      "--then", "eval --checkpoint {run} --suite losses --json {run}/evals/losses.json"]
        let refused = try fusion(arguments + scored, in: dir)
        #expect(refused.status == 1 && refused.stdout.contains("run quickstart-nano-4: 'fusion eval --checkpoint runs/quickstart-nano-4 --suite losses")
                && refused.stdout.contains("holds a model of the lm family"), "\(refused.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/quickstart-nano-4/exported").path))
        #expect(try String(contentsOf: dir.appendingPathComponent("launches.txt"), encoding: .utf8) == "launched\n")
        for steps in [4, 8, 12] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("runs/quickstart-nano-\(steps)/evals"), withIntermediateDirectories: true)
            try "{}".write(to: dir.appendingPathComponent("runs/quickstart-nano-\(steps)/evals/losses.json"), atomically: true, encoding: .utf8)
        }
        let skipped = try fusion(arguments + scored, in: dir)
        #expect(skipped.status == 0 && skipped.stdout.components(separatedBy: "exists: skipped").count == 4, "\(skipped.stdout)")
        #expect(try String(contentsOf: dir.appendingPathComponent("launches.txt"), encoding: .utf8).count == 4 * "launched\n".count)
        for steps in [8, 12] {
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/quickstart-nano-\(steps)/exported").path))
        }
        let bad = try fusion(["sweep", recipe, "--sizes", "huge", "--steps", "4"], in: dir)
        #expect(bad.status == 1 && bad.stdout.contains("--sizes: unknown preset 'huge'"), "\(bad.stdout)")
    }
}
