// Reading and writing recipes: YAML text → located tree → `key.path=value` overrides → schema walk →
// typed `Recipe`, and back to YAML. Not the walker (RecipeSchema.swift) nor the declarations (RecipeTypes.swift).
import Foundation
import NN
import Yams

/// Why a recipe cannot be used, and where. `description` is the one line to show the user:
///
///     recipes/x.yaml:12:3: unknown key 'optimizer.lrr' (did you mean 'lr'?)
///     override 'train.steps=ten': 'train.steps' must be an integer, got "ten"
public enum RecipeError: Error, CustomStringConvertible, Equatable {
    /// Where a problem is: a position in a file, or a command-line override.
    public struct Location: Equatable, Sendable, CustomStringConvertible {
        public var file: String
        public var line: Int?
        public var column: Int?
        /// The `key.path=value` text when the value came from an override rather than the file.
        public var override: String?

        public init(file: String, line: Int? = nil, column: Int? = nil, override: String? = nil) {
            self.file = file
            self.line = line
            self.column = column
            self.override = override
        }

        public var description: String {
            if let override { return "override '\(override)'" }
            guard let line else { return file }
            return column.map { "\(file):\(line):\($0)" } ?? "\(file):\(line)"
        }
    }

    case unreadable(file: String, reason: String)
    case syntax(Location, message: String)
    case malformedOverride(Location)
    case unknownKey(Location, path: String, hint: String)
    case wrongType(Location, path: String, expected: String, got: String)
    case invalidValue(Location, path: String, message: String)
    case missingKey(Location, path: String, hint: String)
    case duplicateKey(Location, path: String, firstLine: Int?)

    public var location: Location {
        switch self {
        case .unreadable(let file, _): Location(file: file)
        case .syntax(let at, _), .malformedOverride(let at), .unknownKey(let at, _, _), .wrongType(let at, _, _, _),
            .invalidValue(let at, _, _), .missingKey(let at, _, _), .duplicateKey(let at, _, _):
            at
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            "\(file): cannot read recipe: \(reason)"
        case .syntax(let at, let message):
            "\(at): YAML syntax error: \(message)"
        case .malformedOverride(let at):
            "\(at): expected key.path=value, e.g. train.steps=200"
        case .unknownKey(let at, let path, let hint):
            "\(at): unknown key '\(path)' (\(hint))"
        case .wrongType(let at, let path, let expected, let got) where path.isEmpty:
            "\(at): a recipe must be \(expected) (name:, model:, train:, ...), got \(got)"
        case .wrongType(let at, let path, let expected, let got):
            "\(at): '\(path)' must be \(expected), got \(got)"
        case .invalidValue(let at, let path, let message):
            "\(at): '\(path)' \(message)"
        case .missingKey(let at, let path, let hint):
            "\(at): missing required key '\(path)' (\(hint))"
        case .duplicateKey(let at, let path, let firstLine):
            "\(at): duplicate key '\(path)' (already set\(firstLine.map { " on line \($0)" } ?? ""); keep one)"
        }
    }
}

extension Recipe {
    /// Reads a recipe file, applies `key.path=value` overrides, validates it and fills defaults.
    ///
    ///     let recipe = try Recipe.load("recipes/tiny_lm.yaml", overrides: ["train.steps=200"])
    public static func load(_ path: String, overrides: [String] = []) throws -> Recipe {
        if let problem = fileProblem(path) {
            throw RecipeError.unreadable(file: path, reason: problem + " (name a recipe file, e.g. recipes/quickstart.yaml)")
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RecipeError.unreadable(file: path, reason: error.localizedDescription)
        }
        return try parse(text, file: path, overrides: overrides)
    }

