// Shared test helpers: temporary directories, external tools via Process, and a tiny PNG/WAV encoder
// written independently of libpng/libsndfile so decoders are checked against a second implementation.
import Foundation
@testable import Media

/// A fresh directory under the system temporary directory.
func temporaryDirectory() -> String {
    let dir = NSTemporaryDirectory() + "media-tests-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

enum Tools {
    /// The full path of `name` on PATH, if installed.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a tool and returns (exit status, stdout + stderr).
    static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

// MARK: - A minimal PNG encoder (stored deflate blocks, filter 0)

enum TinyPNG {
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return be32(UInt32(data.count)) + body + be32(crc32(body))
    }

    /// A zlib stream of stored (uncompressed) deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var at = 0
        repeat {
            let n = min(65535, data.count - at)
            let final: UInt8 = at + n == data.count ? 1 : 0
            out += [final, UInt8(n & 255), UInt8(n >> 8), UInt8(~n & 255), UInt8((~n >> 8) & 255)]
            out += data[at..<at + n]
            at += n
        } while at < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return out + be32(b << 16 | a)
    }

    /// A PNG from raw scanlines (already packed to `bitDepth`, no filter byte).
    static func encode(width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]],
                       palette: [UInt8]? = nil, transparency: [UInt8]? = nil, gamma: UInt32? = nil,
                       sRGB: Bool = false) -> [UInt8] {
        var out = PNG.signature
        out += chunk("IHDR", be32(UInt32(width)) + be32(UInt32(height)) + [bitDepth, colorType, 0, 0, 0])
        if let g = gamma { out += chunk("gAMA", be32(g)) }
        if sRGB { out += chunk("sRGB", [0]) }
        if let p = palette { out += chunk("PLTE", p) }
        if let t = transparency { out += chunk("tRNS", t) }
        out += chunk("IDAT", zlibStored(rows.flatMap { [0] + $0 }))
        out += chunk("IEND", [])
        return out
    }
}

// MARK: - A minimal WAV encoder (16-bit PCM, any channel count)

func wavBytes(sampleRate: Int, channels: Int, interleaved: [Int16]) -> [UInt8] {
    func le32(_ v: Int) -> [UInt8] { [UInt8(v & 255), UInt8(v >> 8 & 255), UInt8(v >> 16 & 255), UInt8(v >> 24 & 255)] }
    func le16(_ v: Int) -> [UInt8] { [UInt8(v & 255), UInt8(v >> 8 & 255)] }
    let data = interleaved.flatMap { le16(Int(UInt16(bitPattern: $0))) }
    var out = Array("RIFF".utf8) + le32(36 + data.count) + Array("WAVE".utf8)
    out += Array("fmt ".utf8) + le32(16) + le16(1) + le16(channels) + le32(sampleRate)
    out += le32(sampleRate * channels * 2) + le16(channels * 2) + le16(16)
    return out + Array("data".utf8) + le32(data.count) + data
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func readBytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path)!) }
