// Module: the base class of layers and models. Parameters are found by reflection over stored
// properties (Tensor, Module, [Module]), named by their property paths ("blocks.3.attn.qkv.weight").
// Not a lazy-shape framework: layers are built with their sizes known.
import Foundation
import Tensors

/// Base class for layers and models. Every stored `Tensor` property is a trainable parameter;
/// stored `Module`s and `[Module]`s are children. Property names are the checkpoint keys, unless
/// a property declares its key with `@Key` (mlx-swift's `@ModuleInfo(key:)` habit): then the
/// property can be renamed without breaking saved checkpoints.
///
/// ```swift
/// final class MLP: Module {
///     let fc1: Linear, fc2: Linear
///     init(rng: RNG) { fc1 = Linear(4, 8, rng: rng); fc2 = Linear(8, 4, rng: rng) }
///     func callAsFunction(_ x: Tensor) -> Tensor { fc2(fc1(x).gelu()) }
/// }
/// MLP(rng: RNG(seed: 0)).namedParameters().map(\.0)  // ["fc1.weight", "fc1.bias", ...]
/// ```
open class Module {
    /// Train mode (dropout on, etc.); set recursively with `train(_:)`.
    public private(set) var isTraining = true

    public init() {}

    /// All parameters, depth first in declaration order, with dotted names.
    public final func namedParameters() -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        visit(prefix: "") { name, value in
            if let t = value as? Tensor { out.append((name, t)) }
        }
        return out
    }

    public final func parameters() -> [Tensor] { namedParameters().map(\.1) }

    /// Child modules (recursive), with their dotted names.
    public final func namedModules() -> [(String, Module)] {
        var out: [(String, Module)] = [("", self)]
        visit(prefix: "") { name, value in
            if let m = value as? Module { out.append((name, m)) }
        }
        return out
    }

    public final var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

    public final func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    public final func eval() { train(false) }

    /// Runs `body` as inference: in evaluation mode and without recording gradients, then puts
    /// back the training mode it found (what every sampler, captioner and editor does).
    ///
    /// ```swift
    /// let logits = model.inferring { model(ids) }
    /// ```
    public final func inferring<T>(_ body: () throws -> T) rethrows -> T {
        let wasTraining = isTraining
        eval()
        defer { train(wasTraining) }
        return try withoutGrad(body)
    }

    public final func zeroGrad() { for p in parameters() { p.grad = nil } }

    /// Draws every parameter that remembers its initializer (``Initializer``: Linear, Conv2d,
    /// Embedding, span positions, …) again, parameter `key` from `rng.split(stream(key))`: a
    /// function of the seed and the checkpoint key alone. Adding, removing or reordering other
    /// layers then leaves a parameter's initial values as they were, whatever order the layers
    /// were built in. Parameters without an initializer (norm scales and shifts) keep theirs.
    /// Training tasks call it once after building their model.
    ///
    /// ```swift
    /// let model = MLP(rng: rng)
    /// model.drawInitialValues(seed: recipe.seed)
    /// ```
    public final func drawInitialValues(from rng: RNG) {
        for (key, p) in namedParameters() {
            guard let initializer = p.initializer else { continue }
            rng.split(Module.stream(key)).fill(p, initializer)
        }
        for (_, m) in namedModules() { m.initialValuesDrawn() }
    }

    /// `drawInitialValues(from:)` the stream of a run's seed that training tasks use for it.
    public final func drawInitialValues(seed: UInt64) { drawInitialValues(from: RNG(seed: seed).split(0x1417)) }

    /// Called on every module after `drawInitialValues`: state derived from parameters (an EMA
    /// codebook's running sums, say) is derived again here.
    open func initialValuesDrawn() {}

    /// A parameter's stream: FNV-1a of its key.
    static func stream(_ key: String) -> UInt64 {
        key.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }

    /// Calls `f` for every Tensor and Module reachable from this module's stored properties.
    private func visit(prefix: String, _ f: (String, Any) -> Void) {
        var mirrors: [Mirror] = []
        var m: Mirror? = Mirror(reflecting: self)
        while let cur = m { mirrors.append(cur); m = cur.superclassMirror }
        for mirror in mirrors.reversed() {
            for child in mirror.children {
                guard var label = child.label, label != "isTraining" else { continue }
                var value = child.value
                if let inline = value as? InlineProperty {
                    visitInline(prefix: prefix, inline.value, f)
                    continue
                }
                if let keyed = value as? KeyedProperty { (label, value) = (keyed.key, keyed.value) }
                let name = prefix.isEmpty ? label : prefix + "." + label
                visitValue(name, value, f)
            }
        }
    }

    /// An `@Inline` child (or each of an array of them) is reported under its owner's name, and its
    /// parameters and children are named as the owner's own.
    private func visitInline(prefix: String, _ value: Any, _ f: (String, Any) -> Void) {
        let children: [Module]
        switch value {
        case let m as Module: children = [m]
        case let ms as [Module]: children = ms
        default: preconditionFailure("@Inline holds a Module or [Module], not \(type(of: value))")
        }
        for m in children {
            f(prefix, m)
            m.visit(prefix: prefix, f)
        }
    }

    private func visitValue(_ name: String, _ value: Any, _ f: (String, Any) -> Void) {
        switch value {
        case let t as Tensor: f(name, t)
        case let m as Module:
            f(name, m)
            m.visit(prefix: name, f)
        case let ms as [Module]:
            for (i, m) in ms.enumerated() { visitValue("\(name).\(i)", m, f) }
        default: break
        }
    }

    // MARK: - Loading

    public enum LoadError: Error, CustomStringConvertible {
        case missing([String]), unexpected([String]), shape(String, expected: [Int], got: [Int])
        public var description: String {
            switch self {
            case .missing(let k): return "checkpoint is missing parameters: \(k.prefix(8).joined(separator: ", "))\(k.count > 8 ? " …" : "")"
            case .unexpected(let k): return "checkpoint has parameters this model does not: \(k.prefix(8).joined(separator: ", "))\(k.count > 8 ? " …" : "")"
            case .shape(let k, let e, let g): return "parameter \(k): model expects shape \(e), checkpoint has \(g)"
            }
        }
    }

    /// Copies values into this module's parameters by name. `strict` also rejects extra names.
    public final func load(_ tensors: [String: Tensor], strict: Bool = true) throws {
        let params = namedParameters()
        let missing = params.map(\.0).filter { tensors[$0] == nil }
        if !missing.isEmpty { throw LoadError.missing(missing) }
        if strict {
            let names = Set(params.map(\.0))
            let extra = tensors.keys.filter { !names.contains($0) }.sorted()
            if !extra.isEmpty { throw LoadError.unexpected(extra) }
        }
        for (name, p) in params {
            let t = tensors[name]!
            guard t.shape == p.shape else { throw LoadError.shape(name, expected: p.shape, got: t.shape) }
            p.assign(t)
        }
    }

    /// The parameters as a name → tensor dictionary (sharing storage).
    public final func stateDict() -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: namedParameters().map { ($0.0, $0.1.detached()) })
    }
}

