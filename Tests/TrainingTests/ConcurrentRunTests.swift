// Readers beside a writer: while `fusion train` checkpoints a Transfusion run every step (keeping
// two, so it prunes as fast as it writes), this process loads the run's newest checkpoint over and
// over and `fusion sample`, `fusion eval` and `fusion export` read the same folder. No reader may
// see a half-written or half-pruned checkpoint: every load succeeds (once the first checkpoint
// exists) and the steps read never go backwards. Needs the release `fusion` binary.
import Foundation
import Tensors
import Testing
@testable import Models
@testable import Training

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
private let fusionBinary = packageRoot.appendingPathComponent(".build/release/fusion").path

@Suite(.serialized) struct ConcurrentRunTests {
    static let recipe = """
        name: soak
        seed: 3
        model: {kind: transfusion, preset: nano, image_tokenizer: checkpoints/vae-shapes.safetensors, patch_size: 2}
        diffusion: {target: flow, sampler: euler, sample_steps: 2}
        data: {tokenizer_vocab: 300, seq_len: 64, pool: 64}
        optimizer: {lr: 1.0e-3, warmup_steps: 2}
        train: {steps: 150, batch_size: 2, log_every: 10, checkpoint_every: 1, keep_checkpoints: 2, ema_decay: 0.9, threads: 1}
        eval: {every: 0, batches: 1}
        sample: {every: 0, prompts: []}
        """

    func process(_ arguments: [String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: fusionBinary)
        p.arguments = arguments
        p.currentDirectoryURL = packageRoot
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        return p
    }

    /// The race the soak test can only hit by chance, made certain: the checkpoint a reader chose
    /// is pruned before it reads it; the reader takes the newest again instead of failing.
    @Test func aCheckpointPrunedUnderTheReaderIsChosenAgain() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-prune-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = RunDirectory(dir)
        try run.prepare(fresh: true)
        for step in [1, 2, 3] {
            let state = TrainingState(step: step, examples: 0, tokens: 0, flops: 0, wallSeconds: 0, seed: 0, optimizerStep: step)
            try Checkpoint(model: ["w": Tensor([Float(step)], shape: [1])], ema: nil, optimizer: [:], state: state,
                           config: Foundation.Data("{}".utf8)).write(to: run.checkpointURL(step: step))
        }
        var pruned: [String] = []
        SavedModel.beforeRead = { chosen in
            // The writer prunes the checkpoint just chosen (once), as a run keeping few checkpoints does.
            guard pruned.isEmpty else { return }
            pruned.append(chosen.lastPathComponent)
            try? FileManager.default.removeItem(at: chosen)
        }
        defer { SavedModel.beforeRead = nil }
        let saved = try SavedModel(path: dir.path, ema: true)
        #expect(pruned == ["step-00000003"])
        #expect(saved.state?.step == 2 && saved.weights["w"]?.scalars == [2])
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: fusionBinary), "needs .build/release/fusion (make test builds it)"))
    func readersNeverSeeAHalfWrittenCheckpoint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let recipeFile = dir.appendingPathComponent("soak.yaml")
        try Self.recipe.write(to: recipeFile, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("runs/soak").path
        let writer = process(["train", recipeFile.path, "--runs", dir.appendingPathComponent("runs").path])
        try writer.run()

        var loads = 0, steps: [Int] = [], failures: [String] = [], commands = 0
        let deadline = Date().addingTimeInterval(300)
        while writer.isRunning && Date() < deadline {
            do {
                let saved = try SavedModel(path: run, ema: true)
                _ = try TransfusionRun(path: run)             // the weights fit the model the config describes
                loads += 1
                steps.append(saved.state?.step ?? -1)
            } catch let error as RunError where steps.isEmpty
                        && ["no complete checkpoint", "no such run"].contains(where: { "\(error)".contains($0) }) {
                usleep(20_000)
                continue                                      // before the first checkpoint
            } catch {
                failures.append("load: \(error)")
            }
            // Every few loads, the verbs read the same run folder while it is written.
            if loads % 8 == 1 {
                let verbs: [[String]] = [
                    ["sample", "--checkpoint", run, "--prompt", "a red circle", "--num", "1", "--steps", "2",
                     "--out", dir.appendingPathComponent("s.png").path],
                    ["eval", "--checkpoint", run, "--suite", "captions", "--count", "2"],
                    ["export", "--checkpoint", run, "--out", dir.appendingPathComponent("export").path],
                ]
                let arguments = verbs[commands % verbs.count]
                let reader = process(arguments)
                try reader.run()
                reader.waitUntilExit()
                if reader.terminationStatus != 0 { failures.append("fusion \(arguments[0]): exit \(reader.terminationStatus)") }
                commands += 1
            }
        }
        writer.waitUntilExit()
        #expect(writer.terminationStatus == 0)
        #expect(failures.isEmpty, "\(failures.count) failures, the first: \(failures.prefix(3))")
        #expect(loads >= 10 && commands >= 3, "\(loads) loads, \(commands) commands")
        #expect(steps == steps.sorted(), "a reader went back in steps: \(steps)")
        #expect(Set(steps).count >= 5, "\(steps)")
    }
}
