// Drawing a laid-out LinePlot: one routine (`LinePlot.draw`) over a small canvas interface with two
// implementations, cairo on an image surface (anti-aliased pixels for PNG) and an SVG writer (the
// same strokes as paths, the same texts as text elements).
import CCairo
import Foundation
import Media

typealias RGB = (Float, Float, Float)

/// What the plot drawing needs from a backend. Coordinates are canvas pixels, y down.
protocol PlotCanvas: AnyObject {
    func fill(_ box: Box, _ colour: RGB, alpha: Double)
    func stroke(_ box: Box, _ colour: RGB, width: Double)
    /// An open polyline; `dash` is on/off lengths (empty: solid).
    func polyline(_ points: [(Double, Double)], _ colour: RGB, alpha: Double, width: Double, dash: [Double])
    /// A filled circle with a thin edge (a marker).
    func dot(_ x: Double, _ y: Double, radius: Double, fill: RGB, edge: RGB)
    func text(_ t: PlotText, _ colour: RGB)
    /// Drawing between `clip` and `unclip` shows only inside `box`.
    func clip(_ box: Box)
    func unclip()
    /// Groups what is drawn for one series (named in SVG; nothing in pixels).
    func beginSeries(_ name: String)
    func endSeries()
}

extension LinePlot {
    static let ink: RGB = (0.15, 0.15, 0.15), grid: RGB = (0.88, 0.88, 0.88), minorGrid: RGB = (0.95, 0.95, 0.95)
    static let lineWidth = 2.0, markerRadius = 4.5

    func draw(_ l: Layout, on c: PlotCanvas) {
        let p = l.plot
        c.fill(Box(x: 0, y: 0, width: Double(l.width), height: Double(l.height)), (1, 1, 1), alpha: 1)
        // 1-pixel lines on pixel centres, so that grid and axes stay crisp in the PNG.
        func crisp(_ v: Double) -> Double { v.rounded(.down) + 0.5 }
        let xs = l.x.ticks.map { crisp(p.x + l.x.fraction($0.coordinate) * p.width) }
        let ys = l.y.ticks.map { crisp(p.maxY - l.y.fraction($0.coordinate) * p.height) }
        for c0 in l.x.minor { let x = crisp(p.x + l.x.fraction(c0) * p.width); c.polyline([(x, p.y), (x, p.maxY)], Self.minorGrid, alpha: 1, width: 1, dash: []) }
        for c0 in l.y.minor { let y = crisp(p.maxY - l.y.fraction(c0) * p.height); c.polyline([(p.x, y), (p.maxX, y)], Self.minorGrid, alpha: 1, width: 1, dash: []) }
        for x in xs { c.polyline([(x, p.y), (x, p.maxY)], Self.grid, alpha: 1, width: 1, dash: []) }
        for y in ys { c.polyline([(p.x, y), (p.maxX, y)], Self.grid, alpha: 1, width: 1, dash: []) }
        let left = crisp(p.x) - 1, bottom = crisp(p.maxY)
        for x in xs { c.polyline([(x, bottom), (x, bottom + 5)], Self.ink, alpha: 1, width: 1, dash: []) }
        for y in ys { c.polyline([(left - 5, y), (left, y)], Self.ink, alpha: 1, width: 1, dash: []) }
        c.polyline([(left, p.y), (left, bottom), (p.maxX, bottom)], Self.ink, alpha: 1, width: 1, dash: [])

        // Series: faint raw curves under smoothed ones first, then lines, then markers on top.
        c.clip(p.outset(Self.markerRadius + 1))
        for i in series.indices.filter({ series[$0].style != .markers }) + series.indices.filter({ series[$0].style == .markers }) {
            let s = series[i], curve = l.curves[i]
            c.beginSeries(s.name)
            switch s.style {
            case .markers:
                for (x, y) in curve.main { c.dot(x, y, radius: Self.markerRadius, fill: s.colour, edge: (1, 1, 1)) }
            case .line, .dashed:
                if s.smoothing > 1 && curve.raw.count > 1 {
                    c.polyline(curve.raw, s.colour, alpha: 0.25, width: 1, dash: [])
                }
                if curve.main.count == 1 {
                    c.dot(curve.main[0].0, curve.main[0].1, radius: Self.lineWidth + 1, fill: s.colour, edge: s.colour)
                } else {
                    c.polyline(curve.main, s.colour, alpha: 1, width: s.style == .dashed ? 1.6 : Self.lineWidth,
                               dash: s.style == .dashed ? [7, 4] : [])
                }
            }
            c.endSeries()
        }
        c.unclip()

        for t in l.texts { c.text(t, Self.ink) }
        if let legend = l.legend {
            if legend.placement != .below {
                c.fill(legend.box, (1, 1, 1), alpha: 0.85)
                c.stroke(Box(x: crisp(legend.box.x), y: crisp(legend.box.y), width: legend.box.width.rounded(), height: legend.box.height.rounded()),
                         Self.grid, width: 1)
            }
            for e in legend.entries {
                let s = series[e.series], (x0, x1, y) = e.swatch
                switch s.style {
                case .markers: c.dot((x0 + x1) / 2, y, radius: Self.markerRadius, fill: s.colour, edge: (1, 1, 1))
                case .line: c.polyline([(x0, y), (x1, y)], s.colour, alpha: 1, width: Self.lineWidth, dash: [])
                case .dashed: c.polyline([(x0, y), (x1, y)], s.colour, alpha: 1, width: 1.6, dash: [7, 4])
                }
                c.text(e.text, Self.ink)
            }
        }
    }
}

