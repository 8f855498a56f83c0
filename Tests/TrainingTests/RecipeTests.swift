// Recipe parsing: values and defaults, every error's file:line:col and key path, overrides, YAML round trip.
// Not the trainer's use of a recipe (TrainerTests).
import Diffusion
import Foundation
import Tensors
import Testing

@testable import Models
@testable import Training

/// Parses `yaml` as recipes/x.yaml and returns the error it fails with (nil if it parses).
private func recipeFailure(_ yaml: String, overrides: [String] = []) -> RecipeError? {
    do {
        _ = try Recipe.parse(yaml, file: "recipes/x.yaml", overrides: overrides)
        return nil
    } catch {
        return error as? RecipeError
    }
}

private func parseRecipe(_ yaml: String, overrides: [String] = []) throws -> Recipe {
    try Recipe.parse(yaml, file: "recipes/x.yaml", overrides: overrides)
}

/// The first error of `yaml` (a complete transfusion recipe apart from `diffusion`) with that section.
private func diffusionFailure(_ diffusion: String) -> String {
    let yaml = "name: d\nmodel: {kind: transfusion}\ntrain: {steps: 1}\ndiffusion: \(diffusion)\n"
    return recipeFailure(yaml).map { "\($0)" } ?? "no error"
}

@Suite struct DiffusionRules {
    @Test func samplerMustFitTheTargetAndStepsTheSchedule() {
        #expect(diffusionFailure("{target: eps, sampler: euler}")
            == "recipes/x.yaml:4:35: 'diffusion.sampler' euler does not fit target eps (use ddim or ddpm)")
        #expect(diffusionFailure("{target: flow}")
            == "recipes/x.yaml:4:21: 'diffusion.sampler' ddim does not fit target flow (use euler)")
        #expect(diffusionFailure("{steps: 100, sample_steps: 101}")
            == "recipes/x.yaml:4:39: 'diffusion.sample_steps' must be at most diffusion.steps (100), got 101")
        #expect(diffusionFailure("{target: flow, sampler: euler, steps: 10, sample_steps: 500}") == "no error")
        #expect(diffusionFailure("{target: v, sampler: ddpm, steps: 100, sample_steps: 100}") == "no error")
    }
}

private let minimalRecipe = """
    name: demo
    model:
      kind: lm
    train:
      steps: 10

    """

private let fullRecipe = """
    # A full recipe: every section present.
    name: tiny-lm
    seed: 7
    model:
      kind: transfusion
      preset: small
      dim: 128
      layers: 4
      heads: 4
      mlp_hidden: 512
      qk_norm: true
      rope_base: 10000      # an int where a float belongs is fine
      vocab_size: 1_000
      z_loss: 1e-4
    data:
      source: folder
      path: data/shapes
      image_size: 16
      tokenizer: tok.json
      tokenizer_vocab: 300
      seq_len: 64
    optimizer:
      name: sgd
      lr: 3e-3
      beta1: 0.8
      beta2: 0.99
      eps: 1e-6
      weight_decay: 0
      momentum: 0.5
      grad_clip: 0.5
      warmup_steps: 20
      schedule: linear
      min_lr_ratio: 0
    train:
      steps: 200
      batch_size: 8
      grad_accum: 2
      log_every: 5
      checkpoint_every: 50
      keep_checkpoints: 2
      ema_decay: 0.999
      threads: 2
    eval:
      every: 100
      batches: 2
    sample:
      every: 100
      prompts:
        - a red circle
        - "two squares: blue"
      temperature: 0.7
      top_k: 5
      max_tokens: 32

    """

/// One suite (so `--filter RecipeTests` finds it all), in four parts.
@Suite struct RecipeTests {}

