// Line plots: tick choice and labels, log axes, smoothing, the legend's place, and what the cairo
// raster (anti-aliased lines, real text) and the SVG (paths, text elements) contain.
import Evaluation
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Media
import Testing

@Suite struct LinePlotTests {
    @Test func ticksAndLabels() {
        let t = LinePlot.ticks(0, 1)
        #expect(t.count == 6 && zip(t, [0, 0.2, 0.4, 0.6, 0.8, 1.0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(LinePlot.ticks(3, 97).first == 20 && LinePlot.ticks(3, 97).last == 80)
        #expect(LinePlot.label(1500).description == "1500")
        #expect(LinePlot.label(25000).description == "25k")
        #expect(LinePlot.label(0.5).description == "0.5")
        // FLOPs: a mantissa and a raised exponent of ten, "1e12" in plain text.
        #expect(LinePlot.label(1e12) == TickLabel("10", exponent: "12"))
        #expect(LinePlot.label(3.2e9) == TickLabel("3.2×10", exponent: "9") && LinePlot.label(3.2e9).description == "3.2e9")
        #expect(LinePlot.label(2e-4).description == "2e-4")
        // With the axis's step, every label of the axis gets the same decimals.
        #expect(LinePlot.label(0.8, step: 0.05).description == "0.80" && LinePlot.label(0.75, step: 0.05).description == "0.75")
        #expect(LinePlot.label(4e12, step: 2e12).description == "4e12")
    }

    /// The PNG is the requested size, its lines are anti-aliased (a red line on white has pixels
    /// between the two at its edges, which a one-colour rasteriser never makes) and its text is
    /// real font text: dark strokes with grey edges inside the title's and legend's measured boxes.
    @Test func pngIsAntiAliasedWithText() throws {
        var plot = LinePlot(title: "Held-out loss", xLabel: "step")
        plot.width = 640; plot.height = 400
        plot.series.append(Series(name: "diagonal", x: [0, 10], y: [0, 7], colour: (1, 0, 0)))
        let img = plot.render(), layout = plot.layout()
        #expect(img.width == 640 && img.height == 400 && img.channels == 3)
        func px(_ x: Int, _ y: Int) -> (Float, Float, Float) {
            let i = (y * img.width + x) * 3
            return (img.pixels[i], img.pixels[i + 1], img.pixels[i + 2])
        }
        var solid = 0, edge = 0
        for y in Int(layout.plot.y)..<Int(layout.plot.maxY) {
            for x in Int(layout.plot.x) + 2..<Int(layout.plot.maxX) {
                let (r, g, b) = px(x, y)
                guard r > 0.97, abs(g - b) < 0.02 else { continue }        // red mixed with white only
                if g < 0.03 { solid += 1 } else if g > 0.1 && g < 0.9 { edge += 1 }
            }
        }
        #expect(solid > 300, "\(solid) solid red pixels")
        #expect(edge > 300, "\(edge) partly covered pixels along the line")

        func ink(in box: Box) -> (dark: Int, grey: Int) {
            var dark = 0, grey = 0
            for y in max(0, Int(box.y))..<min(img.height, Int(box.maxY.rounded(.up))) {
                for x in max(0, Int(box.x))..<min(img.width, Int(box.maxX.rounded(.up))) {
                    let (r, g, b) = px(x, y), v = (r + g + b) / 3
                    if v < 0.35 { dark += 1 } else if v < 0.85 { grey += 1 }
                }
            }
            return (dark, grey)
        }
        let title = try #require(layout.texts.first { $0.string == "Held-out loss" })
        let titleInk = ink(in: title.box)
        #expect(titleInk.dark > 80 && titleInk.grey > 30, "title: \(titleInk)")
        let legend = try #require(layout.legend?.entries.first?.text)
        let legendInk = ink(in: legend.box)
        #expect(legendInk.dark > 40 && legendInk.grey > 20, "legend: \(legendInk)")
        // Nothing drawn where no text is: the strip between the title and the plot stays white.
        #expect(ink(in: Box(x: title.box.x, y: title.box.maxY + 1, width: title.box.width, height: layout.plot.y - title.box.maxY - 2)).dark == 0)
    }

