// Comparing runs at matched compute: curves read from runs' metrics.jsonl against FLOPs, the
// paper's "parity FLOPs" (how much compute a run needs to reach the baseline's best value),
// loss/metric-vs-FLOPs plots and a markdown table. Not training and not evaluation itself.
import Data
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

    /// Reads `run/metrics.jsonl` (the model kind from `run/recipe.yaml`, final evaluations from
    /// `run/evals/*.json`), its curves against
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
        // Reports of `fusion eval --json RUN/evals/NAME.json` on the finished run: final values at
        // its budget, as `final_NAME` (a ShapesEval's overall score, a Fréchet distance, a caption
        // report's exact rate) with `final_NAME_se` where the report has a standard error.
        let budget = Self.budget(train: train, eval: eval)
        let evals = run.appendingPathComponent("evals")
        for file in ((try? FileManager.default.contentsOfDirectory(atPath: evals.path)) ?? []).sorted() where file.hasSuffix(".json") {
            guard budget > 0, let data = FileManager.default.contents(atPath: evals.appendingPathComponent(file).path),
                  let report = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let value = (report["overall"] ?? report["fd"] ?? report["exact"]) as? Double else { continue }
            let name = "final_" + file.dropLast(5)
            eval[name] = [(budget, value)]
            let se = (report["standardError"] as? Double) ?? (report["standardErrors"] as? [String: Any])?["exact"] as? Double
            if let se { eval[name + "_se"] = [(budget, se)] }
        }
        let recipe = try? String(contentsOf: run.appendingPathComponent("recipe.yaml"), encoding: .utf8)
        let kind = recipe?.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("kind:") }
            .map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) }
        self.init(name: run.lastPathComponent, train: train, eval: eval, kind: kind)
    }

    /// The training FLOPs the run got to (its last logged row).
    public var budget: Double { Self.budget(train: train, eval: eval) }

    static func budget(train: [String: Curve], eval: [String: Curve]) -> Double {
        ([train["loss"]?.last?.flops] + eval.values.map { $0.last?.flops }).compactMap { $0 }.max() ?? 0
    }

    /// A metric by name: eval metrics by their "eval_" name, training metrics by theirs.
    public func curve(_ metric: String) -> Curve? { eval[metric] ?? train[metric] }
}

