// Where everything of a LinePlot goes, from text measured with cairo: the axes' ranges and ticks
// (as many as fit without their labels touching), the margins those labels need, the legend's place
// (a corner of the plot no curve passes through, else below the plot in columns) and every text's
// box. The canvases (PlotCanvas.swift) only draw what this decides.
import CCairo
import Foundation

/// A rectangle in canvas coordinates (y down).
public struct Box: Sendable, Equatable {
    public var x: Double, y: Double, width: Double, height: Double
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.x = x; self.y = y; self.width = width; self.height = height
    }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
    public var midX: Double { x + width / 2 }
    public var midY: Double { y + height / 2 }
    public func intersects(_ o: Box) -> Bool { x < o.maxX && o.x < maxX && y < o.maxY && o.y < maxY }
    /// Whether `o` lies wholly inside (edges included).
    public func contains(_ o: Box) -> Bool { o.x >= x && o.y >= y && o.maxX <= maxX && o.maxY <= maxY }
    func contains(_ px: Double, _ py: Double) -> Bool { px >= x && px <= maxX && py >= y && py <= maxY }
    /// Grown by `d` on every side (shrunk for negative `d`).
    func outset(_ d: Double) -> Box { Box(x: x - d, y: y - d, width: width + 2 * d, height: height + 2 * d) }
}

/// Measures text with cairo's toy font API in the face the plots are drawn with.
final class TextMeter {
    /// DejaVu Sans (fonts-dejavu-core) when installed; fontconfig substitutes the system sans
    /// otherwise, and the measurements follow whatever face it picked.
    static let family = "DejaVu Sans"
    /// For SVG viewers: DejaVu Sans or the faces with its metrics (it is derived from Bitstream Vera,
    /// whose widths Verdana's are close to), so the measured layout holds there too.
    static let svgFontFamily = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, sans-serif"

    private let surface: OpaquePointer
    let context: OpaquePointer

    init() {
        surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1)
        context = cairo_create(surface)
    }
    deinit { cairo_destroy(context); cairo_surface_destroy(surface) }

    static func select(_ cr: OpaquePointer, size: Double, bold: Bool) {
        cairo_select_font_face(cr, family, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL)
        cairo_set_font_size(cr, size)
    }

    /// The advance width of `s`.
    func width(_ s: String, size: Double, bold: Bool = false) -> Double {
        Self.select(context, size: size, bold: bold)
        var e = cairo_text_extents_t()
        cairo_text_extents(context, s, &e)
        return e.x_advance
    }

    /// The face's ascent and descent at `size` (the same for every string, so that baselines line up).
    func extents(size: Double, bold: Bool = false) -> (ascent: Double, descent: Double) {
        Self.select(context, size: size, bold: bold)
        var e = cairo_font_extents_t()
        cairo_font_extents(context, &e)
        return (e.ascent, e.descent)
    }

    func lineHeight(size: Double) -> Double { let e = extents(size: size); return e.ascent + e.descent }

    /// The width of a tick label: its base, then the exponent at ``PlotText/exponentScale``.
    func width(_ label: TickLabel, size: Double) -> Double {
        width(label.base, size: size) + (label.exponent.map { 1 + width($0, size: size * PlotText.exponentScale) } ?? 0)
    }

    /// `s` shortened in the middle with an ellipsis until it is at most `maxWidth` wide (run names
    /// differ at both ends: family at the start, budget and seed at the end).
    func fit(_ s: String, size: Double, maxWidth: Double) -> String {
        guard width(s, size: size) > maxWidth else { return s }
        var chars = Array(s)
        while chars.count > 1 {
            chars.remove(at: chars.count / 2)
            let half = chars.count / 2
            let t = String(chars[..<half]) + "…" + String(chars[half...])
            if width(t, size: size) <= maxWidth { return t }
        }
        return "…"
    }
}

/// A piece of text placed on the canvas: its baseline anchor point, style and measured box.
public struct PlotText: Sendable {
    public enum Anchor: Sendable { case start, middle, end }
    /// The exponent of a tick label is drawn at this fraction of the size, raised by `exponentRise` of it.
    static let exponentScale = 0.7, exponentRise = 0.4

