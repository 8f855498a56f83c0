// Line plots for loss curves in run folders and recipe comparisons: titles, axis labels, ticks,
// log axes, smoothed curves over their faint raw points, markers, dashed fitted lines and a legend,
// rendered to an Image (then PNG) or written as SVG.
//
// Why cairo: it is a small, long-maintained C library that every distribution packages
// (libcairo2-dev), with anti-aliased strokes and real font text (DejaVu Sans through fontconfig)
// that it can also measure, so tick labels and the legend are placed from measured extents rather
// than guessed widths. PNG and SVG come from one drawing routine (PlotCanvas.swift): the cairo
// canvas rasterises it, the SVG canvas writes the same calls as elements. Cairo's own SVG surface
// would turn every glyph into an outline, leaving no text in the file to search, copy or edit.
// The layout (PlotLayout.swift) is computed once and shared by both.
import Foundation
import Media

/// One curve: points (x, y) in data units and an RGB colour in [0, 1].
public struct Series: Sendable {
    public enum Style: Sendable, Equatable {
        /// A polyline through the points.
        case line
        /// A dot at each point and nothing between them (e.g. the final values of separate runs,
        /// which are not a curve).
        case markers
        /// A dashed polyline: a fitted line, drawn over the points it fits.
        case dashed
    }

    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var colour: (Float, Float, Float)
    public var style: Style
    /// A centred moving average over this many points (1: none) for noisy training curves. The
    /// smoothed curve is drawn over the raw one, which stays visible faintly beneath, so the trend
    /// reads without hiding the noise. A centred window does not lag the data as a trailing one does.
    public var smoothing: Int

    public init(name: String, x: [Double], y: [Double], colour: (Float, Float, Float), style: Style = .line,
                smoothing: Int = 1) {
        self.name = name; self.x = x; self.y = y; self.colour = colour; self.style = style; self.smoothing = smoothing
    }

    /// Distinct colours for up to 8 series (matplotlib's tab10 without its grey and olive).
    public static let palette: [(Float, Float, Float)] = [
        (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
        (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.09, 0.75, 0.81),
    ]

    /// `count` shades of `colour`, dark to light: runs of one family told apart within its hue, so
    /// that a plot of many runs still reads family by colour.
    public static func shades(of colour: (Float, Float, Float), count: Int) -> [(Float, Float, Float)] {
        guard count > 1 else { return Array(repeating: colour, count: max(count, 0)) }
        return (0..<count).map { i in
            let t = Float(-0.45 + 0.9 * Double(i) / Double(count - 1))          // −: towards black, +: towards white
            func f(_ c: Float) -> Float { t < 0 ? c * (1 + t) : c + (1 - c) * t }
            return (f(colour.0), f(colour.1), f(colour.2))
        }
    }
}

/// A tick label: plain text ("0.75", "25k") or a mantissa times a power of ten, drawn with a
/// superscript exponent ("10¹²", "2×10¹²"). `description` is the plain-text form ("1e12", "2e12").
public struct TickLabel: Sendable, Equatable, CustomStringConvertible {
    /// The text before any exponent: "0.75", "10", "2×10".
    public var base: String
    /// The exponent of ten drawn raised after `base`, if any.
    public var exponent: String?

    public init(_ base: String, exponent: String? = nil) { self.base = base; self.exponent = exponent }

    public var description: String {
        guard let exponent else { return base }
        return base == "10" ? "1e" + exponent : base.replacingOccurrences(of: "×10", with: "e") + exponent
    }
}

/// A plot: series on shared axes, rendered at a fixed pixel size.
///
/// ```swift
/// var plot = LinePlot(title: "loss", xLabel: "step", logY: true)
/// plot.series.append(Series(name: "train", x: steps, y: losses, colour: Series.palette[0], smoothing: 25))
/// try PNG.write(plot.render(), to: "loss.png")
/// ```
public struct LinePlot: Sendable {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    /// The canvas in pixels (PNG) or user units (SVG). A legend too large for a free corner of the
    /// plot goes below it in columns; when its rows would leave the plot less than half the height,
    /// the canvas grows taller instead (``Layout/height``).
    public var width = 720, height = 450
    /// Logarithmic axes (ticks at powers of ten): FLOPs spanning decades, losses falling by decades.
    /// Points that are not positive are left out on a log axis.
    public var logX = false, logY = false

    public init(title: String, xLabel: String, yLabel: String = "", logX: Bool = false, logY: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.logX = logX; self.logY = logY
    }

    /// "Nice" tick values (1, 2, 5 × 10^k steps) covering lo…hi, about `count` of them.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, count > 0 else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (lo / step).rounded(.up) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// How an axis writes its numbers: as they are (0.75, 1500), in thousands (25k), or as a mantissa
    /// times a power of ten (10¹², 2×10¹²; FLOPs).
    enum LabelStyle { case plain, thousands, scientific }

    /// The style for numbers of magnitude `a`: scientific from a million up or under 0.001, thousands from 10⁴.
    static func style(_ a: Double) -> LabelStyle { a >= 1e6 || (a > 0 && a < 1e-3) ? .scientific : a >= 1e4 ? .thousands : .plain }