/// Cairo on an RGB image surface: anti-aliased strokes, fills and text.
final class CairoCanvas: PlotCanvas {
    private let surface: OpaquePointer, cr: OpaquePointer
    let width: Int, height: Int

    init(width: Int, height: Int) {
        self.width = width; self.height = height
        surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, Int32(width), Int32(height))
        cr = cairo_create(surface)
        cairo_set_antialias(cr, CAIRO_ANTIALIAS_GOOD)
    }
    deinit { cairo_destroy(cr); cairo_surface_destroy(surface) }

    private func colour(_ c: RGB, _ alpha: Double = 1) { cairo_set_source_rgba(cr, Double(c.0), Double(c.1), Double(c.2), alpha) }

    func fill(_ box: Box, _ c: RGB, alpha: Double) {
        colour(c, alpha); cairo_rectangle(cr, box.x, box.y, box.width, box.height); cairo_fill(cr)
    }
    func stroke(_ box: Box, _ c: RGB, width: Double) {
        colour(c); cairo_set_line_width(cr, width); cairo_set_dash(cr, nil, 0, 0)
        cairo_rectangle(cr, box.x, box.y, box.width, box.height); cairo_stroke(cr)
    }
    func polyline(_ points: [(Double, Double)], _ c: RGB, alpha: Double, width: Double, dash: [Double]) {
        guard let first = points.first else { return }
        colour(c, alpha); cairo_set_line_width(cr, width)
        cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND); cairo_set_line_cap(cr, dash.isEmpty && width > 1 ? CAIRO_LINE_CAP_ROUND : CAIRO_LINE_CAP_BUTT)
        dash.withUnsafeBufferPointer { cairo_set_dash(cr, $0.baseAddress, Int32($0.count), 0) }
        cairo_move_to(cr, first.0, first.1)
        for (x, y) in points.dropFirst() { cairo_line_to(cr, x, y) }
        cairo_stroke(cr)
    }
    func dot(_ x: Double, _ y: Double, radius: Double, fill: RGB, edge: RGB) {
        cairo_new_sub_path(cr)
        cairo_arc(cr, x, y, radius, 0, 2 * Double.pi)
        colour(fill); cairo_fill_preserve(cr)
        colour(edge); cairo_set_line_width(cr, 1); cairo_set_dash(cr, nil, 0, 0); cairo_stroke(cr)
    }
    func text(_ t: PlotText, _ c: RGB) {
        colour(c)
        cairo_save(cr)
        cairo_translate(cr, t.x, t.y)
        if t.rotated { cairo_rotate(cr, -Double.pi / 2) }
        TextMeter.select(cr, size: t.size, bold: t.bold)
        cairo_move_to(cr, t.startOffset, 0)
        cairo_show_text(cr, t.string)
        if let exponent = t.exponent {
            TextMeter.select(cr, size: t.size * PlotText.exponentScale, bold: t.bold)
            cairo_rel_move_to(cr, 1, -t.size * PlotText.exponentRise)
            cairo_show_text(cr, exponent)
        }
        cairo_restore(cr)
    }
    func clip(_ box: Box) { cairo_save(cr); cairo_rectangle(cr, box.x, box.y, box.width, box.height); cairo_clip(cr) }
    func unclip() { cairo_restore(cr) }
    func beginSeries(_ name: String) {}
    func endSeries() {}

    /// The surface as an RGB image in [0, 1].
    func image() -> Image {
        cairo_surface_flush(surface)
        let data = cairo_image_surface_get_data(surface)!, stride = Int(cairo_image_surface_get_stride(surface))
        var pixels = [Float](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            // RGB24 keeps each pixel as a native-endian 32-bit xRGB word.
            let row = UnsafeRawPointer(data + y * stride).assumingMemoryBound(to: UInt32.self)
            for x in 0..<width {
                let v = row[x], i = (y * width + x) * 3
                pixels[i] = Float((v >> 16) & 0xff) / 255
                pixels[i + 1] = Float((v >> 8) & 0xff) / 255
                pixels[i + 2] = Float(v & 0xff) / 255
            }
        }
        return Image(width: width, height: height, channels: 3, pixels: pixels)
    }
}

