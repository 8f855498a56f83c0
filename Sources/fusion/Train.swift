// `fusion train RECIPE [key.path=value ...]`: runs a recipe into runs/<name>/.
import ArgumentParser
import Collective
import Foundation
import Models
import Tensors
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a recipe; re-running the same run with the same recipe resumes it from its last checkpoint.",
        discussion: """
            Example:
              fusion train recipes/quickstart.yaml train.steps=200 optimizer.lr=1e-3

            Writes runs/<name>/: recipe.yaml (resolved), metrics.jsonl, samples/,
            checkpoints/ (each checkpoint with the recipe it was trained under),
            tensorboard/ (event files: tensorboard --logdir runs) and loss.png / loss.svg.
            Ctrl-C finishes the current step, saves a checkpoint and exits; run again to
            resume.
            A run resumes only under the recipe it was trained with: a rerun whose resolved
            recipe differs (other overrides, an edited file) stops with the keys that
            differ; give it a new --name, or --resume-anyway to continue the run with the
            new values (e.g. more train.steps). --name may name recipe keys:
            --name '{name}-lr{optimizer.lr}'.
            Before the first step the run's peak memory is planned and printed; a recipe
            that cannot fit what is free (or train.memory_limit, e.g. 6GiB) stops with the
            keys to change.

            Data-parallel over Open MPI (apt-get install -y libopenmpi-dev openmpi-bin) or
            MPICH (apt-get install -y mpich), loaded when an MPI launcher starts fusion:
              mpirun -np 2 fusion train recipes/quickstart.yaml        # Open MPI
              mpiexec.mpich -n 2 fusion train recipes/quickstart.yaml  # MPICH
              srun --mpi=pmix fusion train recipes/quickstart.yaml     # SLURM
            Each rank computes train.batch_size/N rows of every micro-batch; rank 0 writes
            the run.
            Ranks on one machine split its cores (FUSION_THREADS, train.threads override).
            FUSION_MPI_LIBRARY names the library to load. Clusters: docs/clusters.md

            Model families (model.kind):

            """ + ModelFamily.allCases.map { "  " + $0.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + $0.summary }
                .joined(separator: "\n"))

    @Argument(help: "The recipe YAML file.")
    var recipe: String

    @Argument(help: "Overrides such as train.steps=100 or model.dim=192.")
    var overrides: [String] = []

    @Flag(help: "Delete an existing run of the same name and start over.")
    var fresh = false

    @Option(help: "Folder holding run directories.")
    var runs = "runs"

    @Option(help: "Run name (default: the recipe's name); {key.path} is replaced by that recipe value, e.g. '{name}-lr{optimizer.lr}'.")
    var name: String?

    @Flag(help: "Continue an existing run even though the recipe differs from the one it was trained with.")
    var resumeAnyway = false

    func run() throws {
        let comm: Communicator
        do { comm = try Collective.fromEnvironment() } catch {
            FileHandle.standardError.write("fusion train: error: \(error)\n".data(using: .utf8)!)
            throw ExitCode.failure
        }
        do {
            let r = try Recipe.load(recipe, overrides: overrides)
            if let threads = r.train.threads {
                Parallel.setThreads(threads)
            } else if comm.size > 1 && ProcessInfo.processInfo.environment["FUSION_THREADS"] == nil {
                // Ranks on one machine share its cores rather than each taking all of them.
                Parallel.setThreads(max(1, ProcessInfo.processInfo.activeProcessorCount / comm.localRanks))
            }
            let dir = RunDirectory(URL(fileURLWithPath: runs).appendingPathComponent(try r.expandName(name ?? r.name)))
            // Memory: a decoder too large to build stops here, before anything is built or written;
            // then probe batches of 4 and 8 rows measure the tape per row, and a recipe whose planned
            // peak does not fit stops before its first step (MemoryPlan.swift).
            let budget = MemoryBudget.current(limit: r.train.memoryLimitBytes, sharedBy: comm.localRanks)
            if r.train.checksMemory { try ModelTooLargeError.check(r, budget: budget) }
            Allocator.failurePrefix = "fusion train: error: "
            Allocator.failureAdvice = ". The run's newest checkpoint is intact. Lower train.batch_size (raise train.grad_accum "
                + "to keep the batch), data.seq_len or the model size, or leave train.memory_limit on so the plan checks first"
            let newRun = !FileManager.default.fileExists(atPath: dir.url.path) || fresh
            // One writer per run: rank 0 holds the run's lock until the process ends.
            let lock = comm.rank == 0 ? try RunLock(dir) : nil
            // One recipe per run: a rerun under changed values stops here, before anything is
            // written, unless asked to go on (then the differences are printed and each checkpoint
            // keeps the recipe it was written under).
            if comm.rank == 0 && !fresh {
                do { try dir.checkSameRecipe(r) } catch let changed as RecipeChangedError where resumeAnyway {
                    print("fusion train: continuing \(dir.url.lastPathComponent) under a changed recipe (--resume-anyway):")
                    for d in changed.differences { print("    \(d)") }
                    if let why = changed.unreadable { print("    the saved recipe.yaml no longer loads: \(why)") }
                }
            }
            // Rank 0 first: it removes an old run (--fresh), checks the runs folder and writes what
            // the task keeps in the run (the tokenizer); the other ranks then build their task from those files.
            if comm.rank == 0 {
                if fresh { try dir.delete() }
                try dir.prepare(fresh: false)             // a bad --runs folder fails here, before any work
            }
            if comm.rank != 0 { comm.barrier() }
            let plan = try MemoryPlan.training(r, ranks: comm.size) { try $0.model.kind.makeTask($0, run: dir) }
            if r.train.checksMemory {
                do { try plan.check(r, budget: budget) } catch {
                    if comm.rank == 0 && newRun { try? dir.delete(); lock?.removeFile() }   // a refused new run leaves nothing behind
                    throw error
                }
            }
            let task = try r.model.kind.makeTask(r, run: dir)
            if comm.rank == 0 { comm.barrier() }
            if comm.rank == 0 {
                let library = (comm as? MPICommunicator).map { "; \($0.library)" } ?? ""
                let ranks = comm.size > 1
                    ? ", \(comm.size) MPI ranks × \(Parallel.threads) threads (\(comm.localRanks) on this machine\(library))" : ""
                print("fusion train: \(r.name) — \(r.model.kind) \(r.model.preset), \(task.model.parameterCount) parameters, \(r.train.steps) steps\(ranks) → \(dir.url.path)")
                print("memory: \(plan), \(budget) free\(r.train.checksMemory ? "" : " (not checked: train.memory_limit off)")"
                      + String(format: "; probed in %.1f s", plan.probeSeconds))
            }
            // A resumed run continues its own weights; only a new one says where its start came from.
            if comm.rank == 0, dir.checkpoints().isEmpty, let from = (task as? InitialisedFrom)?.initialisedFrom {
                print("initialised from the \(from)")
            }
            StopRequest.installSignalHandlers()
            let trainer = try Trainer(recipe: r, task: task, run: dir, communicator: comm)
            let summary = try trainer.train(fresh: false)
            if comm.rank == 0 {
                print("memory: peak \(MemoryPlan.format(SystemMemory.peakResidentBytes)) resident (planned \(MemoryPlan.format(plan.total)))")
                if summary.startStep == summary.endStep {
                    print("done: the run is already at step \(summary.endStep) (to train on: train.steps=N --resume-anyway)")
                } else {
                    print(String(format: "done: step %d, loss %.4f%@", summary.endStep, summary.finalLoss,
                                 summary.stoppedEarly ? " (stopped early; run again to resume)" : ""))
                }
            }
            withExtendedLifetime(lock) {}
            comm.finalize()
        } catch let e as ExitCode {
            if comm.size > 1 { comm.abort(code: e.rawValue) }
            throw e
        } catch {
            FileHandle.standardError.write("fusion train: error: \(error)\n".data(using: .utf8)!)
            // Other ranks may be waiting in a collective: end the whole job.
            if comm.size > 1 { comm.abort(code: 1) }
            throw ExitCode.failure
        }
    }
}
