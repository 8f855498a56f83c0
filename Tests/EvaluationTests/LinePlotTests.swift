// Line plots: tick choice, labels, and that curves land where their data says.
import Evaluation
import Media
import Testing

@Suite struct LinePlotTests {
    @Test func ticksAndLabels() {
        let t = LinePlotProbe.ticks(0, 1)
        #expect(t.count == 6 && zip(t, [0, 0.2, 0.4, 0.6, 0.8, 1.0]).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(LinePlotProbe.ticks(3, 97).first == 20 && LinePlotProbe.ticks(3, 97).last == 80)
        #expect(LinePlotProbe.label(1500) == "1500")
        #expect(LinePlotProbe.label(25000) == "25k")
        #expect(LinePlotProbe.label(3.2e9) == "3.2G")
        #expect(LinePlotProbe.label(0.5) == "0.5")
    }

    @Test func curveIsDrawnInItsColour() {
        var plot = LinePlot(title: "loss", xLabel: "step")
        plot.series.append(Series(name: "a", x: [0, 10], y: [1, 1], colour: (1, 0, 0)))
        plot.series.append(Series(name: "b", x: [0, 10], y: [0, 2], colour: (0, 0, 1)))
        let img = plot.render()
        #expect(img.width == 640 && img.height == 400)
        var red = 0, blue = 0
        for i in stride(from: 0, to: img.pixels.count, by: 3) {
            if img.pixels[i] == 1 && img.pixels[i + 1] == 0 && img.pixels[i + 2] == 0 { red += 1 }
            if img.pixels[i] == 0 && img.pixels[i + 1] == 0 && img.pixels[i + 2] == 1 { blue += 1 }
        }
        // A flat line across the plot width (~550 px, 2 px thick) and a diagonal.
        #expect(red > 900 && blue > 900)
        // The flat line y = 1 sits at mid-height, where b crosses it.
        let midRow = (0..<img.height).max { a, b in
            (0..<img.width).filter { img.pixels[(a * img.width + $0) * 3] == 1 && img.pixels[(a * img.width + $0) * 3 + 2] == 0 }.count <
            (0..<img.width).filter { img.pixels[(b * img.width + $0) * 3] == 1 && img.pixels[(b * img.width + $0) * 3 + 2] == 0 }.count
        }!
        #expect(abs(midRow - (34 + (400 - 34 - 46) / 2)) <= 3)
    }

    @Test func svgHasOnePolylinePerSeriesAtThePixelPositions() throws {
        var plot = LinePlot(title: "a < b", xLabel: "FLOPs")
        plot.series.append(Series(name: "a", x: [0, 10], y: [1, 1], colour: (1, 0, 0)))
        plot.series.append(Series(name: "b", x: [0, 10], y: [0, 2], colour: (0, 0, 1)))
        let svg = plot.svg()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<polyline").count == 3)
        #expect(svg.contains("stroke=\"#ff0000\"") && svg.contains("stroke=\"#0000ff\""))
        #expect(svg.contains("a &lt; b"))                         // text is escaped
        // The flat line y = 1 sits at mid-height, as in the raster plot.
        let flat = try #require(svg.components(separatedBy: "<polyline points=\"").dropFirst().first?
            .split(separator: "\"").first)
        let ys = flat.split(separator: " ").map { Int($0.split(separator: ",")[1])! }
        #expect(ys.allSatisfy { abs($0 - (34 + (400 - 34 - 46) / 2)) <= 3 }, "\(flat)")
    }

    /// A markers series draws a square at each point and nothing between them (separate runs'
    /// final values are not a curve); its SVG has one rect per point and no polyline.
    @Test func markerSeriesDrawPointsNotLines() {
        var plot = LinePlot(title: "final", xLabel: "log10 FLOPs")
        plot.series.append(Series(name: "runs", x: [0, 10], y: [0, 2], colour: (0, 1, 0), markers: true))
        let img = plot.render()
        var green = 0
        for i in stride(from: 0, to: img.pixels.count, by: 3)
        where img.pixels[i] == 0 && img.pixels[i + 1] == 1 && img.pixels[i + 2] == 0 { green += 1 }
        // Two 7 × 7 squares (clipped at the frame's corners) and the legend's swatch; a line would add hundreds.
        #expect(green > 40 && green < 2 * 49 + 36 + 1, "\(green) green pixels")
        let svg = plot.svg()
        #expect(svg.components(separatedBy: "<rect x=").count - 1 == 2 && !svg.contains("<polyline"))
    }
}

/// Exposes the tick helpers for tests.
typealias LinePlotProbe = LinePlot
