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
    public var categories: [PairedDifference]
    /// The mean of the categories' differences (as ShapesEval's overall is the mean of its
    /// categories), with √(Σ SE²) / categories.
    public var overall: PairedDifference

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
        // Same prompts, so the same categories in the same order; each report keeps its own scores.
        categories = zip(baseline.categories, other.categories).map { base, next in
            let pairs = zip(baseline.results, other.results).filter { $0.0.category == base.category }
            let (difference, se) = meanAndStandardError(pairs.map { $0.1.score - $0.0.score })
            return PairedDifference(name: base.category.rawValue, baseline: base.score, other: next.score, difference: difference,
                                    standardError: se, items: pairs.count)
        }
        let (difference, se) = meanOfCategories(categories.map { ($0.difference, $0.standardError) })
        overall = PairedDifference(name: "overall", baseline: baseline.overall, other: other.overall, difference: difference,
                                   standardError: se, items: baseline.results.count)
    }

    public var description: String {
        PairedDifference.table(categories + [overall], figure: "category", items: "prompts", percent: true)
    }
}
