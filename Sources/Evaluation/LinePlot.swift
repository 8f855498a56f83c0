// Line plots rendered straight to an Image/PNG (or written as SVG): axes, ticks with numeric labels, one polyline
// per series with a legend. For loss curves in run folders and recipe comparisons; not a
// charting library (no text shaping, no anti-aliasing).
import Foundation
import Media

/// One curve: points (x, y) in data units and an RGB colour in [0, 1].
public struct Series: Sendable {
    public var name: String
    public var x: [Double]
    public var y: [Double]
    public var colour: (Float, Float, Float)
    /// Draw each point as a square marker and no line between them (e.g. the final values of
    /// separate runs, which are not a curve).
    public var markers: Bool

    public init(name: String, x: [Double], y: [Double], colour: (Float, Float, Float), markers: Bool = false) {
        self.name = name; self.x = x; self.y = y; self.colour = colour; self.markers = markers
    }

    /// Distinct colours for up to 8 series.
    public static let palette: [(Float, Float, Float)] = [
        (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
        (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5),
    ]
}

/// A plot: series on shared axes, rendered at a fixed pixel size.
///
/// ```swift
/// var plot = LinePlot(title: "loss", xLabel: "step")
/// plot.series.append(Series(name: "train", x: steps, y: losses, colour: Series.palette[0]))
/// try PNG.write(plot.render(), to: "loss.png")
/// ```
public struct LinePlot: Sendable {
    public var title: String
    public var xLabel: String
    public var series: [Series] = []
    public var width = 640, height = 400
    /// Plot log10(y) (for losses spanning decades).
    public var logY = false

    public init(title: String, xLabel: String, logY: Bool = false) {
        self.title = title; self.xLabel = xLabel; self.logY = logY
    }

    /// "Nice" tick values (1, 2, 5 × 10^k steps) covering lo…hi.
    public static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = (lo / step).rounded(.up) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// A short label for a tick value (1.5, 200, 3k, 1.2M, 4G, 1e-3).
    public static func label(_ v: Double) -> String {
        let a = abs(v)
        func trim(_ s: String) -> String {
            guard s.contains(".") else { return s }
            var s = s
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s
        }
        if a >= 1e9 { return trim(String(format: "%.1f", v / 1e9)) + "G" }
        if a >= 1e6 { return trim(String(format: "%.1f", v / 1e6)) + "M" }
        if a >= 1e4 { return trim(String(format: "%.1f", v / 1e3)) + "k" }
        if a >= 1 || a == 0 { return trim(String(format: "%.2f", v)) }
        if a >= 0.01 { return trim(String(format: "%.3f", v)) }
        return String(format: "%.0e", v).replacingOccurrences(of: "e-0", with: "e-")
    }

    /// Axis ranges and the data → pixel mapping shared by ``render()`` and ``svg()``.
    struct Frame {
        let left = 70, right = 20, top = 34, bottom = 46
        let pw: Int, ph: Int
        var x0: Double, x1: Double, y0: Double, y1: Double
        let logY: Bool

        init(_ plot: LinePlot) {
            logY = plot.logY
            pw = plot.width - left - right; ph = plot.height - top - bottom
            let pts = plot.series.flatMap { Frame.points($0, logY: plot.logY) }
            let xs = pts.map(\.0), ys = pts.map(\.1)
            (x0, x1, y0, y1) = (xs.min() ?? 0, xs.max() ?? 1, ys.min() ?? 0, ys.max() ?? 1)
            if x1 <= x0 { x1 = x0 + 1 }
            if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
            let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
        }

        /// The finite points of `s` (x, y or log10 y).
        static func points(_ s: Series, logY: Bool) -> [(Double, Double)] {
            zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
                .map { ($0.0, logY ? log10($0.1) : $0.1) }
        }
        func px(_ x: Double) -> Int { left + Int(((x - x0) / (x1 - x0) * Double(pw - 1)).rounded()) }
        func py(_ y: Double) -> Int { top + ph - 1 - Int(((y - y0) / (y1 - y0) * Double(ph - 1)).rounded()) }
        var xTicks: [Double] { LinePlot.ticks(x0, x1) }
        var yTicks: [Double] { LinePlot.ticks(y0, y1) }
        func yLabel(_ t: Double) -> String { LinePlot.label(logY ? pow(10, t) : t) }
    }

