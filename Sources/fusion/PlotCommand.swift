// `fusion plot RUN`: redraws a run's loss.png and loss.svg from its metrics.jsonl, as training does
// when it ends. For runs stopped before their plot was written, runs drawn by an older renderer, or a
// copy elsewhere (--out) without touching the run. The work is Training.RunDirectory.writeLossPlot.
import ArgumentParser
import Foundation
import Training

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Redraw a run's loss plot (loss.png and loss.svg) from its metrics.jsonl.",
        discussion: """
            Examples:
              fusion plot runs/quickstart
              fusion plot runs/edit-shapes --out docs/results/edit-shapes
            """)

    @Argument(help: "Run folder.") var folder: String
    @Option(help: "Folder to write loss.png and loss.svg into (default: the run folder).") var out: String?

    func run() throws {
        try reportingErrors("plot") {
            let dir = RunDirectory(URL(fileURLWithPath: folder))
            guard FileManager.default.fileExists(atPath: dir.metricsURL.path) else {
                throw ValidationError("\(folder) has no metrics.jsonl")
            }
            let target = URL(fileURLWithPath: out ?? folder)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            try dir.writeLossPlot(title: dir.url.standardizedFileURL.lastPathComponent + " loss", to: target)
            print("wrote \(target.path)/loss.png and loss.svg")
        }
    }
}
