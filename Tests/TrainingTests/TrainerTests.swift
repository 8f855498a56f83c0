// The trainer: N steps straight equal N/2 + resume + N/2 (metrics rows and weights, bit for
// bit); an interrupted checkpoint write leaves the previous checkpoint as the one that loads;
// a corrupt newest checkpoint falls back to the one before; a stop request checkpoints.
import Foundation
import NN
import Tensors
import Testing
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
        // The metrics file holds the same curve as the straight run, once.
        let logged = try MetricsLog.read(run.metricsURL).filter { $0["kind"] == nil }.compactMap { $0["step"] as? Int }
        #expect(logged == Array(1...6))
    }

    @Test func crashDuringCheckpointWriteKeepsPreviousCheckpoint() throws {
        let recipe = try tinyRecipe(steps: 4)
        let run = scratchRun()
        _ = try train(recipe, run, limit: 2, fresh: true)   // checkpoint at step 2
        struct Crash: Error {}
        Checkpoint.afterFileWritten = { file in if file == "optimizer.safetensors" { throw Crash() } }
        defer { Checkpoint.afterFileWritten = nil }
        #expect(throws: Crash.self) { _ = try train(recipe, run) }   // dies writing step 4
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
        let (trainer, _) = try train(try tinyRecipe(steps: 5), run)
        _ = trainer
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
