// Any image–text family's task seen through what the folder tests ask of both (its document
// mixture, training rows and held-out documents), so a test runs one body for both families.
import Foundation
import Tensors
@testable import Models
@testable import Training

struct ImageTextTaskProbe {
    let task: TrainingTask
    let pairs: ImageCaptionPairs
    /// The documents of the first `rows` training rows (micro-batch 0, laid out with `rng`).
    let trainingDocuments: (_ rows: Int, _ rng: RNG) throws -> [ImageCaptionPairs.Document]
    /// Every held-out document the task scores, in order.
    let heldOutDocuments: () throws -> [ImageCaptionPairs.Document]

    /// A Transfusion, Chameleon or VAR task (`kind`) on `recipe`, in `run`.
    init(kind: String, recipe: Recipe, run: RunDirectory) throws {
        if kind == "transfusion" {
            let t = try TransfusionTask(recipe: recipe, run: run)
            (task, pairs) = (t, t.pairs)
            trainingDocuments = { try t.batch(t.world, firstRow: 0, rows: $0, rng: $1, training: true).documents }
            heldOutDocuments = { try t.heldOutBatches().flatMap(\.documents) }
        } else if kind == "var" {
            let t = try VARTask(recipe: recipe, run: run)
            (task, pairs) = (t, t.pairs)
            trainingDocuments = { rows, rng in
                try (0..<rows).flatMap { try t.pairs.documents(t.world, row: $0, perRow: t.docsPerRow,
                                                               imageLength: t.network.config.blockPositions, training: true, rng: rng) }
            }
            heldOutDocuments = { try t.heldOutBatches().flatMap(\.documents) }
        } else {
            let t = try ChameleonTask(recipe: recipe, run: run)
            (task, pairs) = (t, t.pairs)
            trainingDocuments = { try t.batch(t.world, firstRow: 0, rows: $0, rng: $1, training: true).documents }
            heldOutDocuments = { try t.heldOutBatches().flatMap(\.documents) }
        }
    }
}
