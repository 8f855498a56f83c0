// `fusion export --format hf`: a trained decoder as a standard Hugging Face checkpoint that
// `transformers` loads with AutoModelForCausalLM and AutoTokenizer, no Fusion needed.
//
// Fusion's decoder is Llama's: pre-norm RMSNorm blocks, rotate-half RoPE, SwiGLU, no biases, an
// untied head. Without QK-norm it is `LlamaForCausalLM`; with QK-norm (an RMSNorm of width head_dim
// on each head's queries and keys, before RoPE) it is exactly `Qwen3ForCausalLM`'s attention. The
// fused projections are split (qkv → q/k/v_proj, w13 → gate/up_proj) and the names mapped.
//
// What maps, by family:
//   lm           the whole model.
//   chameleon    the whole model: its vocabulary is text ids, then image codes (then audio codes),
//                so HF reproduces its logits for any sequence, images included; turning codes
//                into pixels needs the VQ decoder (vq.safetensors, copied beside).
//   transfusion  the text path only (embedding, decoder, text head): a text-only language model.
//                The image patch layers, timestep embedding and diffusion head have no HF form.
import Foundation
import NN
import Tensors
import Text
import Training

public enum HuggingFaceExport {
    /// What an export wrote, for the command's report.
    public struct Report {
        public var architecture: String
        public var vocab: Int
        public var parameters: Int
        /// Checkpoint tensors with no place in the HF model (Transfusion's image and audio layers).
        public var leftOut: [String]
    }

