// The comparison's held-out measurement, fair to both families: a Transfusion run and a Chameleon
// run with the same data section score the very same held-out documents; text is the same set of
// targets for both (EOI after Chameleon's codes is a marker, scored apart); Transfusion captions
// held-out images from clean latents (t = 0) as its captioner does, with the image-first spans
// unscored; and the set does not move with the batch size or between evaluations.
import Foundation
import Media
@testable import Models
import NN
import Tensors
import Testing
import Text
@testable import Training

/// A small random image tokenizer for `kind`'s family saved to a temporary file: a VAE (4× down,
/// 4 latent channels) for transfusion, a VQ tokenizer (8× down, 16 codes) for chameleon. Its path.
func randomImageTokenizer(for kind: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory
    if kind == "transfusion" {
        let vae = ImageVAE(.init(channels: 8, latentChannels: 4, downsample: 4, groups: 4), rng: RNG(seed: 5))
        let path = dir.appendingPathComponent("fusion-vae-\(UUID().uuidString).safetensors").path
        try vae.save(to: path)
        return path
    }
    if kind == "var" {                                   // 4×4 code grids: scales 1, 2, 3, 4
        let msvq = MultiScaleVQTokenizer(.init(base: .init(channels: 8, downsample: 8, groups: 4, codebookSize: 16, codeDim: 4),
                                               scales: [1, 2, 3, 4]), rng: RNG(seed: 0))
        let path = dir.appendingPathComponent("fusion-msvq-\(UUID().uuidString).safetensors").path
        try msvq.save(to: path)
        return path
    }
    let vq = VQTokenizer(.init(channels: 8, downsample: 8, groups: 4, codebookSize: 16, codeDim: 4), rng: RNG(seed: 0))
    let path = dir.appendingPathComponent("fusion-vq-\(UUID().uuidString).safetensors").path
    try vq.save(to: path)
    return path
}

/// A recipe of `kind` over random tokenizers saved to temporary files: the compare recipes'
/// mixture (image first 0.2, caption dropout 0.1, two documents per row).
private func recipe(_ kind: String, documents: Int = 256, batch: Int = 4) throws -> Recipe {
    let tokenizer = try randomImageTokenizer(for: kind)
    return try Recipe.parse("""
        name: \(kind)
        seed: 4
        model: {kind: \(kind), preset: nano, dim: 32, layers: 2, heads: 2, image_tokenizer: \(tokenizer)}
        diffusion: {image_first: 0.2, caption_dropout: 0.1}
        data: {tokenizer_vocab: 300, seq_len: 160, docs_per_row: 2, pool: 64}
        train: {steps: 1, batch_size: \(batch)}
        eval: {every: 0, documents: \(documents)}
        """, file: "\(kind).yaml")
}

/// What identifies a document: example, order, caption ids.
private func key(_ d: ImageCaptionPairs.Document) -> String { "\(d.index) \(d.imageFirst) \(d.caption)" }

