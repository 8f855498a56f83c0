// `fusion compare RUN...`: loss- and metric-vs-FLOPs plots and a markdown parity table for runs
// trained at matched compute (the first run is the baseline). The work is Training.compareRuns.
import ArgumentParser
import Foundation
import NN
import Training

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare runs against FLOPs: plots per metric and a markdown table with parity FLOPs.",
        discussion: """
            Examples (the first run is the baseline):
              fusion compare runs/compare-chameleon-tiny runs/compare-transfusion-tiny \\
                --out runs/compare-tiny
              fusion compare runs/chameleon-tiny-* runs/transfusion-tiny-* --fit \\
                --out runs/scaling

            Writes OUT/<metric>.png and .svg for every metric the runs log (loss, loss_text,
            eval_loss_text, eval_shapes_eval, …) and OUT/report.md: final values, and the
            FLOPs each run needs to reach the baseline's best value (the Transfusion paper's
            parity ratio). FLOPs count the real (non-padding) positions of each micro-batch;
            --flops 6nd reads the paper's 6·N·D column instead.
            """)

    @Argument(help: "Run folders; the first is the baseline.") var runs: [String]
    @Option(help: "Output folder for the plots and report.md.") var out = "runs/compare"
    @Option(parsing: .unconditional, help: "Moving-average window for training curves (1: none).") var smooth = 10
    @Option(parsing: .upToNextOption, help: "Metrics to compare (default: the common ones the runs log).")
    var metrics: [String] = []
    @Option(help: "FLOPs axis: analytic (decoder, attention and heads on the real positions; the default) or 6nd (the paper's 6·N·D, N non-embedding parameters, D real positions).")
    var flops: FlopsCount = .analytic

    enum FlopsCount: String, ExpressibleByArgument { case analytic, sixND = "6nd" }

    @Flag(help: "Also fit each family's final values against FLOPs in log-log space (runs of several sizes and budgets, e.g. from fusion sweep) and print parity ratios with bootstrap intervals.")
    var fit = false

    func run() throws {
        try reportingErrors("compare") {
            guard !runs.isEmpty else { throw ValidationError("name at least one run folder") }
            guard smooth >= 1 else { throw ValidationError("--smooth must be ≥ 1 (1: no smoothing), got \(smooth)") }
            let curves = try runs.map { try RunCurves(run: URL(fileURLWithPath: $0), flops: flops == .analytic ? "flops" : "flops_6nd") }
            let chosen = metrics.isEmpty
                ? ["loss", "loss_text", "loss_image", "eval_loss", "eval_loss_text", "eval_loss_caption", "eval_loss_prior",
                   "eval_loss_image", "eval_shapes_eval", "eval_ppl", "eval_fd"]
                : metrics
            let dir = URL(fileURLWithPath: out)
            var report = try compareRuns(curves, metrics: chosen, smooth: smooth, to: dir)
            if fit {
                report += "\n" + (try scalingReport(curves, metrics: chosen, to: dir))
                try atomicWrite(Foundation.Data(report.utf8), to: dir.appendingPathComponent("report.md"))
            }
            print(report)
            print("wrote \(out)/report.md and its plots")
        }
    }
}