    public var string: String
    public var exponent: String?
    /// The anchor point on the baseline (for rotated text, the point the text turns about).
    public var x: Double, y: Double
    public var size: Double
    public var bold: Bool
    public var anchor: Anchor
    /// Turned a quarter anticlockwise (the y-axis label), reading upwards.
    public var rotated: Bool
    /// The measured advance width of the whole text (exponent included).
    public var width: Double
    /// The measured box on the canvas.
    public var box: Box

    init(_ string: String, exponent: String? = nil, x: Double, y: Double, size: Double, bold: Bool = false,
         anchor: Anchor = .start, rotated: Bool = false, meter: TextMeter) {
        self.string = string; self.exponent = exponent; self.x = x; self.y = y; self.size = size; self.bold = bold
        self.anchor = anchor; self.rotated = rotated
        width = meter.width(string, size: size, bold: bold)
            + (exponent.map { 1 + meter.width($0, size: size * Self.exponentScale) } ?? 0)
        let e = meter.extents(size: size, bold: bold)
        let ascent = exponent == nil ? e.ascent
            : max(e.ascent, size * Self.exponentRise + meter.extents(size: size * Self.exponentScale).ascent)
        let along = anchor == .start ? 0 : anchor == .middle ? -width / 2 : -width
        box = rotated
            ? Box(x: x - ascent, y: y - along - width, width: ascent + e.descent, height: width)
            : Box(x: x + along, y: y - ascent, width: width, height: ascent + e.descent)
    }

    /// Where the text starts along its baseline: `x` for unrotated text, measured from the anchor.
    var startOffset: Double { anchor == .start ? 0 : anchor == .middle ? -width / 2 : -width }
}

extension LinePlot {
    /// The placed plot: canvas size, plot area, axes, series in canvas coordinates, legend and texts.
    public struct Layout: Sendable {
        public let width: Int, height: Int
        /// The data area; axes run along its left and bottom edges.
        public let plot: Box
        public let x: Axis, y: Axis
        /// Per series (in ``LinePlot/series`` order), the points in canvas coordinates: `raw` as
        /// given (finite and, on log axes, positive), `main` the curve drawn in full colour (the
        /// smoothed one when the series is smoothed, otherwise the raw one).
        public let curves: [(raw: [(Double, Double)], main: [(Double, Double)])]
        public let legend: Legend?
        /// Title, axis labels and tick labels (the legend's texts are in `legend`).
        public let texts: [PlotText]

        /// Every text on the canvas, the legend's included.
        public var allTexts: [PlotText] { texts + (legend?.entries.map(\.text) ?? []) }
    }

    /// One axis: its range in plot coordinates (log10 of the data on a log axis) and ticks.
    public struct Axis: Sendable {
        public let log: Bool
        public let lo: Double, hi: Double
        /// Labelled ticks, with a grid line each.
        public let ticks: [Tick]
        /// Unlabelled grid lines in plot coordinates: 2…9 × 10^k on a log axis labelled at powers.
        public let minor: [Double]

        /// `v` in plot coordinates; nil where a log axis cannot show it.
        public func coordinate(_ v: Double) -> Double? {
            guard v.isFinite else { return nil }
            return log ? (v > 0 ? log10(v) : nil) : v
        }
        /// The fraction 0…1 of the axis at plot coordinate `c`.
        func fraction(_ c: Double) -> Double { (c - lo) / (hi - lo) }
    }

    public struct Tick: Sendable {
        /// In data units (10¹² on a log FLOPs axis).
        public let value: Double
        /// In plot coordinates (12 there).
        public let coordinate: Double
        public let label: TickLabel
    }

    public struct Legend: Sendable {
        public enum Placement: Sendable, Equatable { case topRight, topLeft, bottomLeft, bottomRight, below }
        public let placement: Placement
        public let box: Box
        public let entries: [Entry]

        public struct Entry: Sendable {
            public let series: Int
            /// The swatch's centre line: from `swatch.0` to `swatch.1` at height `swatch.2`.
            public let swatch: (Double, Double, Double)
            public let text: PlotText
        }
    }
}

// Sizes in pixels: title, axis labels, tick labels, legend; gaps.
private enum Metrics {
    static let title = 15.0, label = 13.0, tick = 11.5, legend = 12.0
    static let pad = 10.0, tickLength = 5.0, tickGap = 3.0
    static let swatch = 24.0, swatchGap = 6.0, legendPad = 7.0, columnGap = 22.0
}