extension RecipeTests {
    @Suite struct Parsing {
        @Test func fullRecipeHasEveryValue() throws {
            let r = try parseRecipe(fullRecipe)
            #expect(r.name == "tiny-lm" && r.seed == 7)
            #expect(r.model.kind == .transfusion && r.model.preset == .small)
            #expect(r.model.dim == 128 && r.model.layers == 4 && r.model.heads == 4 && r.model.mlpHidden == 512)
            #expect(r.model.qkNorm == true && r.model.ropeBase == 10000 && r.model.vocabSize == 1000)
            #expect(r.model.zLoss == 1e-4)
            #expect(r.data.source == .folder && r.data.path == "data/shapes" && r.data.imageSize == 16)
            #expect(r.data.tokenizer == "tok.json" && r.data.tokenizerVocab == 300 && r.data.seqLen == 64)
            #expect(r.optimizer.name == .sgd && r.optimizer.lr == 3e-3 && r.optimizer.beta1 == 0.8)
            #expect(r.optimizer.beta2 == 0.99 && r.optimizer.eps == 1e-6 && r.optimizer.weightDecay == 0)
            #expect(r.optimizer.momentum == 0.5 && r.optimizer.gradClip == 0.5 && r.optimizer.warmupSteps == 20)
            #expect(r.optimizer.schedule == .linear && r.optimizer.minLRRatio == 0)
            #expect(r.train.steps == 200 && r.train.batchSize == 8 && r.train.gradAccum == 2 && r.train.logEvery == 5)
            #expect(r.train.checkpointEvery == 50 && r.train.keepCheckpoints == 2 && r.train.emaDecay == 0.999)
            #expect(r.train.threads == 2)
            #expect(r.eval.every == 100 && r.eval.batches == 2)
            #expect(r.sample.every == 100 && r.sample.prompts == ["a red circle", "two squares: blue"])
            #expect(r.sample.temperature == 0.7 && r.sample.topK == 5 && r.sample.maxTokens == 32)
        }