/// The same drawing calls written as SVG elements.
final class SVGCanvas: PlotCanvas {
    private var body = ""
    private var clips = 0
    let width: Int, height: Int, fontFamily: String

    init(width: Int, height: Int, fontFamily: String) { self.width = width; self.height = height; self.fontFamily = fontFamily }

    private static func hex(_ c: RGB) -> String {
        func byte(_ v: Float) -> Int { Int((min(max(v, 0), 1) * 255).rounded()) }
        return String(format: "#%02x%02x%02x", byte(c.0), byte(c.1), byte(c.2))
    }
    /// Coordinates to a tenth of a pixel, without trailing zeros.
    private static func n(_ v: Double) -> String {
        let s = String(format: "%.1f", v)
        return s.hasSuffix(".0") ? String(s.dropLast(2)) : s
    }
    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func fill(_ box: Box, _ c: RGB, alpha: Double) {
        body += "<rect x=\"\(Self.n(box.x))\" y=\"\(Self.n(box.y))\" width=\"\(Self.n(box.width))\" height=\"\(Self.n(box.height))\" "
            + "fill=\"\(Self.hex(c))\"" + (alpha < 1 ? " fill-opacity=\"\(alpha)\"" : "") + "/>\n"
    }
    func stroke(_ box: Box, _ c: RGB, width: Double) {
        body += "<rect x=\"\(Self.n(box.x))\" y=\"\(Self.n(box.y))\" width=\"\(Self.n(box.width))\" height=\"\(Self.n(box.height))\" "
            + "fill=\"none\" stroke=\"\(Self.hex(c))\" stroke-width=\"\(Self.n(width))\"/>\n"
    }
    func polyline(_ points: [(Double, Double)], _ c: RGB, alpha: Double, width: Double, dash: [Double]) {
        guard let first = points.first else { return }
        var d = "M\(Self.n(first.0)) \(Self.n(first.1))"
        for (x, y) in points.dropFirst() { d += "L\(Self.n(x)) \(Self.n(y))" }
        body += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(Self.hex(c))\" stroke-width=\"\(Self.n(width))\""
            + (alpha < 1 ? " stroke-opacity=\"\(alpha)\"" : "")
            + (width > 1 ? " stroke-linejoin=\"round\"" : "")
            + (dash.isEmpty ? (width > 1 ? " stroke-linecap=\"round\"" : "") : " stroke-dasharray=\"\(dash.map(Self.n).joined(separator: " "))\"") + "/>\n"
    }
    func dot(_ x: Double, _ y: Double, radius: Double, fill: RGB, edge: RGB) {
        body += "<circle cx=\"\(Self.n(x))\" cy=\"\(Self.n(y))\" r=\"\(Self.n(radius))\" fill=\"\(Self.hex(fill))\" "
            + "stroke=\"\(Self.hex(edge))\" stroke-width=\"1\"/>\n"
    }
    func text(_ t: PlotText, _ c: RGB) {
        let anchor = t.anchor == .start ? "" : t.anchor == .middle ? " text-anchor=\"middle\"" : " text-anchor=\"end\""
        body += "<text x=\"\(Self.n(t.x))\" y=\"\(Self.n(t.y))\" font-size=\"\(Self.n(t.size))\"\(anchor) fill=\"\(Self.hex(c))\""
            + (t.bold ? " font-weight=\"bold\"" : "")
            + (t.rotated ? " transform=\"rotate(-90 \(Self.n(t.x)) \(Self.n(t.y)))\"" : "") + ">" + Self.escaped(t.string)
            + (t.exponent.map { "<tspan dx=\"1\" dy=\"\(Self.n(-t.size * PlotText.exponentRise))\" "
                + "font-size=\"\(Self.n(t.size * PlotText.exponentScale))\">\(Self.escaped($0))</tspan>" } ?? "")
            + "</text>\n"
    }
    func clip(_ box: Box) {
        clips += 1
        body += "<clipPath id=\"clip\(clips)\"><rect x=\"\(Self.n(box.x))\" y=\"\(Self.n(box.y))\" width=\"\(Self.n(box.width))\" "
            + "height=\"\(Self.n(box.height))\"/></clipPath>\n<g clip-path=\"url(#clip\(clips))\">\n"
    }
    func unclip() { body += "</g>\n" }
    func beginSeries(_ name: String) { body += "<g class=\"series\"><title>\(Self.escaped(name))</title>\n" }
    func endSeries() { body += "</g>\n" }

    func document() -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" "
            + "font-family=\"\(Self.escaped(fontFamily))\">\n" + body + "</svg>\n"
    }
}
