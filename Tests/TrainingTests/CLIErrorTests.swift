// Bad command-line input to the `fusion` binary: each case must exit with status 1 and one error
// line naming the flag, key or file (over-long generations: capped with a warning), never trap
// (these were traps or unclear errors before docs/errors.md's audit). Needs the release `fusion` binary (`make test` builds it); skipped without.
import Foundation
import Testing
import TestSupport

private let packageRoot = FusionBinary.packageRoot
private let shapesTiny = packageRoot.appendingPathComponent("checkpoints/shapes-tiny").path
private let vaeShapes = packageRoot.appendingPathComponent("checkpoints/vae-shapes.safetensors").path
private let shapesReport = packageRoot.appendingPathComponent("docs/results/shapes-tiny-long/shapes-30k.json").path
private let oldCaptionReport = packageRoot.appendingPathComponent("docs/results/shapes-tiny-long/captions-30k.json").path

@Suite(.serialized) struct CLIErrorTests {
    /// Runs fusion with `arguments` in `dir`; returns the exit status (a signal reads as 128 + n) and stderr.
    func fusion(_ arguments: [String], in dir: URL) throws -> (status: Int32, stderr: String) {
        let r = try FusionBinary.run(arguments, in: dir)
        return (r.status, r.stderr)
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func badInputIsAnErrorNamingItNotATrap() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("folder"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "name: v\nmodel: {kind: lm, preset: nano}\ntrain: {steps: 1}\n".write(
            to: dir.appendingPathComponent("lm.yaml"), atomically: true, encoding: .utf8)
        try #"{"overall": 0, "standardError": 0, "categories": [], "results": []}"#.write(
            to: dir.appendingPathComponent("empty.json"), atomically: true, encoding: .utf8)
        try "name: s\nmodel: {kind: transfusion}\ndiffusion: {target: eps, sampler: euler}\ntrain: {steps: 1}\n".write(
            to: dir.appendingPathComponent("sampler.yaml"), atomically: true, encoding: .utf8)
        let cases: [([String], String)] = [
            (["train", "folder"], "folder: cannot read recipe: is a directory, not a file"),
            (["train", "missing.yaml"], "missing.yaml: cannot read recipe: no such file"),
            (["train", "sampler.yaml"], "'diffusion.sampler' euler does not fit target eps (use ddim or ddpm)"),
            (["train", "lm.yaml", "model.vocab_size=10", "--runs", "runs"], "'model.vocab_size' 10 is smaller than the tokenizer's"),
            (["train", "lm.yaml", "data.source=folder", "data.path=folder", "--runs", "runs"], "'data.source' folder is not available for model.kind lm"),
            (["train", "lm.yaml", "train.matmul_precision=fp16", "--runs", "runs"], "'train.matmul_precision' must be one of fp32, bf16, got \"fp16\""),
            (["sample", "--checkpoint", shapesTiny, "--prompt", "x", "--steps", "0"], "--steps must be ≥ 1, got 0"),
            (["sample", "--checkpoint", shapesTiny, "--prompt", "x", "--sampler", "ddpm"], "--sampler ddpm does not fit this run's flow target"),
            (["sample", "--checkpoint", shapesTiny, "--prompt", "x", "--num", "-1"], "--num must be positive"),
            (["sample", "--checkpoint", shapesTiny, "--prompt", "x", "--clip", "-1"], "--clip must be ≥ 0"),
            (["generate", "--checkpoint", shapesTiny, "--prompt", "x", "--top-k", "-2"], "--top-k must be ≥ 0"),
            (["generate", "--checkpoint", shapesTiny, "--prompt", "x", "--max-tokens", "-1"], "--max-tokens must be a positive number"),
            (["caption", "--checkpoint", shapesTiny, "--image", "x.png", "--temperature", "-1"], "--temperature must be ≥ 0"),
            (["eval", "--checkpoint", shapesTiny, "--suite", "fd", "--count", "1"], "--count must be at least 2"),
            (["eval", "--checkpoint", shapesTiny, "--suite", "speech", "--count", "2"], "was trained without speech"),
            (["speak", "--checkpoint", shapesTiny, "--prompt", "a red circle"], "was trained without speech"),
            (["speak", "--checkpoint", shapesTiny], "give exactly one of --prompt and --image"),
            (["speak", "--checkpoint", shapesTiny, "--prompt", " "], "--prompt is empty"),
            (["transcribe", "--checkpoint", shapesTiny, "--audio", "x.wav"], "was trained without speech"),
            (["eval", "--checkpoint", shapesTiny, "--suite", "captions", "--count", "-5"], "--count must be a positive number, got -5"),
            (["vae", "eval", "--checkpoint", vaeShapes, "--size", "30", "--images", "2"], "--size must be a multiple of the tokenizer's downsampling 4"),
            (["vae", "reconstruct", "--checkpoint", "folder", "--image", "x.png", "--out", "y.png"], "folder: is a directory, not a file"),
            (["data", "shapes", "--out", "d", "--count", "-1"], "--count must be a positive number, got -1"),
            (["data", "shapes", "--out", "d", "--size", "10"], "--size must be 24…1024"),
            (["data", "shapes", "--out", "/proc/x", "--count", "1"], "/proc/x: "),
            (["data", "speech", "--from", "folder", "--out", "sp", "--limit", "-1"], "--limit must be a positive number, got -1"),
            (["data", "tokenizer", "--out", "t.json", "--vocab", "10"], "--vocab must be at least 263"),
            (["compare", "folder", "--smooth", "0"], "--smooth must be ≥ 1"),
            (["compare", "folder"], "metrics.jsonl: no such file (is "),
            (["plot", "folder"], "folder has no metrics.jsonl"),
            (["eval-compare", "a.json"], "give a baseline report and at least one other"),
            (["eval-compare", "missing.json", "b.json"], "missing.json: no such file"),
            (["eval-compare", "folder", "b.json"], "folder: is a directory, not a file"),
            (["eval-compare", shapesReport, "lm.yaml"], "lm.yaml: not a ShapesEval report"),
            (["eval-compare", shapesReport, "empty.json"], "different prompt sets (300 and 0 prompts)"),
            (["eval-compare", oldCaptionReport, shapesReport], "not a caption report (fusion eval --suite captions --json), as "),
            (["eval-compare", oldCaptionReport, oldCaptionReport], "keeps no per-caption verdicts"),
            (["export", "--checkpoint", "missing", "--out", "e"], "fusion export: error: "),
        ]
        for (arguments, needle) in cases {
            let (status, stderr) = try fusion(arguments, in: dir)
            #expect(status == 1, "fusion \(arguments.joined(separator: " ")): exit \(status)\n\(stderr)")
            #expect(stderr.contains(needle), "fusion \(arguments.joined(separator: " ")):\n\(stderr)")
            #expect(!stderr.contains("Fatal error") && !stderr.contains("NSCocoaErrorDomain"), "\(stderr)")
        }
    }

