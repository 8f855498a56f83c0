// The `metadata.jsonl` of a user's data folder (imagefolder convention): parsing rows and
// checking that the files they name exist. Not image or audio decoding (FolderDataset.swift).
import Foundation

/// Why a data folder could not be read. Every case names the file and, for a row, its line.
public enum FolderDatasetError: Error, CustomStringConvertible, Equatable {
    /// The metadata file is missing or unreadable.
    case unreadable(path: String, reason: String)
    /// Line `line` (1-based) of the metadata file is not a valid row.
    case badRow(path: String, line: Int, reason: String)
    /// The folder has no rows of the kind asked for.
    case empty(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        case .badRow(let path, let line, let reason): return "\(path):\(line): \(reason)"
        case .empty(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// The rows of a folder's `metadata.jsonl`.
///
/// Each non-blank line is a JSON object, one of:
/// - a pair: `{"file_name": "0001.png", "text": "a red circle"}` (`.png` image or `.wav` audio);
/// - an edit: `{"source_file": "a.png", "instruction": "make it blue", "target_file": "b.png"}`.
///
/// File names are relative to the folder (subfolders allowed; absolute paths and `..` are
/// not). Other keys are ignored, as in Hugging Face's imagefolder.
///
/// ```swift
/// let meta = try FolderMetadata(folder: "data/my-shapes")
/// meta.pairs[0].fileName  // "0001.png"
/// ```
public struct FolderMetadata: Sendable {
    /// A file and its text.
    public struct Pair: Hashable, Sendable {
        public var fileName: String
        public var text: String
        /// 1-based line in `metadata.jsonl`.
        public var line: Int
    }

    /// An edit: source file, instruction, target file.
    public struct Edit: Hashable, Sendable {
        public var sourceFile: String
        public var instruction: String
        public var targetFile: String
        public var line: Int
    }

    public static let fileName = "metadata.jsonl"

    public let folder: String
    public private(set) var pairs: [Pair] = []
    public private(set) var edits: [Edit] = []

    /// The metadata file's path.
    public var path: String { (folder as NSString).appendingPathComponent(Self.fileName) }

    /// Reads and checks `folder/metadata.jsonl`; with `checkFiles`, every named file must exist.
    /// - Throws: ``FolderDatasetError`` naming the file and line of the first problem.
    public init(folder: String, checkFiles: Bool = true) throws {
        let path = (folder as NSString).appendingPathComponent(Self.fileName)
        guard let bytes = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw FolderDatasetError.unreadable(path: path, reason: exists ? "cannot read the file" : "no such file (a data folder needs a \(Self.fileName))")
        }
        try self.init(folder: folder, contents: bytes, checkFiles: checkFiles)
    }

    /// Parses `contents` as the `metadata.jsonl` of `folder` (which is read only when `checkFiles`).
    /// - Throws: ``FolderDatasetError`` naming the file and line of the first problem.
    public init(folder: String, contents bytes: Foundation.Data, checkFiles: Bool) throws {
        self.folder = folder
        let path = self.path
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw FolderDatasetError.unreadable(path: path, reason: "not UTF-8 text")
        }
        for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = k + 1
            let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            func fail(_ reason: String) -> FolderDatasetError { .badRow(path: path, line: line, reason: reason) }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Foundation.Data(trimmed.utf8), options: [])
            } catch {
                throw fail("not valid JSON (\((error as NSError).localizedDescription))")
            }
            guard let row = object as? [String: Any] else { throw fail("expected a JSON object") }
            func string(_ key: String) throws -> String {
                guard let value = row[key] else { throw fail("missing key \"\(key)\"") }
                guard let s = value as? String else { throw fail("\"\(key)\" must be a string") }
                return s
            }
            func file(_ key: String) throws -> String {
                let name = try string(key)
                if let problem = Self.problem(with: name) { throw fail("\"\(key)\" \(problem)") }
                if checkFiles && !FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(name)) {
                    throw fail("\"\(key)\": file \(name) not found in \(folder)")
                }
                return name
            }
            if row["source_file"] != nil || row["target_file"] != nil || row["instruction"] != nil {
                edits.append(Edit(sourceFile: try file("source_file"), instruction: try string("instruction"),
                                  targetFile: try file("target_file"), line: line))
            } else if row["file_name"] != nil {
                pairs.append(Pair(fileName: try file("file_name"), text: try string("text"), line: line))
            } else {
                throw fail("a row needs \"file_name\" and \"text\", or \"source_file\", \"instruction\" and \"target_file\"")
            }
        }
    }

    /// Why `name` is not an acceptable relative file name, or nil.
    static func problem(with name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.hasPrefix("/") { return "must be relative to the folder (got \(name))" }
        if name.split(separator: "/").contains("..") { return "must stay inside the folder (got \(name))" }
        return nil
    }
}
