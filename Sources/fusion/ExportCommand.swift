// `fusion export`: a run's newest checkpoint as a small folder for sampling and sharing.
import ArgumentParser
import Foundation
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's newest checkpoint (EMA weights, float16) as a small folder for sampling.",
        discussion: """
            Example (how checkpoints/shapes-tiny was made):
              fusion export --checkpoint runs/transfusion-shapes --out checkpoints/shapes-tiny
              fusion sample --checkpoint checkpoints/shapes-tiny --prompt "a red circle" --out grid.png

            The folder holds model.safetensors, config.json, trained.json (step, FLOPs, wall time),
            the run's recipe.yaml, metrics.jsonl, loss.png and its tokenizer files. It cannot be
            resumed (no optimizer state).
            """)

    @Option(help: "Run folder (its newest checkpoint) or one checkpoint folder.") var checkpoint: String
    @Option(help: "Output folder (replaced if it exists).") var out: String
    @Flag(help: "Keep float32 weights instead of float16.") var float32 = false
    @Flag(name: .customLong("no-ema"), help: "Export the raw weights even when the run kept an EMA.") var noEMA = false

    func run() throws {
        try reportingErrors("export") { try export() }
    }

    func export() throws {
        let used = try ModelExport.export(run: checkpoint, to: out, float16: !float32, ema: !noEMA)
        let size = (try? FileManager.default.contentsOfDirectory(atPath: out).reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: out + "/" + name)[.size] as? Int) ?? 0)
        }) ?? 0
        print(String(format: "exported %@ to %@ (%.1f MB)", used.lastPathComponent, out, Double(size) / 1e6))
    }
}
