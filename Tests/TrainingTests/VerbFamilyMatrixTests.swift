// Every verb on every family a test can train in a second, through the binary: a verb either does
// its work or says in one line that the family cannot, naming the families that can — never a
// decoding error from the wrong config ("not a transfusion checkpoint config"). The image-text
// families' verbs are exercised on real runs in ImageTextVerbTests; here the lm and vae runs.
// Needs the release `fusion` binary (`make test` builds it); skipped without.
import Foundation
import Testing
import TestSupport

@Suite(.serialized) struct VerbFamilyMatrixTests {
    static let recipes = [
        "lm": "model: {kind: lm, preset: nano}\ndata: {tokenizer_vocab: 300, seq_len: 32}\n",
        "vae": """
            model: {kind: vae}
            data: {image_size: 32}
            tokenizer: {channels: 16, channel_multipliers: [1], patch_size: 4, downsample: 4, latent_channels: 4, groups: 4}

            """,
    ]

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"),
          arguments: ["lm", "vae"])
    func everyVerbWorksOrSaysInOneLineThatTheFamilyCannot(family: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-matrix-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try ("name: m\n" + Self.recipes[family]! + """
            train: {steps: 2, batch_size: 2, log_every: 1, checkpoint_every: 2}
            eval: {every: 0}
            sample: {every: 0}
            """).write(to: dir.appendingPathComponent("m.yaml"), atomically: true, encoding: .utf8)
        let trained = try FusionBinary.run(["train", "m.yaml", "--runs", "runs"], in: dir)
        try #require(trained.status == 0, "\(trained.stderr)")
        #expect(try FusionBinary.run(["data", "shapes", "--out", "d", "--count", "1"], in: dir).status == 0)
        let png = "d/000000.png", run = "runs/m"
        let verbs: [(name: String, arguments: [String], works: Set<String>)] = [
            ("sample", ["sample", "--prompt", "a red circle", "--num", "1"], []),
            ("caption", ["caption", "--image", png], []),
            ("generate", ["generate", "--prompt", "a red", "--max-tokens", "4"], ["lm"]),
            ("edit", ["edit", "--image", png, "--instruction", "make it blue", "--num", "1"], []),
            ("speak", ["speak", "--prompt", "a red circle"], []),
            ("transcribe", ["transcribe", "--audio", png], []),
            ("eval shapes", ["eval", "--suite", "shapes", "--prompts-per-category", "1"], []),
            ("eval captions", ["eval", "--suite", "captions", "--count", "2"], []),
            ("eval fd", ["eval", "--suite", "fd", "--count", "2"], []),
            ("eval edits", ["eval", "--suite", "edits", "--count", "2"], []),
            ("eval speech", ["eval", "--suite", "speech", "--count", "2"], []),
            ("eval losses", ["eval", "--suite", "losses"], []),
            ("export", ["export", "--out", "exported"], ["lm", "vae"]),
            ("export hf", ["export", "--out", "hf", "--format", "hf"], ["lm"]),
        ]
        for verb in verbs {
            let result = try FusionBinary.run([verb.arguments[0], "--checkpoint", run] + verb.arguments.dropFirst(), in: dir)
            if verb.works.contains(family) {
                #expect(result.status == 0, "\(family) \(verb.name): \(result.stderr)")
            } else {
                let lines = result.stderr.split(separator: "\n")
                #expect(result.status != 0 && lines.count == 1
                        && lines[0].contains("\(run) holds a model of the \(family) family, which cannot")
                        && lines[0].contains("runs can)"), "\(family) \(verb.name): \(result.stderr)")
            }
        }
    }

    /// The VAR family end to end through the binary: a multi-scale VQ tokenizer trained for two
    /// steps, a VAR run on its pyramids with eval and samples, then every verb: the image–text
    /// ones work (sample, caption, generate, the ShapesWorld suites, export), the rest say in one
    /// line that the family cannot.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func varRunsTrainAndDrawAndCaptionAndRefuseTheRest() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-var-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try """
            name: t
            model: {kind: msvq}
            data: {image_size: 32}
            tokenizer: {channels: 16, channel_multipliers: [1], patch_size: 4, downsample: 4, groups: 4, codebook_size: 32, code_dim: 4}
            train: {steps: 2, batch_size: 4, checkpoint_every: 2}
            eval: {every: 0}
            sample: {every: 0}
            """.write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        try """
            name: m
            model: {kind: var, preset: nano, image_tokenizer: runs/t/tokenizer.safetensors}
            data: {image_size: 32, seq_len: 160, tokenizer_vocab: 300, pool: 32}
            diffusion: {image_first: 0.5, cfg: 2.0}
            train: {steps: 4, batch_size: 2, log_every: 1, checkpoint_every: 4}
            eval: {every: 4, batches: 1, documents: 6, shapes_eval: 6}
            sample: {every: 4, prompts: [a red circle], max_tokens: 8}
            """.write(to: dir.appendingPathComponent("m.yaml"), atomically: true, encoding: .utf8)
        for recipe in ["t.yaml", "m.yaml"] {
            let trained = try FusionBinary.run(["train", recipe, "--runs", "runs"], in: dir)
            try #require(trained.status == 0, "\(recipe): \(trained.stderr)")
        }
        let metrics = try String(contentsOf: dir.appendingPathComponent("runs/m/metrics.jsonl"), encoding: .utf8)
        #expect(metrics.contains("\"loss_image\"") && metrics.contains("\"eval_loss_image\"") && metrics.contains("\"eval_shapes_eval\""))
        #expect(metrics.contains("\"eval_loss_caption\"") && metrics.contains("\"eval_loss_prior\""))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/m/samples/step-00000004.png").path))
        #expect(try FusionBinary.run(["data", "shapes", "--out", "d", "--count", "1"], in: dir).status == 0)
        let png = "d/000000.png", run = "runs/m"
        let verbs: [(name: String, arguments: [String], works: Bool)] = [
            ("sample", ["sample", "--prompt", "a red circle", "--num", "2", "--out", "s.png"], true),
            ("caption", ["caption", "--image", png], true),
            ("generate", ["generate", "--prompt", "a red", "--max-tokens", "4"], true),
            ("eval shapes", ["eval", "--suite", "shapes", "--prompts-per-category", "1", "--images-per-prompt", "1"], true),
            ("eval captions", ["eval", "--suite", "captions", "--count", "2"], true),
            ("eval losses", ["eval", "--suite", "losses"], true),
            ("export", ["export", "--out", "exported"], true),
            ("edit", ["edit", "--image", png, "--instruction", "make it blue", "--num", "1"], false),
            ("speak", ["speak", "--prompt", "a red circle"], false),
            ("export hf", ["export", "--out", "hf", "--format", "hf"], false),
        ]
        for verb in verbs {
            let result = try FusionBinary.run([verb.arguments[0], "--checkpoint", run] + verb.arguments.dropFirst(), in: dir)
            if verb.works {
                #expect(result.status == 0, "var \(verb.name): \(result.stderr)")
            } else {
                let lines = result.stderr.split(separator: "\n")
                #expect(result.status != 0 && lines.count == 1 && lines[0].contains("holds a model of the var family, which cannot"),
                        "var \(verb.name): \(result.stderr)")
            }
        }
        // The export samples like the run it came from.
        let fromExport = try FusionBinary.run(["sample", "--checkpoint", "exported", "--prompt", "a red circle", "--num", "1", "--out", "e.png"], in: dir)
        #expect(fromExport.status == 0, "\(fromExport.stderr)")
        let diffusionFlag = try FusionBinary.run(["sample", "--checkpoint", run, "--prompt", "a red circle", "--steps", "5"], in: dir)
        #expect(diffusionFlag.status != 0 && diffusionFlag.stderr.contains("is a var run"), "\(diffusionFlag.stderr)")
    }
}