    /// Like `load`, from YAML text; `file` is the name errors use.
    ///
    ///     let yaml = "name: demo\nmodel: {kind: lm}\ntrain: {steps: 10}\n"
    ///     let recipe = try Recipe.parse(yaml, file: "demo.yaml", overrides: ["model.qk_norm=true"])
    ///     // recipe.optimizer.lr == 3e-4 (the default)
    public static func parse(_ yaml: String, file: String, overrides: [String] = []) throws -> Recipe {
        var root = try RecipeNode.read(yaml, file: file)
        for text in overrides {
            root = try RecipeOverride(text, file: file).applied(to: root)
        }
        return Recipe(recipeValues: try RecipeSchema.resolve(root))
    }

    /// The fully resolved recipe as YAML, keys in schema order, every default written out;
    /// `Recipe.parse` reads it back equal. Runs save it as their record of what was trained.
    ///
    ///     try recipe.yaml().write(toFile: "runs/demo/recipe.yaml", atomically: true, encoding: .utf8)
    public func yaml() -> String {
        RecipeYAML.lines(jsonObject(), keys: RecipeSchema.recipe, indent: "").joined(separator: "\n") + "\n"
    }
}

// MARK: - A YAML tree that remembers where each value came from

/// A parsed YAML value with its location, so every error can point at the line (or override) it came from.
struct RecipeNode {
    struct Entry {
        var key: String
        var keyAt: RecipeError.Location
        var value: RecipeNode
    }

    enum Content {
        /// `plain` is false for quoted scalars, which are always text.
        case scalar(String, plain: Bool)
        case list([RecipeNode])
        case map([Entry])
    }

    var content: Content
    var at: RecipeError.Location

    /// An empty value, `~` or `null`: the key is treated as absent.
    var isNull: Bool {
        guard case .scalar(let text, plain: true) = content else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(text)
    }

    /// How the value reads in "got ..." messages.
    var summary: String {
        switch content {
        case .scalar(let text, let plain):
            let quotedNumber = !plain && (Double(text) != nil || ["true", "false"].contains(text))
            return RecipeYAML.doubleQuoted(text) + (quotedNumber ? " (quoted; remove the quotes)" : "")
        case .list: return "a list"
        case .map: return "a section of keys"
        }
    }

    func child(_ key: String) -> RecipeNode? {
        guard case .map(let entries) = content else { return nil }
        return entries.last { $0.key == key }?.value
    }

    /// Parses a whole recipe file. An empty file is an empty mapping (so its errors are missing keys).
    static func read(_ text: String, file: String) throws -> RecipeNode {
        let top = RecipeError.Location(file: file)
        let root = try parse(text) { line, column in RecipeError.Location(file: file, line: line, column: column) }
        guard var root else { return RecipeNode(content: .map([]), at: top) }
        if case .map = root.content { root.at = top }  // missing top-level keys have no line
        return root
    }

    /// Turns a line and column (when known) into an error location: a file position, or an override.
    typealias Locate = (_ line: Int?, _ column: Int?) -> RecipeError.Location

    /// Parses YAML text with Yams, mapping its errors and marks through `locate`.
    static func parse(_ text: String, locate: Locate) throws -> RecipeNode? {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw syntaxError(error, in: text, locate: locate)
        }
        return try node.map { try RecipeNode($0, path: "", locate: locate) }
    }

    init(content: Content, at: RecipeError.Location) {
        self.content = content
        self.at = at
    }

    init(_ node: Node, path: String, locate: Locate) throws {
        at = locate(node.mark?.line, node.mark?.column)
        switch node {
        case .scalar(let scalar):
            content = .scalar(scalar.string, plain: scalar.style == .plain)
        case .sequence(let sequence):
            content = .list(try sequence.enumerated().map { index, item in
                try RecipeNode(item, path: "\(path)[\(index)]", locate: locate)
            })
        case .mapping(let mapping):
            var entries: [Entry] = []
            for (key, value) in mapping {
                let keyAt = locate(key.mark?.line, key.mark?.column)
                guard case .scalar(let name) = key else {
                    throw RecipeError.syntax(keyAt, message: "a key must be a plain name, like 'steps:'")
                }
                let keyPath = RecipeSchema.joined(path, name.string)
                if let first = entries.first(where: { $0.key == name.string }) {
                    throw RecipeError.duplicateKey(keyAt, path: keyPath, firstLine: first.keyAt.line)
                }
                let child = try RecipeNode(value, path: keyPath, locate: locate)
                entries.append(Entry(key: name.string, keyAt: keyAt, value: child))
            }
            content = .map(entries)
        }
    }
}

