// The trainer: N steps straight equal N/2 + resume + N/2 (metrics rows and weights, bit for
// bit); an interrupted checkpoint write leaves the previous checkpoint as the one that loads;
// a corrupt newest checkpoint falls back to the one before; a stop request checkpoints; a
// NaN/Inf loss or gradient is skipped, rolled back over, or stops the run, as the recipe says.
import Foundation
import NN
import Tensors
import Testing
@testable import Models
@testable import Training

func tinyRecipe(steps: Int, name: String = "t") throws -> Recipe {
    try Recipe.parse("""
        name: \(name)
        seed: 3
        model: {kind: lm, preset: nano, dim: 32, layers: 2, heads: 2}
        data: {tokenizer_vocab: 300, seq_len: 32}
        optimizer: {lr: 3.0e-3, warmup_steps: 2}
        train: {steps: \(steps), batch_size: 4, grad_accum: 2, log_every: 1, checkpoint_every: 2, keep_checkpoints: 2, ema_decay: 0.9}
        eval: {every: 0, batches: 1}
        sample: {every: 0, max_tokens: 4}
        """, file: "test.yaml")
}

func scratchRun() -> RunDirectory {
    RunDirectory(FileManager.default.temporaryDirectory.appendingPathComponent("fusion-run-\(UUID().uuidString)"))
}

/// The deterministic fields of a metrics row (everything but timing).
func deterministic(_ row: MetricsRow) -> String {
    row.fields.filter { !["tokens_per_s", "wall_s"].contains($0.0) }.map { "\($0.0)=\($0.1.json)" }.joined(separator: " ")
}

func train(_ recipe: Recipe, _ run: RunDirectory, limit: Int? = nil, fresh: Bool = false) throws -> (Trainer, [String]) {
    let task = try LMTask(recipe: recipe, run: run)
    let trainer = try Trainer(recipe: recipe, task: task, run: run)
    trainer.stepLimit = limit
    var rows: [String] = []
    trainer.onRow = { rows.append(deterministic($0)) }
    try trainer.train(fresh: fresh)
    return (trainer, rows)
}

/// The LM task with NaN poured into chosen micro-batches: into the loss itself, or only into the
/// gradient of one parameter (sqrt at 0 has a finite value and an infinite derivative).
final class PoisonedTask: TrainingTask {
    enum Poison { case loss, gradient }
    let inner: LMTask
    let poisoned: Set<Int>
    let poison: Poison
    init(_ inner: LMTask, poisoned: Set<Int>, poison: Poison = .loss) {
        self.inner = inner; self.poisoned = poisoned; self.poison = poison
    }
    var model: Module { inner.model }
    var flopsPerMicroBatch: Double { inner.flopsPerMicroBatch }
    func checkpointConfig() throws -> Foundation.Data { try inner.checkpointConfig() }
    func loss(microBatch index: Int, rng: RNG) throws -> LossResult {
        var r = try inner.loss(microBatch: index, rng: rng)
        guard poisoned.contains(index) else { return r }
        switch poison {
        case .loss:
            r.total = r.total * Float.nan
            r.parts["loss_text"] = .nan
        case .gradient:
            let w = inner.model.namedParameters().first { $0.0.hasSuffix("norm.weight") || $0.0.contains("norm") }!.1
            r.total = r.total + (w * 0).sqrt().sum()
        }
        return r
    }
}

@Suite(.serialized) struct NonFiniteTests {
    func poisoned(_ policy: NonFinitePolicy, poisoned: Set<Int>, poison: PoisonedTask.Poison = .loss, steps: Int = 6)
        throws -> (Trainer, [String], RunDirectory) {
        var recipe = try tinyRecipe(steps: steps)
        recipe.train.onNonFinite = policy
        let run = scratchRun()
        let task = PoisonedTask(try LMTask(recipe: recipe, run: run), poisoned: poisoned, poison: poison)
        let trainer = try Trainer(recipe: recipe, task: task, run: run)
        var rows: [String] = []
        trainer.onRow = { rows.append(deterministic($0)) }
        try trainer.train(fresh: true)
        return (trainer, rows, run)
    }

