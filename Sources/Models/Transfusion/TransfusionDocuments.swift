// Documents of any source (Data.DocumentSource) as a Transfusion batch: laid out and packed, each
// generated span noised with the one diffusion objective (GaussianDiffusion.trainingExample) from
// its document's own noise stream, conditions given clean and unscored, one SpanBatch per modality.
// Because a span's noise is a function of (seed, document, span), any rank builds any row.
import Data
import Diffusion
import Modalities
import NN
import Tensors

/// A packed batch of documents: the model's input, LM targets and each modality's span targets.
public struct TransfusionBatch {
    public var input: TransfusionInput
    /// LM targets (B·T), −1 where none.
    public var targets: Tensor
    public var spanTargets: [Modality: SpanTargets]
}

extension Transfusion {
    /// `rows` of documents, each row packed into `length` positions (documents masked apart, a
    /// span's positions attending to each other). Span k of document i is, when generated, noised
    /// to a timestep and noise drawn from `RNG.documentNoise(seed:index:).split(k)` (timesteps capped
    /// at `maxT[modality]` when given) and scored with weight `lossWeight`; a condition is given
    /// clean at t = 0 and not scored.
    ///
    /// ```swift
    /// let docs = try source.documents(0..<8, seed: 0)
    /// let x = try model.batch(docs.map { [$0] }, length: 64, diffusion: diffusion, seed: 0, lossWeight: 5)
    /// let (loss, _, _) = model.loss(x.input, targets: x.targets, spanTargets: x.spanTargets)
    /// ```
    public func batch(_ rows: [[Document]], length t: Int, diffusion: GaussianDiffusion, seed: UInt64, lossWeight: Float,
                      maxT: [Modality: Int] = [:], causalSpans: Bool = false) throws -> TransfusionBatch {
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], docs: [[Int32]] = [], spanIDs: [[Int32]] = []
        /// One modality's spans in batch order: input values, timesteps, starts, and the targets and
        /// indices of the scored ones.
        struct Spans { var values: [Float] = [], times: [Float] = [], starts: [Int] = [], targets: [Float] = [], scored: [Int] = [] }
        var spans: [Modality: Spans] = [:]
        for (r, documents) in rows.enumerated() {
            let row = try pack(documents.map { MixedSequence(segments: $0.segments) }, length: t)
            ids += row.tokens; targets += row.targets; positions += row.positions
            docs.append(row.documentIDs); spanIDs.append(row.spanIDs)
            for span in row.spans {
                let document = documents[Int(span.document)], piece = document.spans[span.index]
                guard let adapter = adapter(span.modality) else {
                    throw TransfusionBatchError.noAdapter(span.modality, document: document.index)
                }
                let shape = adapter.valueShape
                guard piece.values.count == shape.reduce(1, *) else {
                    throw TransfusionBatchError.badValues(span.modality, document: document.index, count: piece.values.count, shape: shape)
                }
                var s = spans[span.modality, default: Spans()]
                s.starts.append(r * t + span.start)
                switch piece.role {
                case .condition:
                    s.values += piece.values
                    s.times.append(0)
                case .generated:
                    let rng = RNG.documentNoise(seed: seed, index: document.index).split(UInt64(span.index))
                    let x = diffusion.trainingExample(x0: Tensor(piece.values, shape: shape), rng: rng, maxT: maxT[span.modality])
                    s.scored.append(s.times.count)
                    s.values += x.noisy.scalars
                    s.times.append(x.t)
                    s.targets += x.target.scalars
                }
                spans[span.modality] = s
            }
        }
        var input = TransfusionInput(ids: Tensor(ints: ids, shape: [rows.count, t]), positions: Tensor(ints: positions),
                                     mask: try AttentionMask(documents: docs, spans: spanIDs, causalSpans: causalSpans))
        var spanTargets: [Modality: SpanTargets] = [:]
        for (m, s) in spans {
            let shape = adapter(m)!.valueShape
            input.spans[m] = SpanBatch(Tensor(s.values, shape: [s.times.count] + shape), timesteps: s.times, starts: s.starts)
            spanTargets[m] = SpanTargets(Tensor(s.targets, shape: [s.scored.count] + shape),
                                         scored: s.scored.count == s.times.count ? nil : s.scored, weight: lossWeight)
        }
        return TransfusionBatch(input: input, targets: Tensor(ints: targets), spanTargets: spanTargets)
    }
}

/// Why documents cannot become a Transfusion batch.
public enum TransfusionBatchError: Error, CustomStringConvertible {
    case noAdapter(Modality, document: Int)
    case badValues(Modality, document: Int, count: Int, shape: [Int])

    public var description: String {
        switch self {
        case .noAdapter(let m, let i):
            return "document \(i) has a \(m) span, but the model has no \(m) adapter: name the modality in its config"
        case .badValues(let m, let i, let n, let shape):
            return "document \(i): a \(m) span holds \(n) values, the model's \(m) spans hold \(shape.reduce(1, *)) (\(shape))"
        }
    }
}
