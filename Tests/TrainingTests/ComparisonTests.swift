// Run comparison: parity FLOPs on synthetic curves with known answers, smoothing, and the report
// and plots written from two runs' metrics files.
import Foundation
import Testing
@testable import Models
@testable import Training

@Suite struct ComparisonTests {
    @Test func parityFlopsOfPowerLawCurves() {
        // loss(F) = 10·F^−0.5 for the baseline; the candidate reaches each loss with 4× less compute:
        // loss(F) = 10·(4F)^−0.5. Parity ratio 4 exactly (up to interpolation between log points).
        let flops = (0...40).map { pow(10, 9 + Double($0) / 10) }
        let baseline: Curve = flops.map { ($0, 10 * pow($0, -0.5)) }
        let candidate: Curve = flops.map { ($0, 10 * pow(4 * $0, -0.5)) }
        let p = Parity.compare(baseline: baseline, candidate: candidate, lowerIsBetter: true)!
        #expect(p.baselineFlops == 1e13 && abs(p.baselineBest - 10 / 1e13.squareRoot()) < 1e-12)
        #expect(abs(p.ratio! - 4) < 0.05, "ratio \(p.ratio!)")
        // The other way round the candidate never reaches the baseline's best.
        #expect(Parity.compare(baseline: candidate, candidate: baseline, lowerIsBetter: true)!.candidateFlops == nil)
        // A score that never rose above 0 is nothing to reach.
        #expect(Parity.compare(baseline: [(1e9, 0), (2e9, 0)], candidate: [(1e9, 0.5)], lowerIsBetter: false) == nil)
    }