    /// Writes the model `path` names (a run, a checkpoint folder or a `fusion export` folder) to
    /// `out` as a Hugging Face checkpoint, replacing `out` atomically.
    @discardableResult
    public static func export(checkpoint path: String, to out: String, ema: Bool = true, float16: Bool = false) throws -> Report {
        let saved = try SavedModel(path: path, ema: ema)
        let kind = (try? JSONDecoder().decode(KindOnly.self, from: saved.configData))?.kind ?? "?"
        let prefix: String, vocab: Int, decoder: DecoderConfig, tokenizerText: String, context: Int?
        var layout: [String: Any] = ["family": kind]
        let family = try ModelFamily.saved(kind, path: path, needs: .huggingFace, for: "be exported with --format hf")
        switch family {
        case .lm:
            let c = try saved.config(LMTask.Config.self, family: .lm, problem: { $0.decoder.problem })
            (prefix, vocab, decoder, tokenizerText, context) = ("", c.vocab, c.decoder, c.tokenizer, c.contextLength)
        case .transfusion:
            let c = try saved.config(TransfusionTask.Config.self, family: .transfusion, problem: { $0.model.problem })
            (prefix, vocab, decoder, tokenizerText, context) = ("", c.model.vocab, c.model.decoder, c.tokenizer, c.contextLength)
            layout["note"] = "the text path of a Transfusion model: image and audio spans need Fusion"
        case .chameleon:
            let c = try saved.config(ChameleonTask.Config.self, family: .chameleon, problem: { $0.model.problem })
            (prefix, vocab, decoder, tokenizerText, context) = ("lm.", c.model.vocab, c.model.decoder, c.tokenizer, c.contextLength)
            layout["image_code_offset"] = c.model.textVocab
            layout["image_codebook_size"] = c.model.codebookSize
            layout["image_grid"] = c.model.gridSize
            layout["image_size"] = c.imageSize
            layout["vq"] = "vq.safetensors"
            if c.model.hasAudio { layout["audio_code_offset"] = c.model.textVocab + c.model.codebookSize; layout["audio_codebook_size"] = c.model.audioCodebookSize }
        case let family:
            preconditionFailure("HuggingFaceExport: the \(family) family exports to Hugging Face but has no mapping here")
        }
        let tokenizer = try BPETokenizer.decode(Foundation.Data(tokenizerText.utf8), name: "the tokenizer in \(path)'s config.json")
        let (weights, leftOut) = try mapWeights(saved.weights, prefix: prefix, decoder: decoder, path: path)
        let qwen = decoder.qkNorm
        let architecture = qwen ? "Qwen3ForCausalLM" : "LlamaForCausalLM"
        var config: [String: Any] = [
            "architectures": [architecture], "model_type": qwen ? "qwen3" : "llama",
            "vocab_size": vocab, "hidden_size": decoder.dim, "intermediate_size": decoder.mlpHidden,
            "num_hidden_layers": decoder.layers, "num_attention_heads": decoder.heads, "num_key_value_heads": decoder.heads,
            "head_dim": decoder.headDim, "hidden_act": "silu", "max_position_embeddings": max(context ?? 2048, 2048),
            "rms_norm_eps": Double(decoder.normEps), "rope_theta": Double(decoder.ropeBase),
            "rope_parameters": ["rope_type": "default", "rope_theta": Double(decoder.ropeBase)],
            "attention_bias": false, "attention_dropout": 0.0, "mlp_bias": false, "tie_word_embeddings": false,
            "initializer_range": 0.02, "use_cache": true, "torch_dtype": float16 ? "float16" : "float32",
            "bos_token_id": Int(SpecialTokens.bos), "eos_token_id": Int(SpecialTokens.eos), "pad_token_id": Int(SpecialTokens.pad),
        ]
        if qwen { config["use_sliding_window"] = false; config["sliding_window"] = NSNull(); config["max_window_layers"] = decoder.layers }
        let specials = ["bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"]
        var tokenizerConfig: [String: Any] = specials
        tokenizerConfig["tokenizer_class"] = "PreTrainedTokenizerFast"
        tokenizerConfig["model_max_length"] = context ?? 2048
        tokenizerConfig["add_bos_token"] = false
        tokenizerConfig["clean_up_tokenization_spaces"] = false
        layout["context_length"] = context ?? NSNull()
        layout["exported_from"] = saved.checkpoint.path
        layout["weights"] = ema ? "ema (when the run kept one)" : "model"
        layout["left_out"] = leftOut

        let fm = FileManager.default
        try ModelExport.writeFolder(out) { tmp in
            func json(_ object: Any, _ name: String) throws {
                try atomicWrite(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]),
                                to: tmp.appendingPathComponent(name))
            }
            try Safetensors.write(weights, metadata: ["format": "pt"], dtype: float16 ? .f16 : .f32, to: tmp.appendingPathComponent("model.safetensors"))
            try json(config, "config.json")
            try json(["bos_token_id": Int(SpecialTokens.bos), "eos_token_id": Int(SpecialTokens.eos), "pad_token_id": Int(SpecialTokens.pad)],
                     "generation_config.json")
            try atomicWrite(try tokenizer.huggingFaceJSON(), to: tmp.appendingPathComponent("tokenizer.json"))
            try json(tokenizerConfig, "tokenizer_config.json")
            try json(specials, "special_tokens_map.json")
            try json(layout, "fusion.json")
            // Provenance and the pieces HF has no place for: the recipe, Chameleon's VQ decoder.
            for name in ["recipe.yaml"] + (family == .chameleon ? ["vq.safetensors"] : []) {
                let source = [saved.checkpoint, saved.run].map { $0.appendingPathComponent(name) }.first { fm.fileExists(atPath: $0.path) }
                if let source { try fm.copyItem(at: source, to: tmp.appendingPathComponent(name)) }
            }
        }
        return Report(architecture: architecture, vocab: vocab, parameters: weights.values.map(\.count).reduce(0, +), leftOut: leftOut)
    }

    struct KindOnly: Decodable { var kind: String }

    /// Fusion's decoder tensors under HF names, fused projections split; and the tensors left out.
    static func mapWeights(_ w: [String: Tensor], prefix: String, decoder c: DecoderConfig, path: String) throws -> ([String: Tensor], [String]) {
        var used = Set<String>()
        func take(_ name: String) throws -> Tensor {
            guard let t = w[prefix + name] else { throw RunError.checkpoint(path, "no tensor '\(prefix + name)' in the model weights") }
            used.insert(prefix + name)
            return t
        }
        /// Rows `range` of a (out, in) weight, as its own tensor.
        func rows(_ t: Tensor, _ range: Range<Int>) -> Tensor {
            let cols = t.shape[1]
            return Tensor(Array(t.scalars[range.lowerBound * cols..<range.upperBound * cols]), shape: [range.count, cols])
        }
        let d = c.dim, h = c.mlpHidden
        var out: [String: Tensor] = [
            "model.embed_tokens.weight": try take("embed.weight"),
            "model.norm.weight": try take("decoder.norm.weight"),
            "lm_head.weight": try take("head.weight"),
        ]
        for i in 0..<c.layers {
            let f = "decoder.blocks.\(i).", t = "model.layers.\(i)."
            let qkv = try take(f + "attn.qkv.weight"), w13 = try take(f + "mlp.w13.weight")
            out[t + "input_layernorm.weight"] = try take(f + "attnNorm.weight")
            out[t + "post_attention_layernorm.weight"] = try take(f + "mlpNorm.weight")
            out[t + "self_attn.q_proj.weight"] = rows(qkv, 0..<d)
            out[t + "self_attn.k_proj.weight"] = rows(qkv, d..<2 * d)
            out[t + "self_attn.v_proj.weight"] = rows(qkv, 2 * d..<3 * d)
            out[t + "self_attn.o_proj.weight"] = try take(f + "attn.proj.weight")
            if c.qkNorm {
                out[t + "self_attn.q_norm.weight"] = try take(f + "attn.qNorm.weight")
                out[t + "self_attn.k_norm.weight"] = try take(f + "attn.kNorm.weight")
            }
            out[t + "mlp.gate_proj.weight"] = rows(w13, 0..<h)
            out[t + "mlp.up_proj.weight"] = rows(w13, h..<2 * h)
            out[t + "mlp.down_proj.weight"] = try take(f + "mlp.w2.weight")
        }
        return (out, w.keys.filter { !used.contains($0) }.sorted())
    }
}

