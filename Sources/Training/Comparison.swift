// Comparing runs at matched compute: curves read from runs' metrics.jsonl against FLOPs, the
// paper's "parity FLOPs" (how much compute a run needs to reach the baseline's best value),
// loss/metric-vs-FLOPs plots and a markdown table. Not training and not evaluation itself.
import Evaluation
import Foundation
import Media
import NN

/// One metric's curve: (FLOPs so far, value) in step order.
public typealias Curve = [(flops: Double, value: Double)]

/// The curves of one run.
public struct RunCurves {
    public let name: String
    /// Every numeric field of the training rows (loss, loss_text, loss_image, grad_norm, …).
    public let train: [String: Curve]
    /// Every numeric field of the eval rows, with the "eval_" prefix (eval_loss, eval_shapes_eval, …).
    public let eval: [String: Curve]
    public let kind: String?

    public init(name: String, train: [String: Curve], eval: [String: Curve], kind: String? = nil) {
        self.name = name; self.train = train; self.eval = eval; self.kind = kind
    }

    /// Reads `run/metrics.jsonl` (and the model kind from `run/recipe.yaml`), its curves against
    /// the FLOPs column `flops`: "flops" (analytic, on real positions) or "flops_6nd" (the
    /// paper's 6·N·D). Counts that are not metrics (eval_documents) are left out.
    public init(run: URL, flops column: String = "flops") throws {
        let rows = try MetricsLog.read(run.appendingPathComponent("metrics.jsonl"))
        var train: [String: Curve] = [:], eval: [String: Curve] = [:]
        for row in rows {
            guard let flops = (row[column] as? Double) ?? (row[column] as? Int).map(Double.init) else { continue }
            let isEval = (row["kind"] as? String) == "eval"
            for (key, value) in row where !["step", "flops", "flops_6nd", "kind", "tokens", "examples", "documents"].contains(key) {
                guard let v = (value as? Double) ?? (value as? Int).map(Double.init), v.isFinite else { continue }
                if isEval { eval[key, default: []].append((flops, v)) } else { train[key, default: []].append((flops, v)) }
            }
        }
        guard !train.isEmpty || !eval.isEmpty else {
            throw RunError.io(run.appendingPathComponent("metrics.jsonl").path,
                              column == "flops" ? "no metrics rows with FLOPs"
                                  : "no metrics rows with \(column) (runs of this task, or runs trained before it was logged, lack it)")
        }
        let recipe = try? String(contentsOf: run.appendingPathComponent("recipe.yaml"), encoding: .utf8)
        let kind = recipe?.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("kind:") }
            .map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) }
        self.init(name: run.lastPathComponent, train: train, eval: eval, kind: kind)
    }

    /// The training FLOPs the run got to (its last logged row).
    public var budget: Double {
        ([train["loss"]?.last?.flops] + eval.values.map { $0.last?.flops }).compactMap { $0 }.max() ?? 0
    }

    /// A metric by name: eval metrics by their "eval_" name, training metrics by theirs.
    public func curve(_ metric: String) -> Curve? { eval[metric] ?? train[metric] }
}

public enum Parity {
    /// Losses, perplexities and distances go down; scores, accuracies and PSNR go up.
    public static func lowerIsBetter(_ metric: String) -> Bool {
        !["shapes", "accuracy", "acc", "psnr", "usage"].contains { metric.contains($0) }
    }

    /// Whether values of `metric` mean the same thing in runs of different model kinds: the total
    /// loss and the image and audio losses do not (diffusion MSE against code cross-entropy), nor
    /// the span markers' loss (Chameleon predicts an EOI after every span of codes, Transfusion never).
    public static func comparableAcrossKinds(_ metric: String) -> Bool {
        let name = metric.hasPrefix("eval_") ? String(metric.dropFirst(5)) : metric
        return !["loss", "loss_image", "loss_audio", "loss_markers"].contains(name.hasSuffix("_se") ? String(name.dropLast(3)) : name)
    }

    /// Whether `a ± seA` and `b ± seB` differ by less than two standard errors of their difference
    /// (√(seA² + seB²)): a tie at this sample size, not a win.
    public static func tie(_ a: Double, _ seA: Double, _ b: Double, _ seB: Double) -> Bool {
        abs(a - b) < 2 * (seA * seA + seB * seB).squareRoot()
    }

