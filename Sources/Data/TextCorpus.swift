// A text corpus on disk (plain-text or JSONL files) read in fixed-size byte chunks, so a corpus
// many times the memory streams: nothing but a chunk is ever held. Chunks split into training and
// held-out ones by a stated rule; a chunk's documents are read on demand. Not tokenization or row
// layout (Models/ImageText/ImageCaptionPairs) and not the imagefolder reader.
import Foundation

/// Why a text corpus could not be read. Every case names the file.
public enum TextCorpusError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    /// A problem at byte `offset` of the file (a JSONL line, bytes that are not UTF-8).
    case bad(path: String, offset: Int, reason: String)
    case tooSmall(reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        case .bad(let path, let offset, let reason): return "\(path): byte \(offset): \(reason)"
        case .tooSmall(let reason): return reason
        }
    }
}

/// Plain-text (`.txt`, any name) or JSONL (`.jsonl`: one object per line with a `"text"` string)
/// files read as chunks of `chunkBytes` bytes.
///
/// **Chunks.** File f of `s` bytes holds ⌈s / chunkBytes⌉ chunks. Chunk c of a plain-text file is
/// its bytes [c·C, (c+1)·C) cut to whole UTF-8 characters, one document; chunk c of a JSONL file
/// holds the lines that *start* in those bytes (a line may run past the chunk's end), one
/// document each. **The held-out split:** the last ⌈`heldOut` × chunks⌉ chunks of each file of at
/// least two chunks are held out; the rest train.
///
/// ```swift
/// let corpus = try TextCorpus(paths: ["books.txt"], chunkBytes: 512, heldOut: 0.01)
/// let docs = try corpus.documents(corpus.trainingChunk(0))     // ["…512 bytes of text…"]
/// ```
public struct TextCorpus: Sendable {
    public struct File: Sendable {
        public var path: String
        public var size: Int
        public var isJSONL: Bool
        /// Chunks in the file, and how many of them (its last) are held out.
        public var chunks: Int
        public var heldOutChunks: Int
        public var trainingChunks: Int { chunks - heldOutChunks }
    }

    /// A chunk: file index and chunk index within it.
    public struct Chunk: Hashable, Sendable {
        public var file: Int
        public var index: Int
        public init(file: Int, index: Int) { self.file = file; self.index = index }
    }

    public let files: [File]
    public let chunkBytes: Int
    public let trainingChunks: Int
    public let heldOutChunks: Int
    /// The longest JSONL line read (bytes).
    public static let maxLineBytes = 1 << 20