/// A task whose weights started from a checkpoint (`train.init_from`): the line `fusion train`
/// prints about it.
public protocol InitialisedFrom {
    var initialisedFrom: String? { get }
}

/// `train.init_from` naming a Hugging Face checkpoint folder: a Llama- (or Qwen3-) shaped decoder
/// of the recipe's size initialises an lm or Transfusion model (the inverse of the export's map).
/// The run keeps its own tokenizer; the embedding and head load only when the vocabulary sizes
/// agree (then row i is token i of the run's tokenizer, which is the export's when the checkpoint
/// came from `fusion export --format hf`).
public enum HuggingFaceImport {
    /// What was loaded, for the run's start-up line.
    public struct Loaded {
        /// The model's tensors under Fusion's names (`prefix` included).
        public var weights: [String: Tensor]
        public var summary: String
    }

    /// The decoder of the checkpoint at `path` under Fusion's names, after checking it has the
    /// shape of `decoder` (and, for the embedding and head, `vocab` rows). Errors name
    /// `train.init_from`, the HF config key and the recipe key to change.
    public static func load(_ path: String, decoder c: DecoderConfig, vocab: Int, prefix: String = "") throws -> Loaded {
        func fail(_ message: String) -> RecipeError {
            .invalidValue(.init(file: "train.init_from"), path: "train.init_from", message: "\(path): \(message)")
        }
        let folder = URL(fileURLWithPath: path)
        let configURL = folder.appendingPathComponent("config.json")
        guard let data = try? Foundation.Data(contentsOf: configURL),
              let hf = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw fail("config.json is missing or not JSON") }
        let type = hf["model_type"] as? String ?? "?"
        guard ["llama", "qwen3"].contains(type) else {
            throw fail("model_type '\(type)' is not a Llama-shaped decoder Fusion can load (llama, or qwen3 for QK-norm)")
        }
        func int(_ key: String) -> Int? { (hf[key] as? NSNumber)?.intValue }
        let checks: [(String, Int?, Int, String)] = [
            ("hidden_size", int("hidden_size"), c.dim, "model.dim"),
            ("num_hidden_layers", int("num_hidden_layers"), c.layers, "model.layers"),
            ("num_attention_heads", int("num_attention_heads"), c.heads, "model.heads"),
            ("num_key_value_heads", int("num_key_value_heads") ?? int("num_attention_heads"), c.heads, "model.heads (grouped-query attention is not supported)"),
            ("intermediate_size", int("intermediate_size"), c.mlpHidden, "model.mlp_hidden"),
            ("head_dim", int("head_dim") ?? c.headDim, c.headDim, "model.dim / model.heads"),
        ]
        for (key, theirs, ours, recipeKey) in checks where theirs != ours {
            throw fail("\(key) is \(theirs.map(String.init) ?? "missing"), the recipe's decoder has \(ours) (\(recipeKey))")
        }
        if (type == "qwen3") != c.qkNorm {
            throw fail(c.qkNorm ? "a \(type) model has no QK-norm: set model.qk_norm: false" : "a qwen3 model has QK-norm: set model.qk_norm: true")
        }
        if hf["attention_bias"] as? Bool == true || hf["mlp_bias"] as? Bool == true { throw fail("has biases, which Fusion's decoder does not") }
        let rope = (hf["rope_theta"] as? NSNumber)?.floatValue ?? ((hf["rope_parameters"] as? [String: Any])?["rope_theta"] as? NSNumber)?.floatValue ?? 10000
        if let scaling = hf["rope_scaling"], !(scaling is NSNull) { throw fail("uses rope_scaling, which Fusion's RoPE does not") }
        guard rope == c.ropeBase else { throw fail("rope_theta is \(rope), the recipe's decoder uses \(c.ropeBase)") }

