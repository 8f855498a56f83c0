// Two ShapesEval reports on the same prompts compared prompt by prompt: the difference per
// category and overall with a paired standard error (each prompt's difficulty cancels), and
// whether it is a tie (inside two standard errors). Not sampling or scoring (ShapesEval.swift).
import Foundation

/// `other` − `baseline` on the prompts both reports scored, in points of ShapesEval.
///
/// ```swift
/// let d = try ShapesEvalDifference(baseline: linear, other: unet)
/// d.overall.difference      // e.g. 0.125: 12.5 points better
/// d.overall.isTie           // |difference| < 2 standard errors
/// ```
public struct ShapesEvalDifference: Codable, Sendable, CustomStringConvertible {
    public struct Row: Codable, Sendable {
        /// A category's raw value, or "overall".
        public var name: String
        public var baseline: Double
        public var other: Double
        public var difference: Double
        /// The standard error of `difference` from the per-prompt differences.
        public var standardError: Double
        public var prompts: Int

        public var isTie: Bool { abs(difference) < 2 * standardError }
    }

    public var categories: [Row]
    /// The mean of the categories' differences (as ShapesEval's overall is the mean of its
    /// categories), with √(Σ SE²) / categories.
    public var overall: Row

    public enum Mismatch: Error, CustomStringConvertible {
        case prompts(Int, Int), prompt(Int, String, String)
        public var description: String {
            switch self {
            case .prompts(let a, let b):
                return "the reports scored different prompt sets (\(a) and \(b) prompts): run both with the same --eval-seed and --prompts-per-category"
            case .prompt(let i, let a, let b):
                return "prompt \(i + 1) differs (\"\(a)\" against \"\(b)\"): run both with the same --eval-seed and --prompts-per-category"
            }
        }
    }

    /// Pairs the reports' prompts in order; they must be the same prompts (same eval seed and
    /// prompts per category), or this throws naming the first that differs.
    public init(baseline: ShapesEvalReport, other: ShapesEvalReport) throws {
        guard baseline.results.count == other.results.count else {
            throw Mismatch.prompts(baseline.results.count, other.results.count)
        }
        for (i, (a, b)) in zip(baseline.results, other.results).enumerated() where a.text != b.text || a.category != b.category {
            throw Mismatch.prompt(i, a.text, b.text)
        }
        categories = ShapesEvalCategory.allCases.compactMap { c in
            let pairs = zip(baseline.results, other.results).filter { $0.0.category == c }
            guard !pairs.isEmpty else { return nil }
            let a = pairs.map(\.0.score), b = pairs.map(\.1.score), d = zip(b, a).map(-)
            let n = Double(d.count), mean = d.reduce(0, +) / n
            let variance = d.count < 2 ? 0 : d.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
            return Row(name: c.rawValue, baseline: a.reduce(0, +) / n, other: b.reduce(0, +) / n, difference: mean,
                       standardError: (variance / n).squareRoot(), prompts: d.count)
        }
        let k = Double(max(categories.count, 1))
        overall = Row(name: "overall", baseline: categories.map(\.baseline).reduce(0, +) / k,
                      other: categories.map(\.other).reduce(0, +) / k,
                      difference: categories.map(\.difference).reduce(0, +) / k,
                      standardError: categories.map { $0.standardError * $0.standardError }.reduce(0, +).squareRoot() / k,
                      prompts: baseline.results.count)
    }

    public var description: String {
        var lines = ["category          baseline   other   difference  ± s.e.  prompts"]
        for row in categories + [overall] {
            lines.append(row.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + String(format: "  %6.1f%%  %6.1f%%  %+8.1f    ± %4.1f  %7d", 100 * row.baseline, 100 * row.other,
                                  100 * row.difference, 100 * row.standardError, row.prompts)
                         + (row.isTie ? "  tie" : ""))
        }
        return lines.joined(separator: "\n")
    }
}
