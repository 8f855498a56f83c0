// `fusion sweep RECIPE --sizes … --steps …`: one recipe over model sizes, budgets and seeds, each
// run its own `fusion train` process with its own full learning-rate schedule to its budget (the
// comparison's scaling study). Argument parsing and process spawning only; the runs are Train's.
import ArgumentParser
import Foundation
import Training

struct Sweep: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one recipe over model sizes × budgets (× seeds), each run to its own full schedule.",
        discussion: """
            Example:
              fusion sweep recipes/compare/transfusion-tiny.yaml --sizes nano,tiny \\
                --steps 300,1000,3000
              fusion compare runs/compare-chameleon-tiny-* \\
                runs/compare-transfusion-tiny-* --fit --out runs/scaling
              fusion sweep recipes/compare/chameleon-tiny.yaml --sizes nano --steps 300,1000 \\
                --launcher 'mpiexec -n 2 -genv FUSION_THREADS 1' \\
                --then 'eval --checkpoint {run} --suite shapes --json {run}/evals/shapes.json' \\
                --then 'eval --checkpoint {run} --suite losses --no-ema --json {run}/evals/losses.json'

            Runs are named <recipe name>-<size>-<steps> (and -s<seed> with --seeds; --name
            sets a template such as '{name}-{model.preset}-{train.steps}-lr{optimizer.lr}'),
            trained one after the other with `fusion train` (model.preset=SIZE
            train.steps=STEPS seed=SEED plus the overrides); a run's checkpoints are spaced
            so it keeps about four. Running the sweep again resumes each run where it
            stopped and skips finished ones. --dry-run prints the runs and their commands.

            --launcher starts each training under a command (words split at spaces), e.g.
            mpiexec for data-parallel runs. --then runs fusion commands on each finished run
            ({run} is its folder; words split at spaces, so no quoted arguments); one that
            writes --json PATH is skipped where PATH exists, so a sweep run again scores only
            what is new.
            """)

    @Argument(help: "The recipe YAML file.") var recipe: String
    @Argument(help: "Overrides for every run, such as optimizer.lr=1e-3.") var overrides: [String] = []
    @Option(help: "Model presets, comma-separated (nano, tiny, small, base).") var sizes: String
    @Option(help: "Training steps of each run (its budget), comma-separated.") var steps: String
    @Option(help: "Seeds, comma-separated (default: the recipe's).") var seeds: String?
    @Option(help: "Folder holding run directories.") var runs = "runs"
    @Option(help: "Run name template; {key.path} is replaced by each run's recipe value (default: '{name}-{model.preset}-{train.steps}', with -s{seed} under --seeds).")
    var name: String?
    @Flag(help: "Continue existing runs even where the recipe differs from the one they were trained with.") var resumeAnyway = false
    @Option(help: "A command each training starts under, e.g. 'mpiexec -n 2 -genv FUSION_THREADS 1' (split at spaces).")
    var launcher: String?
    @Option(help: "A fusion command for each finished run, repeatable; {run} is the run folder, e.g. 'eval --checkpoint {run} --suite shapes --json {run}/evals/shapes.json'.")
    var then: [String] = []
    @Flag(help: "Print the runs and their commands; train nothing.") var dryRun = false

    func run() throws {
        try reportingErrors("sweep") {
            let base = try Recipe.load(recipe, overrides: overrides)
            let presets = try list(sizes, flag: "--sizes") { name in
                guard ModelPreset(rawValue: name) != nil else {
                    throw ValidationError("--sizes: unknown preset '\(name)'; known: \(ModelPreset.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return name
            }
            let budgets = try list(steps, flag: "--steps") { item -> Int in
                guard let n = Int(item), n > 0 else { throw ValidationError("--steps takes positive step counts, got \"\(item)\"") }
                return n
            }
            let seedList = try seeds.map { s in
                try list(s, flag: "--seeds") { item -> UInt64 in
                    guard let n = UInt64(item) else { throw ValidationError("--seeds takes non-negative integers, got \"\(item)\"") }
                    return n
                }
            }
            let template = name ?? "{name}-{model.preset}-{train.steps}" + (seedList == nil ? "" : "-s{seed}")
            var plan: [(name: String, arguments: [String])] = []
            for size in presets {
                for budget in budgets {
                    for seed in seedList ?? [base.seed] {
                        let every = max(1, budget / 4)
                        let runOverrides = overrides + ["model.preset=\(size)", "train.steps=\(budget)", "seed=\(seed)",
                                                        "train.checkpoint_every=\(every)"]
                        // The name from the run's own resolved recipe, as `fusion train --name` would expand it.
                        let name = try Recipe.load(recipe, overrides: runOverrides).expandName(template)
                        plan.append((name, ["train", recipe] + runOverrides + ["--runs", runs, "--name", name]
                                     + (resumeAnyway ? ["--resume-anyway"] : [])))
                    }
                }
            }
            let names = plan.map(\.name)
            if let twice = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
                throw ValidationError("--name '\(template)' gives two runs the same name (\(twice)); add the keys the runs differ by, e.g. {model.preset} and {train.steps}")
            }
            print("fusion sweep: \(plan.count) runs of \(base.name) (\(presets.joined(separator: ", ")) × \(budgets.map(String.init).joined(separator: ", ")) steps"
                  + (seedList.map { " × seeds \($0.map(String.init).joined(separator: ", "))" } ?? "") + ")")
            let prefix = words(launcher ?? "")
            for (i, p) in plan.enumerated() {
                print("[\(i + 1)/\(plan.count)] \(p.name): " + (prefix + ["fusion"] + p.arguments).joined(separator: " "))
                for command in then { print("    then: fusion " + followUp(command, run: p.name).joined(separator: " ")) }
            }
            if dryRun { return }
            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            for (i, p) in plan.enumerated() {
                print("── [\(i + 1)/\(plan.count)] \(p.name)")
                let status = try spawn(prefix + [me.path] + p.arguments)
                guard status == 0 else {
                    throw ValidationError("run \(p.name) stopped (exit \(status)); run the sweep again to resume it")
                }
                for command in then {
                    let arguments = followUp(command, run: p.name)
                    if let k = arguments.firstIndex(of: "--json"), k + 1 < arguments.count {
                        let out = URL(fileURLWithPath: arguments[k + 1])
                        if FileManager.default.fileExists(atPath: out.path) { print("   \(out.path) exists: skipped"); continue }
                        try FileManager.default.createDirectory(at: out.deletingLastPathComponent(), withIntermediateDirectories: true)
                    }
                    let status = try spawn([me.path] + arguments)
                    guard status == 0 else {
                        throw ValidationError("run \(p.name): 'fusion \(arguments.joined(separator: " "))' failed (exit \(status)); the run is trained, and the sweep run again goes on from here")
                    }
                }
            }
            print("fusion sweep: \(plan.count) runs done in \(runs)/ — compare them with fusion compare … --fit")
        }
    }

    /// Runs `command` (an executable path or a name looked up on PATH, then its arguments) with this
    /// process's output, and returns its exit status.
    func spawn(_ command: [String]) throws -> Int32 {
        fflush(stdout)                                            // before the child's lines
        let child = Process()
        child.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        child.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        try child.run()
        child.waitUntilExit()
        return child.terminationStatus
    }

    /// A --then command's words for run `name`, with {run} replaced by its folder.
    func followUp(_ command: String, run name: String) -> [String] {
        words(command).map { $0.replacingOccurrences(of: "{run}", with: "\(runs)/\(name)") }
    }

    func words(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }

    /// The comma-separated items of `text`, each checked by `parse`; an empty list names `flag`.
    func list<T>(_ text: String, flag: String, _ parse: (String) throws -> T) throws -> [T] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw ValidationError("\(flag) needs at least one value") }
        return try items.map(parse)
    }
}
