// The folder suite's feature space and figures: a contrastive image–text encoder (model.kind clip)
// learns a texture folder and exports itself with its tokenizer; on ShapesWorld, its alignment and
// caption retrieval fall as noise covers ShapesEval's reference images, in the order ShapesEval's
// own pass rate falls, and mismatched prompts score below matched ones.
import Data
import Evaluation
import Foundation
import Media
import NN
import Tensors
import Testing
@testable import Models
@testable import Training

/// Trains `recipe` (model.kind clip) in `run`; returns the task and the last eval row.
private func trainEncoder(_ recipe: Recipe, _ run: RunDirectory) throws -> (ContrastiveTask, [String: Double]) {
    let task = try ContrastiveTask(recipe: recipe, run: run)
    let trainer = try Trainer(recipe: recipe, task: task, run: run)
    try trainer.train(fresh: true)
    return (task, try task.evaluate(step: recipe.train.steps, rng: RNG(seed: 0)))
}

@Suite(.serialized) struct FolderEvaluationTests {
    @Test func aContrastiveRunLearnsAFolderAndExportsItsEncoder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fusion-tex-\(UUID().uuidString)").path
        try Textures(seed: 21).writeFolder(examples: 0..<300, to: folder)
        let recipe = try Recipe.parse("""
            name: clip-test
            seed: 0
            model: {kind: clip, preset: nano, dim: 32}
            data: {source: folder, path: \(folder), image_size: 32, tokenizer_vocab: 300, seq_len: 32}
            optimizer: {lr: 2.0e-3, warmup_steps: 10}
            train: {steps: 150, batch_size: 32, log_every: 50, checkpoint_every: 150}
            eval: {every: 0, batches: 1}
            """, file: "clip.yaml")
        let run = scratchRun()
        let (task, metrics) = try trainEncoder(recipe, run)
        #expect(metrics["acc_retrieval"].map { $0 > 0.5 } == true, "held-out retrieval well above chance (1/32): \(metrics)")
        let (encoder, tokenizer) = try ImageTextEncoder.loadWithTokenizer(from: run.url.appendingPathComponent(ImageTextEncoder.fileName).path)
        #expect(encoder.config == task.encoder.config && tokenizer.encode("blue checks") == task.tokenizer.encode("blue checks"))
        // Real held-out images against their captions: aligned, retrieved, far above mismatched prompts.
        let held = try FolderImageCaptions(folder: folder, imageSize: 32, split: .heldOut)
        let n = held.rows.count
        let real = try (0..<n).map(held.image), captions = (0..<n).map(held.caption)
        let report = FolderEvalReport.score(encoder: encoder, encoderTokenizer: tokenizer, generated: real, real: real, captions: captions)
        #expect(report.retrieval > 0.5 && report.alignment > report.alignmentMismatched + 10 * report.alignmentSE, "\(report)")
        #expect(report.fd < 1e-6 && report.retrieval == report.retrievalReal, "the real images against themselves")
    }

    @Test func onShapesWorldItOrdersNoiseLikeShapesEval() throws {
        let recipe = try Recipe.parse("""
            name: clip-shapes
            seed: 0
            model: {kind: clip, preset: nano, dim: 64}
            data: {source: shapes, image_size: 32, tokenizer_vocab: 384, seq_len: 48}
            optimizer: {lr: 2.0e-3, warmup_steps: 20}
            train: {steps: 300, batch_size: 32, log_every: 100, checkpoint_every: 300}
            eval: {every: 0, batches: 2}
            """, file: "clip.yaml")
        let (task, metrics) = try trainEncoder(recipe, scratchRun())
        #expect(metrics["acc_retrieval"].map { $0 > 0.2 } == true, "chance is 1/32: \(metrics)")
        // ShapesEval's reference scenes, covered by more and more noise: the detector's pass rate
        // and the encoder's alignment and retrieval should fall together.
        let eval = ShapesEval(seed: 0, promptsPerCategory: 10)
        let clean = eval.prompts.map { Image(width: 32, height: 32, channels: 3, pixels: $0.scene.render(imageSize: 32)) }
        var rng = SplitMix64(seed: 5, stream: 0, index: 0)
        let noise = clean.map { $0.pixels.map { _ in Float(rng.unit() * 2 - 1) } }
        var shapes: [Double] = [], alignment: [Double] = [], retrieval: [Double] = []
        for sigma: Float in [0, 0.2, 0.3, 0.5] {
            let noised = zip(clean, noise).map { image, n in
                Image(width: 32, height: 32, channels: 3, pixels: zip(image.pixels, n).map { min(1, max(0, $0 + sigma * $1)) })
            }
            shapes.append(eval.score(images: noised.map { [$0] }).overall)
            let report = FolderEvalReport.score(encoder: task.encoder, encoderTokenizer: task.tokenizer, generated: noised,
                                                real: clean, captions: eval.prompts.map(\.text))
            alignment.append(report.alignment); retrieval.append(report.retrieval)
            if sigma == 0 { #expect(report.alignment > report.alignmentMismatched, "\(report)") }
        }
        // ShapesEval is a threshold (a detector passes or not): every pair of noise levels it orders,
        // the alignment orders the same way; and the alignment falls at every step, retrieval overall.
        let ordered = (0..<4).flatMap { i in (i + 1..<4).map { (i, $0) } }.filter { shapes[$0.0] > shapes[$0.1] }
        #expect(ordered.count >= 3 && ordered.allSatisfy { alignment[$0.0] > alignment[$0.1] },
                "ShapesEval \(shapes), alignment \(alignment)")
        #expect(zip(alignment, alignment.dropFirst()).allSatisfy { $0 > $1 } && retrieval[0] > retrieval[3],
                "alignment \(alignment), retrieval \(retrieval)")
    }
}
