// A run's loss plot: loss.png and loss.svg drawn from metrics.jsonl, into the run or another folder.
import Foundation
import Media
import Testing
@testable import Models
@testable import Training

@Suite struct LossPlotTests {
    @Test func lossPlotIsWrittenAsPNGAndSVG() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-lossplot-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let run = RunDirectory(root.appendingPathComponent("tiny-run")), out = root.appendingPathComponent("copy")
        try FileManager.default.createDirectory(at: run.url, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        var lines: [String] = []
        for step in stride(from: 10, through: 600, by: 10) {
            lines.append("{\"step\":\(step),\"loss\":\(8 * exp(-Double(step) / 150) + 1 + (step % 20 == 0 ? 0.1 : -0.1))}")
            if step % 200 == 0 { lines.append("{\"step\":\(step),\"kind\":\"eval\",\"eval_loss\":\(8 * exp(-Double(step) / 150) + 1.2)}") }
        }
        try lines.joined(separator: "\n").write(to: run.metricsURL, atomically: true, encoding: .utf8)

        try run.writeLossPlot(title: "tiny-run loss", to: out)
        let png = try PNG.read(out.appendingPathComponent("loss.png").path)
        #expect(png.width == 720 && png.height == 450)
        let svg = try String(contentsOf: out.appendingPathComponent("loss.svg"), encoding: .utf8)
        #expect(svg.contains(">tiny-run loss</text>") && svg.contains(">train</text>") && svg.contains(">eval</text>"))
        // The training loss is noisy: its raw curve faint, its smoothed curve over it.
        #expect(svg.contains("stroke-opacity"))
        #expect(!FileManager.default.fileExists(atPath: run.lossPlotURL.path), "--out leaves the run alone")

        try run.writeLossPlot(title: "tiny-run loss")
        #expect(FileManager.default.fileExists(atPath: run.lossPlotURL.path))
        #expect(FileManager.default.fileExists(atPath: run.url.appendingPathComponent("loss.svg").path))
    }
}