/// A parameter or child module stored under a checkpoint key of its own, apart from the
/// property's name, so that renaming the property keeps the checkpoints that name it readable.
/// The key is declared with the property; the value is set in `init` through the wrapper.
///
/// ```swift
/// final class Block: Module {
///     @Key("attn") var attention: SelfAttention      // saved as "attn.qkv.weight", …
///     init(config: DecoderConfig, rng: RNG) { _attention.wrappedValue = SelfAttention(config, rng: rng) }
/// }
/// ```
@propertyWrapper
public struct Key<Value> {
    public let key: String
    var stored: Value?

    public var wrappedValue: Value {
        get {
            guard let stored else { preconditionFailure("@Key(\"\(key)\"): read before init set it") }
            return stored
        }
        set { stored = newValue }
    }

    public init(_ key: String) {
        precondition(!key.isEmpty && !key.contains("."), "Key: '\(key)' must be one non-empty path component")
        self.key = key
    }

    public init(wrappedValue: Value, _ key: String) {
        self.init(key)
        stored = wrappedValue
    }
}

/// Child modules whose parameters are named as their owner's own: a child `image` holding
/// `patchIn` saves `patchIn.weight`, not `image.patchIn.weight`. Models use it to group layers into
/// parts (a modality adapter) without changing the checkpoint keys those layers had; the parts
/// name their own parameters apart (`@Key`) so that no two share a key.
///
/// ```swift
/// final class Model: Module {
///     @Inline var parts: [Module]             // their parameters: "patchIn.weight", "audioIn.weight", …
///     init(parts: [Module]) { _parts = Inline(wrappedValue: parts) }
/// }
/// ```
@propertyWrapper
public struct Inline<Value> {
    public var wrappedValue: Value
    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }
}

/// What Module's reflection reads from an `@Inline` property.
protocol InlineProperty {
    var value: Any { get }
}

extension Inline: InlineProperty {
    var value: Any { wrappedValue as Any }
}

/// What Module's reflection reads from a `@Key` property.
protocol KeyedProperty {
    var key: String { get }
    var value: Any { get }
}

extension Key: KeyedProperty {
    var value: Any { stored as Any }
}

/// Makes a parameter: a leaf that requires grad.
@inline(__always)
public func parameter(_ t: Tensor) -> Tensor {
    t.requiresGrad = true
    return t
}