extension LinePlot.Layout {
    init(_ p: LinePlot, meter m: TextMeter) {
        typealias M = Metrics
        // Points in plot coordinates, and the ranges they span.
        let xAxisLog = p.logX, yAxisLog = p.logY
        func coord(_ v: Double, _ log: Bool) -> Double? { v.isFinite ? (log ? (v > 0 ? Foundation.log10(v) : nil) : v) : nil }
        let data: [(raw: [(Double, Double)], main: [(Double, Double)])] = p.series.map { s in
            let finite = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }
            func mapped(_ pts: [(Double, Double)]) -> [(Double, Double)] {
                pts.compactMap { pt in coord(pt.0, xAxisLog).flatMap { x in coord(pt.1, yAxisLog).map { (x, $0) } } }
            }
            let raw = mapped(finite)
            guard s.smoothing > 1, s.style != .markers else { return (raw, raw) }
            return (raw, mapped(Array(zip(finite.map(\.0), LinePlot.smooth(finite.map(\.1), window: s.smoothing)))))
        }
        func range(_ values: [Double], log: Bool, pad: Double) -> (Double, Double) {
            guard var lo = values.min(), var hi = values.max() else { return (0, 1) }
            if hi - lo < 1e-12 * max(1, abs(lo)) { lo -= log ? 0.5 : max(0.5, abs(lo) * 0.05); hi += log ? 0.5 : max(0.5, abs(hi) * 0.05) }
            let d = (hi - lo) * pad
            return (lo - d, hi + d)
        }
        let markers = p.series.contains { $0.style == .markers }
        let (x0, x1) = range(data.flatMap { $0.raw.map(\.0) }, log: xAxisLog, pad: markers ? 0.04 : 0)
        let (y0, y1) = range(data.flatMap { $0.raw.map(\.1) }, log: yAxisLog, pad: 0.05)

        // Fixed bands: title above; tick labels and the x label below.
        let W = Double(p.width)
        var H = Double(p.height)
        let tickHeight = m.lineHeight(size: M.tick), labelHeight = m.lineHeight(size: M.label)
        let top = M.pad + (p.title.isEmpty ? 0 : m.lineHeight(size: M.title) + 8)
        let xBand = M.tickLength + M.tickGap + tickHeight + (p.xLabel.isEmpty ? 0 : 6 + labelHeight)
        let yLabelBand = p.yLabel.isEmpty ? 0.0 : labelHeight + 6

        /// The plot area and axes for a canvas of W × H with `below` pixels under the x band kept for a legend.
        func frame(below: Double) -> (Box, LinePlot.Axis, LinePlot.Axis) {
            let plotHeight = max(40, H - top - xBand - below - M.pad)
            let yAxis = LinePlot.Axis.fit(y0, y1, log: yAxisLog, length: plotHeight, vertical: true, meter: m)
            let yTickWidth = yAxis.ticks.map { m.width($0.label, size: M.tick) }.max() ?? 0
            var left = M.pad + yLabelBand + yTickWidth + M.tickLength + M.tickGap, right = M.pad * 1.5
            var xAxis = LinePlot.Axis.fit(x0, x1, log: xAxisLog, length: max(40, W - left - right), vertical: false, meter: m)
            // Room for the halves of the end x labels that hang past their ticks, refitting once or twice.
            for _ in 0..<2 {
                func edge(_ t: LinePlot.Tick?, _ side: Double) -> Double {
                    guard let t else { return left }
                    return left + xAxis.fraction(t.coordinate) * (W - left - right) + side * m.width(t.label, size: M.tick) / 2
                }
                let under = 2 - edge(xAxis.ticks.first, -1), over = edge(xAxis.ticks.last, 1) - (W - 2)
                guard under > 0 || over > 0 else { break }
                left += max(0, under); right += max(0, over)
                xAxis = LinePlot.Axis.fit(x0, x1, log: xAxisLog, length: max(40, W - left - right), vertical: false, meter: m)
            }
            return (Box(x: left, y: top, width: max(40, W - left - right), height: plotHeight), xAxis, yAxis)
        }
        func canvas(_ plot: Box, _ xa: LinePlot.Axis, _ ya: LinePlot.Axis, _ pts: [(Double, Double)]) -> [(Double, Double)] {
            pts.map { (plot.x + xa.fraction($0.0) * plot.width, plot.maxY - ya.fraction($0.1) * plot.height) }
        }

