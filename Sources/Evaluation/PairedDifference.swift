// One row of a paired comparison (a ShapesEval category, a caption figure, a kind of held-out
// loss) and the table `fusion eval-compare` prints of such rows. Not the pairing itself
// (PairedShapesEval.swift, PairedCaptionAccuracy.swift, HeldOutLosses.swift).
import Foundation

/// `other` − `baseline` for one figure measured on the same items (prompts, scenes, documents).
public struct PairedDifference: Codable, Sendable {
    /// The figure: a ShapesEval category or "overall", a `CaptionFigure`, a held-out loss kind.
    public var name: String
    public var baseline: Double
    public var other: Double
    public var difference: Double
    /// The standard error of `difference` from the per-item differences.
    public var standardError: Double
    /// The items paired (prompts, captions or documents).
    public var items: Int

    public init(name: String, baseline: Double, other: Double, difference: Double, standardError: Double, items: Int) {
        self.name = name
        self.baseline = baseline
        self.other = other
        self.difference = difference
        self.standardError = standardError
        self.items = items
    }

    /// Inside two standard errors, or no difference at all.
    public var isTie: Bool { abs(difference) < 2 * standardError || difference == 0 }

    /// The rows as a table headed `figure` and `items`: percentages and points when `percent`,
    /// else raw values to four places; ties marked.
    public static func table(_ rows: [PairedDifference], figure: String, items: String, percent: Bool) -> String {
        let scale = percent ? 100.0 : 1.0
        let value = percent ? "%7.1f%%" : "%8.4f", change = percent ? "%+9.1f" : "%+9.4f", error = percent ? "± %5.1f" : "± %.4f"
        var lines = [figure.padding(toLength: 16, withPad: " ", startingAt: 0) + "  baseline     other  difference   ± s.e.  " + items]
        for row in rows {
            lines.append(row.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + "  " + String(format: value, scale * row.baseline) + "  " + String(format: value, scale * row.other)
                         + "  " + String(format: change, scale * row.difference) + "  " + String(format: error, scale * row.standardError)
                         + "  " + String(format: "%*d", items.count, row.items) + (row.isTie ? "  tie" : ""))
        }
        return lines.joined(separator: "\n")
    }
}
