// Run comparison: parity FLOPs on synthetic curves with known answers, smoothing, and the report
// and plots written from two runs' metrics files.
import Foundation
import Testing
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
    }

    @Test func higherIsBetterMetricsAndInterpolation() {
        #expect(!Parity.lowerIsBetter("eval_shapes_eval") && Parity.lowerIsBetter("eval_loss_text"))
        #expect(Parity.comparableAcrossKinds("eval_loss_text") && !Parity.comparableAcrossKinds("eval_loss_image"))
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
}
