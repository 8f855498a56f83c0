// AtomicFile: write a file under a temporary name in the same directory, then rename it into place.
// Not durable against power loss (no fsync): it only guarantees readers never see a half-written file.
import Foundation

enum AtomicFile {
    /// Calls `body` with a temporary path beside `path`, then renames it to `path`.
    /// On any error the temporary file is removed and `path` is left untouched.
    static func write(to path: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let tmp = dir + "/." + url.lastPathComponent + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        do {
            try body(tmp)
            if rename(tmp, path) != 0 {
                throw MediaError.io(path: path, reason: "cannot rename temporary file into place: \(errnoText())")
            }
        } catch {
            unlink(tmp)
            throw error
        }
    }

    /// Writes `bytes` to `path` atomically.
    static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { tmp in
            guard let f = fopen(tmp, "wb") else {
                throw MediaError.io(path: path, reason: "cannot create \(tmp): \(errnoText())")
            }
            let n = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
            let closed = fclose(f)
            if n != bytes.count || closed != 0 {
                throw MediaError.io(path: path, reason: "write failed: \(errnoText())")
            }
        }
    }

    /// Reads a whole file into memory.
    static func read(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw MediaError.io(path: path, reason: "cannot open: \(errnoText())")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBufferPointer { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 { throw MediaError.io(path: path, reason: "read failed: \(errnoText())") }
                break
            }
        }
        return bytes
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
