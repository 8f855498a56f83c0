// The safetensors format (8-byte little-endian header size, a JSON header of name → dtype,
// shape, data_offsets, then the raw bytes), read with every offset bounds-checked and written
// atomically (temporary file + rename). Not a memory-mapped reader: files are small here.
import Foundation
import Tensors

public enum SafetensorsError: Error, CustomStringConvertible {
    case io(String, String)
    case corrupt(String, String)

    public var description: String {
        switch self {
        case .io(let f, let m): return "\(f): \(m)"
        case .corrupt(let f, let m): return "\(f): not a valid safetensors file: \(m)"
        }
    }
}

/// On-disk element types. Floats load as Float32 tensors, integers as Int32.
public enum SafetensorsDType: String, Sendable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", i32 = "I32", i64 = "I64"
    var size: Int { switch self { case .f32, .i32: 4; case .f16, .bf16: 2; case .i64: 8 } }
}

public enum Safetensors {
    /// Writes `tensors` (sorted by name) with optional string metadata, atomically.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                             dtype: SafetensorsDType = .f32, to url: URL) throws {
        try atomicWrite(encode(tensors, metadata: metadata, dtype: dtype), to: url)
    }

    /// The file's bytes, built in one buffer of the file's size (offsets are laid out first), so
    /// writing a checkpoint holds one copy of it in memory, not the three that growing and joining
    /// buffers took.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:],
                              dtype: SafetensorsDType = .f32) throws -> Foundation.Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        let names = tensors.keys.sorted()
        var bodyCount = 0
        for name in names {
            let t = tensors[name]!
            let dt: SafetensorsDType = t.dtype == .int32 ? .i32 : dtype
            let start = bodyCount
            bodyCount += t.count * dt.size
            header[name] = ["dtype": dt.rawValue, "shape": t.shape, "data_offsets": [start, bodyCount]]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces, as the format allows
        var out = Foundation.Data()
        out.reserveCapacity(8 + json.count + bodyCount)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!
            out.append(encodeValues(t, t.dtype == .int32 ? .i32 : dtype))
        }
        precondition(out.count == 8 + json.count + bodyCount, "Safetensors.encode: values do not match their offsets")
        return out
    }

    /// Reads every tensor in the file.
    public static func read(_ url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        if let problem = fileProblem(url.path) { throw SafetensorsError.io(url.path, problem) }
        let data: Foundation.Data
        do { data = try Foundation.Data(contentsOf: url) } catch {
            throw SafetensorsError.io(url.path, "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, name: url.path)
    }

    public static func decode(_ data: Foundation.Data, name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ m: String) -> SafetensorsError { .corrupt(name, m) }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, shorter than the 8-byte header size") }
        let n = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(data.count - 8), n <= 100_000_000 else {
            throw fail("header size \(n) exceeds the file (\(data.count) bytes): truncated?")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(n)))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw fail("header is not a JSON object")
        }
        let bodyStart = 8 + Int(n), bodyCount = data.count - bodyStart
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (key, value) in header {
            if key == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let entry = value as? [String: Any], let dts = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any], let offsAny = entry["data_offsets"] as? [Any] else {
                throw fail("tensor '\(key)' needs dtype, shape and data_offsets")
            }
            guard let dt = SafetensorsDType(rawValue: dts) else { throw fail("tensor '\(key)' has unsupported dtype \(dts)") }
            let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
            let offs = offsAny.compactMap { ($0 as? NSNumber)?.intValue }
            guard shape.count == shapeAny.count, shape.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else {
                throw fail("tensor '\(key)' has a bad shape \(shapeAny)")
            }
            guard offs.count == 2, offs[0] >= 0, offs[0] <= offs[1], offs[1] <= bodyCount else {
                throw fail("tensor '\(key)' has data_offsets \(offsAny) outside the \(bodyCount)-byte data section (truncated?)")
            }
            let (count, overflow) = shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d); return (p, acc.1 || o)
            }
            let (bytes, bytesOverflow) = count.multipliedReportingOverflow(by: dt.size)
            guard !overflow, !bytesOverflow, bytes == offs[1] - offs[0] else {
                let needs = overflow || bytesOverflow ? "more than \(Int.max)" : "\(bytes)"
                throw fail("tensor '\(key)' of shape \(shape) and dtype \(dts) needs \(needs) bytes, has \(offs[1] - offs[0])")
            }
            tensors[key] = data.withUnsafeBytes { raw in
                decodeValues(UnsafeRawBufferPointer(rebasing: raw[(bodyStart + offs[0])..<(bodyStart + offs[1])]), dt, shape)
            }
        }
        return (tensors, metadata)
    }

    // MARK: - Element conversion

    private static func encodeValues(_ t: Tensor, _ dt: SafetensorsDType) -> Foundation.Data {
        switch dt {
        case .f32, .i32: return Foundation.Data(bytes: t.storage.raw, count: t.count * 4)
        case .i64:
            var a = [Int64](repeating: 0, count: t.count)
            for i in 0..<t.count { a[i] = Int64(t.ints[i]) }
            return a.withUnsafeBytes { Foundation.Data($0) }
        case .f16:
            var a = [UInt16](repeating: 0, count: t.count)
            for i in 0..<t.count { a[i] = Float16(t.data[i]).bitPattern }
            return a.withUnsafeBytes { Foundation.Data($0) }
        case .bf16:
            var a = [UInt16](repeating: 0, count: t.count)
            for i in 0..<t.count { a[i] = bfloat16Bits(t.data[i]) }
            return a.withUnsafeBytes { Foundation.Data($0) }
        }
    }

    private static func decodeValues(_ raw: UnsafeRawBufferPointer, _ dt: SafetensorsDType, _ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        let t = Tensor.empty(shape, dtype: dt == .i32 || dt == .i64 ? .int32 : .float32)
        switch dt {
        case .f32, .i32: if n > 0 { memcpy(t.storage.raw, raw.baseAddress!, n * 4) }
        case .i64: for i in 0..<n { t.ints[i] = Int32(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
        case .f16: for i in 0..<n { t.data[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .bf16:
            for i in 0..<n { t.data[i] = Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16) }
        }
        return t
    }

    /// Float32 → bfloat16 with round-to-nearest-even (NaN stays NaN).
    static func bfloat16Bits(_ x: Float) -> UInt16 {
        if x.isNaN { return 0x7FC0 }
        let b = x.bitPattern
        return UInt16(truncatingIfNeeded: (b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16)
    }
}

/// Why `path` cannot be read as a file ("no such file", "is a directory, not a file", "permission
/// denied"), or nil when it can: the words Foundation's read errors lack.
public func fileProblem(_ path: String) -> String? {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
    if isDirectory.boolValue { return "is a directory, not a file" }
    if !FileManager.default.isReadableFile(atPath: path) { return "permission denied" }
    return nil
}

/// Writes `data` to a temporary file beside `url`, flushes it to disk and renames it over `url`,
/// so a crash leaves either the old file or the new one, never a torn one.
public func atomicWrite(_ data: Foundation.Data, to url: URL) throws {
    let dir = url.deletingLastPathComponent()
    let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw SafetensorsError.io(url.path, "cannot create \(tmp.path): \(String(cString: strerror(errno)))") }
    var ok = true
    var err = ""
    data.withUnsafeBytes { buf in
        var off = 0
        while off < buf.count {
            let w = Foundation.write(fd, buf.baseAddress! + off, buf.count - off)
            if w <= 0 { ok = false; err = String(cString: strerror(errno)); return }
            off += w
        }
    }
    if ok && fsync(fd) != 0 { ok = false; err = String(cString: strerror(errno)) }
    close(fd)
    guard ok else { unlink(tmp.path); throw SafetensorsError.io(url.path, "write failed: \(err)") }
    guard rename(tmp.path, url.path) == 0 else {
        let e = String(cString: strerror(errno)); unlink(tmp.path)
        throw SafetensorsError.io(url.path, "rename failed: \(e)")
    }
}
