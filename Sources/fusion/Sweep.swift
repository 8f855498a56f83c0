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

            Runs are named <recipe name>-<size>-<steps> (and -s<seed> with --seeds; --name
            sets a template such as '{name}-{model.preset}-{train.steps}-lr{optimizer.lr}'),
            trained one after the other with `fusion train` (model.preset=SIZE
            train.steps=STEPS seed=SEED plus the overrides); a run's checkpoints are spaced
            so it keeps about four. Running the sweep again resumes each run where it
            stopped and skips finished ones. --dry-run prints the runs and their commands.
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
    @Flag(help: "Print the runs and their commands; train nothing.") var dryRun = false

    func run() throws {
        try reportingErrors("sweep") {
            let base = try Recipe.load(recipe, overrides: overrides)
            let presets = try list(sizes, flag: "--sizes") { name in
                guard Presets.decoders[name] != nil else {
                    throw ValidationError("--sizes: unknown preset '\(name)'; known: \(Presets.decoders.keys.sorted().joined(separator: ", "))")
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
            for (i, p) in plan.enumerated() {
                print("[\(i + 1)/\(plan.count)] \(p.name): fusion \(p.arguments.joined(separator: " "))")
            }
            if dryRun { return }
            let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            for (i, p) in plan.enumerated() {
                print("── [\(i + 1)/\(plan.count)] \(p.name)")
                fflush(stdout)                                    // before the child's lines
                let child = Process()
                child.executableURL = me
                child.arguments = p.arguments
                try child.run()
                child.waitUntilExit()
                guard child.terminationStatus == 0 else {
                    throw ValidationError("run \(p.name) stopped (exit \(child.terminationStatus)); run the sweep again to resume it")
                }
            }
            print("fusion sweep: \(plan.count) runs done in \(runs)/ — compare them with fusion compare … --fit")
        }
    }

    /// The comma-separated items of `text`, each checked by `parse`; an empty list names `flag`.
    func list<T>(_ text: String, flag: String, _ parse: (String) throws -> T) throws -> [T] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw ValidationError("\(flag) needs at least one value") }
        return try items.map(parse)
    }
}