    /// The SVG parses as XML, draws each series as a path with one vertex per point in its group,
    /// and keeps the title and legend names as text (escaped in the file, intact when parsed).
    @Test func svgIsWellFormedWithPathsAndText() throws {
        var plot = LinePlot(title: "a < b & c", xLabel: "training FLOPs", yLabel: "loss", logX: true)
        plot.series.append(Series(name: "chameleon <nano>", x: [1e11, 1e12, 1e13], y: [1.2, 0.9, 0.8], colour: (1, 0, 0)))
        plot.series.append(Series(name: "transfusion", x: [1e11, 3e11, 1e12, 3e12], y: [1.1, 0.95, 0.85, 0.8], colour: (0, 0, 1),
                                  smoothing: 3))
        let svg = plot.svg()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n") && svg.contains("a &lt; b &amp; c"))
        let doc = try SVGDocument(svg)
        #expect(doc.root == "svg")
        #expect(doc.texts.contains("a < b & c") && doc.texts.contains("chameleon <nano>") && doc.texts.contains("transfusion"))
        #expect(doc.texts.contains("training FLOPs") && doc.texts.contains("loss"))
        // One group per series: a 3-vertex path for the first; the smoothed one's faint raw curve, then its smoothed curve.
        #expect(doc.groups.count == 2)
        let first = try #require(doc.series("chameleon <nano>")), second = try #require(doc.series("transfusion"))
        #expect(first.paths.map(\.vertices) == [3] && first.paths.allSatisfy { $0.stroke == "#ff0000" })
        #expect(second.paths.map(\.vertices) == [4, 4] && second.paths.allSatisfy { $0.stroke == "#0000ff" })
        #expect(second.paths[0].opacity != nil && second.paths[1].opacity == nil)
    }

    /// Markers draw a dot per point and no path between them; a dashed series is a dashed path.
    @Test func markersAndDashedLines() throws {
        var plot = LinePlot(title: "final", xLabel: "FLOPs", logX: true, logY: true)
        plot.series.append(Series(name: "runs", x: [1e11, 1e12, 1e13], y: [2, 1, 0.5], colour: (0, 0.5, 0), style: .markers))
        plot.series.append(Series(name: "fit", x: [1e11, 1e13], y: [2, 0.5], colour: (0, 0.5, 0), style: .dashed))
        let svg = plot.svg()
        let doc = try SVGDocument(svg)
        let runs = try #require(doc.series("runs")), fit = try #require(doc.series("fit"))
        #expect(runs.paths.isEmpty && runs.circles == 3)
        #expect(fit.paths.count == 1 && fit.circles == 0)
        #expect(doc.circles == 3 + 1, "three points and the legend's swatch")
        #expect(svg.contains("stroke-dasharray"))
    }

    /// Log axes tick at powers of ten over several decades (and label them 10^k); their labels,
    /// like all the plot's texts, do not overlap.
    @Test func logAxesTickAtPowersOfTen() {
        var plot = LinePlot(title: "scaling", xLabel: "training FLOPs", yLabel: "loss", logX: true, logY: true)
        plot.series.append(Series(name: "runs", x: [3e9, 1e11, 2e13], y: [0.02, 0.5, 30], colour: (0, 0, 1), style: .markers))
        let l = plot.layout()
        let xs = l.x.ticks.map(\.value), ys = l.y.ticks.map(\.value)
        func isPower(_ v: Double) -> Bool { abs(log10(v) - log10(v).rounded()) < 1e-9 }
        #expect(xs.count >= 3 && xs.allSatisfy(isPower), "\(xs)")
        #expect([1e10, 1e11, 1e12, 1e13].allSatisfy { v in xs.contains { abs($0 / v - 1) < 1e-9 } }, "\(xs)")
        #expect(ys.count >= 3 && ys.allSatisfy(isPower), "\(ys)")
        #expect(l.x.ticks.map(\.label.description).contains("1e12"))
        #expect(!l.x.minor.isEmpty, "2…9 × 10^k grid lines between the powers")
        // Each tick sits at its log: equal steps in pixels between successive powers.
        let steps = zip(l.x.ticks, l.x.ticks.dropFirst()).map { $1.coordinate - $0.coordinate }
        #expect(steps.allSatisfy { abs($0 - steps[0]) < 1e-9 })
        expectTidy(l)
    }