    @Test func skipLeavesTheWeightsOfThatStepAlone() throws {
        // Micro-batches 6 and 7 are step 4's (grad_accum 2).
        let (_, rows, run) = try poisoned(.skip, poisoned: [6])
        #expect(rows.contains("step=4 kind=\"nonfinite\" where=\"loss_text\" action=\"skip\""), "\(rows)")
        #expect(!rows.contains { $0.hasPrefix("step=4 examples") })
        // Steps 1–3 match a clean run, and the run finishes with finite weights.
        let (_, clean, _) = try poisoned(.skip, poisoned: [])
        #expect(Array(rows.prefix(3)) == Array(clean.prefix(3)))
        let c = try Checkpoint.read(run.checkpoints()[0])
        #expect(c.state.step == 6 && c.state.optimizerStep == 5)
        #expect(c.model.values.allSatisfy { $0.scalars.allSatisfy(\.isFinite) })
    }

    @Test func aNonFiniteGradientNamesItsParameter() throws {
        let (_, rows, _) = try poisoned(.skip, poisoned: [2], poison: .gradient)
        let row = try #require(rows.first { $0.contains("nonfinite") })
        #expect(row.hasPrefix("step=2 ") && row.contains("where=\"gradient of ") && row.contains("norm"), "\(row)")
    }

    @Test func stopNamesTheStepAndWhat() throws {
        #expect(throws: RunError.self) { _ = try poisoned(.stop, poisoned: [6]) }
        do { _ = try poisoned(.stop, poisoned: [6]) } catch {
            #expect("\(error)".contains("step 4: non-finite loss_text"), "\(error)")
        }
    }

    @Test func rollbackReplaysFromTheCheckpointWithoutTheBadStep() throws {
        // Checkpoints every 2 steps: the NaN at step 5 rolls back to step 4, replays without step 5.
        let (rollback, rows, run) = try poisoned(.rollback, poisoned: [8])
        let (skip, skipRows, _) = try poisoned(.skip, poisoned: [8])
        // Same outcome as skipping (the data is deterministic), and the metrics file holds each
        // step once with the non-finite row in place.
        #expect(rows.filter { !$0.contains("nonfinite") } == skipRows.filter { !$0.contains("nonfinite") })
        for ((n, a), (_, b)) in zip(rollback.task.model.namedParameters(), skip.task.model.namedParameters()) {
            #expect(a.scalars == b.scalars, "\(n)")
        }
        let logged = try MetricsLog.read(run.metricsURL).compactMap { row -> String? in
            guard let s = row["step"] as? Int else { return nil }
            return "\(s)\(row["kind"] as? String ?? "")"
        }
        #expect(logged == ["1", "2", "3", "4", "5nonfinite", "6"], "\(logged)")
    }
}