        // The legend: inside a free corner of the plot if one fits, else below in columns.
        let named = p.series.indices.filter { !p.series[$0].name.isEmpty }
        let legendExtents = m.extents(size: M.legend)
        let row = legendExtents.ascent + legendExtents.descent + 4
        var (plot, xAxis, yAxis) = frame(below: 0)
        var legend: LinePlot.Legend? = nil
        if !named.isEmpty {
            let widths = named.map { m.width(p.series[$0].name, size: M.legend) }
            let entryWidth = M.swatch + M.swatchGap + (widths.max() ?? 0)
            let boxWidth = entryWidth + 2 * M.legendPad, boxHeight = Double(named.count) * row + 2 * M.legendPad - 4
            /// Canvas points the legend must not cover: each drawn curve sampled every few pixels, markers with their radius.
            func obstacles(_ plot: Box, _ xa: LinePlot.Axis, _ ya: LinePlot.Axis) -> [(Double, Double, Double)] {
                zip(p.series, data).flatMap { s, d -> [(Double, Double, Double)] in
                    let pts = canvas(plot, xa, ya, d.main)
                    if s.style == .markers || pts.count == 1 { return pts.map { ($0.0, $0.1, 6) } }
                    return zip(pts, pts.dropFirst()).flatMap { a, b -> [(Double, Double, Double)] in
                        let n = max(1, Int((hypot(b.0 - a.0, b.1 - a.1) / 3).rounded(.up)))
                        return (0..<n).map { i in let t = Double(i) / Double(n); return (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1), 2) }
                    } + pts.suffix(1).map { ($0.0, $0.1, 2) }
                }
            }
            if boxWidth <= plot.width * 0.6 && boxHeight <= plot.height * 0.6 {
                let points = obstacles(plot, xAxis, yAxis), inset = 8.0
                let corners: [(LinePlot.Legend.Placement, Box)] = [
                    (.topRight, Box(x: plot.maxX - inset - boxWidth, y: plot.y + inset, width: boxWidth, height: boxHeight)),
                    (.topLeft, Box(x: plot.x + inset, y: plot.y + inset, width: boxWidth, height: boxHeight)),
                    (.bottomLeft, Box(x: plot.x + inset, y: plot.maxY - inset - boxHeight, width: boxWidth, height: boxHeight)),
                    (.bottomRight, Box(x: plot.maxX - inset - boxWidth, y: plot.maxY - inset - boxHeight, width: boxWidth, height: boxHeight)),
                ]
                if let free = corners.first(where: { _, box in !points.contains { box.outset($0.2 + 2).contains($0.0, $0.1) } }) {
                    let entries = named.enumerated().map { k, i in
                        Self.entry(i, p.series[i].name, x: free.1.x + M.legendPad, top: free.1.y + M.legendPad + Double(k) * row,
                                   ascent: legendExtents.ascent, meter: m)
                    }
                    legend = LinePlot.Legend(placement: free.0, box: free.1, entries: entries)
                }
            }
            if legend == nil {
                // Below the plot, column by column (a family's runs, listed together, stay in one column),
                // as many columns as fit; a name too long for half the width is shortened so that two can.
                let available = W - 2 * M.pad
                let maxText = (named.count > 1 ? (available - M.columnGap) / 2 : available) - M.swatch - M.swatchGap
                let names = named.map { m.fit(p.series[$0].name, size: M.legend, maxWidth: maxText) }
                let entryWidths = names.map { M.swatch + M.swatchGap + m.width($0, size: M.legend) }
                func columnWidths(rows: Int) -> [Double] {
                    stride(from: 0, to: named.count, by: rows).map { entryWidths[$0..<min($0 + rows, named.count)].max()! }
                }
                var rows = named.count
                for r in 1...named.count {
                    let widths = columnWidths(rows: r)
                    if widths.reduce(0, +) + Double(widths.count - 1) * M.columnGap <= available { rows = r; break }
                }
                let widths = columnWidths(rows: rows)
                let height = Double(rows) * row + 8
                // Keep at least half the requested height for the plot: grow the canvas rather than squash it.
                let minimum = Double(p.height) / 2
                if H - top - xBand - height - M.pad < minimum { H = (top + xBand + height + M.pad + minimum).rounded(.up) }
                (plot, xAxis, yAxis) = frame(below: height)
                let total = widths.reduce(0, +) + Double(widths.count - 1) * M.columnGap
                let x = max(M.pad, (W - total) / 2), y = plot.maxY + xBand + 8
                let starts = widths.indices.map { c in x + widths[..<c].reduce(0, +) + Double(c) * M.columnGap }
                let entries = named.indices.map { k in
                    Self.entry(named[k], names[k], x: starts[k / rows], top: y + Double(k % rows) * row,
                               ascent: legendExtents.ascent, meter: m)
                }
                legend = LinePlot.Legend(placement: .below, box: Box(x: x, y: y, width: total, height: Double(rows) * row - 4),
                                         entries: entries)
            }
        }

        // Texts: title centred over the plot (kept on the canvas), axis labels, tick labels.
        var texts: [PlotText] = []
        if !p.title.isEmpty {
            let t = PlotText(p.title, x: 0, y: M.pad + m.extents(size: M.title, bold: true).ascent, size: M.title, bold: true, meter: m)
            var placed = t
            placed.x = min(max(M.pad, plot.midX - t.width / 2), max(M.pad, W - M.pad - t.width))
            placed.box.x = placed.x
            texts.append(placed)
        }
        let tickAscent = m.extents(size: M.tick).ascent, tickDescent = m.extents(size: M.tick).descent
        for t in xAxis.ticks {
            texts.append(PlotText(t.label.base, exponent: t.label.exponent, x: plot.x + xAxis.fraction(t.coordinate) * plot.width,
                                  y: plot.maxY + M.tickLength + M.tickGap + tickAscent, size: M.tick, anchor: .middle, meter: m))
        }
        for t in yAxis.ticks {
            texts.append(PlotText(t.label.base, exponent: t.label.exponent, x: plot.x - M.tickLength - M.tickGap,
                                  y: plot.maxY - yAxis.fraction(t.coordinate) * plot.height + (tickAscent - tickDescent) / 2,
                                  size: M.tick, anchor: .end, meter: m))
        }
        if !p.xLabel.isEmpty {
            texts.append(PlotText(p.xLabel, x: plot.midX, y: plot.maxY + xBand - m.extents(size: M.label).descent, size: M.label,
                                  anchor: .middle, meter: m))
        }
        if !p.yLabel.isEmpty {
            texts.append(PlotText(p.yLabel, x: M.pad + m.extents(size: M.label).ascent, y: plot.midY, size: M.label,
                                  anchor: .middle, rotated: true, meter: m))
        }

        self.width = Int(W); self.height = Int(H)
        self.plot = plot; self.x = xAxis; self.y = yAxis
        self.curves = data.map { (canvas(plot, xAxis, yAxis, $0.raw), canvas(plot, xAxis, yAxis, $0.main)) }
        self.legend = legend
        self.texts = texts
    }

    private static func entry(_ series: Int, _ name: String, x: Double, top: Double, ascent: Double,
                              meter: TextMeter) -> LinePlot.Legend.Entry {
        let baseline = top + ascent
        let text = PlotText(name, x: x + Metrics.swatch + Metrics.swatchGap, y: baseline, size: Metrics.legend, meter: meter)
        return LinePlot.Legend.Entry(series: series, swatch: (x, x + Metrics.swatch, text.box.midY), text: text)
    }
}