    /// Tick labels never collide, however narrow the canvas or long the numbers.
    @Test func tickLabelsDoNotCollide() {
        for (width, height) in [(260, 200), (480, 300), (720, 450), (1200, 700)] {
            for (lo, hi, logX) in [(0.0, 123_456_789.0, false), (0.000_123, 0.000_987, false), (7e10, 3.3e13, true), (1.0, 1e15, true)] {
                var plot = LinePlot(title: "t", xLabel: "x", yLabel: "y", logX: logX)
                plot.width = width; plot.height = height
                plot.series.append(Series(name: "s", x: [lo, hi], y: [hi, lo], colour: (0, 0, 0)))
                let l = plot.layout()
                #expect(l.x.ticks.count >= 2 && l.y.ticks.count >= 2, "\(width)×\(height) \(lo)…\(hi)")
                expectTidy(l)
            }
        }
    }

    /// Many long names: the legend goes below the plot in columns, the canvas grows rather than
    /// squashing the plot, every name's measured box stays on the canvas and none overlaps another;
    /// a name wider than the canvas is shortened in the middle.
    @Test func longLegendStaysOnTheCanvas() throws {
        var plot = LinePlot(title: "eval_loss_text", xLabel: "training FLOPs", logX: true)
        for i in 0..<24 {
            let name = "compare-\(i % 2 == 0 ? "chameleon" : "transfusion")-tiny-size-\(i)-with-a-long-descriptive-suffix"
            plot.series.append(Series(name: name, x: [1e11, 1e12 * Double(i + 1)], y: [1.2, 0.8], colour: Series.palette[i % 8]))
        }
        plot.series.append(Series(name: String(repeating: "very-long-run-name-", count: 20) + "END", x: [1e11, 2e11], y: [1, 1],
                                  colour: (0, 0, 0)))
        let l = plot.layout()
        let canvas = Box(x: 0, y: 0, width: Double(l.width), height: Double(l.height))
        let legend = try #require(l.legend)
        #expect(legend.placement == .below && legend.entries.count == 25)
        #expect(l.height > plot.height && l.width == plot.width)
        #expect(l.plot.height >= Double(plot.height) / 2 - 1)
        for e in legend.entries {
            #expect(canvas.contains(e.text.box), "\(e.text.string) at \(e.text.box)")
            #expect(!e.text.box.intersects(l.plot))
        }
        #expect(Set(legend.entries.map { Int($0.text.box.x) }).count >= 2, "several columns")
        let last = legend.entries.last!.text.string
        #expect(last.contains("…") && last.hasPrefix("very-long") && last.hasSuffix("END"))
        expectTidy(l)
        let img = plot.render()
        #expect(img.width == l.width && img.height == l.height)
    }