    @Test func higherIsBetterMetricsAndInterpolation() {
        #expect(!Parity.lowerIsBetter("eval_shapes_eval") && Parity.lowerIsBetter("eval_loss_text"))
        #expect(Parity.comparableAcrossKinds("eval_loss_text") && !Parity.comparableAcrossKinds("eval_loss_image"))
        #expect(!Parity.comparableAcrossKinds("eval_loss_audio") && !Parity.comparableAcrossKinds("eval_loss_markers")
                && !Parity.comparableAcrossKinds("eval_loss_image_se") && Parity.comparableAcrossKinds("eval_loss_caption"))
        let curve: Curve = [(0, 0.1), (100, 0.3), (200, 0.5)]
        #expect(Parity.flopsToReach(curve, target: 0.4, lowerIsBetter: false) == 150)
        #expect(Parity.flopsToReach(curve, target: 0.6, lowerIsBetter: false) == nil)
        #expect(smoothed([(0, 1), (1, 3), (2, 5), (3, 7)], window: 2).map(\.value) == [1, 2, 4, 6])
        #expect(Parity.value(curve, at: 150) == 0.4 && Parity.value(curve, at: 100) == 0.3)
        #expect(Parity.value(curve, at: 0) == 0.1 && Parity.value(curve, at: 250) == nil)
    }

    @Test func reportAndPlotsFromRunFolders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-compare-\(UUID().uuidString)")
        for (name, scale) in [("base", 1.0), ("fast", 2.0)] {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var lines: [String] = []
            for step in 1...20 {
                let f = Double(step) * 1e9
                lines.append("{\"step\":\(step),\"flops\":\(f),\"loss\":\(5 / (scale * Double(step)))}")
                if step % 5 == 0 {
                    lines.append("{\"step\":\(step),\"flops\":\(f),\"kind\":\"eval\",\"eval_loss_text\":\(4 / (scale * Double(step)))}")
                }
            }
            try lines.joined(separator: "\n").write(to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        }
        let runs = try ["base", "fast"].map { try RunCurves(run: root.appendingPathComponent($0)) }
        let out = root.appendingPathComponent("out")
        let report = try compareRuns(runs, metrics: ["loss", "eval_loss_text"], smooth: 1, to: out)
        #expect(report.contains("| eval_loss_text | 0.2 | 2e+10 | fast | 1e+10 | 2.00× |"), "\(report)")
        // At the common budget (2e10 FLOPs) the fast run's values are half the baseline's.
        #expect(report.contains("| eval_loss_text | 0.2 | 0.1 |") && report.contains("| loss | 0.25 | 0.125 |"), "\(report)")
        for file in ["loss.png", "loss.svg", "eval_loss_text.png", "eval_loss_text.svg", "report.md"] {
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(file).path), "\(file)")
        }
    }

    /// Differences inside two standard errors of the difference read as ties in the matched-compute
    /// table; values carry their standard errors.
    @Test func differencesInsideTwoStandardErrorsAreTies() throws {
        let flops: [Double] = [1e9, 2e9]
        func run(_ name: String, _ values: [Double], se: Double) -> RunCurves {
            RunCurves(name: name, train: [:], eval: ["eval_shapes_eval": zip(flops, values).map { ($0, $1) },
                                                     "eval_shapes_eval_se": flops.map { ($0, se) }], kind: "transfusion")
        }
        #expect(Parity.tie(0.50, 0.03, 0.55, 0.03) && !Parity.tie(0.50, 0.01, 0.55, 0.01))
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-ties-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let close = try compareRuns([run("a", [0.3, 0.50], se: 0.03), run("b", [0.3, 0.55], se: 0.03)],
                                    metrics: ["eval_shapes_eval"], smooth: 1, to: out)
        #expect(close.contains("| eval_shapes_eval | 0.5 ± 0.03 | 0.55 ± 0.03 (tie) |"), "\(close)")
        let far = try compareRuns([run("a", [0.3, 0.50], se: 0.01), run("b", [0.3, 0.55], se: 0.01)],
                                  metrics: ["eval_shapes_eval"], smooth: 1, to: out)
        #expect(far.contains("| eval_shapes_eval | 0.5 ± 0.01 | 0.55 ± 0.01 |"), "\(far)")
    }

    /// The held-out tally's standard error treats documents as the draws: two documents of
    /// losses (1, 1) and (3, 3, 3, 3) give mean 14/6 and √(2·((2 − 2·14/6)² + (12 − 4·14/6)²)) / 6.
    @Test func heldOutStandardErrorsAreOverDocuments() {
        var tally = HeldOutTally()
        for (doc, losses) in [(0, [1.0, 1.0]), (1, [3.0, 3.0, 3.0, 3.0])] {
            for l in losses { tally.add("text", mean: l, count: 1, document: doc) }
        }
        let m = 14.0 / 6
        #expect(abs(tally.mean("text")! - m) < 1e-12)
        let expected = (2 * ((2 - 2 * m) * (2 - 2 * m) + (12 - 4 * m) * (12 - 4 * m))).squareRoot() / 6
        #expect(abs(tally.standardError("text")! - expected) < 1e-12)
        #expect(tally.metrics["loss_text_se"] == tally.standardError("text") && tally.standardError("image") == nil)
    }

    /// Log-log fits recover a power law; the parity ratio of a family that reaches each value with
    /// 4× less compute is 4, its bootstrap interval holds 4 and not 1; two families on the same
    /// line (with noise) tie.
    @Test func scalingFitsAndParityRatiosWithIntervals() throws {
        let budgets = [1e12, 3e12, 1e13, 3e13, 1e14, 3e14]
        let exact = PowerLawFit(budgets.map { ($0, 50 * pow($0, -0.2)) })!
        #expect(abs(exact.slope + 0.2) < 1e-9 && abs(exact.value(at: 1e13) - 50 * pow(1e13, -0.2)) < 1e-9)
        #expect(abs(exact.flops(toReach: exact.value(at: 2e13))! / 2e13 - 1) < 1e-9)
        #expect(PowerLawFit([(1e12, 1)]) == nil && PowerLawFit([(1e12, 1), (1e12, 2)]) == nil)
        // ±1% deterministic noise.
        func noisy(_ scale: Double, _ i: Int) -> Double { 1 + 0.01 * sin(Double(i) * 2.3 + scale) }
        let baseline = budgets.enumerated().map { i, f in (f, 50 * pow(f, -0.2) * noisy(1, i)) }
        let faster = budgets.enumerated().map { i, f in (f, 50 * pow(4 * f, -0.2) * noisy(2, i)) }
        let s = try #require(ScalingComparison(metric: "eval_loss_text", baseline: ("chameleon", baseline), candidate: ("transfusion", faster)))
        #expect(abs(s.ratio! / 4 - 1) < 0.15, "ratio \(s.ratio!)")
        let interval = try #require(s.interval)
        #expect(interval.low < s.ratio! && s.ratio! < interval.high && interval.low > 1 && !s.isTie, "\(interval)")
        let same = budgets.enumerated().map { i, f in (f, 50 * pow(f, -0.2) * noisy(3, i)) }
        let tie = try #require(ScalingComparison(metric: "eval_loss_text", baseline: ("chameleon", baseline), candidate: ("other", same)))
        #expect(tie.isTie, "same line: \(String(describing: tie.interval))")

        // The report section and plot from run curves grouped by kind.
        let runs = baseline.enumerated().map { i, p in RunCurves(name: "c\(i)", train: [:], eval: ["eval_loss_text": [(p.0 / 2, 9), p]], kind: "chameleon") }
            + faster.enumerated().map { i, p in RunCurves(name: "t\(i)", train: [:], eval: ["eval_loss_text": [p]], kind: "transfusion") }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-scaling-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let report = try scalingReport(runs, metrics: ["eval_loss_text", "eval_loss_image"], to: out)
        #expect(report.contains("| eval_loss_text | transfusion | 6 | ") && report.contains(String(format: "%.3g×", s.ratio!)), "\(report)")
        // A score of 0 cannot enter the log-log fit, and the report says how many runs were fitted.
        let scored = runs.enumerated().map { i, r in
            RunCurves(name: r.name, train: [:], eval: ["final_shapes": [(r.budget, i % 6 == 0 ? 0 : 0.01 * Double(i % 6))]], kind: r.kind)
        }
        let scores = try scalingReport(scored, metrics: ["final_shapes"], to: out)
        #expect(scores.contains("| final_shapes | chameleon | 6 (5 fitted) | ") && scores.contains("| final_shapes | transfusion | 6 (5 fitted) | "),
                "\(scores)")
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("scaling-eval_loss_text.png").path))
    }

    /// Reports of `fusion eval --json RUN/evals/NAME.json` join a run's curves as final values at
    /// its budget (`final_NAME`, `final_NAME_se`), so image scores can be fitted like losses.
    @Test func finalEvaluationsInARunFolderAreFinalPoints() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-finals-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("evals"), withIntermediateDirectories: true)
        try "{\"step\":1,\"flops\":1e9,\"loss\":2}\n{\"step\":2,\"flops\":2e9,\"loss\":1}\n".write(
            to: dir.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        try "{\"overall\": 0.25, \"standardError\": 0.02, \"categories\": []}".write(
            to: dir.appendingPathComponent("evals/shapes.json"), atomically: true, encoding: .utf8)
        try "{\"fd\": 3.5, \"images\": 10, \"realVsReal\": 0.1, \"standardError\": 0.4}".write(
            to: dir.appendingPathComponent("evals/fd.json"), atomically: true, encoding: .utf8)
        try "{\"captions\": 4, \"exact\": 0.75, \"standardErrors\": {\"exact\": 0.25, \"colour\": 0.1}}".write(
            to: dir.appendingPathComponent("evals/captions.json"), atomically: true, encoding: .utf8)
        try "{\"kinds\": [], \"metrics\": {}, \"run\": \"r\", \"step\": 2, \"weights\": \"raw\"}".write(
            to: dir.appendingPathComponent("evals/losses.json"), atomically: true, encoding: .utf8)
        let run = try RunCurves(run: dir)
        #expect(run.curve("final_shapes")?.map(\.flops) == [2e9] && run.curve("final_shapes")?.map(\.value) == [0.25])
        #expect(run.curve("final_shapes_se")?.first?.value == 0.02 && run.curve("final_fd")?.first?.value == 3.5)
        #expect(run.curve("final_fd_se")?.first?.value == 0.4)
        #expect(!Parity.lowerIsBetter("final_shapes") && Parity.lowerIsBetter("final_fd"))
        // A caption report's exact rate, with its error; it goes up, as its loss goes down.
        #expect(run.curve("final_captions")?.first?.value == 0.75 && run.curve("final_captions_se")?.first?.value == 0.25)
        #expect(!Parity.lowerIsBetter("final_captions") && Parity.lowerIsBetter("eval_loss_caption"))
        #expect(run.curve("final_losses") == nil, "a held-out loss report is not a final point")
    }
}