// MARK: - Syntax errors

extension RecipeNode {
    /// Maps a Yams error to file:line:col, naming the nearest key and the likely fix.
    static func syntaxError(_ error: Error, in text: String, locate: Locate) -> RecipeError {
        guard let error = error as? YamlError else { return .syntax(locate(nil, nil), message: "\(error)") }
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            // An unclosed bracket or quote is noticed lines later; point at where it opened.
            let opened = context.flatMap { $0.text.contains("flow") || $0.text.contains("quoted") ? $0 : nil }
            let at = opened?.mark ?? mark
            var message = problem
            if locate(nil, nil).override == nil {  // positions inside an override's value would only confuse
                if let opened { message += " (\(opened.text) that starts here, noticed at \(mark))" }
                if let path = keyPath(nearLine: at.line, in: text) { message += ", near '\(path)'" }
            }
            message += "; " + hint(problem: problem, context: opened?.text)
            return .syntax(locate(at.line, at.column), message: message)
        case .reader(let problem, let offset, _, _):
            let lines = text.prefix(offset ?? 0).split(separator: "\n", omittingEmptySubsequences: false)
            return .syntax(locate(lines.count, (lines.last?.count ?? 0) + 1), message: problem)
        default:
            return .syntax(locate(nil, nil), message: error.description)
        }
    }

    static func hint(problem: String, context: String?) -> String {
        if let context, context.contains("flow sequence") { return "close the list with ']'" }
        if let context, context.contains("flow mapping") { return "close the mapping with '}'" }
        if let context, context.contains("quoted") { return "close the quote" }
        if problem.contains("tab") { return "indent with spaces, not tabs" }
        if problem.contains("another document") { return "a recipe is one document: remove the second '---'" }
        if problem.contains("undefined alias") { return "define the anchor (&name) before using *name" }
        return "check the indentation: the keys of one section line up, and 'key: value' needs a space after ':'"
    }

    /// The dotted key path written at or just above `line`, guessed from indentation: syntax errors
    /// come before there is a tree to ask.
    static func keyPath(nearLine line: Int, in text: String) -> String? {
        var sections: [(indent: Int, name: String)] = []
        var found: String?
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(line) {
            let indent = raw.prefix { $0 == " " || $0 == "\t" }.count
            let rest = raw.dropFirst(indent)
            guard let colon = rest.firstIndex(of: ":") else { continue }
            let name = String(rest[..<colon])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
            sections.removeAll { $0.indent >= indent }
            found = (sections.map(\.name) + [name]).joined(separator: ".")
            let value = rest[rest.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if value.isEmpty || value.hasPrefix("#") { sections.append((indent, name)) }
        }
        return found
    }
}

// MARK: - Overrides

/// One `key.path=value` command-line override; the value is YAML (`200`, `true`, `[a, b]`, `"x y"`).
struct RecipeOverride {
    let path: [String]
    let value: RecipeNode

    init(_ text: String, file: String) throws {
        let at = RecipeError.Location(file: file, override: text)
        guard let equals = text.firstIndex(of: "=") else { throw RecipeError.malformedOverride(at) }
        path = text[..<equals].trimmingCharacters(in: .whitespaces)
            .split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.allSatisfy({ !$0.isEmpty }) else { throw RecipeError.malformedOverride(at) }
        try RecipeSchema.checkPath(path, at: at)
        let valueText = String(text[text.index(after: equals)...])
        value = try RecipeNode.parse(valueText) { _, _ in at } ?? RecipeNode(content: .scalar("", plain: true), at: at)
    }