    public func render() -> Image {
        var img = Image(width: width, height: height, channels: 3, fill: 1)
        func set(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = (y * width + x) * 3
            img.pixels[i] = c.0; img.pixels[i + 1] = c.1; img.pixels[i + 2] = c.2
        }
        let ink: (Float, Float, Float) = (0.15, 0.15, 0.15), grid: (Float, Float, Float) = (0.9, 0.9, 0.9)
        let f = Frame(self)
        let (left, top, pw, ph) = (f.left, f.top, f.pw, f.ph)

        // Grid, ticks and labels.
        for t in f.xTicks {
            let x = f.px(t)
            for y in top..<(top + ph) { set(x, y, grid) }
            for y in (top + ph)..<(top + ph + 4) { set(x, y, ink) }
            let s = Self.label(t)
            PixelFont.draw(s, x: x - PixelFont.measure(s, scale: 2) / 2, y: top + ph + 8, scale: 2) { set($0, $1, ink) }
        }
        for t in f.yTicks {
            let y = f.py(t)
            for x in left..<(left + pw) { set(x, y, grid) }
            for x in (left - 4)..<left { set(x, y, ink) }
            let s = f.yLabel(t)
            PixelFont.draw(s, x: left - 8 - PixelFont.measure(s, scale: 2), y: y - 5, scale: 2) { set($0, $1, ink) }
        }
        for x in left..<(left + pw) { set(x, top + ph, ink) }
        for y in top..<(top + ph) { set(left, y, ink) }
        PixelFont.draw(title, x: left, y: 10, scale: 2) { set($0, $1, ink) }
        PixelFont.draw(xLabel, x: left + pw - PixelFont.measure(xLabel, scale: 2), y: height - 16, scale: 2) { set($0, $1, ink) }

        // Curves (2-pixel lines, Bresenham) and the legend, right-aligned to its longest name.
        let legendWidth = 30 + (series.map { PixelFont.measure($0.name, scale: 2) }.max() ?? 120)
        for (k, s) in series.enumerated() {
            let p = Frame.points(s, logY: logY).map { (f.px($0.0), f.py($0.1)) }
            if s.markers {
                for (x, y) in p { for dy in -3...3 { for dx in -3...3 { set(x + dx, y + dy, s.colour) } } }
            }
            for (a, b) in zip(p, p.dropFirst()) where !s.markers {
                var (x, y) = a
                let dx = abs(b.0 - x), dy = -abs(b.1 - y), sx = x < b.0 ? 1 : -1, sy = y < b.1 ? 1 : -1
                var err = dx + dy
                while true {
                    set(x, y, s.colour); set(x, y + 1, s.colour)
                    if x == b.0 && y == b.1 { break }
                    let e2 = 2 * err
                    if e2 >= dy { err += dy; x += sx }
                    if e2 <= dx { err += dx; y += sy }
                }
            }
            if p.count == 1 { for d in -2...2 { set(p[0].0 + d, p[0].1, s.colour); set(p[0].0, p[0].1 + d, s.colour) } }
            let ly = top + 8 + k * 14, lx = left + pw - legendWidth
            if s.markers {
                for y in (ly + 2)...(ly + 7) { for x in (lx + 5)...(lx + 10) { set(x, y, s.colour) } }
            } else {
                for x in lx..<(lx + 16) { set(x, ly + 4, s.colour); set(x, ly + 5, s.colour) }
            }
            PixelFont.draw(s.name, x: lx + 22, y: ly, scale: 2) { set($0, $1, ink) }
        }
        return img
    }

    /// The same plot as an SVG document (vector lines and real text, for papers and zooming).
    public func svg() -> String {
        let f = Frame(self)
        let (left, top, pw, ph) = (f.left, f.top, f.pw, f.ph)
        func hex(_ c: (Float, Float, Float)) -> String {
            String(format: "#%02x%02x%02x", Int(c.0 * 255), Int(c.1 * 255), Int(c.2 * 255))
        }
        func escaped(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
        font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        for t in f.xTicks {
            let x = f.px(t)
            out += "<line x1=\"\(x)\" y1=\"\(top)\" x2=\"\(x)\" y2=\"\(top + ph + 4)\" stroke=\"#e6e6e6\"/>"
            out += "<text x=\"\(x)\" y=\"\(top + ph + 18)\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in f.yTicks {
            let y = f.py(t)
            out += "<line x1=\"\(left - 4)\" y1=\"\(y)\" x2=\"\(left + pw)\" y2=\"\(y)\" stroke=\"#e6e6e6\"/>"
            out += "<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(f.yLabel(t))</text>\n"
        }
        out += "<path d=\"M\(left) \(top) V\(top + ph) H\(left + pw)\" fill=\"none\" stroke=\"#262626\"/>\n"
        out += "<text x=\"\(left)\" y=\"22\" font-size=\"14\">\(escaped(title))</text>\n"
        out += "<text x=\"\(left + pw)\" y=\"\(height - 6)\" text-anchor=\"end\">\(escaped(xLabel))</text>\n"
        for (k, s) in series.enumerated() {
            let points = Frame.points(s, logY: logY).map { (f.px($0.0), f.py($0.1)) }
            let c = hex(s.colour)
            if s.markers {
                for (x, y) in points { out += "<rect x=\"\(x - 3)\" y=\"\(y - 3)\" width=\"7\" height=\"7\" fill=\"\(c)\"/>" }
                out += "\n"
            } else {
                out += "<polyline points=\"\(points.map { "\($0.0),\($0.1)" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\"/>\n"
            }
            let ly = top + 8 + k * 14, lx = left + pw - 30 - 7 * (series.map(\.name.count).max() ?? 17)
            out += "<line x1=\"\(lx)\" y1=\"\(ly + 5)\" x2=\"\(lx + 16)\" y2=\"\(ly + 5)\" stroke=\"\(c)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(lx + 22)\" y=\"\(ly + 9)\">\(escaped(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }
}
