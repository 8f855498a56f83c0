// `fusion train RECIPE [key.path=value ...]`: runs a recipe into runs/<name>/.
import ArgumentParser
import Foundation
import Tensors
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a recipe; re-running the same run resumes it from its last checkpoint.",
        discussion: """
            Example:
              fusion train recipes/quickstart.yaml train.steps=200 optimizer.lr=1e-3

            Writes runs/<name>/: recipe.yaml (resolved), metrics.jsonl, samples/, checkpoints/.
            Ctrl-C finishes the current step, saves a checkpoint and exits; run again to resume.
            """)

    @Argument(help: "The recipe YAML file.")
    var recipe: String

    @Argument(help: "Overrides such as train.steps=100 or model.dim=192.")
    var overrides: [String] = []

    @Flag(help: "Delete an existing run of the same name and start over.")
    var fresh = false

    @Option(help: "Folder holding run directories.")
    var runs = "runs"

    @Option(help: "Run name (default: the recipe's name).")
    var name: String?

    func run() throws {
        do {
            let r = try Recipe.load(recipe, overrides: overrides)
            if let threads = r.train.threads { Parallel.setThreads(threads) }
            let dir = RunDirectory(URL(fileURLWithPath: runs).appendingPathComponent(name ?? r.name))
            if fresh { try dir.delete() }
            try dir.prepare(fresh: false)                 // a bad --runs folder fails here, before any work
            let task = try makeTask(r, run: dir)
            print("fusion train: \(r.name) — \(r.model.kind) \(r.model.preset), \(task.model.parameterCount) parameters, \(r.train.steps) steps → \(dir.url.path)")
            StopRequest.installSignalHandlers()
            let trainer = try Trainer(recipe: r, task: task, run: dir)
            let summary = try trainer.train(fresh: false)
            print(String(format: "done: step %d, loss %.4f%@", summary.endStep, summary.finalLoss,
                         summary.stoppedEarly ? " (stopped early; run again to resume)" : ""))
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write("fusion train: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode.failure
        }
    }
}

/// The task for a recipe's model kind.
func makeTask(_ r: Recipe, run: RunDirectory) throws -> TrainingTask {
    switch r.model.kind {
    case "lm": return try LMTask(recipe: r, run: run)
    case "transfusion": return try TransfusionTask(recipe: r, run: run)
    case "chameleon": return try ChameleonTask(recipe: r, run: run)
    case "vae", "vq": return try ImageTokenizerTask(recipe: r)
    case "classifier": return try ClassifierTask(recipe: r)
    default: throw ValidationError("model.kind '\(r.model.kind)' is not available yet in this build")
    }
}