    /// `root` with the value set at the path, adding the sections the file does not have.
    func applied(to root: RecipeNode) -> RecipeNode { setting(path[...], in: root) }

    private func setting(_ path: ArraySlice<String>, in node: RecipeNode?) -> RecipeNode {
        guard let name = path.first else { return value }
        var entries: [RecipeNode.Entry] = []
        if case .map(let found)? = node?.content { entries = found }
        if let index = entries.firstIndex(where: { $0.key == name }) {
            entries[index].value = setting(path.dropFirst(), in: entries[index].value)
        } else {
            entries.append(.init(key: name, keyAt: value.at, value: setting(path.dropFirst(), in: nil)))
        }
        return RecipeNode(content: .map(entries), at: node?.at ?? value.at)
    }
}

// MARK: - Writing

/// Writes resolved recipe values (the JSON form of `Recipe`) as block YAML in schema order.
enum RecipeYAML {
    static func lines(_ object: [String: Any], keys: [RecipeSchema.Key], indent: String) -> [String] {
        keys.flatMap { key -> [String] in
            guard let value = object[key.name] else { return [] }  // unset optionals are left out
            let head = indent + key.name + ":"
            switch key.type {
            case .section(let inner):
                return [head] + lines(value as? [String: Any] ?? [:], keys: inner, indent: indent + "  ")
            case .strings:
                let items = value as? [String] ?? []
                return items.isEmpty ? [head + " []"] : [head] + items.map { "\(indent)  - \(quoted($0))" }
            default:
                return [head + " " + scalar(key.type, value)]
            }
        }
    }

    /// The same values as `lines`, one per leaf key as `section.key` (lists in flow style).
    static func flat(_ object: [String: Any], keys: [RecipeSchema.Key], prefix: String) -> [(key: String, value: String)] {
        keys.flatMap { key -> [(key: String, value: String)] in
            guard let value = object[key.name] else { return [] }
            let path = prefix + key.name
            switch key.type {
            case .section(let inner): return flat(value as? [String: Any] ?? [:], keys: inner, prefix: path + ".")
            default: return [(path, scalar(key.type, value))]
            }
        }
    }

    /// A leaf value as the YAML writes it, lists in flow style (`lines` writes string lists as blocks).
    static func scalar(_ type: RecipeSchema.ValueType, _ value: Any) -> String {
        switch type {
        case .ints:
            return "[" + (value as? [Any] ?? []).map { (($0 as? NSNumber)?.intValue ?? 0).description }.joined(separator: ", ") + "]"
        case .strings:
            return "[" + (value as? [String] ?? []).map(quoted).joined(separator: ", ") + "]"
        case .float:
            return number(value).map { Float($0).description } ?? "\(value)"
        case .bool:
            return ((value as? Bool) ?? (value as? NSNumber)?.boolValue ?? false).description
        case .int:
            return (value as? Int).map(String.init) ?? (value as? NSNumber)?.stringValue ?? "\(value)"
        case .string, .choice:
            return quoted(value as? String ?? "\(value)")
        case .section:
            return "\(value)"   // not a leaf: `lines` and `flat` walk into it
        }
    }

    static func number(_ value: Any) -> Double? {
        if let double = value as? Double { return double }
        if let int = value as? Int { return Double(int) }
        return (value as? NSNumber)?.doubleValue
    }

    /// `text` bare when it reads back as the same string (`a red circle`), otherwise double-quoted.
    static func quoted(_ text: String) -> String {
        let pattern = #"^[A-Za-z_./]([A-Za-z0-9_./+ -]*[A-Za-z0-9_./+-])?$"#
        let bare = text.range(of: pattern, options: .regularExpression) != nil
        let special = ["null", "true", "false", "yes", "no", "on", "off"].contains(text.lowercased())
        return bare && !special ? text : doubleQuoted(text)
    }

    static func doubleQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || [0x85, 0x2028, 0x2029].contains(scalar.value):
                out += String(format: "\\u%04X", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