@Suite(.serialized) struct TrainerTests {
    @Test func resumeIsBitIdentical() throws {
        let recipe = try tinyRecipe(steps: 6)
        let (straight, rowsA) = try train(recipe, scratchRun(), fresh: true)
        let run = scratchRun()
        let (_, first) = try train(recipe, run, limit: 3, fresh: true)   // stops after 3 (checkpoint at 3)
        let (resumed, second) = try train(recipe, run)
        #expect(first + second == rowsA)
        #expect(first.count == 3 && second.count == 4)   // steps 4–6 and the final eval row
        for ((n, a), (_, b)) in zip(straight.task.model.namedParameters(), resumed.task.model.namedParameters()) {
            #expect(a.scalars == b.scalars, "weights of \(n) differ after resume")
        }
        // The EMA resumes its warm-up where it stopped (restarting it would average differently).
        let (emaA, emaB) = (try #require(straight.ema), try #require(resumed.ema))
        #expect(emaA.updates == 6 && emaB.updates == 6)
        for (n, a) in emaA.stateDict() { #expect(a.scalars == emaB.stateDict()[n]?.scalars, "EMA of \(n) differs after resume") }
        // The metrics file holds the same curve as the straight run, once.
        let logged = try MetricsLog.read(run.metricsURL).filter { $0["kind"] == nil }.compactMap { $0["step"] as? Int }
        #expect(logged == Array(1...6))
    }

    /// `train.matmul_precision: bf16` follows the fp32 run's losses to within 2%, and is as
    /// reproducible: resuming it continues the same bf16 curve bit for bit.
    @Test(.enabled(if: MatmulPrecision.bf16Available, "needs a CPU with AVX512-BF16"))
    func bf16RunFollowsFP32AndResumesExactly() throws {
        var recipe = try tinyRecipe(steps: 6)
        let (_, exact) = try train(recipe, scratchRun(), fresh: true)
        recipe.train.matmulPrecision = .bf16
        let (_, rounded) = try train(recipe, scratchRun(), fresh: true)
        func losses(_ rows: [String]) -> [Double] {
            rows.compactMap { row in row.split(separator: " ").first { $0.hasPrefix("loss=") }.flatMap { Double($0.dropFirst(5)) } }
        }
        #expect(losses(exact).count >= 6 && losses(rounded).count == losses(exact).count)
        for (e, r) in zip(losses(exact), losses(rounded)) { #expect(abs(e - r) <= 0.02 * e, "fp32 \(e), bf16 \(r)") }
        #expect(losses(exact) != losses(rounded), "the bf16 run should not be the fp32 run")
        let run = scratchRun()
        let (_, first) = try train(recipe, run, limit: 3, fresh: true)
        let (_, second) = try train(recipe, run)
        #expect(first + second == rounded)
    }

    @Test func crashDuringCheckpointWriteKeepsPreviousCheckpoint() throws {
        let recipe = try tinyRecipe(steps: 4)
        let run = scratchRun()
        _ = try train(recipe, run, limit: 2, fresh: true)   // checkpoint at step 2
        struct Crash: Error {}
        Checkpoint.afterFileWritten = { file in if file == "optimizer.safetensors" { throw Crash() } }
        defer { Checkpoint.afterFileWritten = nil }
        #expect(throws: RunError.self) { _ = try train(recipe, run) }   // dies writing step 4
        Checkpoint.afterFileWritten = nil
        #expect(run.checkpoints().map(\.lastPathComponent) == ["step-00000002"])
        let c = try Checkpoint.read(run.checkpoints()[0])
        #expect(c.state.step == 2)
        let (t, rows) = try train(recipe, run)   // resumes from 2 and finishes
        #expect(rows.first?.hasPrefix("step=3 ") == true)
        _ = t
    }

    @Test func corruptNewestCheckpointFallsBack() throws {
        let recipe = try tinyRecipe(steps: 4)
        let run = scratchRun()
        _ = try train(recipe, run, limit: 4, fresh: true)   // checkpoints at 2 and 4
        let newest = run.checkpoints()[0].appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: newest)
        try data.prefix(data.count / 2).write(to: newest)
        let (_, resumed) = try train(try tinyRecipe(steps: 5), run)
        // Resumed from step 2 (the newest checkpoint that loads): steps 3, 4 and 5 were trained again.
        let steps = resumed.compactMap { row in row.split(separator: " ").first { $0.hasPrefix("step=") }.flatMap { Int($0.dropFirst(5)) } }
        #expect(steps.first == 3 && steps.contains(5), "rows after the fallback: \(steps)")
        #expect(try Checkpoint.read(run.checkpoints()[0]).state.step == 5)
    }

    @Test func stopRequestCheckpointsAndReturns() throws {
        let recipe = try tinyRecipe(steps: 10)
        let run = scratchRun()
        let task = try LMTask(recipe: recipe, run: run)
        let trainer = try Trainer(recipe: recipe, task: task, run: run)
        trainer.onRow = { row in if case .int(3) = row["step"]! { StopRequest.request() } }
        defer { StopRequest.reset() }
        let summary = try trainer.train(fresh: true)
        #expect(summary.stoppedEarly && summary.endStep == 3)
        #expect(run.checkpoints().first?.lastPathComponent == "step-00000003")
    }

    @Test func lossFallsOnTheQuickstartTask() throws {
        var recipe = try tinyRecipe(steps: 30)
        recipe.train.gradAccum = 1
        var losses: [Double] = []
        let run = scratchRun()
        let task = try LMTask(recipe: recipe, run: run)
        let trainer = try Trainer(recipe: recipe, task: task, run: run)
        trainer.onRow = { row in if case .double(let l) = row["loss"] ?? .int(0) { losses.append(l) } }
        try trainer.train(fresh: true)
        #expect(losses.count == 30)
        let early: Double = losses.prefix(5).reduce(0, +) / 5
        let late: Double = losses.suffix(5).reduce(0, +) / 5
        #expect(late < 0.75 * early, "loss \(early) → \(late)")  // measured 5.39 → 3.37
    }
}
