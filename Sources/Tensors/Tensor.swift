// Tensor: a handle to a contiguous row-major buffer with a shape, plus its autograd links.
// Not a strided-view library: reshape shares storage, every other transform copies.
import Foundation

public enum DType: String, Sendable { case float32, int32 }

/// An n-dimensional array of Float32 (or Int32 token ids), contiguous and row-major.
///
/// ```swift
/// let x = Tensor([1, 2, 3, 4], shape: [2, 2], requiresGrad: true)
/// let y = (x * x).sum()
/// y.backward()          // x.grad == 2 * x
/// ```
public final class Tensor: CustomStringConvertible {
    public let shape: [Int]
    public let storage: Storage
    public let dtype: DType
    /// Set on leaves (parameters, inputs) whose gradient `backward()` should fill.
    public var requiresGrad: Bool
    /// The accumulated gradient of a leaf after `backward()`.
    public var grad: Tensor?
    /// The op that produced this tensor, when it was recorded for autograd.
    var node: GradNode?
    /// How a parameter's initial values were drawn, so that they can be drawn again from a stream
    /// of the parameter's own (NN's `Module.drawInitialValues(from:)`); nil for everything else.
    public var initializer: Initializer?

    public init(shape: [Int], storage: Storage, dtype: DType = .float32, requiresGrad: Bool = false) {
        let n = shape.reduce(1, *)
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(storage.count == n, "Tensor: shape \(shape) needs \(n) elements, storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.dtype = dtype
        self.requiresGrad = requiresGrad
    }

    /// An uninitialised tensor (kernels write every element).
    public static func empty(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        Tensor(shape: shape, storage: Storage(count: shape.reduce(1, *)), dtype: dtype)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        let t = empty(shape)
        if value == 0 { memset(t.storage.raw, 0, t.count * 4) } else { t.data.update(repeating: value, count: t.count) }
        t.requiresGrad = requiresGrad
        return t
    }

    public convenience init(_ values: [Float], shape: [Int]? = nil, requiresGrad: Bool = false) {
        let shape = shape ?? [values.count]
        precondition(shape.reduce(1, *) == values.count,
                     "Tensor: \(values.count) values do not fill shape \(shape)")
        let s = Storage(count: values.count)
        values.withUnsafeBufferPointer { s.floats.update(from: $0.baseAddress!, count: values.count) }
        self.init(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// An Int32 tensor of token ids or indices.
    public convenience init(ints values: [Int32], shape: [Int]? = nil) {
        let shape = shape ?? [values.count]
        precondition(shape.reduce(1, *) == values.count,
                     "Tensor: \(values.count) ids do not fill shape \(shape)")
        let s = Storage(count: values.count)
        values.withUnsafeBufferPointer { s.ints.update(from: $0.baseAddress!, count: values.count) }
        self.init(shape: shape, storage: s, dtype: .int32)
    }

    public convenience init(ints values: [Int], shape: [Int]? = nil) {
        self.init(ints: values.map { Int32($0) }, shape: shape)
    }

    // MARK: - Accessors

    @inline(__always) public var count: Int { storage.count }
    @inline(__always) public var rank: Int { shape.count }
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.floats }
    @inline(__always) public var ints: UnsafeMutablePointer<Int32> { storage.ints }

    /// Size of dimension `i`; negative `i` counts from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    public var scalars: [Float] {
        precondition(dtype == .float32, "Tensor.scalars: tensor is \(dtype)")
        return Array(UnsafeBufferPointer(start: data, count: count))
    }

    public var intScalars: [Int32] {
        precondition(dtype == .int32, "Tensor.intScalars: tensor is \(dtype)")
        return Array(UnsafeBufferPointer(start: ints, count: count))
    }

    /// The value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "Tensor.item: tensor of shape \(shape) has \(count) elements")
        return data[0]
    }

    /// A new handle on the same storage, outside the autograd graph.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage, dtype: dtype) }

    /// A deep copy outside the autograd graph.
    public func copy() -> Tensor {
        let t = Tensor.empty(shape, dtype: dtype)
        memcpy(t.storage.raw, storage.raw, count * 4)
        return t
    }

    /// True when this tensor takes part in autograd (a leaf that wants a gradient, or an op output).
    public var tracksGrad: Bool { requiresGrad || node != nil }

    public var description: String {
        let vals = dtype == .float32
            ? scalars.prefix(8).map { String(format: "%.4g", $0) }
            : intScalars.prefix(8).map { String($0) }
        return "Tensor(\(shape), \(dtype)\(count > 8 ? ", first 8" : ""): [\(vals.joined(separator: ", "))])"
    }
}

/// Strides (in elements) of a contiguous row-major shape.
@inline(__always)
public func contiguousStrides(_ shape: [Int]) -> [Int] {
    var s = [Int](repeating: 1, count: shape.count)
    var acc = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
    return s
}

/// Normalises a possibly negative axis against `rank`, with a clear message when out of range.
@inline(__always)
func normAxis(_ axis: Int, _ rank: Int, _ op: String) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for rank \(rank)")
    return a
}
