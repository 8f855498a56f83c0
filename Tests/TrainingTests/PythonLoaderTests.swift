// python/fusion_torch (PyTorch, no Swift) against Fusion on the same exported folders: the shipped
// Transfusion export (checkpoints/shapes-tiny) gives Fusion's token ids, text logits and two guided
// Euler steps of an image span; a Chameleon export gives Fusion's logits over text and image codes
// and its greedy guided codes. Skipped with a message where Python lacks torch or safetensors.
import Foundation
import NN
import Tensors
import Testing
import TestSupport
import Text
@testable import Diffusion
@testable import Models
@testable import Training

@Suite(.serialized) struct PythonLoaderTests {
    /// Runs `script` with python/ on PYTHONPATH and `arguments`; its stdout parsed as JSON, or nil
    /// (with a note) when torch or safetensors are missing.
    func python(_ script: String, _ arguments: [String]) throws -> [String: Any]? {
        let python = FusionBinary.packageRoot.appendingPathComponent("python").path
        guard let (status, data, errText) = Python.run(script, arguments, environment: ["PYTHONPATH": python]) else {
            print("python3 not available: fusion_torch check skipped"); return nil
        }
        if errText.contains("No module named 'torch'") || errText.contains("No module named 'safetensors'") {
            print("torch or safetensors not installed: fusion_torch check skipped"); return nil
        }
        try #require(status == 0, "fusion_torch failed:\n\(errText)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func worst(_ a: [Float], _ b: [Double]) -> (Double, Double) {
        #expect(a.count == b.count, "lengths \(a.count) and \(b.count)")
        return (zip(a, b).map { abs(Double($0) - $1) }.max() ?? .infinity, a.map { abs(Double($0)) }.max() ?? 0)
    }

    static let texts = ["two blue squares", "a large red circle in the top left corner", "héllo,  world!!\n"]

    @Test func theShippedTransfusionExportMatchesFusion() throws {
        let folder = FusionBinary.packageRoot.appendingPathComponent("checkpoints/shapes-tiny").path
        let run = try TransfusionRun(path: folder)
        let model = run.model
        let prompt = [SpecialTokens.bos] + run.tokenizer.encode(Self.texts[0])
        // Fusion: text logits of the prompt; two guided Euler steps (t = 1 → 0.5 → 0) from fixed noise.
        let t = prompt.count
        let hidden = withoutGrad {
            model(TransfusionInput(ids: Tensor(ints: prompt, shape: [1, t]), positions: Tensor(ints: (0..<t).map(Int32.init)),
                                   mask: .causal(batch: 1, queries: t))).hidden
        }
        let logits = withoutGrad { model.logits(hidden, rows: Array(0..<t)) }.scalars
        let noise = RNG(seed: 9).normal([2, model.config.latentChannels, model.config.latentSize, model.config.latentSize])
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(flow: FlowSchedule()), sampler: .euler, steps: 2, cfgScale: 3)
        let sampled = model.sampleImages(prompt: prompt, noise: noise, options: options, rng: RNG(seed: 1)).scalars
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let noiseURL = dir.appendingPathComponent("noise.safetensors")
        try Safetensors.write(["noise": noise], to: noiseURL)

        let script = """
            import json, sys
            import fusion_torch as ft
            from safetensors.torch import load_file
            m = ft.load(sys.argv[1])
            texts, prompt = json.loads(sys.argv[3]), json.loads(sys.argv[4])
            x = load_file(sys.argv[2])["noise"]
            for t, t_next in [(1.0, 0.5), (0.5, 0.0)]:
                x = m.euler_step(prompt, x, t, t_next, cfg=3.0)
            print(json.dumps({"ids": [m.tokenizer.encode(s) for s in texts], "decoded": m.tokenizer.decode(prompt[1:]),
                              "logits": m.logits(prompt).flatten().tolist(), "sampled": x.flatten().tolist()}))
            """
        let texts = String(decoding: try JSONSerialization.data(withJSONObject: Self.texts), as: UTF8.self)
        guard let py = try python(script, [folder, noiseURL.path, texts, "\(prompt.map(Int.init))"]) else { return }
        #expect(py["ids"] as? [[Int]] == Self.texts.map { run.tokenizer.encode($0).map(Int.init) }, "the tokenizer's ids")
        #expect(py["decoded"] as? String == Self.texts[0])
        let (dLogits, scale) = worst(logits, py["logits"] as! [Double])
        print("fusion_torch Transfusion: logits within \(dLogits) (largest \(scale))")
        #expect(dLogits <= 1e-4 * max(scale, 1))
        let (dSample, sampleScale) = worst(sampled, py["sampled"] as! [Double])
        print("fusion_torch Transfusion: two guided Euler steps within \(dSample) (largest |x| \(sampleScale))")
        #expect(dSample <= 1e-4 * max(sampleScale, 1))
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func aChameleonExportMatchesFusion() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-py-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = FusionBinary.packageRoot.path
        try """
            name: cham
            seed: 2
            model: {kind: chameleon, preset: nano, qk_norm: true, image_tokenizer: \(root)/checkpoints/vq-shapes.safetensors}
            data: {tokenizer_vocab: 300, seq_len: 96, pool: 64}
            optimizer: {lr: 3.0e-3, warmup_steps: 1}
            train: {steps: 4, batch_size: 4, log_every: 1, checkpoint_every: 4, threads: 1}
            eval: {every: 0, documents: 8, shapes_eval: 0}
            sample: {every: 0, prompts: []}
            """.write(to: dir.appendingPathComponent("cham.yaml"), atomically: true, encoding: .utf8)
        let trained = try FusionBinary.run(["train", "cham.yaml", "--runs", "runs"], in: dir)
        try #require(trained.status == 0, "\(trained.stderr)")
        let exported = try FusionBinary.run(["export", "--checkpoint", "runs/cham", "--out", "cham-export"], in: dir)
        try #require(exported.status == 0, "\(exported.stderr)")
        let folder = dir.appendingPathComponent("cham-export").path
        let run = try ChameleonRun(path: folder)
        let c = run.model.config
        let prompt = [SpecialTokens.bos] + run.tokenizer.encode("a red circle")
        let sequence = prompt + [SpecialTokens.boi] + (0..<8).map { c.token(code: Int32($0 * 61 % c.codebookSize)) }
        let t = sequence.count
        let logits = withoutGrad {
            run.model.lm(Tensor(ints: sequence, shape: [1, t]), mask: .causal(batch: 1, queries: t), positions: Tensor(ints: (0..<t).map(Int32.init)))
        }.scalars
        let codes = run.model.sampleCodes(prompt: prompt, count: 1, options: SamplingOptions(temperature: 0), cfgScale: 3, rng: RNG(seed: 0)).intScalars

        let script = """
            import json, sys
            import fusion_torch as ft
            m = ft.load(sys.argv[1])
            seq, prompt = json.loads(sys.argv[2]), json.loads(sys.argv[3])
            print(json.dumps({"logits": m.logits(seq).flatten().tolist(), "codes": m.greedy_codes(prompt, cfg=3.0)}))
            """
        guard let py = try python(script, [folder, "\(sequence.map(Int.init))", "\(prompt.map(Int.init))"]) else { return }
        let (d, scale) = worst(logits, py["logits"] as! [Double])
        print("fusion_torch Chameleon: logits over text and codes within \(d) (largest \(scale))")
        #expect(d <= 1e-4 * max(scale, 1))
        #expect(py["codes"] as? [Int] == codes.map(Int.init), "greedy guided codes")
    }
}
