// `fusion export`: a run's newest checkpoint as a small folder for sampling and sharing.
import ArgumentParser
import Foundation
import Models
import Training

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's newest checkpoint (EMA weights, float16) as a small folder for sampling.",
        discussion: """
            Example (how checkpoints/shapes-tiny was made):
              fusion export --checkpoint runs/transfusion-shapes-long \\
                --out checkpoints/shapes-tiny
              fusion sample --checkpoint checkpoints/shapes-tiny --prompt "a red circle" \\
                --out grid.png

            The folder holds model.safetensors, config.json, trained.json (step, FLOPs, wall
            time), the run's recipe.yaml, metrics.jsonl, loss.png and its tokenizer files.
            It cannot be resumed (no optimizer state).

            --format hf writes a Hugging Face checkpoint instead (float32 unless --float16):
              fusion export --checkpoint runs/quickstart --out hf/quickstart --format hf
              python3 -c "from transformers import AutoModelForCausalLM, AutoTokenizer; \\
                m = AutoModelForCausalLM.from_pretrained('hf/quickstart'); \\
                t = AutoTokenizer.from_pretrained('hf/quickstart')"
            An lm model maps whole (LlamaForCausalLM, or Qwen3ForCausalLM with QK-norm); a
            Chameleon model too, its image codes being ids after the text ones (fusion.json
            has the layout, vq.safetensors the code decoder); a Transfusion model gives its
            text path only.
            """)

    @Option(help: "Run folder (its newest checkpoint) or one checkpoint folder.") var checkpoint: String
    @Option(help: "Output folder (replaced if it exists).") var out: String
    @Flag(help: "Keep float32 weights instead of float16.") var float32 = false
    @Option(help: "fusion (default): Fusion's own folder; hf: a Hugging Face transformers checkpoint.") var format = "fusion"
    @Flag(help: "With --format hf: float16 weights (default float32).") var float16 = false
    @Flag(name: .customLong("no-ema"), help: "Export the raw weights even when the run kept an EMA.") var noEMA = false

    func run() throws {
        try reportingErrors("export") { try export() }
    }

    func export() throws {
        switch format {
        case "fusion": break
        case "hf":
            let r = try HuggingFaceExport.export(checkpoint: checkpoint, to: out, ema: !noEMA, float16: float16)
            print("exported \(checkpoint) to \(out) as \(r.architecture) (vocabulary \(r.vocab), \(r.parameters) parameters)"
                  + (r.leftOut.isEmpty ? "" : "; left out (no Hugging Face form): \(r.leftOut.count) tensors, e.g. \(r.leftOut.prefix(3).joined(separator: ", "))"))
            return
        default: throw ValidationError("--format must be fusion or hf, got \(format)")
        }
        let used = try ModelExport.export(run: checkpoint, to: out, float16: !float32, ema: !noEMA)
        let size = (try? FileManager.default.contentsOfDirectory(atPath: out).reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: out + "/" + name)[.size] as? Int) ?? 0)
        }) ?? 0
        print(String(format: "exported %@ to %@ (%.1f MB)", used.lastPathComponent, out, Double(size) / 1e6))
    }
}
