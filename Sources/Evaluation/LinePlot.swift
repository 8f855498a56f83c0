// Line plots rendered straight to an Image/PNG: axes, ticks with numeric labels, one polyline
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

    public init(name: String, x: [Double], y: [Double], colour: (Float, Float, Float)) {
        self.name = name; self.x = x; self.y = y; self.colour = colour
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

    public func render() -> Image {
        var img = Image(width: width, height: height, channels: 3, fill: 1)
        func set(_ x: Int, _ y: Int, _ c: (Float, Float, Float)) {
            guard x >= 0, y >= 0, x < width, y < height else { return }
            let i = (y * width + x) * 3
            img.pixels[i] = c.0; img.pixels[i + 1] = c.1; img.pixels[i + 2] = c.2
        }
        let ink: (Float, Float, Float) = (0.15, 0.15, 0.15), grid: (Float, Float, Float) = (0.9, 0.9, 0.9)
        let (left, right, top, bottom) = (70, 20, 34, 46)
        let pw = width - left - right, ph = height - top - bottom
        let pts = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) } }
        let ys = pts.map { logY ? log10($0.1) : $0.1 }, xs = pts.map(\.0)
        var (x0, x1) = (xs.min() ?? 0, xs.max() ?? 1), (y0, y1) = (ys.min() ?? 0, ys.max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
        func px(_ x: Double) -> Int { left + Int(((x - x0) / (x1 - x0) * Double(pw - 1)).rounded()) }
        func py(_ y: Double) -> Int { top + ph - 1 - Int(((y - y0) / (y1 - y0) * Double(ph - 1)).rounded()) }

        // Grid, ticks and labels.
        for t in Self.ticks(x0, x1) {
            let x = px(t)
            for y in top..<(top + ph) { set(x, y, grid) }
            for y in (top + ph)..<(top + ph + 4) { set(x, y, ink) }
            let s = Self.label(t)
            PixelFont.draw(s, x: x - PixelFont.measure(s, scale: 2) / 2, y: top + ph + 8, scale: 2) { set($0, $1, ink) }
        }
        for t in Self.ticks(y0, y1) {
            let y = py(t)
            for x in left..<(left + pw) { set(x, y, grid) }
            for x in (left - 4)..<left { set(x, y, ink) }
            let s = Self.label(logY ? pow(10, t) : t)
            PixelFont.draw(s, x: left - 8 - PixelFont.measure(s, scale: 2), y: y - 5, scale: 2) { set($0, $1, ink) }
        }
        for x in left..<(left + pw) { set(x, top + ph, ink) }
        for y in top..<(top + ph) { set(left, y, ink) }
        PixelFont.draw(title, x: left, y: 10, scale: 2) { set($0, $1, ink) }
        PixelFont.draw(xLabel, x: left + pw - PixelFont.measure(xLabel, scale: 2), y: height - 16, scale: 2) { set($0, $1, ink) }

        // Curves (2-pixel lines, Bresenham) and the legend.
        for (k, s) in series.enumerated() {
            let p = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
                .map { (px($0.0), py(logY ? log10($0.1) : $0.1)) }
            for (a, b) in zip(p, p.dropFirst()) {
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
            let ly = top + 8 + k * 14, lx = left + pw - 150
            for x in lx..<(lx + 16) { set(x, ly + 4, s.colour); set(x, ly + 5, s.colour) }
            PixelFont.draw(s.name, x: lx + 22, y: ly, scale: 2) { set($0, $1, ink) }
        }
        return img
    }
}
