// A run's held-out losses kept document by document (`fusion eval --suite losses`), and two such
// reports on the same held-out documents compared kind by kind with paired standard errors. Not
// the scoring (each family's task, Models/ImageText/HeldOutSet.swift).
import Foundation

/// Held-out losses of one run, per kind of target, with each document's loss sum and target count.
public struct HeldOutLossReport: Codable, Sendable, CustomStringConvertible {
    /// One kind of target (`text`, `caption`, `prior`, `markers`, `corpus`): per held-out
    /// document (by index in the shared held-out set, ascending), the sum of its targets' losses
    /// and their count.
    public struct Kind: Codable, Sendable {
        public var name: String
        public var documents: [Int]
        public var sums: [Double]
        public var counts: [Int]
        /// Σ sums / Σ counts (nats per target) and its standard error over documents.
        public var mean: Double
        public var standardError: Double

        public init(name: String, documents: [Int], sums: [Double], counts: [Int]) {
            self.name = name
            self.documents = documents
            self.sums = sums
            self.counts = counts
            (mean, standardError) = RatioMean.estimate(Self.units(sums, counts)) ?? (0, 0)
        }

        /// Each document as a unit of its `RatioMean`.
        var units: [(sum: Double, count: Double)] { Self.units(sums, counts) }
        static func units(_ sums: [Double], _ counts: [Int]) -> [(sum: Double, count: Double)] {
            zip(sums, counts).map { ($0, Double($1)) }
        }
    }

    /// The run folder and checkpoint step scored, and which weights ("ema" or "raw").
    public var run: String
    public var step: Int
    public var weights: String
    public var kinds: [Kind]
    /// The run's eval metrics of the same pass (`loss_text`, `loss_caption`, …, as in metrics.jsonl).
    public var metrics: [String: Double]

    public init(run: String, step: Int, weights: String, kinds: [Kind], metrics: [String: Double]) {
        self.run = run
        self.step = step
        self.weights = weights
        self.kinds = kinds
        self.metrics = metrics
    }

    public var description: String {
        var lines = ["kind        loss (nats/target)  ± s.e.   documents  targets"]
        for k in kinds {
            lines.append(k.name.padding(toLength: 10, withPad: " ", startingAt: 0)
                         + String(format: "  %12.4f        ± %.4f  %9d  %7d", k.mean, k.standardError, k.documents.count,
                                  k.counts.reduce(0, +)))
        }
        return lines.joined(separator: "\n")
    }
}

/// `other` − `baseline` held-out loss per kind both reports score, paired by document: what makes
/// a document hard for both (a long caption, a crowded scene) cancels.
///
/// ```swift
/// let d = try HeldOutLossDifference(baseline: chameleon, other: transfusion)
/// d.kinds.first { $0.name == "text" }?.isTie
/// ```
public struct HeldOutLossDifference: Codable, Sendable, CustomStringConvertible {
    public var kinds: [PairedDifference]

    public enum Mismatch: Error, CustomStringConvertible {
        case nothingShared, documents(String, Int, Int)
        public var description: String {
            switch self {
            case .nothingShared:
                return "the reports share no kind of held-out target"
            case .documents(let kind, let a, let b):
                return "\(kind): the reports scored different held-out documents (\(a) and \(b) of them, or other ones): "
                    + "score runs with the same eval.documents (and data.text) on the shared held-out set"
            }
        }
    }

    /// Pairs the kinds both reports score; each kind's documents must be the same in both, or this
    /// throws naming the kind.
    public init(baseline: HeldOutLossReport, other: HeldOutLossReport) throws {
        kinds = try baseline.kinds.compactMap { a in
            guard let b = other.kinds.first(where: { $0.name == a.name }) else { return nil }
            guard a.documents == b.documents else { throw Mismatch.documents(a.name, a.documents.count, b.documents.count) }
            guard let d = RatioMean.difference(baseline: a.units, other: b.units) else { return nil }
            return PairedDifference(name: a.name, baseline: d.baseline, other: d.other, difference: d.difference,
                                    standardError: d.standardError, items: a.documents.count)
        }
        if kinds.isEmpty { throw Mismatch.nothingShared }
    }

    public var description: String {
        PairedDifference.table(kinds, figure: "kind", items: "documents", percent: false)
    }
}