        /// Every default, written out: the YAML the declarations gave before they were one per key.
        @Test func minimalRecipeGetsDefaults() throws {
            let r = try parseRecipe(minimalRecipe)
            #expect(r.yaml() == """
            name: demo
            seed: 0
            model:
              kind: lm
              preset: tiny
              z_loss: 0.0
              patch_size: 2
              patchifier: linear
              unet_channels: 64
            diffusion:
              schedule: cosine
              steps: 1000
              target: eps
              loss_weight: 5.0
              image_first: 0.2
              image_first_max_t: 500
              caption_dropout: 0.1
              causal_spans: false
              sampler: ddim
              sample_steps: 50
              cfg: 3.0
              clip_x0: 5.0
              instruction_dropout: 0.1
              source_dropout: 0.05
            data:
              source: shapes
              image_size: 32
              held_out: 0.1
              skip_bad: false
              text: []
              text_fraction: 0.0
              tokenizer_vocab: 512
              seq_len: 128
              pool: 0
              docs_per_row: 0
              edit_fraction: 0.0
              speech_fraction: 0.0
              speech_mix: [1, 1, 1]
              speech_wpm: 200
              audio_patches: 40
              audio_sample_rate: 8000
              audio_fft: 256
              audio_hop: 128
              audio_mels: 32
              audio_frames_per_patch: 4
              audio_codebook: 256
            optimizer:
              name: adamw
              lr: 0.0003
              beta1: 0.9
              beta2: 0.95
              eps: 1e-08
              weight_decay: 0.1
              momentum: 0.9
              grad_clip: 1.0
              warmup_steps: 100
              schedule: cosine
              min_lr_ratio: 0.1
            train:
              steps: 10
              batch_size: 16
              grad_accum: 1
              log_every: 10
              checkpoint_every: 500
              keep_checkpoints: 3
              ema_decay: 0.0
              matmul_precision: fp32
              on_nonfinite: skip
            eval:
              every: 0
              batches: 4
              documents: 1024
              shapes_eval: 0
              edits: 0
              speech: 0
              text_chunks: 256
            sample:
              every: 0
              prompts: []
              temperature: 1.0
              top_k: 0
              max_tokens: 64
            tokenizer:
              channels: 128
              downsample: 4
              patch_size: 4
              latent_channels: 8
              kl_weight: 1e-06
              groups: 8
              reconstruction: mse
              codebook_size: 512
              code_dim: 8
              commitment_weight: 0.25
              ema: true
              ema_decay: 0.99
              restart_after_steps: 32

            """)
            #expect(r.name == "demo" && r.model.kind == .lm && r.train.steps == 10 && r.optimizer.lr == 3e-4)
            #expect(r.model.dim == nil && r.data.tokenizer == nil && r.train.threads == nil && r.tokenizer.scales == nil)
        }

        @Test func nullAndEmptyValuesMeanAbsent() throws {
            let r = try parseRecipe(minimalRecipe + "eval:\ndata:\n  tokenizer: ~\n  seq_len: null\n")
            #expect(r.eval.batches == 4 && r.data.tokenizer == nil && r.data.seqLen == 128)
        }

        /// A key is one declaration: a section property without a field would be a setting no recipe
        /// can reach (and that no saved recipe records), so every stored property has exactly one.
        @Test func everySectionPropertyIsOneKey() throws {
            func check<S: RecipeSection>(_ type: S.Type) {
                let properties = Mirror(reflecting: S()).children.compactMap(\.label)
                let names = S.fields.map(\.key.name)
                #expect(properties.count == names.count, "\(S.self): \(properties.count) properties, \(names.count) keys")
                #expect(Set(names).count == names.count, "\(S.self) names a key twice")
                // Each field writes its own property: setting one key changes that key's value alone.
                let defaults = S().recipeValues
                for field in S.fields {
                    let other: RecipeSchema.Value
                    switch (field.key.type, defaults[field.key.name]) {
                    case (.int, .int(let x)?): other = .int(x + 1)
                    case (.int, nil): other = .int(7)
                    case (.float, let x): other = .float(Double(Float((x?.number ?? 0) + 0.5)))  // recipes hold Floats
                    case (.bool, .bool(let x)?): other = .bool(!x)
                    case (.bool, nil): other = .bool(true)
                    case (.string, _): other = .string("elsewhere")
                    case (.choice(let names), let x): other = .string(names.first { .string($0) != x } ?? names[0])
                    case (.strings, _): other = .strings(["x"])
                    case (.ints, _): other = .ints([7])
                    case (.section, _): continue
                    default: Issue.record("\(S.self).\(field.key.name): default \(String(describing: defaults[field.key.name]))"); continue
                    }
                    var section = S()
                    field.write(&section, other)
                    var expected = defaults
                    expected[field.key.name] = other
                    #expect(section.recipeValues == expected, "\(S.self).\(field.key.name)")
                }
            }
            check(Recipe.self); check(ModelSection.self); check(DiffusionSection.self); check(DataSection.self)
            check(OptimizerSection.self); check(TrainSection.self); check(EvalSection.self); check(SampleSection.self)
            check(TokenizerSection.self)
        }

        /// A section's JSON (a Transfusion checkpoint's `diffusion`) has the YAML key names; a key an
        /// older file lacks reads as its field says, and a key with no such word is an error naming it.
        @Test func sectionJSONUsesTheYAMLNamesAndNamesAMissingKey() throws {
            var d = DiffusionSection()
            d.clipX0 = 2; d.target = .flow
            let json = try JSONEncoder().encode(d)
            let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
            #expect(object["clip_x0"] as? Double == 2 && object["target"] as? String == "flow" && object.count == 14)
            #expect(try JSONDecoder().decode(DiffusionSection.self, from: json) == d)
            var old = object
            old["clip_x0"] = nil
            old["source_dropout"] = nil
            let before = try JSONDecoder().decode(DiffusionSection.self, from: JSONSerialization.data(withJSONObject: old))
            #expect(before.clipX0 == 0 && before.sourceDropout == 0.05)  // written before clipping existed: off
            old["cfg"] = nil
            do {
                _ = try JSONDecoder().decode(DiffusionSection.self, from: JSONSerialization.data(withJSONObject: old))
                Issue.record("a diffusion section without cfg decoded")
            } catch DecodingError.keyNotFound(let key, _) {
                #expect(key.stringValue == "cfg")
            }
            // Unset optionals are left out of the JSON, as of the YAML.
            let model = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ModelSection())) as? [String: Any] ?? [:]
            #expect(model["dim"] == nil && model["kind"] as? String == "lm" && model["unet_channels"] as? Int == 64)
        }

        @Test func everyRecipeInTheRepositoryLoadsAndRoundTrips() throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            let folder = root.appendingPathComponent("recipes")
            let files = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String } ?? []
            #expect(files.contains("compare/chameleon-tiny.yaml"))
            for file in files.sorted() where file.hasSuffix(".yaml") {
                let recipe = try Recipe.load(folder.appendingPathComponent(file).path)
                #expect(try Recipe.parse(recipe.yaml(), file: file) == recipe)
            }
        }

        @Test func loadsFromFile() throws {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-\(UUID()).yaml").path
            try minimalRecipe.write(toFile: path, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(try Recipe.load(path, overrides: ["train.steps=3"]).train.steps == 3)

            let error = #expect(throws: RecipeError.self) { try Recipe.load(path + ".missing") }
            #expect(error?.description.hasPrefix(path + ".missing: cannot read recipe") == true)
        }
    }
}

extension RecipeTests {
    @Suite struct Errors {
        @Test func typoedKeyNamesFileLineAndSuggestion() throws {
            let yaml = """
                name: demo
                model:
                  kind: lm
                train:
                  steps: 10
                data:
                  source: shapes
                eval:
                  every: 0
                optimizer:
                  name: adamw
                  lrr: 0.1
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description == "recipes/x.yaml:12:3: unknown key 'optimizer.lrr' (did you mean 'lr'?)")
            #expect(error.location.line == 12 && error.location.column == 3)
        }

