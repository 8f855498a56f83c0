// Each recipe key is declared once: a property of its section struct (type and default) and one
// entry of the section's `fields` (YAML name, bounds, whether it is required). The schema table,
// the typed recipe, its YAML and its JSON are all read off those declarations. Not the walker
// (RecipeSchema.swift) nor the YAML reader (Recipe.swift).
import Diffusion
import Foundation
import NN
import Tensors

/// A section of a recipe (`model:`, `train:`, …, and the recipe itself): a struct whose properties
/// hold the defaults and whose `fields` name them.
///
/// ```swift
/// public struct SampleSection: RecipeSection {
///     public var every = 0
///     public var prompts: [String] = []
///     public static let fields: [RecipeField<Self>] = [
///         .key("every", \.every, .nonNegative),
///         .key("prompts", \.prompts),
///     ]
///     public init() {}
/// }
/// ```
///
/// Its `Codable` form is read off `fields` too (keys as in the YAML); a key an older file lacks
/// decodes to the value its field says (`absent:`), or is an error.
public protocol RecipeSection: Codable, Equatable, Sendable {
    /// Every key at its default.
    init()
    /// The section's keys in the order recipes are written.
    static var fields: [RecipeField<Self>] { get }
}

/// One key of a section: its schema entry, and how to read and write it in the struct.
public struct RecipeField<Root>: @unchecked Sendable {
    let key: RecipeSchema.Key
    /// The value in the schema's terms; nil when an optional key is unset.
    let read: (Root) -> RecipeSchema.Value?
    /// Sets a value the schema has validated.
    let write: (inout Root, RecipeSchema.Value) -> Void
    let decode: (inout Root, KeyedDecodingContainer<RecipeCodingKey>) throws -> Void
    let encode: (Root, inout KeyedEncodingContainer<RecipeCodingKey>) throws -> Void
}

/// A JSON key of a section: the YAML name.
public struct RecipeCodingKey: CodingKey {
    public var stringValue: String
    public init(stringValue: String) { self.stringValue = stringValue }
    public var intValue: Int? { nil }
    public init?(intValue: Int) { nil }
}

extension RecipeField where Root: RecipeSection {
    /// A leaf key. Its type comes from the property; its default is the property's value in
    /// `Root()` (an optional property that is nil there is an optional key), unless `required`.
    /// `absent` is what a JSON file written before the key existed reads as (checkpoint configs).
    static func key<V: RecipeValue>(_ name: String, _ path: WritableKeyPath<Root, V>, _ bounds: RecipeSchema.Bounds? = nil,
                                    required: Bool = false, absent: V? = nil) -> Self {
        let presence: RecipeSchema.Presence
        if required {
            presence = .required
        } else if let value = Root()[keyPath: path].recipeValue {
            presence = .defaults(value)
        } else {
            presence = .optional
        }
        let codingKey = RecipeCodingKey(stringValue: name)
        return Self(
            key: RecipeSchema.Key(name: name, type: V.recipeType, presence: presence, bounds: bounds),
            read: { $0[keyPath: path].recipeValue },
            write: { root, value in
                guard let typed = V(recipeValue: value) else {
                    fatalError("recipe key '\(name)': the schema passed \(value), which \(V.self) cannot hold")
                }
                root[keyPath: path] = typed
            },
            decode: { root, container in
                if let value = try container.decodeIfPresent(V.self, forKey: codingKey) {
                    root[keyPath: path] = value
                } else if let absent {
                    root[keyPath: path] = absent
                } else if !V.isOptional {
                    throw DecodingError.keyNotFound(codingKey, .init(codingPath: container.codingPath,
                                                                     debugDescription: "no value for '\(name)'"))
                }
            },
            encode: { root, container in
                guard root[keyPath: path].recipeValue != nil else { return }  // unset optionals are left out
                try container.encode(root[keyPath: path], forKey: codingKey)
            })
    }

    /// A nested section (`model:` in the recipe).
    static func section<S: RecipeSection>(_ name: String, _ path: WritableKeyPath<Root, S>) -> Self {
        let codingKey = RecipeCodingKey(stringValue: name)
        return Self(
            key: .section(name, S.keys),
            read: { .section($0[keyPath: path].recipeValues) },
            write: { root, value in
                guard case .section(let values) = value else { fatalError("recipe section '\(name)' got \(value)") }
                root[keyPath: path] = S(recipeValues: values)
            },
            decode: { root, container in
                root[keyPath: path] = try container.decodeIfPresent(S.self, forKey: codingKey) ?? S()
            },
            encode: { root, container in try container.encode(root[keyPath: path], forKey: codingKey) })
    }
}

extension RecipeSection {
    /// The schema of the section, from its fields.
    static var keys: [RecipeSchema.Key] { fields.map(\.key) }

    /// The section from values the schema walk resolved (every key present or left unset).
    init(recipeValues values: [String: RecipeSchema.Value]) {
        self.init()
        for field in Self.fields {
            if let value = values[field.key.name] { field.write(&self, value) }
        }
    }

    /// Every set key's value, sections nested.
    var recipeValues: [String: RecipeSchema.Value] {
        var out: [String: RecipeSchema.Value] = [:]
        for field in Self.fields {
            if let value = field.read(self) { out[field.key.name] = value }
        }
        return out
    }