    /// Looks at each file (its size only; nothing is read yet).
    /// - Throws: ``TextCorpusError`` naming a missing, unreadable or empty file, or a corpus with
    ///   no training or no held-out chunk.
    public init(paths: [String], chunkBytes: Int, heldOut: Double) throws {
        precondition(chunkBytes > 0, "TextCorpus: chunkBytes must be positive")
        guard !paths.isEmpty else { throw TextCorpusError.tooSmall(reason: "data.text names no files") }
        var files: [File] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw TextCorpusError.unreadable(path: path, reason: "no such file")
            }
            guard !isDirectory.boolValue else { throw TextCorpusError.unreadable(path: path, reason: "is a directory, not a text file") }
            guard FileManager.default.isReadableFile(atPath: path),
                  let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int else {
                throw TextCorpusError.unreadable(path: path, reason: "cannot read the file")
            }
            guard size > 0 else { throw TextCorpusError.unreadable(path: path, reason: "is empty") }
            let chunks = (size + chunkBytes - 1) / chunkBytes
            let held = chunks >= 2 ? min(chunks - 1, max(1, Int((Double(chunks) * heldOut).rounded(.up)))) : 0
            files.append(File(path: path, size: size, isJSONL: path.lowercased().hasSuffix(".jsonl"), chunks: chunks,
                              heldOutChunks: heldOut > 0 ? held : 0))
        }
        self.files = files
        self.chunkBytes = chunkBytes
        trainingChunks = files.map(\.trainingChunks).reduce(0, +)
        heldOutChunks = files.map(\.heldOutChunks).reduce(0, +)
        guard heldOut == 0 || heldOutChunks > 0 else {
            throw TextCorpusError.tooSmall(
                reason: "\(paths.joined(separator: ", ")): too small to hold out text (\(files.map(\.size).reduce(0, +)) bytes; "
                    + "a file needs at least two chunks of \(chunkBytes) bytes)")
        }
    }

    /// Training chunk `k` (0 ≤ k < trainingChunks): the files' training chunks in order.
    public func trainingChunk(_ k: Int) -> Chunk {
        var k = k
        for (f, file) in files.enumerated() {
            if k < file.trainingChunks { return Chunk(file: f, index: k) }
            k -= file.trainingChunks
        }
        preconditionFailure("TextCorpus: training chunk out of range")
    }

    /// Held-out chunk `k` (0 ≤ k < heldOutChunks): each file's held-out chunks in order.
    public func heldOutChunk(_ k: Int) -> Chunk {
        var k = k
        for (f, file) in files.enumerated() {
            if k < file.heldOutChunks { return Chunk(file: f, index: file.trainingChunks + k) }
            k -= file.heldOutChunks
        }
        preconditionFailure("TextCorpus: held-out chunk out of range")
    }

    /// The documents of `chunk`: its text (plain), or the `"text"` of each JSONL line starting in it.
    /// - Throws: ``TextCorpusError`` naming the file and byte: text that is not UTF-8, a line that
    ///   is not a JSON object with a `"text"` string, a line longer than ``maxLineBytes``.
    public func documents(_ chunk: Chunk) throws -> [String] {
        let file = files[chunk.file], start = chunk.index * chunkBytes
        guard let handle = FileHandle(forReadingAtPath: file.path) else {
            throw TextCorpusError.unreadable(path: file.path, reason: "cannot open the file")
        }
        defer { try? handle.close() }
        func read(_ offset: Int, _ count: Int) throws -> [UInt8] {
            do {
                try handle.seek(toOffset: UInt64(offset))
                return [UInt8](try handle.read(upToCount: count) ?? Foundation.Data())
            } catch {
                throw TextCorpusError.unreadable(path: file.path, reason: "cannot read byte \(offset): \(error.localizedDescription)")
            }
        }
        if !file.isJSONL {
            var bytes = try read(start, chunkBytes)
            // Whole characters: a character begun in the previous chunk belongs to it, one running
            // past the end to this chunk.
            var head = 0
            while head < bytes.count && head < 3 && bytes[head] & 0xC0 == 0x80 && start > 0 { head += 1 }
            let end = start + bytes.count
            if end < file.size, let lead = bytes.lastIndex(where: { $0 & 0xC0 != 0x80 }), bytes[lead] >= 0xC0 {
                let length = bytes[lead] >= 0xF0 ? 4 : bytes[lead] >= 0xE0 ? 3 : 2
                bytes += try read(end, lead + length - bytes.count)
            }
            guard let text = String(validating: bytes[head...], as: UTF8.self) else {
                throw TextCorpusError.bad(path: file.path, offset: start, reason: "not UTF-8 text in bytes \(start)..<\(end)")
            }
            return [text]
        }
        // JSONL: the lines that start in [start, start + C). Read from start − 1 to see whether a
        // line starts at `start`, then on past the chunk's end to finish the last line.
        let from = max(0, start - 1)
        var bytes = try read(from, chunkBytes + (start - from))
        let first = start == 0 ? 0 : (bytes.firstIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? bytes.count)
        // Lines starting at or after the chunk's end belong to the next chunk.
        let limit = start + chunkBytes - from
        guard first < min(limit, bytes.count) else { return [] }
        var documents: [String] = []
        var lineStart = first
        while lineStart < limit && lineStart < bytes.count {
            var newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n"))
            while newline == nil && from + bytes.count < file.size {
                guard bytes.count - lineStart < Self.maxLineBytes else {
                    throw TextCorpusError.bad(path: file.path, offset: from + lineStart, reason: "a line longer than \(Self.maxLineBytes) bytes")
                }
                let more = try read(from + bytes.count, 4096)
                if more.isEmpty { break }
                bytes += more
                newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n"))
            }
            let lineEnd = newline ?? bytes.count
            let line = bytes[lineStart..<lineEnd]
            let offset = from + lineStart
            lineStart = lineEnd + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            let object: Any
            do { object = try JSONSerialization.jsonObject(with: Foundation.Data(line)) } catch {
                throw TextCorpusError.bad(path: file.path, offset: offset, reason: "not valid JSON (\((error as NSError).localizedDescription))")
            }
            guard let row = object as? [String: Any] else {
                throw TextCorpusError.bad(path: file.path, offset: offset, reason: "expected a JSON object with a \"text\" string")
            }
            guard let text = row["text"] as? String else {
                throw TextCorpusError.bad(path: file.path, offset: offset, reason: "missing \"text\" string")
            }
            if !text.isEmpty { documents.append(text) }
        }
        return documents
    }
}
