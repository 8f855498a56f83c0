// The recipe schema: every key a recipe may hold (type, default, bounds), read off the section
// structs' declarations, and the walker that checks a parsed YAML tree against it. Not the YAML
// reading or writing (Recipe.swift), nor the declarations (RecipeTypes.swift).
import Diffusion
import Foundation
import NN
import Tensors

/// The schema of a recipe file and the walker that validates a tree against it.
enum RecipeSchema {
    /// What a key's value must be.
    indirect enum ValueType {
        case int, float, bool, string
        /// A string from a fixed list.
        case choice([String])
        /// A list of strings, e.g. `[a red circle, a blue square]`.
        case strings
        /// A list of integers, e.g. `[1, 2, 2]`.
        case ints
        /// A nested mapping of keys.
        case section([Key])
    }

    /// What an absent (or `null`) key means.
    enum Presence {
        case required, optional
        case defaults(Value)
    }

    /// Numeric limits, checked after the type so bad numbers fail here rather than deep in training.
    enum Bounds {
        case positive, nonNegative
        /// 0 ≤ x ≤ 1.
        case fraction
        /// 0 ≤ x < 1 (betas, momentum, EMA decay).
        case openFraction
    }

    /// One key of the schema.
    struct Key {
        let name: String
        let type: ValueType
        let presence: Presence
        let bounds: Bounds?
    }

    /// A validated value, ready to become JSON for the Codable recipe structs.
    enum Value: Equatable {
        case int(Int), float(Double), bool(Bool), string(String), strings([String])
        case ints([Int])
        case section([String: Value])
    }
}

// MARK: - The table

extension RecipeSchema {
    /// Every key a recipe may hold, in the order `Recipe.yaml()` writes them: read off the
    /// sections' declarations (RecipeTypes.swift, RecipeTokenizer.swift).
    static let recipe: [Key] = Recipe.keys
}

// MARK: - The walker

extension RecipeSchema {
    typealias Location = RecipeError.Location

    /// Checks a whole recipe tree (overrides already applied) and returns every value, defaults filled.
    static func resolve(_ root: RecipeNode) throws -> [String: Value] {
        let values = try resolveSection(root, keys: recipe, path: "", at: root.at)
        try checkRules(values, root)
        return values
    }

    /// Rules between keys that the per-key table cannot say.
    static func checkRules(_ values: [String: Value], _ root: RecipeNode) throws {
        if case .section(let data) = values["data"], data["source"] == .string("folder"), data["path"] == nil {
            let at = root.child("data")?.child("source")?.at ?? root.at
            throw RecipeError.missingKey(
                at, path: "data.path", hint: "needed when 'data.source' is folder: add 'path: DIR' under 'data:'")
        }
        if case .section(let train) = values["train"], case .string(let limit) = train["memory_limit"],
           limit.lowercased() != "off", TrainSection.parseBytes(limit) == nil {
            let at = root.child("train")?.child("memory_limit")?.at ?? root.at
            throw RecipeError.invalidValue(at, path: "train.memory_limit",
                                           message: "\"\(limit)\" is not a size: write e.g. 6GiB, 512MiB, a byte count, or off")
        }
        if case .section(let data) = values["data"], case .strings(let text) = data["text"],
           case .float(let fraction) = data["text_fraction"], text.isEmpty != (fraction == 0) {
            let key = text.isEmpty ? "text_fraction" : "text"
            let at = root.child("data")?.child(key)?.at ?? root.at
            throw RecipeError.invalidValue(at, path: "data.\(key)", message: text.isEmpty
                ? "\(fraction) of the rows would be corpus text, but data.text names no files: add 'text: [corpus.txt]'"
                : "names a corpus, but data.text_fraction is 0: say which fraction of the rows (of the tokens) is corpus text")
        }
        try checkTokenizerRules(values, root)
        try checkDiffusionRules(values, root)
        if case .section(let train) = values["train"], case .string(let name) = train["matmul_precision"],
           let precision = MatmulPrecision(rawValue: name), !precision.isAvailable {
            let at = root.child("train")?.child("matmul_precision")?.at ?? root.at
            throw RecipeError.invalidValue(at, path: "train.matmul_precision",
                                           message: "\(name) needs a CPU with AVX512-BF16, and this one has none (use fp32)")
        }
    }

