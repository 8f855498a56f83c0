// The image–text verbs on both families through the binary: `fusion sample`, `caption` and `eval
// --suite shapes|captions|fd` score a Chameleon run as they score a Transfusion run (they stopped
// with "not a transfusion checkpoint config" before), `fusion edit` and `eval --suite edits` edit
// with it by instruction, a family's flags on the other family are errors naming them, and
// `fusion eval` reads the same ShapesEval as the run's in-training eval.
// Needs the release `fusion` binary (`make test` builds it); skipped without.
import Evaluation
import Foundation
import Media
import Testing
import TestSupport
import Tensors
@testable import Models
@testable import Training

private let packageRoot = FusionBinary.packageRoot

@Suite(.serialized) struct ImageTextVerbTests {
    func fusion(_ arguments: [String], in dir: URL) throws -> (status: Int32, stdout: String, stderr: String) {
        try FusionBinary.run(arguments, in: dir)
    }

    /// `fusion generate` continues text with an lm run (it read only Transfusion runs before) and
    /// refuses the image flags, naming them.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func generateContinuesTextWithAnLMRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-generate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            name: words
            model: {kind: lm, preset: nano}
            data: {tokenizer_vocab: 300, seq_len: 32}
            train: {steps: 2, batch_size: 4, log_every: 1, checkpoint_every: 2}
            eval: {every: 0}
            sample: {every: 0}
            """.write(to: dir.appendingPathComponent("words.yaml"), atomically: true, encoding: .utf8)
        let trained = try fusion(["train", "words.yaml", "--runs", "runs"], in: dir)
        try #require(trained.status == 0, "\(trained.stderr)")
        let run = dir.appendingPathComponent("runs/words").path
        let generated = try fusion(["generate", "--checkpoint", run, "--prompt", "a red", "--max-tokens", "40", "--seed", "3"], in: dir)
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(generated.stdout.hasPrefix("a red") && generated.stdout.count > "a red\n".count, "\(generated.stdout)")
        #expect(!generated.stdout.contains("[image"), "an lm run writes text only")
        // The 32 positions it was trained on bound the continuation: a warning, then at most 32 positions.
        #expect(generated.stderr.contains("runs past the 32 positions"), "\(generated.stderr)")
        let again = try fusion(["generate", "--checkpoint", run, "--prompt", "a red", "--max-tokens", "40", "--seed", "3"], in: dir)
        #expect(again.stdout == generated.stdout, "same seed, same text")
        let refused = try fusion(["generate", "--checkpoint", run, "--prompt", "a red", "--cfg", "3"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("--steps and --cfg sample images and speech")
                && refused.stderr.contains("lm run"), "\(refused.stderr)")
    }

    /// `fusion eval --suite losses` scores a run's held-out documents as its training evaluation
    /// does (the same figures as its last eval row, raw weights) and keeps them per document, the
    /// same documents for both families; `fusion eval-compare` pairs two runs by document.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func heldOutLossesAreTheRunsOwnEvalRowsAndPairByDocument() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-losses-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let vq = packageRoot.appendingPathComponent("checkpoints/vq-shapes.safetensors").path
        let vae = packageRoot.appendingPathComponent("checkpoints/vae-shapes.safetensors").path
        let shared = """
            data: {image_size: 32, tokenizer_vocab: 300, seq_len: 104, docs_per_row: 1, pool: 64}
            train: {steps: 3, batch_size: 4, log_every: 1, checkpoint_every: 3}
            eval: {every: 3, batches: 1, documents: 24}
            sample: {every: 0}
            """
        try "name: c\nmodel: {kind: chameleon, preset: nano, image_tokenizer: \(vq)}\n\(shared)\n"
            .write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        try "name: t\nmodel: {kind: transfusion, preset: nano, image_tokenizer: \(vae), patch_size: 2}\n\(shared)\n"
            .write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        var reports: [String: HeldOutLossReport] = [:]
        for name in ["c", "t"] {
            let trained = try fusion(["train", "\(name).yaml", "--runs", "runs"], in: dir)
            try #require(trained.status == 0, "\(name): \(trained.stderr)")
            let scored = try fusion(["eval", "--checkpoint", "runs/\(name)", "--suite", "losses", "--no-ema", "--json", "\(name).json"], in: dir)
            try #require(scored.status == 0, "\(name): \(scored.stderr)")
            let report = try JSONDecoder().decode(HeldOutLossReport.self, from: Data(contentsOf: dir.appendingPathComponent("\(name).json")))
            let rows = try String(contentsOf: dir.appendingPathComponent("runs/\(name)/metrics.jsonl"), encoding: .utf8)
                .split(separator: "\n").compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let last = try #require(rows.last { $0["eval_loss_text"] != nil })
            for key in ["loss_text", "loss_text_se", "loss_caption", "loss_prior", "loss_markers"] {
                let logged = try #require(last["eval_" + key] as? Double, "\(name) \(key)")
                #expect(abs(report.metrics[key]! - logged) < 1e-9, "\(name) \(key): \(report.metrics[key]!) against \(logged)")
            }
            let text = try #require(report.kinds.first { $0.name == "text" })
            #expect(text.documents == Array(0..<24) && abs(text.mean - report.metrics["loss_text"]!) < 1e-12)
            #expect(report.step == 3 && report.weights == "raw")
            reports[name] = report
        }
        let compared = try fusion(["eval-compare", "c.json", "t.json", "--json", "d.json"], in: dir)
        #expect(compared.status == 0 && compared.stdout.contains("text"), "\(compared.stderr)")
        let d = try HeldOutLossDifference(baseline: reports["c"]!, other: reports["t"]!)
        let text = try #require(d.kinds.first { $0.name == "text" })
        #expect(abs(text.difference - (reports["t"]!.metrics["loss_text"]! - reports["c"]!.metrics["loss_text"]!)) < 1e-12)
        #expect(text.standardError > 0 && text.items == 24)
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func sampleCaptionAndEvalScoreChameleonRunsLikeTransfusionRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-verbs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let vq = packageRoot.appendingPathComponent("checkpoints/vq-shapes.safetensors").path
        let shapes = packageRoot.appendingPathComponent("checkpoints/shapes-tiny").path
        try """
            name: cham
            model: {kind: chameleon, preset: nano, image_tokenizer: \(vq)}
            diffusion: {cfg: 2.0}
            data: {image_size: 32, tokenizer_vocab: 300, seq_len: 104, docs_per_row: 1, pool: 64}
            train: {steps: 4, batch_size: 4, log_every: 2, checkpoint_every: 4}
            eval: {every: 4, batches: 1, documents: 64, shapes_eval: 12}
            sample: {every: 0, top_k: 16}
            """.write(to: dir.appendingPathComponent("cham.yaml"), atomically: true, encoding: .utf8)
        let trained = try fusion(["train", "cham.yaml", "--runs", "runs"], in: dir)
        try #require(trained.status == 0, "\(trained.stderr)")
        let run = dir.appendingPathComponent("runs/cham").path
        #expect(try fusion(["data", "shapes", "--out", "d", "--count", "1"], in: dir).status == 0)
        let net = ShapesClassifier(rng: RNG(seed: 0))
        try net.save(to: dir.appendingPathComponent("classifier.safetensors").path)

        for (checkpoint, kind) in [(run, "chameleon"), (shapes, "transfusion")] {
            let fast = kind == "transfusion" ? ["--steps", "2"] : []
            let sampled = try fusion(["sample", "--checkpoint", checkpoint, "--prompt", "a red circle", "--num", "2",
                                      "--out", "\(kind).png"] + fast, in: dir)
            #expect(sampled.status == 0, "\(kind) sample: \(sampled.stderr)")
            #expect(sampled.stdout.contains("(\(kind) run: "), "\(sampled.stdout)")
            let png = try PNG.read(dir.appendingPathComponent("\(kind).png").path)
            #expect(png.width == 2 * 32 * 4 + 3 * 2, "two 32-pixel images, upscaled 4×, in a padded grid")
            let captioned = try fusion(["caption", "--checkpoint", checkpoint, "--image", "d/000000.png", "--max-tokens", "8"], in: dir)
            #expect(captioned.status == 0, "\(kind) caption: \(captioned.stderr)")
            // Free generation (it stopped with "not a transfusion checkpoint config" on Chameleon runs).
            let generated = try fusion(["generate", "--checkpoint", checkpoint, "--prompt", "a red", "--max-tokens", "12",
                                        "--seed", "1", "--out", "\(kind)-gen"] + fast, in: dir)
            #expect(generated.status == 0 && generated.stdout.hasPrefix("a red"), "\(kind) generate: \(generated.stderr)")
            for suite in [["shapes", "--prompts-per-category", "1", "--images-per-prompt", "1"], ["captions", "--count", "3"],
                          ["fd", "--count", "3", "--classifier", "classifier.safetensors"]] {
                let json = "\(kind)-\(suite[0]).json"
                let scored = try fusion(["eval", "--checkpoint", checkpoint, "--suite"] + suite + ["--json", json] + fast, in: dir)
                #expect(scored.status == 0, "\(kind) eval \(suite[0]): \(scored.stderr)")
                #expect(scored.stdout.contains("(\(kind) run"), "\(scored.stdout)")
                let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(json))) as? [String: Any]
                #expect(report?[suite[0] == "shapes" ? "overall" : suite[0] == "fd" ? "fd" : "exact"] is Double, "\(kind) \(json)")
                if suite[0] == "fd" {                     // with its bootstrap error, which compare reads as final_fd_se
                    #expect((report?["standardError"] as? Double).map { $0 > 0 && $0.isFinite } == true, "\(kind) \(json)")
                }
            }
        }

        let diffusionFlag = try fusion(["generate", "--checkpoint", run, "--prompt", "a red", "--steps", "2"], in: dir)
        #expect(diffusionFlag.status != 0 && diffusionFlag.stderr.contains("--steps") && diffusionFlag.stderr.contains("chameleon run"),
                "\(diffusionFlag.stderr)")

        // Chameleon runs edit by instruction, from the command line and in the edits suite (which
        // stopped with "--suite edits scores Transfusion runs" before).
        let edited = try fusion(["edit", "--checkpoint", run, "--image", "d/000000.png", "--instruction", "make the circle blue",
                                 "--num", "2", "--out", "edited.png"], in: dir)
        #expect(edited.status == 0 && edited.stdout.contains("input | 2 edit(s), instruction"), "\(edited.stdout)\(edited.stderr)")
        #expect(try PNG.read(dir.appendingPathComponent("edited.png").path).width == 3 * 32 + 4 * 2, "input and two edits in a padded row")
        let edits = try fusion(["eval", "--checkpoint", run, "--suite", "edits", "--count", "2", "--json", "edits.json",
                                "--grid", "edits.png"], in: dir)
        #expect(edits.status == 0 && edits.stdout.contains("(chameleon run: temperature 1, top-k 16, cfg 2.0, 2 triplets"),
                "\(edits.stdout)\(edits.stderr)")
        let editReport = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("edits.json"))) as? [String: Any]
        #expect(editReport.map { Set($0.keys) } == ["instruction"])

        // The in-training ShapesEval (12 prompts, one image each, seed 0x5EE7) read again by `fusion eval`.
        let metrics = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let inTraining = try #require(metrics.last { $0["eval_shapes_eval"] != nil }?["eval_shapes_eval"] as? Double)
        let again = try fusion(["eval", "--checkpoint", run, "--suite", "shapes", "--prompts-per-category", "2",
                                "--images-per-prompt", "1", "--seed", "\(0x5EE7)", "--json", "again.json"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        let overall = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("again.json")))
            as? [String: Any])?["overall"] as? Double)
        #expect(overall == inTraining, "fusion eval \(overall), in training \(inTraining)")

        // The tokenizer ceiling: real renders of the prompts through the shipped VAE pass ShapesEval.
        let ceiling = try fusion(["eval", "--checkpoint", shapes, "--suite", "shapes", "--ceiling", "--prompts-per-category", "2",
                                  "--images-per-prompt", "1", "--json", "ceiling.json"], in: dir)
        #expect(ceiling.status == 0 && ceiling.stdout.contains("VAE reconstructions of real renders"), "\(ceiling.stdout)\(ceiling.stderr)")
        let best = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("ceiling.json")))
            as? [String: Any])?["overall"] as? Double)
        #expect(best >= 0.9, "ShapesEval of VAE reconstructions \(best)")

        // The guidance pilot: the suite at each scale, and the best.
        let pilot = try fusion(["eval", "--checkpoint", run, "--suite", "shapes", "--cfg-sweep", "1,2", "--prompts-per-category", "1",
                                "--images-per-prompt", "1", "--json", "pilot.json"], in: dir)
        #expect(pilot.status == 0 && pilot.stdout.contains("best: cfg "), "\(pilot.stdout)\(pilot.stderr)")
        let scales = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("pilot.json"))) as? [String: Any]
        #expect(scales.map { Set($0.keys) } == ["1.0", "2.0"])

        let refused: [([String], String)] = [
            (["eval", "--checkpoint", run, "--suite", "shapes", "--cfg-sweep", "1,x"], "--cfg-sweep takes comma-separated scales"),
            (["eval", "--checkpoint", run, "--suite", "captions", "--ceiling"], "--ceiling applies to --suite shapes, fd and folder"),
            (["sample", "--checkpoint", run, "--prompt", "x", "--steps", "3"], "--sampler, --steps and --clip are diffusion settings"),
            (["sample", "--checkpoint", shapes, "--prompt", "x", "--top-k", "3"], "--temperature and --top-k sample image codes"),
            (["sample", "--checkpoint", run, "--prompt", "x", "--top-k", "-3"], "--top-k must be ≥ 0"),
            (["eval", "--checkpoint", run, "--suite", "edits", "--method", "inversion", "--count", "2"],
             "--method inversion needs a diffusion model (transfusion runs); \(run) is a chameleon run, which edits by instruction"),
            (["edit", "--checkpoint", run, "--image", "d/000000.png", "--method", "inversion", "--source-prompt", "a red circle",
              "--prompt", "a blue circle"], "--method inversion needs a diffusion model"),
            (["edit", "--checkpoint", run, "--image", "d/000000.png", "--instruction", "make it blue", "--image-cfg", "2"],
             "--image-cfg guides diffusion towards the source image"),
            (["edit", "--checkpoint", run, "--image", "d/000000.png", "--instruction", "make it blue", "--steps", "2"],
             "--sampler, --steps and --clip are diffusion settings"),
        ]
        for (arguments, needle) in refused {
            let r = try fusion(arguments, in: dir)
            #expect(r.status == 1 && r.stderr.contains(needle), "\(arguments.joined(separator: " ")): \(r.stderr)")
        }
    }
}
