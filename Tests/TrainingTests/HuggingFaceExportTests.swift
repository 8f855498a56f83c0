// `fusion export --format hf`: trained lm (with and without QK-norm) and Chameleon runs as Hugging
// Face checkpoints. Always checked here: the config, the safetensors metadata and names, the split of
// the fused projections. Where Python has `transformers` and `torch`: AutoModelForCausalLM and
// AutoTokenizer load the folder, the tokenizer gives Fusion's ids, and the logits match Fusion's.
import Foundation
import NN
import Tensors
import Testing
import TestSupport
import Text
@testable import Models
@testable import Training

@Suite(.serialized) struct HuggingFaceExportTests {
    static let texts = ["a red circle", "two blue squares on the left,  and  a   tiny?! x\n", "héllo wörld 123 ... ", "   ", "\t\n"]

    /// Trains `recipe` a few steps through the binary and exports it; returns the run and export folders.
    func trainAndExport(_ recipe: String, name: String, in dir: URL) throws -> (run: URL, hf: URL) {
        let recipeURL = dir.appendingPathComponent("\(name).yaml")
        try recipe.write(to: recipeURL, atomically: true, encoding: .utf8)
        let trained = try FusionBinary.run(["train", recipeURL.path, "--runs", "runs"], in: dir)
        try #require(trained.status == 0, "\(trained.stderr)")
        let exported = try FusionBinary.run(["export", "--checkpoint", "runs/\(name)", "--out", "hf/\(name)", "--format", "hf"], in: dir)
        try #require(exported.status == 0, "\(exported.stderr)")
        return (dir.appendingPathComponent("runs/\(name)"), dir.appendingPathComponent("hf/\(name)"))
    }

    /// Runs the Python side: loads `hf` with transformers, encodes the texts and computes logits
    /// for `ids`; nil (with a note) when the packages are missing.
    func python(_ hf: URL, ids: [Int32]) throws -> (encodings: [[Int]], logits: [[Double]])? {
        let script = """
            import json, sys
            try:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as e:
                print("SKIP", e); sys.exit(0)
            d, ids, texts = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
            tok = AutoTokenizer.from_pretrained(d)
            with torch.no_grad():
                logits = model(torch.tensor([ids])).logits[0]
            print(json.dumps({"encodings": [tok.encode(t, add_special_tokens=False) for t in texts],
                              "logits": logits.tolist(), "type": type(model).__name__}))
            """
        let texts = String(decoding: try JSONSerialization.data(withJSONObject: Self.texts), as: UTF8.self)
        guard let (status, data, errText) = Python.run(script, [hf.path, "\(ids.map(Int.init))", texts]) else {
            print("python3 not available: transformers check skipped"); return nil
        }
        let text = String(decoding: data, as: UTF8.self)
        if text.hasPrefix("SKIP") { print("transformers or torch not installed (\(text.dropFirst(5).trimmingCharacters(in: .newlines))): check skipped"); return nil }
        try #require(status == 0, "transformers failed on \(hf.path):\n\(errText)")
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (json["encodings"] as! [[Int]], json["logits"] as! [[Double]])
    }

    /// Fusion's logits of `ids` (one causal row) from `lm`.
    func fusionLogits(_ lm: DecoderLM, _ ids: [Int32]) -> [[Float]] {
        let t = ids.count
        let logits = withoutGrad { lm(Tensor(ints: ids, shape: [1, t]), mask: .causal(batch: 1, queries: t), positions: Tensor(ints: (0..<t).map(Int32.init))) }
        let v = logits.shape[2], s = logits.scalars
        return (0..<t).map { Array(s[$0 * v..<($0 + 1) * v]) }
    }

    func expectMatch(_ fusion: [[Float]], _ hf: [[Double]], _ what: String) {
        #expect(fusion.count == hf.count && fusion.first?.count == hf.first?.count, "\(what): shapes differ")
        let scale = fusion.flatMap { $0 }.map { abs(Double($0)) }.max() ?? 1
        let worst = zip(fusion, hf).flatMap { zip($0, $1).map { abs(Double($0) - $1) } }.max() ?? .infinity
        print("\(what): transformers' logits within \(worst) of Fusion's (largest |logit| \(scale))")
        #expect(worst <= 1e-4 * max(scale, 1), "\(what): logits differ by \(worst) (largest |logit| \(scale))")
    }

