// A figure that is a ratio of two sums over independent units (Σ right / Σ counted over captions,
// Σ loss / Σ targets over documents, kept / untouched objects over edits): its value, its standard
// error, and the paired difference of two such figures on the same units. Not what the units are.
import Foundation

/// Ratio means over units and their errors, by the delta method with the unit as the draw.
///
/// ```swift
/// RatioMean.estimate([(1, 2), (1, 1), (0, 1)])          // (0.5, 0.2165)
/// RatioMean.difference(baseline: a, other: b)           // paired by unit index
/// ```
public enum RatioMean {
    /// Σ sum / Σ count over the units and its standard error, the ratio estimator's:
    /// √(Σ (sumᵢ − R·countᵢ)² / (n (n − 1))) / mean count. With a count of one a unit it is the
    /// usual error of a mean. Nil when nothing is counted; a single unit has error 0.
    public static func estimate(_ units: [(sum: Double, count: Double)]) -> (value: Double, standardError: Double)? {
        let sum = units.reduce(0) { $0 + $1.sum }, count = units.reduce(0) { $0 + $1.count }
        guard count > 0 else { return nil }
        let r = sum / count, n = Double(units.count)
        guard units.count > 1 else { return (r, 0) }
        let spread = units.map { ($0.sum - r * $0.count) * ($0.sum - r * $0.count) }.reduce(0, +)
        return (r, (spread / (n * (n - 1))).squareRoot() / (count / n))
    }

    /// `other`'s ratio − `baseline`'s on the same units (paired by index) and its standard error:
    /// each ratio linearised unit by unit, zᵢ = (sumᵢᵇ − Rᵇ countᵢᵇ) / c̄ᵇ − (sumᵢᵃ − Rᵃ countᵢᵃ) / c̄ᵃ,
    /// error √(Σ zᵢ² / (n (n − 1))). What makes a unit hard for both cancels. Nil when either side
    /// counts nothing.
    public static func difference(baseline a: [(sum: Double, count: Double)], other b: [(sum: Double, count: Double)])
        -> (baseline: Double, other: Double, difference: Double, standardError: Double)? {
        precondition(a.count == b.count, "RatioMean.difference: \(a.count) units against \(b.count)")
        guard let (ra, _) = estimate(a), let (rb, _) = estimate(b) else { return nil }
        let n = Double(a.count)
        let ca = a.reduce(0) { $0 + $1.count } / n, cb = b.reduce(0) { $0 + $1.count } / n
        let z = zip(a, b).map { x, y in (y.sum - rb * y.count) / cb - (x.sum - ra * x.count) / ca }
        let se = a.count < 2 ? 0 : (z.map { $0 * $0 }.reduce(0, +) / (n * (n - 1))).squareRoot()
        return (ra, rb, rb - ra, se)
    }
}
