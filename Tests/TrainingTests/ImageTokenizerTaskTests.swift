// The image tokenizer task end to end on tiny models: the loss falls over a few trainer steps,
// eval rows carry PSNR (and code usage), the sample grid and runs/<name>/tokenizer.safetensors are
// written, and the exported file loads with a calibrated latent scale. Not quality: the recipes
// in recipes/ are measured by training them (see checkpoints/README.md).
import Foundation
import Media
@testable import Models
import NN
import Tensors
import Testing

@testable import Training

/// A tokenizer recipe small enough for a test: widths 8/16/16, 16 codes (32×32: ShapesWorld's smallest is 24).
func tinyTokenizerRecipe(kind: String, steps: Int, overrides: [String] = []) throws -> Recipe {
    try Recipe.parse("""
        name: tiny-\(kind)
        seed: 5
        model: {kind: \(kind)}
        data: {image_size: 32}
        tokenizer: {channels: 8, groups: 4, latent_channels: 4, codebook_size: 16, code_dim: 4, restart_after_steps: 4}
        optimizer: {lr: 3.0e-3, warmup_steps: 2, weight_decay: 0, schedule: constant}
        train: {steps: \(steps), batch_size: 8, log_every: 1, checkpoint_every: 100}
        eval: {every: 0, batches: 2}
        sample: {every: 0}
        """, file: "tiny.yaml", overrides: overrides)
}

/// Trains `recipe` in a scratch run; returns the run, its training rows and its eval row.
func trainTokenizer(_ recipe: Recipe) throws -> (RunDirectory, [MetricsRow], MetricsRow?) {
    let run = scratchRun()
    let task = try ImageTokenizerTask(recipe: recipe)
    let trainer = try Trainer(recipe: recipe, task: task, run: run)
    var rows: [MetricsRow] = []
    trainer.onRow = { rows.append($0) }
    try trainer.train(fresh: true)
    return (run, rows.filter { $0["kind"] == nil }, rows.first { $0["kind"] == .string("eval") })
}

/// A number of a metrics row (NaN when absent).
func value(_ row: MetricsRow?, _ key: String) -> Double {
    switch row?[key] {
    case .double(let v)?: return v
    case .int(let v)?: return Double(v)
    default: return .nan
    }
}

// Nested in the serialized TrainerTests: two trainers running at once perturb each other's results
// (OpenBLAS's thread count is process-wide and `Parallel.withSingleThreadedBLAS` changes it), which
// would break TrainerTests' bit-exact resume check.
extension TrainerTests {
    @Suite struct ImageTokenizerTaskTests {
        @Test func vaeLossFallsAndTheRunHoldsGridAndTokenizer() throws {
            let recipe = try tinyTokenizerRecipe(kind: "vae", steps: 12)
            let (run, rows, eval) = try trainTokenizer(recipe)
            defer { try? FileManager.default.removeItem(at: run.url) }
            let losses = rows.map { value($0, "loss") }
            let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
            #expect(last < 0.7 * first, "loss \(first) → \(last)")
            #expect(rows.allSatisfy { $0["recon"] != nil && $0["kl"] != nil })
            #expect(value(eval, "eval_psnr") > 5 && value(eval, "eval_psnr_pooled") <= value(eval, "eval_psnr"))
            #expect(eval?["eval_code_usage"] == nil)

            // The grid: 16 held-out images (2 batches of 8) as 2 rows of originals over 2 of reconstructions.
            let grid = try PNG.read(run.samplesURL.appendingPathComponent("step-00000012.png").path)
            #expect(grid.width == 8 * 34 + 2 && grid.height == 4 * 34 + 2)

            // The exported tokenizer loads, with a calibrated scale: its latents have unit variance.
            let vae = try ImageVAE.load(from: run.url.appendingPathComponent("tokenizer.safetensors").path)
            #expect(vae.latentScale != 1 && vae.config.latentChannels == 4)
            let task = try ImageTokenizerTask(recipe: recipe)
            let z = withoutGrad { vae.encode(concat((0..<32).map { task.batch($0) }, axis: 0)) }
            #expect(z.shape == [256, 4, 8, 8])
            let s = z.scalars.map(Double.init), mean = s.reduce(0, +) / Double(s.count)
            let variance = s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(s.count)
            #expect(abs(variance - 1) < 0.05, "latent variance \(variance)")
            #expect(withoutGrad { vae.decode(z.slice(axis: 0, 0..<2)) }.shape == [2, 3, 32, 32])
        }