    /// The sampler must fit the target (euler integrates the flow path; ddpm/ddim walk a discrete
    /// schedule), and a discrete schedule cannot be sampled in more steps than it has.
    static func checkDiffusionRules(_ values: [String: Value], _ root: RecipeNode) throws {
        guard case .section(let d) = values["diffusion"], case .string(let target) = d["target"],
              case .string(let sampler) = d["sampler"], case .int(let steps) = d["steps"],
              case .int(let sampleSteps) = d["sample_steps"] else { return }
        let node = root.child("diffusion")
        if (target == "flow") != (sampler == "euler") {
            let at = node?.child("sampler")?.at ?? node?.child("target")?.at ?? root.at
            throw RecipeError.invalidValue(at, path: "diffusion.sampler",
                                           message: "\(sampler) does not fit target \(target) (use \(target == "flow" ? "euler" : "ddim or ddpm"))")
        }
        if target != "flow" && sampleSteps > steps {
            let at = node?.child("sample_steps")?.at ?? node?.child("steps")?.at ?? root.at
            throw RecipeError.invalidValue(at, path: "diffusion.sample_steps",
                                           message: "must be at most diffusion.steps (\(steps)), got \(sampleSteps)")
        }
    }

    /// `node` is the section's mapping (nil or null when absent); `at` is where missing keys are reported.
    static func resolveSection(_ node: RecipeNode?, keys: [Key], path: String, at: Location) throws -> [String: Value] {
        var entries: [RecipeNode.Entry] = []
        if let node, !node.isNull {
            guard case .map(let found) = node.content else {
                throw RecipeError.wrongType(node.at, path: path, expected: "a section of keys", got: node.summary)
            }
            entries = found
        }
        for entry in entries where !keys.contains(where: { $0.name == entry.key }) {
            throw unknownKey(entry.key, in: keys, path: path, at: entry.keyAt)
        }
        var values: [String: Value] = [:]
        for key in keys {
            let entry = entries.last { $0.key == key.name }
            values[key.name] = try resolveKey(key, entry?.value, path: joined(path, key.name), at: entry?.keyAt ?? at)
        }
        return values
    }

    static func resolveKey(_ key: Key, _ node: RecipeNode?, path: String, at: Location) throws -> Value? {
        if case .section(let keys) = key.type {
            return .section(try resolveSection(node, keys: keys, path: path, at: at))
        }
        guard let node, !node.isNull else {
            switch key.presence {
            case .required:
                let parent = path.split(separator: ".").dropLast().joined(separator: ".")
                let place = parent.isEmpty ? "at the top level" : "under '\(parent):'"
                throw RecipeError.missingKey(at, path: path, hint: "add '\(key.name): \(key.type.example)' \(place)")
            case .optional: return nil
            case .defaults(let value): return value
            }
        }
        let value = try convert(node, to: key.type, path: path)
        if let bounds = key.bounds, let number = value.number, !bounds.contains(number),
            case .scalar(let text, _) = node.content
        {
            throw RecipeError.invalidValue(node.at, path: path, message: "must be \(bounds), got \(text)")
        }
        if let bounds = key.bounds, case .ints(let numbers) = value, case .list(let items) = node.content,
            let bad = numbers.indices.first(where: { !bounds.contains(Double(numbers[$0])) })
        {
            throw RecipeError.invalidValue(
                items[bad].at, path: "\(path)[\(bad)]", message: "must be \(bounds), got \(numbers[bad])")
        }
        return value
    }