    /// A few short names go in a corner of the plot that no curve passes through.
    @Test func legendTakesAFreeCorner() throws {
        var plot = LinePlot(title: "loss", xLabel: "step")
        // Rising from bottom-left to top-right: the top-right corner (the first choice) is taken.
        plot.series.append(Series(name: "train", x: Array(0...100).map(Double.init), y: Array(0...100).map { Double($0 * $0) },
                                  colour: (0, 0, 1)))
        plot.series.append(Series(name: "eval", x: [0, 50, 100], y: [100, 2600, 10100], colour: (1, 0, 0)))
        let l = plot.layout()
        let legend = try #require(l.legend)
        #expect(legend.placement != .below && legend.placement != .topRight, "\(legend.placement)")
        #expect(l.plot.contains(legend.box))
        for curve in l.curves { #expect(!curve.main.contains { legend.box.contains(Box(x: $0.0, y: $0.1, width: 0, height: 0)) }) }
    }

    /// Smoothing keeps one value per point, cuts the noise, and follows a straight trend exactly, ends included.
    @Test func smoothingKeepsLengthAndReducesVariance() {
        var state: UInt64 = 42
        func noise() -> Double {                                                  // LCG, uniform in −1…1
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        let raw = (0..<500).map { _ in 3 + noise() }
        let smooth = LinePlot.smooth(raw, window: 15)
        #expect(smooth.count == raw.count)
        func variance(_ v: [Double]) -> Double { let m = v.reduce(0, +) / Double(v.count); return v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count) }
        #expect(variance(smooth) < variance(raw) / 5, "\(variance(smooth)) vs \(variance(raw))")
        #expect(abs(smooth.reduce(0, +) / 500 - 3) < 0.05)
        let ramp = (0..<40).map { 2 - 0.05 * Double($0) }
        #expect(zip(LinePlot.smooth(ramp, window: 9), ramp).allSatisfy { abs($0 - $1) < 1e-9 })
        #expect(LinePlot.smooth(raw, window: 1) == raw)
    }

    /// Every text of a layout (tick labels, axis labels, title, legend) lies on the canvas and no two overlap.
    private func expectTidy(_ l: LinePlot.Layout, sourceLocation: SourceLocation = #_sourceLocation) {
        let texts = l.allTexts, canvas = Box(x: 0, y: 0, width: Double(l.width), height: Double(l.height))
        for t in texts where !canvas.contains(t.box) {
            Issue.record("\"\(t.string)\" \(t.box) is off the \(l.width)×\(l.height) canvas", sourceLocation: sourceLocation)
        }
        for i in texts.indices {
            for j in texts.indices where j > i && texts[i].box.intersects(texts[j].box) {
                Issue.record("\"\(texts[i].string)\" \(texts[i].box) overlaps \"\(texts[j].string)\" \(texts[j].box)",
                             sourceLocation: sourceLocation)
            }
        }
    }
}

/// What the tests read from a plot's SVG: the root, all text content, circles, and per series group
/// (in drawing order) its title, paths (vertex count, stroke, stroke-opacity) and circles.
private final class SVGDocument: NSObject, XMLParserDelegate {
    struct Path { var vertices: Int; var stroke: String?; var opacity: String? }
    struct Group { var title = ""; var paths: [Path] = []; var circles = 0 }
    var root: String?
    var texts: [String] = []
    var groups: [Group] = []
    var circles = 0
    private var inSeries = 0, depth = 0, text: String?, title: String?

    init(_ svg: String) throws {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        guard parser.parse() else { throw parser.parserError ?? CocoaError(.coderReadCorrupt) }
    }

    /// The group drawn for the series named `name`.
    func series(_ name: String) -> Group? { groups.first { $0.title == name } }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        depth += 1
        if root == nil { root = name }
        switch name {
        case "g" where attributes["class"] == "series": inSeries = depth; groups.append(Group())
        case "path" where inSeries > 0:
            let d = attributes["d"] ?? ""
            groups[groups.count - 1].paths.append(Path(vertices: d.filter { $0 == "M" || $0 == "L" }.count, stroke: attributes["stroke"],
                                                       opacity: attributes["stroke-opacity"]))
        case "circle":
            circles += 1
            if inSeries > 0 { groups[groups.count - 1].circles += 1 }
        case "text": text = ""
        case "title" where inSeries > 0: title = ""
        default: break
        }
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) { text? += string; title? += string }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text", let t = text { texts.append(t); text = nil }
        if name == "title", let t = title { groups[groups.count - 1].title = t; title = nil }
        if name == "g" && depth == inSeries { inSeries = 0 }
        depth -= 1
    }
}