    /// The labels of an axis's tick values, all in one style (no "5000" beside "10k"): the style of the
    /// largest magnitude, or scientific when a log axis reaches below 0.001.
    static func labels(_ values: [Double], step: Double?) -> [TickLabel] {
        let magnitudes = values.map(abs).filter { $0 > 0 }
        var style = Self.style(magnitudes.max() ?? 0)
        if step == nil, let least = magnitudes.min(), least < 1e-3 { style = .scientific }
        return values.map { label($0, step: step, style: style) }
    }

    /// The label of tick value `v` (in the style its magnitude calls for; an axis's labels share
    /// one, see ``labels(_:step:)``). Given the ticks' `step`, plain labels of an axis get the same
    /// number of decimals (0.70, 0.75, 0.80); otherwise trailing zeros are dropped.
    public static func label(_ v: Double, step: Double? = nil) -> TickLabel { label(v, step: step, style: style(abs(v))) }

    static func label(_ v: Double, step: Double?, style: LabelStyle) -> TickLabel {
        let a = abs(v)
        guard a > 0, v.isFinite else { return TickLabel(v.isFinite ? "0" : "\(v)") }
        /// Digits after the point that make `step` (in the same unit as the value) show.
        func decimals(_ step: Double?, fallback: Int) -> Int {
            guard let step, step > 0 else { return fallback }
            return max(0, min(4, Int(-floor(log10(step) + 1e-9))))
        }
        func formatted(_ x: Double, _ digits: Int, trim: Bool) -> String {
            var s = String(format: "%.\(digits)f", x)
            if trim && s.contains(".") {
                while s.hasSuffix("0") { s.removeLast() }
                if s.hasSuffix(".") { s.removeLast() }
            }
            return s == "-0" ? "0" : s
        }
        switch style {
        case .scientific:
            // Each value with its own exponent and no trailing zeros (5×10¹⁴ beside 10¹⁵), to the step's precision.
            var k = floor(log10(a)), m = v / pow(10, k)
            if abs(m) >= 9.995 { k += 1; m /= 10 }                       // 9.999e11 rounds to 10¹²
            let mantissa = formatted(m, decimals(step.map { $0 / pow(10, k) }, fallback: 2), trim: true)
            return TickLabel(mantissa == "1" ? "10" : mantissa == "-1" ? "-10" : mantissa + "×10", exponent: String(Int(k)))
        case .thousands:
            return TickLabel(formatted(v / 1e3, decimals(step.map { $0 / 1e3 }, fallback: 1), trim: step == nil) + "k")
        case .plain:
            return TickLabel(formatted(v, decimals(step, fallback: a >= 1 ? 2 : 3), trim: step == nil))
        }
    }

    /// `y` smoothed by a centred window of `window` points (1 or fewer: unchanged): at each point, a
    /// straight line fitted by least squares to the points within the window, read at that point. In
    /// the middle that is the window's mean. Near the ends the window keeps its width, shifted inwards,
    /// and the line keeps a falling loss from being pulled towards later values (as a plain average
    /// would) and the last points from jumping with the noise (as a window shrunk to them would).
    public static func smooth(_ y: [Double], window: Int) -> [Double] {
        let half = window / 2, n = y.count
        guard half > 0, n > 2 else { return y }
        // Prefix sums of y and j·y give each window's sums in O(1).
        var p0 = [0.0], p1 = [0.0]
        for (j, v) in y.enumerated() { p0.append(p0[j] + v); p1.append(p1[j] + Double(j) * v) }
        /// Σ d² for d = 1…k.
        func squares(_ k: Int) -> Double { Double(k * (k + 1) * (2 * k + 1)) / 6 }
        return (0..<n).map { i in
            let l = max(0, min(i - half, n - 1 - 2 * half)), r = min(n - 1, l + 2 * half), m = Double(r - l + 1)
            let a = l - i, b = r - i                                  // offsets d = j − i, a ≤ 0 ≤ b
            let sd = Double((a + b) * (b - a + 1)) / 2, sdd = squares(-a) + squares(b)
            let sy = p0[r + 1] - p0[l], sdy = (p1[r + 1] - p1[l]) - Double(i) * sy
            let det = m * sdd - sd * sd
            return det > 0 ? (sy * sdd - sd * sdy) / det : sy / m
        }
    }

    /// Where everything goes, with text measured in the face the plot is drawn with.
    public func layout() -> Layout { Layout(self, meter: TextMeter()) }

    /// The plot as an RGB image of ``Layout/width`` × ``Layout/height`` pixels (the requested
    /// size unless a long legend needed more height).
    public func render() -> Image {
        let l = layout()
        let canvas = CairoCanvas(width: l.width, height: l.height)
        draw(l, on: canvas)
        return canvas.image()
    }

    /// The same plot as an SVG document: paths for the series, text elements for every label.
    public func svg() -> String {
        let l = layout()
        let canvas = SVGCanvas(width: l.width, height: l.height, fontFamily: TextMeter.svgFontFamily)
        draw(l, on: canvas)
        return canvas.document()
    }
}