    public init(from decoder: Swift.Decoder) throws {
        self.init()
        let container = try decoder.container(keyedBy: RecipeCodingKey.self)
        for field in Self.fields { try field.decode(&self, container) }
    }

    public func encode(to encoder: Swift.Encoder) throws {
        var container = encoder.container(keyedBy: RecipeCodingKey.self)
        for field in Self.fields { try field.encode(self, &container) }
    }
}

// MARK: - The value types a key may have

/// A Swift type a recipe key can hold, and its schema type.
protocol RecipeValue: Codable {
    static var recipeType: RecipeSchema.ValueType { get }
    /// Nil when `value` is not of this type (the schema walk has checked it already).
    init?(recipeValue value: RecipeSchema.Value)
    /// Nil for an unset optional.
    var recipeValue: RecipeSchema.Value? { get }
    static var isOptional: Bool { get }
}

extension RecipeValue {
    static var isOptional: Bool { false }
}

extension Int: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { .int }
    init?(recipeValue value: RecipeSchema.Value) {
        guard case .int(let int) = value else { return nil }
        self = int
    }
    var recipeValue: RecipeSchema.Value? { .int(self) }
}

extension UInt64: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { .int }
    init?(recipeValue value: RecipeSchema.Value) {
        guard case .int(let int) = value, int >= 0 else { return nil }
        self = UInt64(int)
    }
    var recipeValue: RecipeSchema.Value? { .int(Int(self)) }
}

extension Float: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { .float }
    init?(recipeValue value: RecipeSchema.Value) {
        guard let number = value.number else { return nil }
        self = Float(number)
    }
    var recipeValue: RecipeSchema.Value? { .float(Double(self)) }
}

extension Bool: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { .bool }
    init?(recipeValue value: RecipeSchema.Value) {
        guard case .bool(let bool) = value else { return nil }
        self = bool
    }
    var recipeValue: RecipeSchema.Value? { .bool(self) }
}

extension String: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { .string }
    init?(recipeValue value: RecipeSchema.Value) {
        guard case .string(let string) = value else { return nil }
        self = string
    }
    var recipeValue: RecipeSchema.Value? { .string(self) }
}

/// What a list key may hold: strings or integers.
protocol RecipeListElement: Codable {
    static var listType: RecipeSchema.ValueType { get }
    static func elements(_ value: RecipeSchema.Value) -> [Self]?
    static func list(_ elements: [Self]) -> RecipeSchema.Value
}

extension String: RecipeListElement {
    static var listType: RecipeSchema.ValueType { .strings }
    static func elements(_ value: RecipeSchema.Value) -> [String]? {
        guard case .strings(let strings) = value else { return nil }
        return strings
    }
    static func list(_ elements: [String]) -> RecipeSchema.Value { .strings(elements) }
}

extension Int: RecipeListElement {
    static var listType: RecipeSchema.ValueType { .ints }
    static func elements(_ value: RecipeSchema.Value) -> [Int]? {
        guard case .ints(let ints) = value else { return nil }
        return ints
    }
    static func list(_ elements: [Int]) -> RecipeSchema.Value { .ints(elements) }
}

extension Array: RecipeValue where Element: RecipeListElement {
    static var recipeType: RecipeSchema.ValueType { Element.listType }
    init?(recipeValue value: RecipeSchema.Value) {
        guard let elements = Element.elements(value) else { return nil }
        self = elements
    }
    var recipeValue: RecipeSchema.Value? { Element.list(self) }
}

/// An optional key: absent (or null) leaves it nil.
extension Optional: RecipeValue where Wrapped: RecipeValue {
    static var recipeType: RecipeSchema.ValueType { Wrapped.recipeType }
    static var isOptional: Bool { true }
    init?(recipeValue value: RecipeSchema.Value) {
        guard let wrapped = Wrapped(recipeValue: value) else { return nil }
        self = .some(wrapped)
    }
    var recipeValue: RecipeSchema.Value? { self?.recipeValue }
}

/// A key whose value is one of an enum's names: the schema lists them, and a misspelling is an
/// error naming the closest one, never a silent fallback.
protocol RecipeChoice: RecipeValue, RawRepresentable<String>, CaseIterable {}

extension RecipeChoice {
    static var recipeType: RecipeSchema.ValueType { .choice(allCases.map(\.rawValue)) }
    init?(recipeValue value: RecipeSchema.Value) {
        guard case .string(let name) = value else { return nil }
        self.init(rawValue: name)
    }
    var recipeValue: RecipeSchema.Value? { .string(rawValue) }
}

extension ModelFamily: RecipeChoice {}
extension ModelPreset: RecipeChoice {}
extension SpanPatchifier: RecipeChoice {}
extension NoiseScheduleName: RecipeChoice {}
extension DiffusionTarget: RecipeChoice {}
extension SpanSampler: RecipeChoice {}
extension DataSourceKind: RecipeChoice {}
extension OptimizerKind: RecipeChoice {}
extension LRSchedule.Decay: RecipeChoice {}
extension MatmulPrecision: RecipeChoice {}
extension NonFinitePolicy: RecipeChoice {}
extension ReconstructionLoss: RecipeChoice {}
