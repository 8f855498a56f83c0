// Spans of D-dimensional frames (audio codec patches, any 1-D signal): a linear layer in, a
// learned in-span position per frame, a linear layer out.
import Data
import NN
import Tensors

/// An adapter for spans of `length` frames of `dim` values each (values (n, length, dim)).
/// Its layers are saved as `<name>In`, `<name>Out` and `<name>Position` (audio: `audioIn`, …).
public final class FrameSpans: Module, SpanAdapter {
    public let modality: Modality
    public let length: Int
    public let dim: Int
    @Key public var input: Linear
    @Key public var output: Linear
    /// Learned position of each frame inside its span (length, d).
    @Key public var position: Tensor

    /// Layers for a decoder of width `width`, drawn from `rng` in the order input, output, position.
    public init(_ modality: Modality, name: String, dim: Int, length: Int, width: Int, rng: RNG) {
        precondition(dim > 0 && length > 0, "FrameSpans: dim \(dim) and length \(length) must be positive")
        self.modality = modality; self.dim = dim; self.length = length
        _input = Key(wrappedValue: Linear(dim, width, rng: rng), name + "In")
        _output = Key(wrappedValue: Linear(width, dim, rng: rng), name + "Out")
        _position = Key(wrappedValue: parameter(rng.draw([length, width], .normal(mean: 0, std: 0.02))), name + "Position")
    }

    public var valueShape: [Int] { [length, dim] }

    public func embed(_ values: Tensor, time: Tensor) -> (rows: Tensor, context: SpanContext) {
        check(values)
        let (n, d) = (values.dim(0), position.dim(1))
        let rows = input(values.reshaped([n * length, dim])).reshaped([n, length, d]) + time.reshaped([n, 1, d]) + position
        return (rows.reshaped([n * length, d]), SpanContext(count: n, time: time))
    }

    public func predict(_ rows: Tensor, context: SpanContext) -> Tensor {
        output(rows).reshaped([context.count, length, dim])
    }

    public func zeroOutput() { zero(output.weight, output.bias) }

    public func trainingFlops(spans: Int, dim d: Int) -> Double {
        6 * Double(spans * length) * Double(d) * Double(input.inFeatures + output.outFeatures)
    }
}
