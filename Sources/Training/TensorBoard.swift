// TensorBoard event files for a run (runs/<name>/tensorboard/events.out.tfevents.*): every metrics
// row as scalars, sample grids as images, sample texts and the resolved recipe as text. They are a
// view of metrics.jsonl and samples/, rebuilt from them whenever the trainer opens its log (a
// resume, a rollback), so a file never holds steps that metrics.jsonl no longer has.
//
// The format is TFRecord framing around `tensorflow.Event` protocol buffers, both small enough to
// write by hand: a record is its length (u64 LE), the length's masked CRC-32C (u32), the bytes, and
// their masked CRC-32C. Fields used (tensorflow/core/util/event.proto, summary.proto):
//   Event       1 wall_time double · 2 step int64 · 3 file_version string · 5 summary Summary
//   Summary     1 value Value (repeated)
//   Value       1 tag string · 2 simple_value float · 4 image Image · 8 tensor TensorProto · 9 metadata
//   Image       1 height · 2 width · 3 colorspace (int32) · 4 encoded_image_string bytes (PNG)
//   Metadata    1 plugin_data { 1 plugin_name string · 2 content bytes }
//   TensorProto 1 dtype (7: DT_STRING) · 2 tensor_shape {} (a scalar) · 8 string_val bytes
import Foundation
import NN

/// A TensorBoard event file being written.
public final class TensorBoardLog {
    public let url: URL
    private let handle: FileHandle
    /// Epoch seconds at the run's training-time zero: a row's wall time is this plus its `wall_s`.
    private var origin: Double
    private var lastWall: Double

    /// Starts a new event file in `folder` holding `rows` (metrics.jsonl as read), the sample
    /// files of steps ≤ `upToStep` in `samples`, and `recipe` as text; earlier event files there are
    /// replaced. The file is written whole under a temporary name and renamed into place.
    public init(folder: URL, rows: [[String: Any]], samples: URL?, upToStep: Int, recipe: String?) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw RunError.io(folder.path, "cannot create the TensorBoard folder: \(error.localizedDescription)")
        }
        let lastWallS = rows.compactMap { ($0["wall_s"] as? NSNumber)?.doubleValue }.last ?? 0
        let origin = Date().timeIntervalSince1970 - lastWallS
        var wall = origin
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = folder.appendingPathComponent(String(format: "events.out.tfevents.%010d.%@.%d", Int(Date().timeIntervalSince1970), host, getpid()))

        var out = Data()
        out += TensorBoardLog.record(Event(wallTime: origin, step: 0, fileVersion: "brain.Event:2"))
        if let recipe { out += TensorBoardLog.record(Event(wallTime: origin, step: Int64(upToStep), values: [.text(tag: "recipe", "```yaml\n\(recipe)```")])) }
        var sampleSteps: [Int: [URL]] = [:]
        if let samples {
            for name in (try? fm.contentsOfDirectory(atPath: samples.path)) ?? [] {
                guard let step = TensorBoardLog.sampleStep(name), step <= upToStep else { continue }
                sampleSteps[step, default: []].append(samples.appendingPathComponent(name))
            }
        }
        // Rows and samples in step order, as they were written.
        var pending = sampleSteps.keys.sorted()
        for row in rows {
            let step = (row["step"] as? NSNumber)?.intValue ?? 0
            while let s = pending.first, s < step { out += Self.sampleRecords(step: s, files: sampleSteps[s]!, wallTime: wall); pending.removeFirst() }
            if let event = Self.event(row, origin: origin, wall: &wall) { out += TensorBoardLog.record(event) }
        }
        for s in pending { out += Self.sampleRecords(step: s, files: sampleSteps[s]!, wallTime: wall) }

        for old in (try? fm.contentsOfDirectory(atPath: folder.path)) ?? [] where old.hasPrefix("events.out.tfevents.") {
            try? fm.removeItem(at: folder.appendingPathComponent(old))
        }
        try atomicWrite(out, to: url)
        (self.origin, lastWall) = (origin, wall)
        handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends one metrics row's numbers as scalars (at its `step`).
    public func append(_ row: MetricsRow) throws {
        var dict: [String: Any] = [:]
        for (k, v) in row.fields {
            switch v {
            case .int(let i): dict[k] = NSNumber(value: i)
            case .double(let d): dict[k] = NSNumber(value: d)
            case .string(let s): dict[k] = s
            }
        }
        if let event = Self.event(dict, origin: origin, wall: &lastWall) { try write(TensorBoardLog.record(event)) }
    }

    /// Appends the sample files a step wrote (`step-N.png` as an image, `step-N.txt` as text).
    public func samples(step: Int, in folder: URL) throws {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { Self.sampleStep($0) == step }
        guard !names.isEmpty else { return }
        try write(Self.sampleRecords(step: step, files: names.map { folder.appendingPathComponent($0) }, wallTime: Date().timeIntervalSince1970))
    }

    private func write(_ data: Data) throws {
        do { try handle.write(contentsOf: data) } catch {
            throw RunError.io(url.path, "cannot append to the TensorBoard event file: \(error.localizedDescription) (is the disk full?)")
        }
    }

    /// A metrics row as an event: each number a scalar tagged `train/KEY`, or `eval/KEY` for eval
    /// rows (their `eval_` prefix dropped) and `KIND/KEY` for other kinds; nil when it holds none.
    /// `wall` is the last row's epoch time: `origin` plus its `wall_s` (rows without one keep it).
    static func event(_ row: [String: Any], origin: Double, wall: inout Double) -> Event? {
        guard let step = (row["step"] as? NSNumber)?.intValue else { return nil }
        if let seconds = (row["wall_s"] as? NSNumber)?.doubleValue { wall = origin + seconds }
        let kind = row["kind"] as? String ?? "train"
        var values: [Event.Value] = []
        for key in row.keys.sorted() where !["step", "kind"].contains(key) {
            guard let number = row[key] as? NSNumber, !(row[key] is String) else { continue }
            let name = kind == "eval" && key.hasPrefix("eval_") ? String(key.dropFirst(5)) : key
            values.append(.scalar(tag: "\(kind)/\(name)", Float(number.doubleValue)))
        }
        return values.isEmpty ? nil : Event(wallTime: wall, step: Int64(step), values: values)
    }

    /// `step-00000300.png` → 300.
    static func sampleStep(_ name: String) -> Int? {
        guard name.hasPrefix("step-"), name.hasSuffix(".png") || name.hasSuffix(".txt") else { return nil }
        return Int(name.dropFirst(5).dropLast(4))
    }

    static func sampleRecords(step: Int, files: [URL], wallTime: Double) -> Data {
        var values: [Event.Value] = []
        for file in files.sorted(by: { $0.lastPathComponent < $1.lastPathComponent }) {
            guard let data = try? Data(contentsOf: file) else { continue }
            if file.pathExtension == "png", let (w, h) = pngSize(data) {
                values.append(.image(tag: "samples", png: data, width: w, height: h))
            } else if file.pathExtension == "txt" {
                values.append(.text(tag: "samples/text", "```\n" + String(decoding: data, as: UTF8.self) + "\n```"))
            }
        }
        return values.isEmpty ? Data() : record(Event(wallTime: wallTime, step: Int64(step), values: values))
    }

    /// Width and height from a PNG's IHDR chunk.
    static func pngSize(_ png: Data) -> (Int, Int)? {
        guard png.count >= 24, png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return nil }
        let b = [UInt8](png[16..<24])
        let w = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        let h = Int(b[4]) << 24 | Int(b[5]) << 16 | Int(b[6]) << 8 | Int(b[7])
        return (w, h)
    }

    // MARK: - TFRecord framing

    /// One TFRecord: length, its masked CRC, the event's bytes, their masked CRC.
    static func record(_ event: Event) -> Data {
        let payload = event.encoded()
        var length = UInt64(payload.count).littleEndian
        let lengthBytes = withUnsafeBytes(of: &length) { Data($0) }
        var out = lengthBytes
        out += le32(maskedCRC(lengthBytes))
        out += payload
        out += le32(maskedCRC(payload))
        return out
    }

    static func le32(_ v: UInt32) -> Data { var x = v.littleEndian; return withUnsafeBytes(of: &x) { Data($0) } }

    /// TFRecord's CRC mask: rotate right by 15 and add a constant.
    static func maskedCRC(_ data: Data) -> UInt32 {
        let crc = crc32c(data)
        return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
    static func crc32c(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }

    static let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
        return c
    }
}