    /// The FLOPs at which `curve` first reaches `target` (linear interpolation between logged
    /// points), or nil if it never does.
    public static func flopsToReach(_ curve: Curve, target: Double, lowerIsBetter: Bool) -> Double? {
        func reached(_ v: Double) -> Bool { lowerIsBetter ? v <= target : v >= target }
        for (i, p) in curve.enumerated() where reached(p.value) {
            guard i > 0 else { return p.flops }
            let q = curve[i - 1]
            let f = (target - q.value) / (p.value - q.value)              // q misses, p reaches
            return q.flops + max(0, min(1, f)) * (p.flops - q.flops)
        }
        return nil
    }

    /// The curve's value at `flops`, interpolated linearly between logged points; nil outside
    /// the logged range.
    public static func value(_ curve: Curve, at flops: Double) -> Double? {
        guard let first = curve.first, let last = curve.last, flops >= first.flops, flops <= last.flops else { return nil }
        guard let i = curve.firstIndex(where: { $0.flops >= flops }) else { return nil }
        let p = curve[i]
        guard i > 0, p.flops > flops else { return p.value }
        let q = curve[i - 1]
        return q.value + (flops - q.flops) / (p.flops - q.flops) * (p.value - q.value)
    }

    public struct Result: Sendable {
        /// The baseline's best value and the FLOPs it first reached it at.
        public var baselineBest: Double
        public var baselineFlops: Double
        /// The FLOPs the candidate needed to reach `baselineBest` (nil: never).
        public var candidateFlops: Double?
        /// baselineFlops / candidateFlops: how many times less compute the candidate needed.
        public var ratio: Double? { candidateFlops.map { baselineFlops / max($0, 1) } }
    }

    /// The paper's parity comparison of `candidate` against `baseline` on one metric.
    public static func compare(baseline: Curve, candidate: Curve, lowerIsBetter: Bool) -> Result? {
        guard let best = (lowerIsBetter ? baseline.map(\.value).min() : baseline.map(\.value).max()),
              let at = flopsToReach(baseline, target: best, lowerIsBetter: lowerIsBetter) else { return nil }
        return Result(baselineBest: best, baselineFlops: at,
                      candidateFlops: flopsToReach(candidate, target: best, lowerIsBetter: lowerIsBetter))
    }
}

/// Moving average over `window` points (the first points average what exists).
public func smoothed(_ curve: Curve, window: Int) -> Curve {
    guard window > 1 else { return curve }
    var out: Curve = [], sum = 0.0
    for (i, p) in curve.enumerated() {
        sum += p.value
        if i >= window { sum -= curve[i - window].value }
        out.append((p.flops, sum / Double(min(i + 1, window))))
    }
    return out
}