    /// Turns one YAML value into a typed `Value`, or says what was expected.
    static func convert(_ node: RecipeNode, to type: ValueType, path: String) throws -> Value {
        let wrongType = RecipeError.wrongType(node.at, path: path, expected: type.noun, got: node.summary)
        switch (type, node.content) {
        case (.int, .scalar(let text, plain: true)):
            guard let int = Int(text.replacingOccurrences(of: "_", with: "")) else { throw wrongType }
            return .int(int)
        case (.float, .scalar(let text, plain: true)):
            // Recipe numbers are Float: round here, so bounds see the value training will use.
            guard let double = Double(text.replacingOccurrences(of: "_", with: "")), Float(double).isFinite else {
                throw wrongType
            }
            return .float(Double(Float(double)))
        case (.bool, .scalar(let text, plain: true)):
            switch text.lowercased() {
            case "true", "yes", "on": return .bool(true)
            case "false", "no", "off": return .bool(false)
            default: throw wrongType
            }
        case (.string, .scalar(let text, _)):
            return .string(text)
        case (.choice(let options), .scalar(let text, _)):
            guard options.contains(text) else {
                let guess = closest(text, among: options).map { " (did you mean '\($0)'?)" } ?? ""
                throw RecipeError.invalidValue(
                    node.at, path: path, message: "must be \(type.noun), got \(node.summary)\(guess)")
            }
            return .string(text)
        case (.strings, .list(let items)):
            return .strings(try items.enumerated().map { index, item in
                guard case .scalar(let text, _) = item.content else {
                    throw RecipeError.wrongType(
                        item.at, path: "\(path)[\(index)]", expected: "a string", got: item.summary)
                }
                return text
            })
        case (.ints, .list(let items)):
            return .ints(try items.enumerated().map { index, item in
                guard case .scalar(let text, plain: true) = item.content,
                    let int = Int(text.replacingOccurrences(of: "_", with: ""))
                else {
                    throw RecipeError.wrongType(
                        item.at, path: "\(path)[\(index)]", expected: "an integer", got: item.summary)
                }
                return int
            })
        default:
            throw wrongType
        }
    }

    /// Checks an override's key path against the table before its value is applied.
    static func checkPath(_ path: [String], at: Location) throws {
        var keys = recipe
        var prefix = ""
        for (depth, name) in path.enumerated() {
            guard let key = keys.first(where: { $0.name == name }) else {
                throw unknownKey(name, in: keys, path: prefix, at: at)
            }
            prefix = joined(prefix, name)
            if case .section(let inner) = key.type {
                keys = inner
            } else if depth < path.count - 1 {
                throw RecipeError.unknownKey(
                    at, path: path.joined(separator: "."), hint: "'\(prefix)' is a single value, not a section")
            }
        }
    }
}

// MARK: - Messages and suggestions

