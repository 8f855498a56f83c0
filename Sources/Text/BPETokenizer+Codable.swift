// The tokenizer's JSON file: Codable conformance, save and load with errors that name the file
// and the problem. Not a Hugging Face tokenizer.json reader; the format is Fusion's own.
import Foundation

/// Why a tokenizer file could not be read.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all.
    case unreadable(path: String, reason: String)
    /// The file was read but is not a valid Fusion tokenizer.
    case malformed(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "cannot read tokenizer file \(path): \(reason)"
        case .malformed(let path, let reason): return "invalid tokenizer file \(path): \(reason)"
        }
    }
}

extension BPETokenizer: Codable {
    /// The format tag written into every file.
    public static let format = "fusion-bpe"
    /// The format version written into every file.
    public static let version = 1

    enum CodingKeys: String, CodingKey { case format, version, specialTokens, vocabSize, merges }

    /// Writes `{"format": "fusion-bpe", "version": 1, "specialTokens": [...], "vocabSize": N,
    /// "merges": [[left, right], ...]}`; the vocabulary is implied by the merges.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.format, forKey: .format)
        try c.encode(Self.version, forKey: .version)
        try c.encode(SpecialTokens.names, forKey: .specialTokens)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(merges.map { [$0.left, $0.right] }, forKey: .merges)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func fail(_ key: CodingKeys, _ message: String) -> DecodingError {
            .dataCorruptedError(forKey: key, in: c, debugDescription: message)
        }
        let format = try c.decode(String.self, forKey: .format)
        guard format == Self.format else { throw fail(.format, "format is \"\(format)\", expected \"\(Self.format)\"") }
        let version = try c.decode(Int.self, forKey: .version)
        guard version == Self.version else { throw fail(.version, "version \(version) is not supported (expected \(Self.version))") }
        let specials = try c.decode([String].self, forKey: .specialTokens)
        guard specials == SpecialTokens.names else {
            throw fail(.specialTokens, "special tokens \(specials) differ from \(SpecialTokens.names)")
        }
        let pairs = try c.decode([[Int32]].self, forKey: .merges)
        var merges: [Merge] = []
        merges.reserveCapacity(pairs.count)
        for (k, p) in pairs.enumerated() {
            guard p.count == 2 else { throw fail(.merges, "merge \(k) has \(p.count) ids, expected 2") }
            merges.append(Merge(p[0], p[1]))
        }
        if let problem = Self.validate(merges) { throw fail(.merges, problem) }
        let vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        guard vocabSize == Int(Self.mergeBase) + merges.count else {
            throw fail(.vocabSize, "vocabSize \(vocabSize) does not match \(merges.count) merges (expected \(Int(Self.mergeBase) + merges.count))")
        }
        self.init(validated: merges)
    }

    /// Writes the tokenizer as JSON to `path` (via a temporary file, then a rename).
    public func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(self)
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// Reads a tokenizer written by ``save(to:)``.
    ///
    /// - Throws: ``TokenizerError`` naming `path` and what is wrong (missing file, invalid
    ///   JSON, wrong format or version, a merge using an id that does not exist yet, …).
    public static func load(from path: String) throws -> BPETokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError.unreadable(path: path, reason: "no such file (write one with `fusion data tokenizer --out \(path)`)")
        }
        if isDirectory.boolValue { throw TokenizerError.unreadable(path: path, reason: "is a directory, not a tokenizer file") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        return try decode(data, name: path)
    }

    /// Reads a tokenizer from the bytes of its JSON file; `name` is only used in error messages.
    /// - Throws: ``TokenizerError/malformed(path:reason:)`` naming `name` and the problem.
    public static func decode(_ data: Data, name path: String) throws -> BPETokenizer {
        do {
            return try JSONDecoder().decode(BPETokenizer.self, from: data)
        } catch let error as DecodingError {
            throw TokenizerError.malformed(path: path, reason: describe(error))
        } catch {
            throw TokenizerError.malformed(path: path, reason: "\(error)")
        }
    }

    /// One line for a DecodingError: the key path and the problem.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let ctx):
            return "missing key \"\(key.stringValue)\" at \(path(ctx.codingPath))"
        case .typeMismatch(let type, let ctx):
            return "wrong type at \(path(ctx.codingPath)): expected \(type)"
        case .valueNotFound(let type, let ctx):
            return "null at \(path(ctx.codingPath)): expected \(type)"
        case .dataCorrupted(let ctx):
            let underlying = (ctx.underlyingError as NSError?)?.localizedDescription
            return "\(path(ctx.codingPath)): \(ctx.debugDescription)" + (underlying.map { " (\($0))" } ?? "")
        @unknown default:
            return "\(error)"
        }
    }
}