        let tensors = try readWeights(folder, fail: fail)
        func take(_ name: String) throws -> Tensor {
            guard let t = tensors[name] else { throw fail("no tensor '\(name)' in its weights") }
            return t
        }
        var out: [String: Tensor] = [prefix + "decoder.norm.weight": try take("model.norm.weight")]
        for i in 0..<c.layers {
            let f = prefix + "decoder.blocks.\(i).", t = "model.layers.\(i)."
            out[f + "attnNorm.weight"] = try take(t + "input_layernorm.weight")
            out[f + "mlpNorm.weight"] = try take(t + "post_attention_layernorm.weight")
            out[f + "attn.qkv.weight"] = try stack([take(t + "self_attn.q_proj.weight"), take(t + "self_attn.k_proj.weight"), take(t + "self_attn.v_proj.weight")])
            out[f + "attn.proj.weight"] = try take(t + "self_attn.o_proj.weight")
            if c.qkNorm {
                out[f + "attn.qNorm.weight"] = try take(t + "self_attn.q_norm.weight")
                out[f + "attn.kNorm.weight"] = try take(t + "self_attn.k_norm.weight")
            }
            out[f + "mlp.w13.weight"] = try stack([take(t + "mlp.gate_proj.weight"), take(t + "mlp.up_proj.weight")])
            out[f + "mlp.w2.weight"] = try take(t + "mlp.down_proj.weight")
        }
        let theirVocab = int("vocab_size") ?? -1
        var summary = "\(type) decoder (\(c.layers) layers × \(c.dim)) from \(path)"
        if theirVocab == vocab {
            out[prefix + "embed.weight"] = try take("model.embed_tokens.weight")
            let tied = hf["tie_word_embeddings"] as? Bool ?? false
            out[prefix + "head.weight"] = tied ? out[prefix + "embed.weight"]! : try take("lm_head.weight")
            summary += ", with its embedding and head (\(vocab) tokens\(tied ? ", tied" : ""))"
        } else {
            summary += "; embedding and head start fresh (its vocabulary has \(theirVocab) tokens, the run's \(vocab))"
        }
        for (name, t) in out where t.dtype != .float32 || t.shape.count < 1 {
            throw fail("tensor for \(name) is not float32 after reading (\(t.dtype))")
        }
        return Loaded(weights: out, summary: summary)
    }

    /// model.safetensors, or the shards model.safetensors.index.json lists.
    static func readWeights(_ folder: URL, fail: (String) -> RecipeError) throws -> [String: Tensor] {
        let single = folder.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return try Safetensors.read(single).tensors }
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        guard let data = try? Foundation.Data(contentsOf: index),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = object["weight_map"] as? [String: String] else {
            throw fail("neither model.safetensors nor model.safetensors.index.json is readable (PyTorch .bin weights: re-save with safe_serialization=True)")
        }
        var out: [String: Tensor] = [:]
        for shard in Set(map.values).sorted() { out.merge(try Safetensors.read(folder.appendingPathComponent(shard)).tensors) { $1 } }
        return out
    }

    /// Weights (rows × cols) stacked by rows, as the fused projections hold them.
    static func stack(_ parts: [Tensor]) throws -> Tensor {
        Tensor(parts.flatMap(\.scalars), shape: [parts.map { $0.shape[0] }.reduce(0, +), parts[0].shape[1]])
    }
}