public enum Parity {
    /// Losses, perplexities and distances go down; scores, accuracies, PSNR and the exact rate of
    /// a caption report (`final_captions`) go up.
    public static func lowerIsBetter(_ metric: String) -> Bool {
        !["shapes", "accuracy", "acc", "psnr", "usage", "final_captions"].contains { metric.contains($0) }
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

    /// The paper's parity comparison of `candidate` against `baseline` on one metric; nil where
    /// the baseline has nothing to reach (a score that never rose above 0: every run "reaches" it).
    public static func compare(baseline: Curve, candidate: Curve, lowerIsBetter: Bool) -> Result? {
        guard let best = (lowerIsBetter ? baseline.map(\.value).min() : baseline.map(\.value).max()),
              lowerIsBetter || best > 0,
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

/// A colour per run: distinct ones while that tells runs apart best (few runs, each its own model kind
/// or all of one kind); otherwise one hue per kind in shades by run, so a sweep's plot reads family
/// by colour.
func runColours(_ runs: [RunCurves]) -> [(Float, Float, Float)] {
    let kinds = runs.reduce(into: [String]()) { if !$0.contains($1.kind ?? "?") { $0.append($1.kind ?? "?") } }
    if runs.count <= Series.palette.count && (kinds.count == 1 || kinds.count == runs.count) {
        return runs.indices.map { Series.palette[$0] }
    }
    var shades: [String: [(Float, Float, Float)]] = [:], used: [String: Int] = [:]
    for (i, kind) in kinds.enumerated() {
        shades[kind] = Series.shades(of: Series.palette[i % Series.palette.count], count: runs.count(where: { ($0.kind ?? "?") == kind }))
    }
    return runs.map { r in
        let kind = r.kind ?? "?"
        defer { used[kind, default: 0] += 1 }
        return shades[kind]![used[kind, default: 0]]
    }
}

/// Writes `<metric>.png` and `<metric>.svg` (metric vs FLOPs, one line per run) into `dir` for every metric some
/// run has, and returns a markdown report: final values and parity FLOPs against the first run.
public func compareRuns(_ runs: [RunCurves], metrics: [String], smooth: Int, to dir: URL) throws -> String {
    precondition(!runs.isEmpty, "compareRuns: no runs")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    var report = "# Comparison\n\nBaseline: **\(runs[0].name)**. Curves against training FLOPs"
        + (smooth > 1 ? " (training curves smoothed over \(smooth) points)" : "") + ".\n\n"
    var plotted: [String] = []
    let colours = runColours(runs)
    for metric in metrics {
        let curves = runs.indices.compactMap { i in runs[i].curve(metric).map { (runs[i].name, $0, colours[i]) } }
        guard !curves.isEmpty else { continue }
        // Log FLOPs: budgets of a sweep span decades. Training curves are drawn raw and faint with
        // a centred average over `smooth` points on top; a metric with one value per run (final_*) as dots.
        var plot = LinePlot(title: metric, xLabel: "training FLOPs", logX: true)
        for (name, curve, colour) in curves {
            plot.series.append(Series(name: name, x: curve.map(\.flops), y: curve.map(\.value), colour: colour,
                                      style: curve.count == 1 ? .markers : .line,
                                      smoothing: metric.hasPrefix("eval_") ? 1 : smooth))
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

// MARK: - Scaling fits (the paper's method: final values of runs at several sizes and budgets,
// trend lines in log-log space per family, parity FLOPs read off the lines)

/// value = exp(intercept) · FLOPs^slope, fitted by least squares to (ln FLOPs, ln value).
public struct PowerLawFit: Sendable, Equatable {
    public var intercept: Double
    public var slope: Double
    public var points: Int

    /// The fit of `points` (FLOPs, value); nil with fewer than two positive points or one budget.
    public init?(_ points: [(flops: Double, value: Double)]) {
        let xy = points.filter { $0.flops > 0 && $0.value > 0 }.map { (Foundation.log($0.flops), Foundation.log($0.value)) }
        guard xy.count >= 2 else { return nil }
        let n = Double(xy.count), mx = xy.map(\.0).reduce(0, +) / n, my = xy.map(\.1).reduce(0, +) / n
        let sxx = xy.map { ($0.0 - mx) * ($0.0 - mx) }.reduce(0, +)
        guard sxx > 1e-12 else { return nil }
        slope = xy.map { ($0.0 - mx) * ($0.1 - my) }.reduce(0, +) / sxx
        intercept = my - slope * mx
        self.points = xy.count
    }

    public func value(at flops: Double) -> Double { Foundation.exp(intercept + slope * Foundation.log(flops)) }

    /// The FLOPs at which the line reaches `value`; nil for a flat line or a non-positive value.
    public func flops(toReach value: Double) -> Double? {
        guard value > 0, abs(slope) > 1e-12 else { return nil }
        return Foundation.exp((Foundation.log(value) - intercept) / slope)
    }
}

/// The scaling comparison of one metric: each family's final points and fit, and the parity ratio
/// of a candidate family against the baseline family with a bootstrap interval.
public struct ScalingComparison: Sendable {
    public var metric: String
    public var baseline: (family: String, points: [(flops: Double, value: Double)], fit: PowerLawFit)
    public var candidate: (family: String, points: [(flops: Double, value: Double)], fit: PowerLawFit)
    /// The baseline line's value at the baseline's largest budget: the level both lines are read at.
    public var target: Double
    /// Baseline FLOPs / candidate FLOPs to reach `target` on the lines (> 1: the candidate needs less).
    public var ratio: Double?
    /// The 5th and 95th percentiles of the ratio over bootstrap resamples of each family's points.
    public var interval: (low: Double, high: Double)?

    /// Compares `candidate` with `baseline` on final points (each run's last value of `metric` at
    /// its budget), with `resamples` bootstrap resamples drawn from a fixed seed.
    public init?(metric: String, baseline: (String, [(flops: Double, value: Double)]),
                 candidate: (String, [(flops: Double, value: Double)]), resamples: Int = 1000) {
        guard let fb = PowerLawFit(baseline.1), let fc = PowerLawFit(candidate.1),
              let top = baseline.1.map(\.flops).max() else { return nil }
        self.metric = metric
        self.baseline = (baseline.0, baseline.1, fb)
        self.candidate = (candidate.0, candidate.1, fc)
        target = fb.value(at: top)
        func ratio(_ b: PowerLawFit, _ c: PowerLawFit) -> Double? {
            guard let fb = b.flops(toReach: target), let fc = c.flops(toReach: target), fc > 0 else { return nil }
            return fb / fc
        }
        self.ratio = ratio(fb, fc)
        var rng = SplitMix64(seed: 0x5CA1E, stream: 0, index: 0)
        func resample(_ points: [(flops: Double, value: Double)]) -> [(flops: Double, value: Double)] {
            points.indices.map { _ in points[Int(rng.next() % UInt64(points.count))] }
        }
        var ratios: [Double] = []
        if baseline.1.count >= 3 && candidate.1.count >= 3 {
            for _ in 0..<resamples {
                if let b = PowerLawFit(resample(baseline.1)), let c = PowerLawFit(resample(candidate.1)),
                   let r = ratio(b, c), r.isFinite { ratios.append(r) }
            }
        }
        if ratios.count >= resamples / 2 {
            ratios.sort()
            interval = (ratios[Int(0.05 * Double(ratios.count - 1))], ratios[Int(0.95 * Double(ratios.count - 1))])
        }
    }

    /// Whether the interval holds 1: the data cannot tell which family needs less compute.
    public var isTie: Bool { interval.map { $0.low <= 1 && $0.high >= 1 } ?? false }
}

/// The final value of `metric` of each run (its last logged point) at the run's budget.
public func finalPoints(_ runs: [RunCurves], metric: String) -> [(flops: Double, value: Double)] {
    runs.compactMap { r in r.curve(metric)?.last.map { ($0.flops, $0.value) } }
}

/// Scaling fits of `metrics` over runs grouped by model kind (the first run's kind is the
/// baseline): per metric a plot of every run's final value against its budget with each family's
/// fitted line (`scaling-<metric>.png`, `.svg`, both axes log10), and a markdown section with the
/// fits and the parity ratios with their bootstrap intervals.
public func scalingReport(_ runs: [RunCurves], metrics: [String], to dir: URL) throws -> String {
    precondition(!runs.isEmpty, "scalingReport: no runs")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let families = runs.reduce(into: [String]()) { if !$0.contains($1.kind ?? "?") { $0.append($1.kind ?? "?") } }
    var report = "## Scaling fits\n\nEach run contributes its final value at its budget (every run trains its own full "
        + "schedule); lines are least-squares fits of ln value on ln FLOPs per family. The parity ratio is the baseline "
        + "line's FLOPs / the other line's FLOPs to reach the baseline line's value at the baseline's largest budget "
        + "(> 1: the other family needs less compute), with the 5–95% interval of 1000 bootstrap resamples of the runs "
        + "(three or more per family); *tie* when the interval holds 1. A run whose value is 0 (a score of 0%) cannot enter "
        + "a log-log fit: the runs column then says how many were fitted.\n\n"
    report += "| metric | family | runs | slope | ratio vs \(families[0]) | 90% interval |\n|---|---|---|---|---|---|\n"
    var pictures: [String] = []
    for metric in metrics {
        let points = families.map { f in (f, finalPoints(runs.filter { ($0.kind ?? "?") == f }, metric: metric)) }
        guard points.contains(where: { $0.1.count >= 2 }) else { continue }
        // Log-log, where the fits are straight, unless some value is not positive (a ShapesEval of 0%):
        // then a linear value axis that shows every run, with the fitted power laws drawn as curves.
        let positive = points.allSatisfy { $0.1.allSatisfy { $0.value > 0 } }
        var plot = LinePlot(title: metric + " (final values)", xLabel: "training FLOPs", logX: true, logY: positive)
        for (i, (family, ps)) in points.enumerated() where !ps.isEmpty {
            let colour = Series.palette[i % Series.palette.count]
            let sorted = ps.sorted { $0.flops < $1.flops }
            plot.series.append(Series(name: family, x: sorted.map(\.flops), y: sorted.map(\.value), colour: colour, style: .markers))
            if let fit = PowerLawFit(ps), let lo = sorted.first?.flops, let hi = sorted.last?.flops {
                let xs = (0...24).map { lo * Foundation.pow(hi / lo, Double($0) / 24) }
                plot.series.append(Series(name: "\(family) fit (slope \(String(format: "%.3f", fit.slope)))",
                                          x: xs, y: xs.map(fit.value(at:)), colour: colour, style: .dashed))
            }
        }
        let stem = "scaling-" + metric.replacingOccurrences(of: "/", with: "_")
        try PNG.write(plot.render(), to: dir.appendingPathComponent(stem + ".png").path)
        try atomicWrite(Foundation.Data(plot.svg().utf8), to: dir.appendingPathComponent(stem + ".svg"))
        pictures.append("![\(metric)](\(stem).png)")
        let base = points[0]
        for (family, ps) in points {
            let fit = PowerLawFit(ps)
            var ratio = "–", interval = "–"
            if family != base.0 {
                if !Parity.comparableAcrossKinds(metric) {
                    ratio = "not comparable"
                } else if let s = ScalingComparison(metric: metric, baseline: base, candidate: (family, ps)) {
                    ratio = s.ratio.map { String(format: "%.3g×", $0) } ?? "–"
                    interval = s.interval.map { String(format: "%.3g–%.3g", $0.low, $0.high) + (s.isTie ? " (tie)" : "") }
                        ?? "too few runs"
                }
            }
            let counted = fit.map { $0.points < ps.count ? "\(ps.count) (\($0.points) fitted)" : "\(ps.count)" } ?? "\(ps.count)"
            report += "| \(metric) | \(family) | \(counted) | \(fit.map { String(format: "%.3f", $0.slope) } ?? "–") | \(ratio) | \(interval) |\n"
        }
    }
    report += "\n" + pictures.joined(separator: "\n") + "\n"
    return report
}