/// A `tensorflow.Event` with the fields TensorBoard's scalar, image and text dashboards read.
struct Event {
    enum Value {
        case scalar(tag: String, Float)
        case image(tag: String, png: Data, width: Int, height: Int)
        case text(tag: String, String)
    }

    var wallTime: Double
    var step: Int64
    var fileVersion: String? = nil
    var values: [Value] = []

    func encoded() -> Data {
        var e = ProtoWriter()
        e.double(1, wallTime)
        e.varint(2, UInt64(bitPattern: step))
        if let fileVersion { e.bytes(3, Data(fileVersion.utf8)) }
        if !values.isEmpty {
            var summary = ProtoWriter()
            for v in values { summary.bytes(1, Self.encode(v)) }
            e.bytes(5, summary.data)
        }
        return e.data
    }

    static func encode(_ value: Value) -> Data {
        var v = ProtoWriter()
        switch value {
        case .scalar(let tag, let x):
            v.bytes(1, Data(tag.utf8))
            v.float(2, x)
        case .image(let tag, let png, let width, let height):
            v.bytes(1, Data(tag.utf8))
            var image = ProtoWriter()
            image.varint(1, UInt64(height)); image.varint(2, UInt64(width)); image.varint(3, 3)   // RGB
            image.bytes(4, png)
            v.bytes(4, image.data)
        case .text(let tag, let text):
            v.bytes(1, Data(tag.utf8))
            var tensor = ProtoWriter()
            tensor.varint(1, 7)                  // DT_STRING
            tensor.bytes(2, Data())              // shape [] (a scalar)
            tensor.bytes(8, Data(text.utf8))
            v.bytes(8, tensor.data)
            var plugin = ProtoWriter()
            plugin.bytes(1, Data("text".utf8))
            var metadata = ProtoWriter()
            metadata.bytes(1, plugin.data)
            v.bytes(9, metadata.data)
        }
        return v.data
    }
}

/// Protocol-buffer wire encoding of the few field kinds events use.
struct ProtoWriter {
    var data = Data()

    mutating func key(_ field: Int, _ wire: UInt64) { raw(UInt64(field) << 3 | wire) }

    mutating func raw(_ value: UInt64) {
        var v = value
        while v >= 0x80 { data.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        data.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ value: UInt64) { key(field, 0); raw(value) }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        var bits = value.bitPattern.littleEndian
        data += withUnsafeBytes(of: &bits) { Data($0) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        var bits = value.bitPattern.littleEndian
        data += withUnsafeBytes(of: &bits) { Data($0) }
    }

    mutating func bytes(_ field: Int, _ value: Data) {
        key(field, 2)
        raw(UInt64(value.count))
        data += value
    }
}