        @Test func keyInTheWrongSectionSuggestsTheRightOne() throws {
            let error = try #require(recipeFailure(minimalRecipe + "lr: 0.1\n"))
            #expect(error.description == "recipes/x.yaml:6:1: unknown key 'lr' (did you mean 'optimizer.lr'?)")
        }

        @Test func stringWhereANumberBelongs() throws {
            let yaml = """
                name: x
                model:
                  kind: lm
                optimizer:
                  lr: 0.1
                train:
                  steps: ten
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description == #"recipes/x.yaml:7:10: 'train.steps' must be an integer, got "ten""#)
            let float = try #require(recipeFailure(minimalRecipe + "optimizer:\n  lr: fast\n"))
            #expect(float.description == #"recipes/x.yaml:7:7: 'optimizer.lr' must be a number, got "fast""#)
            let quoted = try #require(recipeFailure(minimalRecipe + "seed: \"3\"\n"))
            #expect(quoted.description.contains("recipes/x.yaml:6:7: 'seed' must be an integer, got \"3\" (quoted"))
            let list = try #require(recipeFailure(minimalRecipe + "sample:\n  prompts: hello\n"))
            #expect(list.description.contains("recipes/x.yaml:7:12: 'sample.prompts' must be a list of strings"))
        }

        @Test func badIndentationIsASyntaxErrorAtItsLine() throws {
            let yaml = """
                name: x
                model:
                  kind: lm
                optimizer:
                  lr: 0.1
                   beta1: 0.9
                train:
                  steps: 10
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description.hasPrefix("recipes/x.yaml:6:"))
            #expect(error.description.contains("YAML syntax error"))
            #expect(error.description.contains("near 'optimizer.beta1'"))
            #expect(error.description.contains("indentation"))
            #expect(error.location.line == 6)
        }

        @Test func unclosedBracketPointsWhereItOpened() throws {
            let yaml = """
                name: x
                model:
                  kind: lm
                train:
                  steps: 10
                sample:
                  prompts: [a, b
                  temperature: 1.0
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description.hasPrefix("recipes/x.yaml:7:12: YAML syntax error: "))
            #expect(error.description.contains("near 'sample.prompts'"))
            #expect(error.description.contains("close the list with ']'"))
        }

        @Test func missingStepsPointsAtTheTrainSection() throws {
            let yaml = """
                name: x
                model:
                  kind: lm
                train:
                  batch_size: 4
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description.hasPrefix("recipes/x.yaml:4:1: missing required key 'train.steps'"))
            #expect(error.description.contains("add 'steps: <integer>' under 'train:'"))
        }

        @Test func missingSectionHasNoLine() throws {
            let error = try #require(recipeFailure("name: x\ntrain:\n  steps: 10\n"))
            #expect(error.description.hasPrefix("recipes/x.yaml: missing required key 'model.kind'"))
            #expect(error.location.line == nil)
            let empty = try #require(recipeFailure(""))
            #expect(empty.description.hasPrefix("recipes/x.yaml: missing required key 'name'"))
        }

        @Test func folderSourceNeedsAPath() throws {
            let yaml = """
                name: x
                model:
                  kind: lm
                train:
                  steps: 10
                data:
                  source: folder
                  image_size: 32
                """
            let error = try #require(recipeFailure(yaml))
            #expect(error.description.hasPrefix("recipes/x.yaml:7:11: missing required key 'data.path'"))
            #expect(error.description.contains("needed when 'data.source' is folder"))
        }

        @Test func badChoiceSuggestsTheNearest() throws {
            let error = try #require(recipeFailure(minimalRecipe.replacingOccurrences(of: "kind: lm", with: "kind: lmm")))
            #expect(
                error.description
                    == #"recipes/x.yaml:3:9: 'model.kind' must be one of lm, transfusion, chameleon, var, vae, vq, msvq, classifier, clip, got "lmm" (did you mean 'lm'?)"#
            )
        }

        /// A preset is a choice too: a misspelt size stops at the recipe's line, not at model building.
        @Test func unknownPresetIsARecipeErrorWithItsLine() throws {
            let error = try #require(recipeFailure(minimalRecipe.replacingOccurrences(of: "kind: lm", with: "kind: lm\n  preset: tinny")))
            #expect(error.description.hasPrefix(#"recipes/x.yaml:4:11: 'model.preset' must be one of nano, tiny, small, base, ref, got "tinny" (did you mean 'tiny'?)"#),
                    "\(error)")
        }

        @Test func matmulPrecisionIsFP32OrBf16() throws {
            #expect(try parseRecipe(minimalRecipe).train.matmulPrecision == .fp32)
            if MatmulPrecision.bf16Available {
                #expect(try parseRecipe(minimalRecipe, overrides: ["train.matmul_precision=bf16"]).train.matmulPrecision == .bf16)
            } else {
                let error = try #require(recipeFailure(minimalRecipe, overrides: ["train.matmul_precision=bf16"]))
                #expect(error.description.contains("bf16 needs a CPU with AVX512-BF16"), "\(error)")
            }
            let error = try #require(recipeFailure(minimalRecipe, overrides: ["train.matmul_precision=fp16"]))
            #expect(error.description.contains("'train.matmul_precision' must be one of fp32, bf16, got \"fp16\""), "\(error)")
        }

        @Test func outOfRangeNumbersFailWithTheirLine() throws {
            let steps = try #require(recipeFailure(minimalRecipe.replacingOccurrences(of: "steps: 10", with: "steps: 0")))
            #expect(steps.description == "recipes/x.yaml:5:10: 'train.steps' must be > 0, got 0")
            let ratio = try #require(recipeFailure(minimalRecipe + "optimizer:\n  lr: 0.1\n  min_lr_ratio: 1.5\n"))
            #expect(ratio.description == "recipes/x.yaml:8:17: 'optimizer.min_lr_ratio' must be between 0 and 1, got 1.5")
            let lr = try #require(recipeFailure(minimalRecipe + "optimizer:\n  lr: 0\n"))
            #expect(lr.description.hasPrefix("recipes/x.yaml:7:7: 'optimizer.lr' must be > 0"))
            let seqLen = try #require(recipeFailure(minimalRecipe + "data:\n  seq_len: -4\n"))
            #expect(seqLen.description.hasPrefix("recipes/x.yaml:7:12: 'data.seq_len' must be > 0"))
            let nan = try #require(recipeFailure(minimalRecipe + "sample:\n  temperature: .nan\n"))
            #expect(nan.description.hasPrefix("recipes/x.yaml:7:16: 'sample.temperature' must be a number"))
        }

        @Test func duplicateKeysAreRejected() throws {
            let error = try #require(recipeFailure(minimalRecipe + "  steps: 20\n"))
            #expect(error.description == "recipes/x.yaml:6:3: duplicate key 'train.steps' (already set on line 5; keep one)")
        }

        @Test func sectionMustBeAMapping() throws {
            let error = try #require(recipeFailure("name: x\nmodel: lm\ntrain:\n  steps: 1\n"))
            #expect(error.description == #"recipes/x.yaml:2:8: 'model' must be a section of keys, got "lm""#)
            let list = try #require(recipeFailure("- a\n- b\n"))
            #expect(list.description.hasPrefix("recipes/x.yaml:1:1: a recipe must be a section of keys"))
        }
    }
}