    /// Prompts past a model's trained context (its recipe's data.seq_len): `sample`, `generate` and
    /// `speak` refuse them naming the limit and the length; `caption` and `generate` cap what they
    /// generate with a warning. The shipped checkpoints predate configs that keep the context, so
    /// this also checks the fallback to the recipe.yaml beside them.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func promptsPastTheTrainedContextAreRefusedOrCapped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-context-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let shapes = packageRoot.appendingPathComponent("checkpoints/shapes-tiny").path
        let speech = packageRoot.appendingPathComponent("checkpoints/speech-tiny").path
        let long = Array(repeating: "red circle", count: 250).joined(separator: " ")   // 500 words
        let refused: [([String], String)] = [
            (["sample", "--checkpoint", shapes, "--prompt", long, "--steps", "1"], "past the 128 the model was trained on"),
            (["generate", "--checkpoint", shapes, "--prompt", long], "past the 128 the model was trained on"),
            (["speak", "--checkpoint", speech, "--prompt", long], "past the 128 the model was trained on"),
        ]
        for (arguments, needle) in refused {
            let (status, stderr) = try fusion(arguments, in: dir)
            #expect(status == 1, "\(arguments[0]): exit \(status)\n\(stderr)")
            #expect(stderr.contains(needle) && stderr.contains("positions") && stderr.contains("--prompt"), "\(arguments[0]): \(stderr)")
        }
        let (made, _) = try fusion(["data", "shapes", "--out", "d", "--count", "1"], in: dir)
        #expect(made == 0)
        let capped: [([String], String)] = [
            (["caption", "--checkpoint", shapes, "--image", "d/000000.png", "--max-tokens", "500"], "captions stop at 109 tokens"),
            (["generate", "--checkpoint", shapes, "--prompt", "a red", "--max-tokens", "300", "--steps", "1", "--out", "g"],
             "generation stops there"),
        ]
        for (arguments, needle) in capped {
            let (status, stderr) = try fusion(arguments, in: dir)
            #expect(status == 0, "\(arguments[0]): exit \(status)\n\(stderr)")
            #expect(stderr.contains("warning:") && stderr.contains(needle), "\(arguments[0]): \(stderr)")
        }
    }
}