    static func lmRecipe(_ name: String, qkNorm: Bool) -> String {
        """
        name: \(name)
        seed: 5
        model: {kind: lm, preset: nano, qk_norm: \(qkNorm)}
        data: {tokenizer_vocab: 330, seq_len: 32}
        optimizer: {lr: 3.0e-3, warmup_steps: 1}
        train: {steps: 3, batch_size: 4, log_every: 1, checkpoint_every: 3, ema_decay: 0.5}
        eval: {every: 0, batches: 1}
        sample: {every: 0, max_tokens: 4}
        """
    }

    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"),
          arguments: [false, true])
    func anLMExportLoadsInTransformersWithFusionsIdsAndLogits(qkNorm: Bool) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (run, hf) = try trainAndExport(Self.lmRecipe("hf", qkNorm: qkNorm), name: "hf", in: dir)

        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: hf.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(config["model_type"] as? String == (qkNorm ? "qwen3" : "llama"))
        #expect(config["hidden_size"] as? Int == 64 && config["num_hidden_layers"] as? Int == 2 && config["tie_word_embeddings"] as? Bool == false)
        let (tensors, metadata) = try Safetensors.read(hf.appendingPathComponent("model.safetensors"))
        #expect(metadata["format"] == "pt")
        #expect(tensors.keys.contains("model.layers.1.mlp.gate_proj.weight") && tensors.keys.contains("lm_head.weight"))
        #expect(tensors.keys.contains("model.layers.0.self_attn.q_norm.weight") == qkNorm)
        // The fused projections, split by rows: q, k, v of qkv and gate, up of w13.
        let saved = try SavedModel(path: run.path, ema: true)
        let qkv = saved.weights["decoder.blocks.0.attn.qkv.weight"]!.scalars, w13 = saved.weights["decoder.blocks.0.mlp.w13.weight"]!.scalars
        #expect(tensors["model.layers.0.self_attn.q_proj.weight"]!.scalars + tensors["model.layers.0.self_attn.k_proj.weight"]!.scalars
                + tensors["model.layers.0.self_attn.v_proj.weight"]!.scalars == qkv)
        #expect(tensors["model.layers.0.mlp.gate_proj.weight"]!.scalars + tensors["model.layers.0.mlp.up_proj.weight"]!.scalars == w13)

        let c = try saved.config(LMTask.Config.self, family: .lm, problem: { _ in nil })
        let tokenizer = try BPETokenizer.decode(Data(c.tokenizer.utf8), name: "config")
        let lm = DecoderLM(vocab: c.vocab, config: c.decoder, rng: RNG(seed: 0))
        try lm.load(saved.weights)
        let ids = [SpecialTokens.bos] + tokenizer.encode(Self.texts[1]) + [SpecialTokens.eos]
        guard let reference = try python(hf, ids: ids) else { return }
        #expect(reference.encodings == Self.texts.map { tokenizer.encode($0).map(Int.init) }, "the HF tokenizer's ids are Fusion's")
        expectMatch(fusionLogits(lm, ids), reference.logits, qkNorm ? "Qwen3 (QK-norm)" : "Llama")
    }

    /// A Chameleon model is a decoder over text ids then image codes: HF gives its logits for a
    /// captioned image's tokens too. A Transfusion model exports its text path, the rest listed.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func chameleonExportsWholeAndTransfusionItsTextPath() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = FusionBinary.packageRoot.path
        let common = """
            data: {tokenizer_vocab: 300, seq_len: 96, pool: 64}
            optimizer: {lr: 1.0e-3, warmup_steps: 1}
            train: {steps: 2, batch_size: 2, log_every: 1, checkpoint_every: 2, threads: 1}
            eval: {every: 0, documents: 8, shapes_eval: 0}
            sample: {every: 0, prompts: []}
            """
        let (run, hf) = try trainAndExport("""
            name: cham
            model: {kind: chameleon, preset: nano, qk_norm: true, image_tokenizer: \(root)/checkpoints/vq-shapes.safetensors}
            \(common)
            """, name: "cham", in: dir)
        let layout = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: hf.appendingPathComponent("fusion.json"))) as? [String: Any])
        #expect(FileManager.default.fileExists(atPath: hf.appendingPathComponent("vq.safetensors").path))
        let saved = try SavedModel(path: run.path, ema: true)
        let c = try saved.config(ChameleonTask.Config.self, family: .chameleon, problem: { _ in nil })
        #expect(layout["image_code_offset"] as? Int == c.model.textVocab && (layout["left_out"] as? [String])?.isEmpty == true)
        let model = Chameleon(c.model, rng: RNG(seed: 0))
        try model.load(saved.weights)
        let tokenizer = try BPETokenizer.decode(Data(c.tokenizer.utf8), name: "config")
        let codes = (0..<c.model.tokensPerImage).map { Int32(c.model.textVocab + ($0 * 37) % c.model.codebookSize) }
        let ids = [SpecialTokens.bos] + tokenizer.encode("a red circle") + [SpecialTokens.boi] + codes + [SpecialTokens.eoi, SpecialTokens.eos]
        if let reference = try python(hf, ids: ids) {
            expectMatch(fusionLogits(model.lm, ids), reference.logits, "Chameleon over text and image codes")
        }

        let (_, tfHF) = try trainAndExport("""
            name: tf
            model: {kind: transfusion, preset: nano, image_tokenizer: \(root)/checkpoints/vae-shapes.safetensors, patch_size: 2}
            diffusion: {target: flow, sampler: euler, sample_steps: 2}
            \(common)
            """, name: "tf", in: dir)
        let tfLayout = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: tfHF.appendingPathComponent("fusion.json"))) as? [String: Any])
        let leftOut = tfLayout["left_out"] as? [String] ?? []
        #expect(!leftOut.isEmpty && leftOut.allSatisfy { !$0.hasPrefix("decoder.") && !$0.hasPrefix("embed.") && !$0.hasPrefix("head.") }, "\(leftOut)")
        let sampled = try FusionBinary.run(["sample", "--checkpoint", tfHF.path, "--prompt", "a red circle", "--out", "x.png"], in: dir)
        #expect(sampled.status != 0 && sampled.stderr.contains("a Hugging Face checkpoint"), "\(sampled.stderr)")
        let bad = try FusionBinary.run(["export", "--checkpoint", run.path, "--out", "x", "--format", "onnx"], in: dir)
        #expect(bad.status != 0 && bad.stderr.contains("--format must be fusion or hf"), "\(bad.stderr)")
    }

    /// The other way: an HF checkpoint of the recipe's size starts an lm run. Our own export
    /// round-trips exactly; a Llama that transformers made itself (random weights, norms off 1)
    /// gives its logits in Fusion; a checkpoint of another size is refused naming both keys.
    @Test(.enabled(if: FusionBinary.isBuilt, "needs .build/release/fusion (make test builds it)"))
    func aHuggingFaceCheckpointInitialisesAnLMRun() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-hf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (run, hf) = try trainAndExport(Self.lmRecipe("src", qkNorm: true), name: "src", in: dir)
        let source = try SavedModel(path: run.path, ema: true).weights
        func task(_ overrides: [String], name: String) throws -> LMTask {
            let recipe = try Recipe.parse(Self.lmRecipe(name, qkNorm: true), file: "\(name).yaml", overrides: overrides)
            let runDir = RunDirectory(dir.appendingPathComponent("runs/\(name)"))
            try runDir.prepare(fresh: false)
            // The same tokenizer as the source run, so the vocabulary (and its rows) agree.
            try FileManager.default.copyItem(at: run.appendingPathComponent("tokenizer.json"), to: runDir.url.appendingPathComponent("tokenizer.json"))
            return try LMTask(recipe: recipe, run: runDir)
        }
        let started = try task(["train.init_from=\(hf.path)"], name: "from-hf")
        let weights = started.lm.stateDict()
        #expect(weights.keys.sorted() == source.keys.sorted())
        for (name, t) in source { #expect(weights[name]!.scalars == t.scalars, "\(name) round-trips") }
        #expect(started.initialisedFrom?.contains("with its embedding and head") == true, "\(started.initialisedFrom ?? "nil")")

        do { _ = try task(["train.init_from=\(hf.path)", "model.dim=96"], name: "wrong"); Issue.record("a 64-wide checkpoint started a 96-wide model") } catch {
            #expect("\(error)".contains("train.init_from") && "\(error)".contains("hidden_size is 64") && "\(error)".contains("model.dim"), "\(error)")
        }

        // A Llama made by transformers: its logits, in Fusion.
        let made = dir.appendingPathComponent("hf/made")
        let script = """
            import json, sys
            try:
                import torch
                from transformers import LlamaConfig, LlamaForCausalLM
            except ImportError as e:
                print("SKIP", e); sys.exit(0)
            torch.manual_seed(0)
            config = LlamaConfig(vocab_size=\(started.lm.vocab), hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=64,
                                 tie_word_embeddings=False, attention_bias=False, mlp_bias=False)
            model = LlamaForCausalLM(config).eval()
            with torch.no_grad():
                for name, p in model.named_parameters():
                    p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else 0.05 * torch.randn_like(p))
                ids = json.loads(sys.argv[2])
                logits = model(torch.tensor([ids])).logits[0]
            model.save_pretrained(sys.argv[1], safe_serialization=True)
            print(json.dumps(logits.tolist()))
            """
        let ids: [Int32] = [0, 40, 41, 300, 7, 263, 1]
        guard let (status, data, errText) = Python.run(script, [made.path, "\(ids.map(Int.init))"]) else {
            print("python3 not available: transformers check skipped"); return
        }
        if String(decoding: data, as: UTF8.self).hasPrefix("SKIP") { print("transformers or torch not installed: check skipped"); return }
        try #require(status == 0, "\(errText)")
        let reference = try #require(try JSONSerialization.jsonObject(with: data) as? [[Double]])
        let fromLlama = try task(["train.init_from=\(made.path)", "model.qk_norm=false"], name: "from-llama")
        expectMatch(fusionLogits(fromLlama.lm, ids), reference, "a transformers-made Llama, loaded by train.init_from")
    }
}