extension LinePlot.Axis {
    /// The axis over lo…hi (plot coordinates) with the densest ticks whose labels fit `length` pixels
    /// without crowding (horizontal labels 12 pixels apart, vertical ones a blank line apart).
    static func fit(_ lo: Double, _ hi: Double, log: Bool, length: Double, vertical: Bool, meter: TextMeter) -> Self {
        let size = Metrics.tick, lineHeight = meter.lineHeight(size: size)
        func fits(_ ticks: [LinePlot.Tick]) -> Bool {
            let extent = ticks.map { vertical ? lineHeight : meter.width($0.label, size: size) }
            return zip(ticks.indices, ticks.indices.dropFirst()).allSatisfy { i, j in
                (ticks[j].coordinate - ticks[i].coordinate) / (hi - lo) * length >= (extent[i] + extent[j]) / 2 + (vertical ? lineHeight : 12)
            }
        }
        let candidates = log ? logCandidates(lo, hi) : linearCandidates(lo, hi, length: length, vertical: vertical, log: false)
        let chosen = candidates.first(where: fits) ?? candidates.last ?? []
        // Unlabelled minor grid lines only where the labels are powers of ten (or 1, 2, 5 of a decade).
        var minor: [Double] = []
        if log, chosen.count >= 2, chosen.allSatisfy({ t in [1.0, 2, 5].contains { abs(t.value / pow(10, floor(t.coordinate + 1e-9)) - $0) < 1e-6 } }) {
            for k in Int(floor(lo))...Int(ceil(hi)) {
                for mantissa in 2...9 {
                    let c = Foundation.log10(Double(mantissa)) + Double(k)
                    if c > lo, c < hi, !chosen.contains(where: { abs($0.coordinate - c) < 1e-9 }) { minor.append(c) }
                }
            }
        }
        return Self(log: log, lo: lo, hi: hi, ticks: chosen, minor: minor)
    }

