// A continuous modality's way into and out of the shared decoder (DESIGN: "a modality is one
// adapter"): the values of a batch's spans of that modality, how they become decoder inputs and
// how the decoder's outputs become predictions. Not noising, not sampling, not sequence layout.
import Data
import Foundation
import NN
import Tensors

/// The spans of one continuous modality in a batch: their values, noise levels and places.
public struct SpanBatch {
    /// Values of the n spans, (n, …) with each row shaped like the adapter's `valueShape`: image
    /// latents (n, C, h, w), audio frames (n, L, D).
    public var values: Tensor
    /// The n spans' timesteps.
    public var timesteps: [Float]
    /// Flat index b·T + position of each span's first position; a span covers its adapter's
    /// `length` consecutive positions of one row.
    public var starts: [Int]

    public init(_ values: Tensor, timesteps: [Float], starts: [Int]) {
        self.values = values; self.timesteps = timesteps; self.starts = starts
    }

    public var count: Int { values.dim(0) }

    /// Spans `kept` alone (indices into this batch), their starts moved back by `offset` positions
    /// (a data-parallel rank's rows); nil when none is kept.
    public func selecting(_ kept: [Int], shiftedBy offset: Int = 0) -> SpanBatch? {
        kept.isEmpty ? nil : SpanBatch(values.indexSelect(axis: 0, kept), timesteps: kept.map { timesteps[$0] },
                                       starts: kept.map { starts[$0] - offset })
    }
}

/// What an adapter's `embed` hands to its `predict`: the spans' timestep embeddings and whatever
/// the input side computed for the output side (a U-Net's skips).
public struct SpanContext {
    public var count: Int
    /// Timestep embeddings (n, d).
    public var time: Tensor
    public var skips: [Tensor] = []

    public init(count: Int, time: Tensor, skips: [Tensor] = []) {
        self.count = count; self.time = time; self.skips = skips
    }
}

/// How one continuous modality enters and leaves the decoder. A Transfusion model holds one
/// adapter per modality its config names and loops over them; a new modality is a new adapter.
///
/// ```swift
/// let (rows, context) = adapter.embed(batch.values, time: timeEmbed(batch.timesteps))  // (n·length, d)
/// let predictions = adapter.predict(decoderOutputs, context: context)                 // like batch.values
/// ```
public protocol SpanAdapter: Module {
    var modality: Modality { get }
    /// Decoder positions of one span.
    var length: Int { get }
    /// Shape of one span's values (a row of ``SpanBatch/values``).
    var valueShape: [Int] { get }
    /// The n spans' values (n, …) and their timestep embeddings (n, d) → decoder inputs
    /// (n·length, d), span after span, and what ``predict(_:context:)`` needs.
    func embed(_ values: Tensor, time: Tensor) -> (rows: Tensor, context: SpanContext)
    /// The decoder's outputs at the spans' positions (n·length, d) → predictions (n, …).
    func predict(_ rows: Tensor, context: SpanContext) -> Tensor
    /// Zeroes the output layer, so an untrained model predicts 0 (DiT's zero-initialised final layer).
    func zeroOutput()
    /// Training FLOPs (forward + backward) of `spans` spans through the adapter's own layers, for a
    /// decoder of width `dim`.
    func trainingFlops(spans: Int, dim: Int) -> Double
}

extension SpanAdapter {
    /// The span values' expected shape for n spans, checked with a message naming the modality.
    func check(_ values: Tensor) {
        let n = values.dim(0)
        precondition(values.shape == [n] + valueShape,
                     "\(modality) spans: values \(values.shape), expected (n, \(valueShape.map(String.init).joined(separator: ", ")))")
    }
}

/// Zeroes a layer's weight and bias (a Linear's or a Conv2d's), and records that they start at 0.
func zero(_ weight: Tensor, _ bias: Tensor?) {
    for t in [weight] + (bias.map { [$0] } ?? []) {
        t.data.update(repeating: 0, count: t.count)
        t.initializer = .constant(0)
    }
}

/// The adapter kinds a ``ModalitySpec`` can name, by name: `frames` (``FrameSpans``) is built in;
/// a new kind is registered once, before a model that names it is built.
///
/// ```swift
/// SpanAdapters.register("smooth") { spec, modality, width, rng in SmoothSpans(modality, spec, width: width, rng: rng) }
/// ```
public enum SpanAdapters {
    /// Builds the adapter of `spec`'s spans (registered as `modality`) for a decoder of width `width`.
    public typealias Make = (_ spec: ModalitySpec, _ modality: Modality, _ width: Int, _ rng: RNG) -> any SpanAdapter

    /// Registers (or replaces) the adapter kind `kind`.
    public static func register(_ kind: String, _ make: @escaping Make) { kinds.withLock { $0[kind] = make } }

    /// Whether `kind` names a registered adapter kind.
    public static func has(_ kind: String) -> Bool { kinds.withLock { $0[kind] != nil } }

    /// The adapter of `spec` (its modality registered), or nil for an unknown kind.
    public static func make(_ spec: ModalitySpec, width: Int, rng: RNG) throws -> (any SpanAdapter)? {
        let modality = try spec.register()
        return kinds.withLock { $0[spec.adapter] }.map { $0(spec, modality, width, rng) }
    }

    private static let kinds = Locked<[String: Make]>([
        "frames": { spec, modality, width, rng in
            FrameSpans(modality, name: spec.name, dim: spec.dim, length: spec.length, width: width, rng: rng)
        },
    ])
}

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock(); defer { lock.unlock() }
        return try body(&value)
    }
}
