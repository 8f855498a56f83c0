// The recipe's `tokenizer:` section: values, defaults, the list-of-integers type, errors with
// file:line:col (unknown keys, wrong types, bounds, rules between keys), overrides, YAML round trip.
// Not the tokenizer task (ImageTokenizerTaskTests).
import Foundation
@testable import Models
import Testing

@testable import Training

private func parse(_ yaml: String, overrides: [String] = []) throws -> Recipe {
    try Recipe.parse(yaml, file: "recipes/t.yaml", overrides: overrides)
}

/// The error `yaml` fails with, as its one-line description.
private func failure(_ yaml: String, overrides: [String] = []) -> String? {
    do { _ = try parse(yaml, overrides: overrides); return nil } catch { return "\(error)" }
}

/// A vq recipe whose lines 5… are the tokenizer section's keys.
private func vqRecipe(_ tokenizerLines: String) -> String {
    "name: t\nmodel: {kind: vq}\ntrain: {steps: 1}\ntokenizer:\n" + tokenizerLines
}

@Suite struct RecipeTokenizerTests {
    @Test func fullSectionHasEveryValue() throws {
        let r = try parse(vqRecipe("""
              channels: 32
              channel_multipliers: [1, 2, 4]
              downsample: 8
              patch_size: 2
              latent_channels: 4
              kl_weight: 1e-5
              groups: 4
              reconstruction: l1
              codebook_size: 256
              code_dim: 16
              commitment_weight: 0.5
              ema: false
              ema_decay: 0.9
              restart_after_steps: 0

            """))
        let t = r.tokenizer
        #expect(t.channels == 32 && t.channelMultipliers == [1, 2, 4] && t.downsample == 8 && t.patchSize == 2)
        #expect(t.latentChannels == 4 && t.klWeight == 1e-5 && t.groups == 4 && t.reconstruction == .l1)
        #expect(t.codebookSize == 256 && t.codeDim == 16 && t.commitmentWeight == 0.5 && !t.ema)
        #expect(t.emaDecay == 0.9 && t.restartAfterSteps == 0 && t.levels == 3)
        let vq = t.vqConfig()
        #expect(vq.widths == [32, 64, 128] && vq.codebookSize == 256 && vq.codeDim == 16 && !vq.ema)
        #expect(t.vaeConfig().latentChannels == 4 && t.vaeConfig().klWeight == 1e-5)
        #expect(try Recipe.parse(r.yaml(), file: "resolved.yaml") == r)
        #expect(r.yaml().contains("  channel_multipliers: [1, 2, 4]\n"))
    }

    @Test func absentSectionTakesTheStructDefaults() throws {
        let r = try parse("name: t\nmodel: {kind: vae}\ntrain: {steps: 1}\n")
        #expect(r.tokenizer == TokenizerSection())
        #expect(r.tokenizer.channelMultipliers == nil && !r.yaml().contains("channel_multipliers"))
        #expect(try Recipe.parse(r.yaml(), file: "resolved.yaml") == r)
    }

    @Test func overridesSetListsAndValues() throws {
        let r = try parse(vqRecipe("  channels: 16\n"),
                          overrides: ["tokenizer.patch_size=1", "tokenizer.channel_multipliers=[1, 2, 2]",
                                      "tokenizer.codebook_size=64"])
        #expect(r.tokenizer.channelMultipliers == [1, 2, 2] && r.tokenizer.codebookSize == 64)
        #expect(failure(vqRecipe(""), overrides: ["tokenizer.codebok_size=3"])
                == "override 'tokenizer.codebok_size=3': unknown key 'tokenizer.codebok_size' (did you mean 'codebook_size'?)")
    }

    @Test func unknownKeysAndWrongTypesNameTheLine() {
        #expect(failure(vqRecipe("  channels: 16\n  chanels: 8\n"))
                == "recipes/t.yaml:6:3: unknown key 'tokenizer.chanels' (did you mean 'channels'?)")
        #expect(failure(vqRecipe("  codebook_size: many\n"))
                == #"recipes/t.yaml:5:18: 'tokenizer.codebook_size' must be an integer, got "many""#)
        #expect(failure(vqRecipe("  channel_multipliers: 2\n"))
                == #"recipes/t.yaml:5:24: 'tokenizer.channel_multipliers' must be a list of integers, e.g. [1, 2, 2], got "2""#)
        #expect(failure(vqRecipe("  channel_multipliers: [1, two]\n"))
                == #"recipes/t.yaml:5:28: 'tokenizer.channel_multipliers[1]' must be an integer, got "two""#)
        #expect(failure(vqRecipe("  channel_multipliers: [1, 0]\n"))
                == "recipes/t.yaml:5:28: 'tokenizer.channel_multipliers[1]' must be > 0, got 0")
        #expect(failure(vqRecipe("  ema: maybe\n"))
                == #"recipes/t.yaml:5:8: 'tokenizer.ema' must be true or false, got "maybe""#)
        #expect(failure(vqRecipe("  reconstruction: l3\n"))
                == #"recipes/t.yaml:5:19: 'tokenizer.reconstruction' must be one of l1, mse, got "l3" (did you mean 'l1'?)"#)
        #expect(failure(vqRecipe("  ema_decay: 1\n"))
                == "recipes/t.yaml:5:14: 'tokenizer.ema_decay' must be >= 0 and < 1, got 1")
    }

    @Test func rulesBetweenKeysNameTheKey() {
        #expect(failure(vqRecipe("  downsample: 6\n"))
                == "recipes/t.yaml:5:15: 'tokenizer.downsample' must be a power of two (4 or 8 for images), got 6")
        #expect(failure(vqRecipe("  downsample: 4\n  patch_size: 8\n"))
                == "recipes/t.yaml:6:15: 'tokenizer.patch_size' must be a power of two no larger than downsample 4, got 8")
        #expect(failure(vqRecipe("  patch_size: 2\n  channel_multipliers: [1, 2, 2]\n"))
                == "recipes/t.yaml:6:24: 'tokenizer.channel_multipliers' needs 2 entries "
                + "(one per level: log2(downsample / patch_size) + 1), got 3")
        #expect(failure(vqRecipe("  channels: 12\n  groups: 8\n"))
                == "recipes/t.yaml:6:11: 'tokenizer.groups' must divide every width, but width 12 is not a multiple of 8")
    }
}
