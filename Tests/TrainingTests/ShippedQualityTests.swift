// Quality floors of the shipped text-to-image model (checkpoints/shapes-tiny, issue 27), on prompt
// and image sets small enough for CI: what it draws passes ShapesEval, and its captions of held-out
// images are right. The floors sit well below what was measured (docs/results/shapes-tiny-long), so
// float differences between CPU kinds (AVX2, AVX-512, AMX) cannot flip them; a model or sampler
// that regresses to the level of the first shipped model (ShapesEval 11%, exact captions 7%) fails.
import Data
import Evaluation
import Foundation
import Testing
@testable import Models
@testable import Training

@Suite struct ShippedQualityTests {
    static let path = ShippedCheckpointTests.path
    /// The U-Net model of the same recipe (checkpoints/shapes-tiny-unet, docs/results/unet-patchifier).
    static let unetPath = URL(fileURLWithPath: ShippedCheckpointTests.path).deletingLastPathComponent()
        .appendingPathComponent("shapes-tiny-unet").path

    /// The U-Net model trained 20 000 steps more (checkpoints/shapes-tiny-unet-50k,
    /// docs/results/unet-patchifier).
    static let unet50kPath = URL(fileURLWithPath: ShippedCheckpointTests.path).deletingLastPathComponent()
        .appendingPathComponent("shapes-tiny-unet-50k").path

    /// The edit fine-tuned U-Net model (checkpoints/edit-shapes-unet, docs/results/edit-shapes-unet).
    static let editPath = URL(fileURLWithPath: ShippedCheckpointTests.path).deletingLastPathComponent()
        .appendingPathComponent("edit-shapes-unet").path

    /// ShapesEval of the model at `path` on 48 prompts (8 per category, or `perCategory`), one
    /// image each, Euler 25 steps at the recipe's guidance, seed 0.
    static func shapesEval(_ path: String, perCategory: Int = 8) throws -> ShapesEvalReport {
        let model = try ImageTextModel.load(path: path, steps: 25)
        return model.shapesEval(ShapesEval(seed: 0, promptsPerCategory: perCategory, imageSize: 32), imagesPerPrompt: 1, seed: 0)
    }

    /// Greedy captions of 48 held-out scenes (the evaluation's held-out world) by the model at `path`.
    static func captions(_ path: String) throws -> CaptionAccuracyReport {
        try ImageTextModel.load(path: path).captionAccuracy(world: ShapesWorld(seed: 0x5EED_E7A1, imageSize: 32), count: 48).0
    }

    /// Measured 85.4% (41 of 48; single object 100%, colour 87.5%, shape 87.5%, counting 75%, position 100%, colour binding 62.5%)
    /// on the 2-core AMD EPYC (AVX2) here with the 30 000-step model (the 12 000-step model: 68.8%).
    @Test func shapesTinyDrawsWhatItIsAskedFor() throws {
        let report = try Self.shapesEval(Self.path)
        #expect(report.overall >= 0.5, "ShapesEval \(report.overall) on 48 prompts: \(report)")
    }

    /// Measured exact 97.9%, count 100%, colour 100%, shape 99.0%, size 100%, position 100% on the 2-core AMD EPYC (AVX2) here
    /// (the 12 000-step model: exact 95.8%).
    @Test func shapesTinyCaptionsHeldOutImages() throws {
        let report = try Self.captions(Self.path)
        #expect(report.exact >= 0.8 && report.colour >= 0.9 && report.count >= 0.9, "\(report)")
    }

    /// The U-Net model: measured 95.8% (colour binding 75%, every other category 100%) here.
    @Test func shapesTinyUNetDrawsWhatItIsAskedFor() throws {
        let report = try Self.shapesEval(Self.unetPath)
        #expect(report.overall >= 0.7, "ShapesEval \(report.overall) on 48 prompts: \(report)")
    }

    /// The 50 000-step U-Net model binds colours to shapes: issue 27's category that stayed under
    /// 70% at 30 000 steps. The first 24 colour-binding prompts of the evaluation's set, one image
    /// each at the recipe's 50 Euler steps and guidance. Measured here (2-core AMD EPYC,
    /// AVX2): 87.5% (21 of 24); the 30 000-step model on the same prompts and seed: 41.7% (10 of 24).
    @Test func shapesTinyUNet50kBindsColoursToShapes() throws {
        func binding(_ path: String) throws -> Double {
            let model = try ImageTextModel.load(path: path)
            let eval = ShapesEval(seed: 0, promptsPerCategory: 24, imageSize: 32, categories: [.colourBinding])
            return model.shapesEval(eval, imagesPerPrompt: 1, seed: 0).overall
        }
        let score = try binding(Self.unet50kPath)
        #expect(score >= 0.75, "colour binding \(score) on 24 prompts")
    }

    /// The U-Net model: measured exact 100% (every attribute and the background 100%) here.
    @Test func shapesTinyUNetCaptionsHeldOutImages() throws {
        let report = try Self.captions(Self.unetPath)
        #expect(report.exact >= 0.85 && report.colour >= 0.9 && report.count >= 0.9 && (report.background ?? 1) >= 0.9, "\(report)")
    }

    /// The edit model on held-out triplets 0..<20 (4 of each kind) of the evaluation's world, at
    /// the recipe's 50 Euler steps (`fusion eval --suite edits --count 20` gives the same): measured by
    /// instruction accuracy 0.95 / preservation 0.80, by inversion 0.95 / 0.90 on the 2-core AMD EPYC (AVX2) here.
    @Test func editShapesUNetEditsHeldOutTriplets() throws {
        let editor = try ImageEditor.load(path: Self.editPath)
        let world = ShapesWorld(seed: 0x5EED_E7A1, imageSize: 32)
        let instruction = editor.editEval(world: world, count: 20, method: .instruction, seed: 0).0
        let inversion = editor.editEval(world: world, count: 20, method: .inversion, seed: 0).0
        #expect(instruction.accuracy >= 0.6 && instruction.preservation >= 0.5, "instruction: \(instruction)")
        #expect(inversion.accuracy >= 0.8 && inversion.preservation >= 0.8, "inversion: \(inversion)")
    }

    /// The VQ tokenizer trained with the VAE's compute (checkpoints/vq-shapes-1500) reconstructs
    /// held-out scenes better than the 1000-step file: measured 30.34 against 28.10 dB on the 256
    /// images of `fusion vq eval`; here the first 64, with floors below both.
    @Test func theEqualComputeVQTokenizerReconstructsBetter() throws {
        let dir = URL(fileURLWithPath: Self.path).deletingLastPathComponent()
        let heldOut = imageBatch(ImageTokenizerTask.shapesHeldOut(seed: 0, count: 64, imageSize: 32))
        let long = evaluateImageTokenizer(try VQTokenizer.load(from: dir.appendingPathComponent("vq-shapes-1500.safetensors").path), heldOut: heldOut)
        let short = evaluateImageTokenizer(try VQTokenizer.load(from: dir.appendingPathComponent("vq-shapes.safetensors").path), heldOut: heldOut)
        #expect(long.meanPSNR >= 29.5 && long.meanPSNR > short.meanPSNR + 1, "1500 steps: \(long); 1000 steps: \(short)")
    }
}