/// Writes `<metric>.png` and `<metric>.svg` (metric vs FLOPs, one line per run) into `dir` for every metric some
/// run has, and returns a markdown report: final values and parity FLOPs against the first run.
public func compareRuns(_ runs: [RunCurves], metrics: [String], smooth: Int, to dir: URL) throws -> String {
    precondition(!runs.isEmpty, "compareRuns: no runs")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var report = "# Comparison\n\nBaseline: **\(runs[0].name)**. Curves against training FLOPs"
        + (smooth > 1 ? " (training curves smoothed over \(smooth) points)" : "") + ".\n\n"
    var plotted: [String] = []
    for metric in metrics {
        let curves = runs.compactMap { r in r.curve(metric).map { (r.name, $0) } }
        guard !curves.isEmpty else { continue }
        var plot = LinePlot(title: metric, xLabel: "training FLOPs")
        for (i, (name, curve)) in curves.enumerated() {
            let c = metric.hasPrefix("eval_") ? curve : smoothed(curve, window: smooth)
            plot.series.append(Series(name: name, x: c.map(\.flops), y: c.map(\.value),
                                      colour: Series.palette[i % Series.palette.count]))
        }
        let stem = metric.replacingOccurrences(of: "/", with: "_"), file = stem + ".png"
        try PNG.write(plot.render(), to: dir.appendingPathComponent(file).path)
        try atomicWrite(Foundation.Data(plot.svg().utf8), to: dir.appendingPathComponent(stem + ".svg"))
        plotted.append("![\(metric)](\(file))")
    }
    let shown = metrics.filter { m in runs.contains { $0.curve(m) != nil } }
    report += "| run | kind | FLOPs | wall | " + shown.joined(separator: " | ") + " |\n"
    report += "|---|---|---|---|" + String(repeating: "---|", count: shown.count) + "\n"
    for r in runs {
        let flops = r.budget
        let wall = r.train["wall_s"]?.last.map { String(format: "%.0f s", $0.value) } ?? "–"
        let values = shown.map { m in r.curve(m)?.last.map { String(format: "%.4g", $0.value) } ?? "–" }
        report += "| \(r.name) | \(r.kind ?? "?") | \(String(format: "%.3g", flops)) | \(wall) | " + values.joined(separator: " | ") + " |\n"
    }
    // Every run's value at the smallest budget among them: the matched-compute reading.
    let budgets = runs.map(\.budget)
    let kinds = Set(runs.map { $0.kind ?? "?" })
    if let matched = budgets.min(), matched > 0 {
        let comparable = shown.filter { kinds.count == 1 || Parity.comparableAcrossKinds($0) }
        report += "\n## At matched compute\n\nEach run's value at \(String(format: "%.3g", matched)) FLOPs (the smallest budget "
            + "among the runs), interpolated between logged points, ± its standard error where the run logs one "
            + "(`<metric>_se`). A value marked *tie* is within two standard errors of the difference from the baseline's: "
            + "this sample cannot tell them apart.\n\n"
        report += "| metric | " + runs.map(\.name).joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: runs.count) + "\n"
        for metric in comparable {
            let read = runs.map { r -> (value: Double, se: Double?)? in
                guard let c = r.curve(metric) else { return nil }
                let curve = metric.hasPrefix("eval_") ? c : smoothed(c, window: smooth)
                guard let v = Parity.value(curve, at: matched) else { return nil }
                return (v, r.curve(metric + "_se").flatMap { Parity.value($0, at: matched) })
            }
            let values = read.enumerated().map { i, x -> String in
                guard let x else { return "–" }
                var cell = String(format: "%.4g", x.value) + (x.se.map { String(format: " ± %.2g", $0) } ?? "")
                if i > 0, let base = read[0], let se = x.se, let baseSE = base.se, Parity.tie(base.value, baseSE, x.value, se) {
                    cell += " (tie)"
                }
                return cell
            }
            report += "| \(metric) | " + values.joined(separator: " | ") + " |\n"
        }
    }
    report += "\n## Parity FLOPs\n\nFLOPs each run needs to reach the baseline's best value, and the ratio "
        + "baseline FLOPs / run FLOPs (> 1: the run gets there with less compute).\n\n"
    report += "| metric | baseline best | baseline FLOPs | run | run FLOPs | ratio |\n|---|---|---|---|---|---|\n"
    for metric in shown {
        guard let base = runs[0].curve(metric) else { continue }
        let lower = Parity.lowerIsBetter(metric)
        let b = metric.hasPrefix("eval_") ? base : smoothed(base, window: smooth)
        for r in runs.dropFirst() {
            if r.kind != runs[0].kind && !Parity.comparableAcrossKinds(metric) {
                if r.curve(metric) != nil {
                    report += "| \(metric) | – | – | \(r.name) | not comparable (\(runs[0].kind ?? "?") vs \(r.kind ?? "?") objective) | – |\n"
                }
                continue
            }
            guard let c = r.curve(metric),
                  let p = Parity.compare(baseline: b, candidate: metric.hasPrefix("eval_") ? c : smoothed(c, window: smooth),
                                         lowerIsBetter: lower) else { continue }
            report += String(format: "| %@ | %.4g | %.3g | %@ | %@ | %@ |\n", metric, p.baselineBest, p.baselineFlops, r.name,
                             p.candidateFlops.map { String(format: "%.3g", $0) } ?? "not reached",
                             p.ratio.map { String(format: "%.2f×", $0) } ?? "–")
        }
    }
    report += "\n" + plotted.joined(separator: "\n") + "\n"
    try atomicWrite(Foundation.Data(report.utf8), to: dir.appendingPathComponent("report.md"))
    return report
}