extension RecipeTests {
    @Suite struct Overrides {
        @Test func overridesChangeValuesAndAddKeys() throws {
            let r = try parseRecipe(
                minimalRecipe,
                overrides: [
                    "train.steps=200", "model.qk_norm=true", "optimizer.lr=1e-3", "sample.prompts=[a, b c]",
                    "eval.every=5", "name=other run", "data.path=/tmp/x", "data.source=folder", "model.dim=64",
                    "model.dim=96",
                ])
            #expect(r.train.steps == 200 && r.model.qkNorm == true && r.optimizer.lr == 1e-3)
            #expect(r.sample.prompts == ["a", "b c"] && r.eval.every == 5 && r.name == "other run")
            #expect(r.data.source == .folder && r.data.path == "/tmp/x" && r.model.dim == 96)
        }

        @Test func emptyOverrideUnsetsAnOptionalKey() throws {
            let r = try parseRecipe(minimalRecipe, overrides: ["model.dim=64", "model.dim="])
            #expect(r.model.dim == nil)
        }

        @Test func unknownOverrideKeyNamesTheOverride() throws {
            let error = try #require(recipeFailure(minimalRecipe, overrides: ["train.stepz=5"]))
            #expect(error.description == "override 'train.stepz=5': unknown key 'train.stepz' (did you mean 'steps'?)")
            let section = try #require(recipeFailure(minimalRecipe, overrides: ["trian.steps=5"]))
            #expect(section.description == "override 'trian.steps=5': unknown key 'trian' (did you mean 'train'?)")
            let deep = try #require(recipeFailure(minimalRecipe, overrides: ["train.steps.max=5"]))
            #expect(deep.description.hasPrefix("override 'train.steps.max=5': unknown key 'train.steps.max'"))
        }