    /// Nice linear ticks, densest first: 1, 2, 5 × 10^k steps, and each of those sets thinned to every
    /// second or third tick (2 × 10^-4 and 6 × 10^-4 where 2, 4, 6, 8 × 10^-4 crowd and a step of
    /// 5 × 10^-4 leaves one tick). On a log axis `lo`/`hi` are log10 and the ticks sit at their values' logs.
    static func linearCandidates(_ lo: Double, _ hi: Double, length: Double, vertical: Bool, log: Bool) -> [[LinePlot.Tick]] {
        let (a, b) = log ? (pow(10, lo), pow(10, hi)) : (lo, hi)
        let most = max(3, min(14, Int(length / (vertical ? 20 : 25))))
        var sets: [[Double]] = []
        for count in stride(from: most, through: 1, by: -1) {
            let values = LinePlot.ticks(a, b, count: count).filter { $0 >= a - 1e-12 * abs(a) && $0 <= b + 1e-12 * abs(b) && (!log || $0 > 0) }
            for every in 1...3 where values.count >= 2 * every || every == 1 {
                let thinned = stride(from: 0, to: values.count, by: every).map { values[$0] }
                if !thinned.isEmpty && !sets.contains(thinned) { sets.append(thinned) }
            }
        }
        // Densest first; the sort is stable, so among equal counts the finer step comes first.
        return sets.enumerated().sorted { ($0.element.count, -$0.offset) > ($1.element.count, -$1.offset) }.map { _, values in
            let labels = LinePlot.labels(values, step: values.count > 1 ? values[1] - values[0] : abs(values[0]))
            return zip(values, labels).map { LinePlot.Tick(value: $0, coordinate: log ? Foundation.log10($0) : $0, label: $1) }
        }
    }

    /// Log-axis ticks, densest first: 1, 2, 5 × 10^k where under three powers are in range, then every
    /// power of ten, every second, third, …; with under two powers in range, nice linear values
    /// (placed at their logs), and only then two 1-2-5 values.
    static func logCandidates(_ lo: Double, _ hi: Double) -> [[LinePlot.Tick]] {
        func ticks(_ coordinates: [Double]) -> [LinePlot.Tick] {
            let values = coordinates.map { pow(10, $0) }
            return zip(coordinates, LinePlot.labels(values, step: nil)).map { LinePlot.Tick(value: pow(10, $0), coordinate: $0, label: $1) }
        }
        let powers = Array(stride(from: ceil(lo - 1e-9), through: floor(hi + 1e-9), by: 1))
        var dense: [Double] = []
        if powers.count < 3 {
            for k in Int(floor(lo))...Int(ceil(hi)) {
                for mantissa in [1.0, 2, 5] {
                    let c = Foundation.log10(mantissa) + Double(k)
                    if c >= lo - 1e-9 && c <= hi + 1e-9 { dense.append(c) }
                }
            }
        }
        var out: [[LinePlot.Tick]] = []
        if dense.count >= 3 { out.append(ticks(dense)) }
        if powers.count >= 2 {
            for every in 1...max(1, powers.count - 1) {
                let picked = stride(from: 0, to: powers.count, by: every).map { powers[$0] }
                if picked.count >= 2 { out.append(ticks(picked)) }
            }
        } else {
            out += linearCandidates(lo, hi, length: 1e9, vertical: false, log: true).filter { $0.count >= 2 }
            if dense.count == 2 { out.append(ticks(dense)) }
        }
        return out.isEmpty ? [ticks(powers)] : out
    }
}
