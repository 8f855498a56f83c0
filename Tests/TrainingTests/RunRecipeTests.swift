// A run belongs to one resolved recipe: a rerun under changed values refuses with the keys that
// differ (or continues with --resume-anyway, each checkpoint keeping its own recipe), and run names
// can be templated from recipe values for `fusion train` and `fusion sweep`.
import Foundation
import Testing
import TestSupport
@testable import Models
@testable import Training

@Suite(.serialized) struct RunRecipeTests {
    static let text = """
        name: rr
        model: {kind: lm, preset: nano}
        optimizer: {lr: 3.0e-3}
        train: {steps: 4}
        """

    @Test func differencesNameEachChangedKeyWithBothValues() throws {
        let saved = try Recipe.parse(Self.text, file: "rr.yaml")
        let now = try Recipe.parse(Self.text, file: "rr.yaml", overrides: ["optimizer.lr=1e-4", "train.steps=6", "sample.prompts=[a, b c]"])
        #expect(Set(now.differences(from: saved).map(\.description)) == [
            "optimizer.lr: 0.003 → 0.0001", "train.steps: 4 → 6", "sample.prompts: [] → [a, b c]"])
        #expect(saved.differences(from: saved).isEmpty)
        // Every leaf key once, as section.key, and the flat values read back as the same recipe.
        let keys = now.flatValues().map(\.key)
        #expect(Set(keys).count == keys.count && keys.contains("optimizer.lr") && keys.contains("model.kind"))
    }

    @Test func runNamesExpandRecipeKeys() throws {
        let r = try Recipe.parse(Self.text, file: "rr.yaml", overrides: ["seed=7"])
        #expect(try r.expandName("{name}-lr{optimizer.lr}-s{seed}") == "rr-lr0.003-s7")
        #expect(try r.expandName("plain") == "plain")
        #expect(try r.expandName("{model.preset}/{ train.steps }") == "nano_4")
        #expect(throws: RunError.self) { try r.expandName("{optimizer.lrr}") }
        do { _ = try r.expandName("{lr}") } catch { #expect("\(error)".contains("did you mean {optimizer.lr}?"), "\(error)") }
        #expect(throws: RunError.self) { try r.expandName("{name") }
    }

    /// A saved recipe.yaml written before a key existed compares at that key's default; one that no
    /// longer loads stops the rerun too (it cannot be compared), saying why.
    @Test func theSavedRecipeIsComparedAfterResolvingIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-rr-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = RunDirectory(dir)
        try run.prepare(fresh: false)
        let recipe = try Recipe.parse(Self.text, file: "rr.yaml")
        try Self.text.write(to: run.recipeURL, atomically: true, encoding: .utf8)   // short form: defaults unwritten
        try run.checkSameRecipe(recipe.withLR(1))        // no checkpoint yet: nothing trained, nothing to protect
        let ckpt = run.checkpointURL(step: 1)
        try FileManager.default.createDirectory(at: ckpt, withIntermediateDirectories: true)
        try "{}".write(to: ckpt.appendingPathComponent("state.json"), atomically: true, encoding: .utf8)
        try run.checkSameRecipe(recipe)
        #expect(throws: RecipeChangedError.self) { try run.checkSameRecipe(recipe.withLR(1)) }
        try (Self.text + "\nretired_key: 1\n").write(to: run.recipeURL, atomically: true, encoding: .utf8)
        do { try run.checkSameRecipe(recipe); Issue.record("an unloadable saved recipe passed") } catch let e as RecipeChangedError {
            #expect(e.unreadable?.contains("retired_key") == true && e.description.contains("--resume-anyway"), "\(e)")
        }
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func aRerunUnderAChangedRecipeRefusesUnlessAskedToGoOn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-rr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipe = FusionBinary.packageRoot.appendingPathComponent("recipes/quickstart.yaml").path
        let base = ["train", recipe, "train.steps=2", "train.log_every=1", "train.checkpoint_every=2", "eval.every=0", "sample.every=0", "--runs", "runs"]
        let first = try FusionBinary.run(base, in: dir)
        try #require(first.status == 0, "\(first.stderr)")
        let run = dir.appendingPathComponent("runs/quickstart")
        let savedRecipe = try String(contentsOf: run.appendingPathComponent("recipe.yaml"), encoding: .utf8)
        #expect(try FusionBinary.run(base, in: dir).stdout.contains("already at step 2"), "the same recipe resumes")

        let changed = try FusionBinary.run(base + ["optimizer.lr=1e-4"], in: dir)
        #expect(changed.status == 1)
        #expect(changed.stderr.contains("this run exists and the recipe differs") && changed.stderr.contains("optimizer.lr: 0.003 → 0.0001")
                && changed.stderr.contains("--resume-anyway") && changed.stderr.contains("--name"), "\(changed.stderr)")
        #expect(try String(contentsOf: run.appendingPathComponent("recipe.yaml"), encoding: .utf8) == savedRecipe, "the refusal wrote nothing")

        // Going on: two more steps under the new budget; one metrics row per step, and each
        // checkpoint holds the recipe it was written under.
        let more = try FusionBinary.run(base.map { $0 == "train.steps=2" ? "train.steps=4" : $0 } + ["--resume-anyway"], in: dir)
        try #require(more.status == 0, "\(more.stderr)")
        #expect(more.stdout.contains("train.steps: 2 → 4"), "\(more.stdout)")
        let steps = try MetricsLog.read(run.appendingPathComponent("metrics.jsonl")).filter { $0["kind"] == nil }.compactMap { $0["step"] as? Int }
        #expect(steps == [1, 2, 3, 4])
        let at2 = try Checkpoint.read(run.appendingPathComponent("checkpoints/step-00000002")).recipe
        let at4 = try Checkpoint.read(run.appendingPathComponent("checkpoints/step-00000004")).recipe
        #expect(try Recipe.parse(#require(at2), file: "2").train.steps == 2)
        #expect(try Recipe.parse(#require(at4), file: "4").train.steps == 4)

        // A templated name trains beside it instead.
        let named = try FusionBinary.run(base + ["optimizer.lr=1e-4", "--name", "{name}-lr{optimizer.lr}"], in: dir)
        #expect(named.status == 0 && FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/quickstart-lr0.0001/checkpoints").path),
                "\(named.stderr)")

        // Sweeps name their runs by the same template, and refuse one that names two runs alike.
        let sweep = ["sweep", recipe, "--sizes", "nano", "--steps", "3,5", "--dry-run", "optimizer.lr=2e-3"]
        let planned = try FusionBinary.run(sweep + ["--name", "{name}-{train.steps}-lr{optimizer.lr}"], in: dir)
        #expect(planned.status == 0 && planned.stdout.contains("[2/2] quickstart-5-lr0.002:"), "\(planned.stdout)")
        let clash = try FusionBinary.run(sweep + ["--name", "{name}-lr{optimizer.lr}"], in: dir)
        #expect(clash.status == 1 && clash.stderr.contains("gives two runs the same name (quickstart-lr0.002)"), "\(clash.stderr)")
    }
}

extension Recipe {
    func withLR(_ lr: Float) -> Recipe { var r = self; r.optimizer.lr = lr; return r }
}