        @Test func badOverrideValuesNameTheOverride() throws {
            let type = try #require(recipeFailure(minimalRecipe, overrides: ["train.steps=ten"]))
            #expect(type.description == #"override 'train.steps=ten': 'train.steps' must be an integer, got "ten""#)
            let syntax = try #require(recipeFailure(minimalRecipe, overrides: ["sample.prompts=[a, b"]))
            #expect(syntax.description.hasPrefix("override 'sample.prompts=[a, b': YAML syntax error: "))
            let shape = try #require(recipeFailure(minimalRecipe, overrides: ["train.steps"]))
            #expect(shape.description == "override 'train.steps': expected key.path=value, e.g. train.steps=200")
            let folder = try #require(recipeFailure(minimalRecipe, overrides: ["data.source=folder"]))
            #expect(folder.description.hasPrefix("override 'data.source=folder': missing required key 'data.path'"))
        }
    }
}

extension RecipeTests {
    @Suite struct WritingYAML {
        @Test func roundTripsFullAndMinimal() throws {
            for yaml in [fullRecipe, minimalRecipe] {
                let r = try parseRecipe(yaml)
                #expect(try Recipe.parse(r.yaml(), file: "resolved.yaml") == r)
            }
        }

        @Test func roundTripsAwkwardStringsAndNumbers() throws {
            var r = try parseRecipe(minimalRecipe)
            r.name = "run: #1 \"quoted\" \\ é"
            r.data.path = "null"
            r.data.tokenizer = "true"
            r.sample.prompts = ["", "yes", "- dash", "line\nbreak", "tab\there", "  spaced  ", "[x]", "123"]
            r.optimizer.lr = 1e-8
            r.optimizer.eps = .leastNormalMagnitude
            r.optimizer.beta2 = 0.999_999_94
            r.model.ropeBase = 500_000
            r.seed = 1 << 40
            let written = r.yaml()
            #expect(try Recipe.parse(written, file: "resolved.yaml") == r)
        }