@Suite(.serialized) struct HeldOutSetTests {
    @Test func bothFamiliesScoreTheSameDocumentsAndTheSameTextTargets() throws {
        let transfusion = try TransfusionTask(recipe: try recipe("transfusion"), run: scratchRun())
        let chameleon = try ChameleonTask(recipe: try recipe("chameleon"), run: scratchRun())
        let a = try transfusion.heldOutBatches().flatMap(\.documents), b = try chameleon.heldOutBatches().flatMap(\.documents)
        #expect(a.count == 256 && a.map(key) == b.map(key), "the two families score different held-out documents")
        #expect(a.contains { $0.imageFirst } && a.contains { !$0.imageFirst } && a.allSatisfy { !$0.caption.isEmpty },
                "both orders, no caption dropped")
        // The same text targets, whatever each family's rows hold.
        let (ta, tb) = (try transfusion.heldOutTally(), try chameleon.heldOutTally())
        #expect(ta.documents == 256 && tb.documents == 256)
        for kind in ["text", "caption", "prior"] {
            #expect(ta.counts[kind] != nil && ta.counts[kind] == tb.counts[kind], "\(kind) targets: \(ta.counts) vs \(tb.counts)")
        }
        // Chameleon predicts EOI after its codes; Transfusion never does. Markers are scored apart.
        let markers = (ta.counts["markers"] ?? 0, tb.counts["markers"] ?? 0)
        #expect(markers.1 - markers.0 == 256, "one EOI per Chameleon image: \(markers)")
        let metrics = try chameleon.evaluate(step: 0, rng: RNG(seed: 0))
        for name in ["loss_text", "loss_caption", "loss_prior", "loss_markers", "loss_image", "ppl", "documents"] {
            #expect(metrics[name].map { $0.isFinite && $0 > 0 } == true, "chameleon eval \(name): \(metrics)")
        }
    }

    @Test func transfusionCaptionsHeldOutImagesFromCleanLatents() throws {
        let task = try TransfusionTask(recipe: try recipe("transfusion"), run: scratchRun())
        let batches = try task.heldOutBatches()
        var clean = 0, noised = 0
        for x in batches {
            let images = x.documents.filter(\.hasImage)
            let scored = Set(x.spanTargets[.image]!.scored ?? Array(images.indices))
            for (k, doc) in images.enumerated() {
                if doc.imageFirst {
                    #expect(x.input.spans[.image]!.timesteps[k] == 0 && !scored.contains(k), "an image-first image is read clean, unscored")
                    clean += 1
                } else {
                    #expect(scored.contains(k), "a generated image carries the diffusion loss")
                    noised += x.input.spans[.image]!.timesteps[k] > 0 ? 1 : 0
                }
            }
        }
        #expect(clean > 20 && noised > 150, "clean \(clean), noised \(noised)")
        // Clean latents: the image-first spans are the VAE's encoding itself.
        let x = try #require(batches.first { b in b.documents.contains { $0.imageFirst } })
        let k = try #require(x.documents.filter(\.hasImage).firstIndex { $0.imageFirst })
        let doc = x.documents.filter(\.hasImage)[k]
        let encoded = try task.latents(task.heldOut, [doc.index], cached: false).scalars
        let per = encoded.count
        let given = Array(x.input.spans[.image]!.values.scalars[(k * per)..<((k + 1) * per)])
        #expect(zip(given, encoded).allSatisfy { abs($0 - $1) < 1e-5 }, "encoded in a batch of one vs in the held-out batch")
        let metrics = try task.evaluate(step: 0, rng: RNG(seed: 0))
        for name in ["loss_text", "loss_caption", "loss_prior", "loss_markers", "loss_image", "ppl", "loss"] {
            #expect(metrics[name].map { $0.isFinite && $0 > 0 } == true, "transfusion eval \(name): \(metrics)")
        }
    }

    @Test func theHeldOutLossesDoNotMoveWithTheBatchSizeOrBetweenEvaluations() throws {
        let task = try ChameleonTask(recipe: try recipe("chameleon", documents: 64, batch: 4), run: scratchRun())
        let wide = try ChameleonTask(recipe: try recipe("chameleon", documents: 64, batch: 16), run: scratchRun())
        let (a, b) = (try task.evaluate(step: 0, rng: RNG(seed: 1)), try task.evaluate(step: 0, rng: RNG(seed: 2)))
        #expect(a == b, "two evaluations of the same weights differ")
        let c = try wide.evaluate(step: 0, rng: RNG(seed: 1))
        for (name, value) in a { #expect(abs(value - c[name]!) <= 1e-5 * abs(value), "\(name): batch 4 \(value), batch 16 \(c[name]!)") }
    }

    /// Compute is charged for the real positions: padding queries are left out of the analytic
    /// FLOPs, and the 6·N·D column counts N non-embedding parameters over D real positions.
    @Test func flopsCountRealPositionsNotPadding() throws {
        for kind in ["transfusion", "chameleon"] {
            let r = try recipe(kind, batch: 4)
            let run = scratchRun()
            let (positions, flops, padded, mask, documentOf): (Int, Double, Double, AttentionMask, [Int])
            if kind == "transfusion" {
                let task = try TransfusionTask(recipe: r, run: run)
                let x = try task.batch(task.world, firstRow: 0, rows: 4, rng: RNG(seed: 1), training: true)
                (flops, positions) = task.trainingFlops(x)
                #expect(positions == x.documents.map { task.pairs.length(of: $0, imageLength: 16, audioLength: 0) }.reduce(0, +))
                (padded, mask, documentOf) = (task.flopsPerMicroBatch, x.input.mask, x.documentOf)
            } else {
                let task = try ChameleonTask(recipe: r, run: run)
                let x = try task.batch(task.world, firstRow: 0, rows: 4, rng: RNG(seed: 1), training: true)
                let loss = try task.loss(microBatch: 0, rng: RNG(seed: 1))
                (positions, flops) = (try #require(loss.positions), try #require(loss.flops))
                #expect(positions == x.documents.map { task.pairs.length(of: $0, imageLength: 16, audioLength: 0) }.reduce(0, +))
                (padded, mask, documentOf) = (task.flopsPerMicroBatch, x.mask, x.documentOf)
            }
            #expect(positions < 4 * 160, "\(kind): the rows hold padding")
            // The keys the real queries attend, counted one by one.
            var keys = 0
            for q in 0..<(mask.batch * mask.queries) where documentOf[q] >= 0 {
                keys += (0..<mask.keys).filter { mask.allows(batch: q / mask.queries, query: q % mask.queries, key: $0) }.count
            }
            #expect(mask.keysAttended { documentOf[$0] >= 0 } == keys)
            #expect(flops > 0 && flops < padded, "\(kind): \(flops) on real positions vs \(padded) for full rows")
        }
        // A short run logs both columns; 6·N·D grows by 6·N per real position.
        var r = try recipe("chameleon", batch: 2)
        r.train.steps = 2
        let run = scratchRun()
        let task = try ChameleonTask(recipe: r, run: run)
        let trainer = try Trainer(recipe: r, task: task, run: run)
        try trainer.train(fresh: true)
        let rows = try MetricsLog.read(run.metricsURL).filter { $0["kind"] == nil }
        let n = Double(task.model.parameters().map(\.count).reduce(0, +) - task.chameleon.lm.embed.weight.count)
        let real = try (0..<2).map { try #require(task.loss(microBatch: $0, rng: RNG(seed: r.seed).split(UInt64($0))).positions) }
        let logged = try #require(rows.last?["flops_6nd"] as? Double)
        #expect(abs(logged - 6 * n * Double(real.reduce(0, +))) < 1, "6·N·D \(logged)")
    }
}
