// metrics.jsonl: one JSON object per line, appended and flushed as training goes, truncated
// back to a checkpoint's step on resume so a resumed run continues the same curve.
import Foundation
import NN

/// A metrics row: ordered keys, numeric or string values, written as one JSON line.
public struct MetricsRow: Sendable {
    public var fields: [(String, MetricValue)] = []
    public init() {}
    public mutating func set(_ key: String, _ value: MetricValue) {
        if let i = fields.firstIndex(where: { $0.0 == key }) { fields[i].1 = value } else { fields.append((key, value)) }
    }
    public subscript(key: String) -> MetricValue? { fields.first { $0.0 == key }?.1 }

    public var json: String {
        "{" + fields.map { "\"\($0.0)\":\($0.1.json)" }.joined(separator: ",") + "}"
    }
}

public enum MetricValue: Sendable, Equatable {
    case int(Int), double(Double), string(String)
    var json: String {
        switch self {
        case .int(let v): return String(v)
        case .double(let v): return v.isFinite ? "\(v)" : "null"
        case .string(let s):
            let data = try! JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
            return String(data: data, encoding: .utf8)!.dropFirst().dropLast().description
        }
    }
}

/// Appends rows to a JSONL file.
public final class MetricsLog {
    public let url: URL
    private let handle: FileHandle
    /// The run's TensorBoard event file, given every row appended here.
    public var mirror: TensorBoardLog?

    public init(url: URL) throws {
        self.url = url
        if !FileManager.default.fileExists(atPath: url.path) {
            guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
                throw RunError.io(url.path, "cannot create metrics file")
            }
        }
        handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    public func append(_ row: MetricsRow) throws {
        do { try handle.write(contentsOf: Data((row.json + "\n").utf8)) } catch {
            throw RunError.io(url.path, "cannot append a metrics row: \(error.localizedDescription) (is the disk full?)")
        }
        try mirror?.append(row)
    }

    /// Keeps only the lines whose "step" is ≤ `step` (and lines without a step).
    public static func truncate(_ url: URL, toStep step: Int) throws {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return }
        // A line that does not parse can only be a write cut short (a crash mid-append): dropped.
        let kept = text.split(separator: "\n", omittingEmptySubsequences: true).filter { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return false }
            guard let s = obj["step"] as? Int else { return true }
            return s <= step
        }
        try (kept.joined(separator: "\n") + (kept.isEmpty ? "" : "\n")).write(to: url, atomically: true, encoding: .utf8)
    }

    /// Parses a metrics file into dictionaries (for compare, tests and notebooks).
    public static func read(_ url: URL) throws -> [[String: Any]] {
        if let problem = fileProblem(url.path) {
            throw RunError.io(url.path, "\(problem) (is \(url.deletingLastPathComponent().path) a run folder?)")
        }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw RunError.io(url.path, "cannot read metrics: \(error.localizedDescription)")
        }
        let lines = text.split(separator: "\n")
        var rows: [[String: Any]] = []
        for (i, line) in lines.enumerated() {
            guard let obj = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                // The last line of a run being written (or killed mid-write) may be incomplete.
                if i == lines.count - 1 && !text.hasSuffix("\n") { break }
                throw RunError.io(url.path, "line \(i + 1) is not a JSON object")
            }
            rows.append(obj)
        }
        return rows
    }
}