extension RecipeSchema {
    static func joined(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    /// An unknown-key error with the likeliest fix: a near sibling, the same key in another section,
    /// or the list of keys that are allowed here.
    static func unknownKey(_ name: String, in keys: [Key], path: String, at: Location) -> RecipeError {
        let hint: String
        if let near = closest(name, among: keys.map(\.name)) {
            hint = "did you mean '\(near)'?"
        } else if let elsewhere = closest(name, among: pathsOfLeaves(recipe).filter { $0.contains(".") }) {
            hint = "did you mean '\(elsewhere)'?"
        } else {
            hint = "known keys here: " + keys.map(\.name).joined(separator: ", ")
        }
        return .unknownKey(at, path: joined(path, name), hint: hint)
    }

    static func pathsOfLeaves(_ keys: [Key], prefix: String = "") -> [String] {
        keys.flatMap { key -> [String] in
            if case .section(let inner) = key.type { return pathsOfLeaves(inner, prefix: joined(prefix, key.name)) }
            return [joined(prefix, key.name)]
        }
    }

    /// The candidate (a key, or the last part of a key path) within two edits of `word` and closer than
    /// its length, else the shortest one that `word` begins (`warmup` → `warmup_steps`).
    static func closest(_ word: String, among candidates: [String]) -> String? {
        let word = word.lowercased()
        let named = candidates.map { ($0, String($0.split(separator: ".").last ?? "")) }
        let scored = named.map { ($0.0, editDistance(word, $0.1)) }
        if let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= 2, best.1 < word.count { return best.0 }
        guard word.count >= 3 else { return nil }
        return named.filter { $0.1.hasPrefix(word) }.min { $0.1.count < $1.1.count }?.0
    }

    /// Levenshtein distance, one row at a time.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var row = [i + 1]
            for (j, y) in b.enumerated() {
                row.append(min(previous[j + 1] + 1, row[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = row
        }
        return previous[b.count]
    }
}

// MARK: - Small conveniences

extension RecipeSchema.Key {
    typealias ValueType = RecipeSchema.ValueType
    typealias Bounds = RecipeSchema.Bounds

    static func required(_ name: String, _ type: ValueType, _ bounds: Bounds? = nil) -> Self {
        Self(name: name, type: type, presence: .required, bounds: bounds)
    }
    static func optional(_ name: String, _ type: ValueType, _ bounds: Bounds? = nil) -> Self {
        Self(name: name, type: type, presence: .optional, bounds: bounds)
    }
    static func key(_ name: String, _ type: ValueType, _ value: RecipeSchema.Value, _ bounds: Bounds? = nil) -> Self {
        Self(name: name, type: type, presence: .defaults(value), bounds: bounds)
    }
    /// A nested section; absent means all its keys take their defaults (or are reported missing).
    static func section(_ name: String, _ keys: [Self]) -> Self {
        Self(name: name, type: .section(keys), presence: .optional, bounds: nil)
    }
}

extension RecipeSchema.ValueType {
    /// "must be <noun>".
    var noun: String {
        switch self {
        case .int: "an integer"
        case .float: "a number"
        case .bool: "true or false"
        case .string: "a string"
        case .choice(let options): "one of " + options.joined(separator: ", ")
        case .strings: "a list of strings, e.g. [a, b]"
        case .ints: "a list of integers, e.g. [1, 2, 2]"
        case .section: "a section of keys"
        }
    }

    /// A placeholder value for "add 'key: <example>'" hints.
    var example: String {
        switch self {
        case .int: "<integer>"
        case .float: "<number>"
        case .bool: "true"
        case .string: "<text>"
        case .choice(let options): options[0]
        case .strings: "[]"
        case .ints: "[1, 2]"
        case .section: "{}"
        }
    }
}

extension RecipeSchema.Bounds: CustomStringConvertible {
    func contains(_ x: Double) -> Bool {
        switch self {
        case .positive: x > 0
        case .nonNegative: x >= 0
        case .fraction: x >= 0 && x <= 1
        case .openFraction: x >= 0 && x < 1
        }
    }

    var description: String {
        switch self {
        case .positive: "> 0"
        case .nonNegative: ">= 0"
        case .fraction: "between 0 and 1"
        case .openFraction: ">= 0 and < 1"
        }
    }
}

extension RecipeSchema.Value: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByArrayLiteral
{
    init(integerLiteral value: Int) { self = .int(value) }
    init(floatLiteral value: Double) { self = .float(value) }
    init(stringLiteral value: String) { self = .string(value) }
    init(arrayLiteral elements: String...) { self = .strings(elements) }

    var number: Double? {
        switch self {
        case .int(let int): Double(int)
        case .float(let double): double
        default: nil
        }
    }

    /// The value as a JSONSerialization object.
    var json: Any {
        switch self {
        case .int(let int): int
        case .float(let double): double
        case .bool(let bool): bool
        case .string(let string): string
        case .strings(let strings): strings
        case .ints(let ints): ints
        case .section(let values): values.mapValues(\.json)
        }
    }
}
