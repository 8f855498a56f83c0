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
              fusion sweep recipes/compare/transfusion-tiny.yaml --sizes nano,tiny --steps 300,1000,3000
              fusion compare runs/compare-chameleon-tiny-* runs/compare-transfusion-tiny-* --fit --out runs/scaling

            Runs are named <recipe name>-<size>-<steps> (and -s<seed> with --seeds), trained one
            after the other with `fusion train` (model.preset=SIZE train.steps=STEPS seed=SEED plus
            the overrides); a run's checkpoints are spaced so it keeps about four. Running the sweep
            again resumes each run where it stopped and skips finished ones. --dry-run prints the
            runs and their commands.
            """)

    @Argument(help: "The recipe YAML file.") var recipe: String
    @Argument(help: "Overrides for every run, such as optimizer.lr=1e-3.") var overrides: [String] = []
    @Option(help: "Model presets, comma-separated (nano, tiny, small, base).") var sizes: String
    @Option(help: "Training steps of each run (its budget), comma-separated.") var steps: String
    @Option(help: "Seeds, comma-separated (default: the recipe's).") var seeds: String?
    @Option(help: "Folder holding run directories.") var runs = "runs"
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
            var plan: [(name: String, arguments: [String])] = []
            for size in presets {
                for budget in budgets {
                    for seed in seedList ?? [base.seed] {
                        let name = "\(base.name)-\(size)-\(budget)" + (seedList == nil ? "" : "-s\(seed)")
                        let every = max(1, budget / 4)
                        plan.append((name, ["train", recipe] + overrides
                                     + ["model.preset=\(size)", "train.steps=\(budget)", "seed=\(seed)",
                                        "train.checkpoint_every=\(every)", "--runs", runs, "--name", name]))
                    }
                }
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