        @Test func vqLossFallsAndLogsCodeUsage() throws {
            let (run, rows, eval) = try trainTokenizer(try tinyTokenizerRecipe(kind: "vq", steps: 12))
            defer { try? FileManager.default.removeItem(at: run.url) }
            let losses = rows.map { value($0, "recon") }
            let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
            #expect(last < 0.7 * first, "reconstruction loss \(first) → \(last)")
            #expect(rows.allSatisfy { $0["commit"] != nil && $0["codebook"] != nil })
            #expect(rows.allSatisfy { (1...16).contains(value($0, "active_codes")) })
            #expect((0...100).contains(value(eval, "eval_code_usage")) && value(eval, "eval_perplexity") >= 1)
            let path = run.url.appendingPathComponent("tokenizer.safetensors").path
            let vq = try VQTokenizer.load(from: path)
            #expect(vq.config.codebookSize == 16)
            let wrongKind = #expect(throws: TokenizerCheckpointError.self) { try ImageVAE.load(from: path) }
            #expect(wrongKind?.description == "\(path): holds a vq tokenizer, not a vae one (use `fusion vq …` or VQTokenizer.load)")
            #expect(vq.encode(Tensor.zeros([1, 3, 32, 32])).shape == [1, 8, 8])
            #expect(FileManager.default.fileExists(atPath: run.samplesURL.appendingPathComponent("step-00000012.png").path))
        }

        @Test func msvqLossFallsAndItsPyramidLoads() throws {
            let (run, rows, eval) = try trainTokenizer(try tinyTokenizerRecipe(kind: "msvq", steps: 12))
            defer { try? FileManager.default.removeItem(at: run.url) }
            let losses = rows.map { value($0, "recon") }
            let first = losses.prefix(3).reduce(0, +) / 3, last = losses.suffix(3).reduce(0, +) / 3
            #expect(last < 0.7 * first, "reconstruction loss \(first) → \(last)")
            #expect(rows.allSatisfy { (1...16).contains(value($0, "active_codes")) })
            // A batch of 8 images counts every scale's codes: 8 · (1 + 4 + 9 + 16 + 36 + 64).
            #expect(rows.allSatisfy { value($0, "tokens") .truncatingRemainder(dividingBy: 8 * 130) == 0 })
            #expect((0...100).contains(value(eval, "eval_code_usage")) && value(eval, "eval_perplexity") >= 1)
            let path = run.url.appendingPathComponent("tokenizer.safetensors").path
            let msvq = try MultiScaleVQTokenizer.load(from: path)
            #expect(msvq.config.scales == [1, 2, 3, 4, 6, 8], "the default pyramid of an 8×8 grid")
            let wrongKind = #expect(throws: TokenizerCheckpointError.self) { try VQTokenizer.load(from: path) }
            #expect(wrongKind?.description == "\(path): holds a msvq tokenizer, not a vq one (use `fusion msvq …` or MultiScaleVQTokenizer.load)")
            #expect(msvq.encode(Tensor.zeros([1, 3, 32, 32])).map(\.shape) == [1, 2, 3, 4, 6, 8].map { [1, $0, $0] })
        }

        @Test func msvqScalesMustEndAtTheCodeGrid() throws {
            let recipe = try tinyTokenizerRecipe(kind: "msvq", steps: 1, overrides: ["tokenizer.scales=[1,2,4]"])
            let error = #expect(throws: RecipeError.self) { try ImageTokenizerTask(recipe: recipe) }
            #expect("\(error!)".contains("tokenizer.scales") && "\(error!)".contains("full 8×8 code grid"), "\(error!)")
            #expect(TokenizerSection.defaultScales(grid: 16) == [1, 2, 3, 4, 6, 8, 12, 16])
            #expect(TokenizerSection.defaultScales(grid: 4) == [1, 2, 3, 4] && TokenizerSection.defaultScales(grid: 1) == [1])
        }

        @Test func dataIsAFunctionOfTheIndexAndFlopsAreCounted() throws {
            let recipe = try tinyTokenizerRecipe(kind: "vae", steps: 1)
            let a = try ImageTokenizerTask(recipe: recipe), b = try ImageTokenizerTask(recipe: recipe)
            #expect(a.batch(3).scalars == b.batch(3).scalars && a.batch(3).scalars != a.batch(4).scalars)
            #expect(a.heldOut.shape == [16, 3, 32, 32])
            #expect(Array(a.heldOut.scalars.prefix(3072)) != Array(a.batch(0).scalars.prefix(3072)))   // other images
            #expect(a.flopsPerMicroBatch > 0)
            #expect(try JSONSerialization.jsonObject(with: a.checkpointConfig()) is [String: Any])
        }
    }
}
