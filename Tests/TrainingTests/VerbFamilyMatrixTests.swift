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
}