        @Test func writesReadableYAMLInSchemaOrder() throws {
            let text = try parseRecipe(minimalRecipe, overrides: ["model.qk_norm=true", "sample.prompts=[a circle]"]).yaml()
            let lines = text.split(separator: "\n").map(String.init)
            #expect(Array(lines.prefix(5)) == ["name: demo", "seed: 0", "model:", "  kind: lm", "  preset: tiny"])
            #expect(lines.contains("  qk_norm: true"))
            #expect(!lines.contains { $0.hasPrefix("  dim:") })  // unset optionals are left out
            #expect(lines.contains("  lr: 0.0003"))
            #expect(lines.contains("  prompts:") && lines.contains("    - a circle"))
            #expect(lines.firstIndex(of: "optimizer:")! < lines.firstIndex(of: "train:")!)
        }
    }

    /// Every shipped recipe (recipes/ and its subfolders) parses; the comparison's paper arm holds
    /// the paper's settings.
    @Test func shippedRecipesParseAndThePaperArmHoldsThePapersSettings() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes")
        let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }
            .filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 17, "\(files)")
        for file in files {
            #expect(throws: Never.self, "\(file)") { _ = try Recipe.load(root.appendingPathComponent(file).path) }
        }
        let t = try Recipe.load(root.appendingPathComponent("compare/paper/transfusion-tiny.yaml").path)
        #expect(t.diffusion.target == .eps && t.diffusion.schedule == .cosine && t.diffusion.steps == 1000)
        #expect(t.diffusion.lossWeight == 5 && t.diffusion.cfg == 5 && t.model.qkNorm == false && t.model.zLoss == 0)
        let c = try Recipe.load(root.appendingPathComponent("compare/paper/chameleon-tiny.yaml").path)
        #expect(c.model.qkNorm == true && c.model.zLoss > 0 && c.diffusion.cfg == 5)
        #expect(abs(c.optimizer.lr * 3 / t.optimizer.lr - 1) < 0.01, "Chameleon's lr is a third of Transfusion's")
        #expect(c.data.docsPerRow == t.data.docsPerRow && c.data.pool == t.data.pool && c.train.batchSize == t.train.batchSize)
    }
}
