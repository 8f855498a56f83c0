// Two caption reports on the same scenes compared caption by caption: each figure's difference
// with a paired standard error (what makes a scene hard to caption cancels) and whether it is a
// tie (inside two standard errors). Not captioning or scoring (CaptionAccuracy.swift).
import Foundation

/// `other` − `baseline` on the scenes both reports captioned, figure by figure.
///
/// ```swift
/// let d = try CaptionAccuracyDifference(baseline: chameleon, other: transfusion)
/// d.figures.first { $0.name == "exact" }?.isTie
/// ```
public struct CaptionAccuracyDifference: Codable, Sendable, CustomStringConvertible {
    /// The figures both reports state (size, position and background only where both do).
    public var figures: [PairedDifference]

    public enum Mismatch: Error, CustomStringConvertible {
        case noVerdicts, captions(Int, Int), scene(Int)
        public var description: String {
            switch self {
            case .noVerdicts:
                return "a report keeps no per-caption verdicts (written before they were kept): score it again with fusion eval --suite captions --json"
            case .captions(let a, let b):
                return "the reports captioned different numbers of scenes (\(a) and \(b)): run both with the same --eval-seed and --count"
            case .scene(let i):
                return "scene \(i + 1) differs between the reports: run both with the same --eval-seed and --count"
            }
        }
    }

    /// Pairs the reports' captions in order; they must be of the same scenes, or this throws
    /// naming the first that differs.
    ///
    /// Each figure is a ratio Σ right / Σ counted, so its difference is linearised caption by
    /// caption (`RatioMean.difference`); for 0/1 figures this is the paired error of a mean difference.
    public init(baseline: CaptionAccuracyReport, other: CaptionAccuracyReport) throws {
        let a = baseline.results, b = other.results
        guard !a.isEmpty, !b.isEmpty else { throw Mismatch.noVerdicts }
        guard a.count == b.count else { throw Mismatch.captions(a.count, b.count) }
        if let i = a.indices.first(where: { a[$0].scene != b[$0].scene }) { throw Mismatch.scene(i) }
        figures = CaptionFigure.allCases.compactMap { figure in
            guard let d = RatioMean.difference(baseline: a.map { $0.part(figure) }, other: b.map { $0.part(figure) }) else { return nil }
            return PairedDifference(name: figure.rawValue, baseline: d.baseline, other: d.other, difference: d.difference,
                                    standardError: d.standardError, items: a.count)
        }
    }

    public var description: String {
        PairedDifference.table(figures, figure: "figure", items: "captions", percent: true)
    }
}
