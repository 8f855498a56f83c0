// PNG: read and write PNG files through libpng's simplified API (errors come back as messages, no longjmp).
// Not a full PNG toolkit: ancillary chunks (text, ICC profiles) are ignored and writes are 8-bit only.
import CPNG
import Foundation

/// PNG reading and writing.
///
/// Reads 1/2/4/8-bit gray, gray+alpha, RGB, RGBA and palette images (palette and tRNS expanded)
/// and 16-bit images (kept at full precision); writes 8-bit gray, gray+alpha, RGB and RGBA.
/// Samples are the stored values scaled to [0, 1] (`v / 255`, `v / 65535`, `v / 1` for 1-bit…):
/// colour-space chunks (`gAMA`, `sRGB`, `iCCP`, `cHRM`) are ignored, as PIL and most training
/// pipelines do, so pixels never pass through a gamma conversion.
///
/// ```swift
/// let img = try PNG.read("cat.png")            // Image, HWC, [0, 1]
/// try PNG.write(img.resized(width: 64, height: 64), to: "cat64.png")
/// ```
public enum PNG {
    static let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
    /// Decoded images larger than this many samples are refused (a corrupt or hostile header
    /// could otherwise ask for terabytes).
    static let maxSamples = 1 << 30

    /// Reads the PNG file at `path`.
    /// - Throws: `MediaError` naming the file: unreadable, not a PNG, truncated or corrupt.
    public static func read(_ path: String) throws -> Image {
        try decode(try AtomicFile.read(path), name: path)
    }

    /// Decodes PNG bytes; `name` is only used in error messages.
    public static func decode(_ data: [UInt8], name: String) throws -> Image {
        // libpng's simplified API converts between gamma encodings when a file declares one; hiding
        // those chunks from it keeps the stored values.
        let (colorChunks, compressedBytes) = try scanChunks(data, name: name)
        var bytes = data
        for range in colorChunks.reversed() { bytes.removeSubrange(range) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let began = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard began != 0 else { throw error(from: &image, name: name) }
        defer { png_image_free(&image) }  // a no-op once finish_read has cleaned up

        let flagLinear = UInt32(PNG_FORMAT_FLAG_LINEAR), flagAlpha = UInt32(PNG_FORMAT_FLAG_ALPHA)
        let flagColor = UInt32(PNG_FORMAT_FLAG_COLOR)
        let sixteen = image.format & flagLinear != 0
        // Ask for the file's own channels, colour-map expanded, 1 byte (or 2 bytes linear) each.
        image.format = image.format & (flagColor | flagAlpha) | (sixteen ? flagLinear : 0)
        let channels = Int(image.format & (flagColor | flagAlpha)) + 1
        let width = Int(image.width), height = Int(image.height)
        let count = width * height * channels
        guard count <= maxSamples else {
            throw MediaError.unsupported(path: name, reason: "image too large (\(width)×\(height)×\(channels))")
        }
        // Deflate expands at most ~1032×, and a 1-bit palette pixel becomes up to 4 samples (32 per
        // byte): a header asking for more than that from its IDAT bytes is refused before allocating.
        guard count <= (compressedBytes + 1) * 1032 * 32 else {
            throw MediaError.truncated(path: name, reason: "\(compressedBytes) bytes of image data cannot hold \(width)×\(height)×\(channels)")
        }
        let hasAlpha = channels == 2 || channels == 4
        var pixels = [Float](repeating: 0, count: count)
        if sixteen {
            var raw = [UInt16](repeating: 0, count: count)
            let ok = raw.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw error(from: &image, name: name) }
            for i in 0..<count { pixels[i] = Float(raw[i]) / 65535 }
            // libpng's 16-bit ("linear") output has associated (premultiplied) alpha: undo it.
            if hasAlpha {
                for p in 0..<(width * height) {
                    let base = p * channels, a = pixels[base + channels - 1]
                    for c in 0..<(channels - 1) { pixels[base + c] = a > 0 ? min(pixels[base + c] / a, 1) : 0 }
                }
            }
        } else {
            var raw = [UInt8](repeating: 0, count: count)
            let ok = raw.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
            guard ok != 0 else { throw error(from: &image, name: name) }
            for i in 0..<count { pixels[i] = Float(raw[i]) / 255 }
        }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Writes `image` as an 8-bit PNG (gray, gray+alpha, RGB or RGBA by its channel count), to a
    /// temporary file beside `path` that is then renamed over it. Samples are clamped to [0, 1]
    /// and rounded to the nearest of 256 levels.
    public static func write(_ image: Image, to path: String) throws {
        try AtomicFile.write(try encode(image, name: path), to: path)
    }

    /// The PNG bytes of `image` (see `write`).
    public static func encode(_ image: Image, name: String = "<memory>") throws -> [UInt8] {
        guard image.width > 0 && image.height > 0 else {
            throw MediaError.unsupported(path: name, reason: "cannot write an empty \(image.width)×\(image.height) image")
        }
        let bytes = image.pixels.map { UInt8((min(max($0, 0), 1) * 255).rounded()) }
        var png = png_image()
        png.version = UInt32(PNG_IMAGE_VERSION)
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        // Channel count -> format bits: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
        let alpha = image.channels % 2 == 0 ? UInt32(PNG_FORMAT_FLAG_ALPHA) : 0
        png.format = (image.channels >= 3 ? UInt32(PNG_FORMAT_FLAG_COLOR) : 0) | alpha
        // 1. Ask for the size, 2. encode into a buffer of that size.
        var size = 0
        var ok = bytes.withUnsafeBytes { png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard ok != 0 else { throw error(from: &png, name: name) }
        var out = [UInt8](repeating: 0, count: size)
        ok = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { png_image_write_to_memory(&png, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard ok != 0 else { throw error(from: &png, name: name) }
        return Array(out[0..<size])
    }

    // MARK: - Errors and chunk scan

    /// The `MediaError` for libpng's message in `image`, classified by its wording.
    static func error(from image: inout png_image, name: String) -> MediaError {
        let message = withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        png_image_free(&image)
        let lower = message.lowercased()
        if lower.contains("end of data") || lower.contains("not enough") || lower.contains("truncat")
            || lower.contains("unexpected end") || lower.contains("read error") {
            return .truncated(path: name, reason: "libpng: \(message)")
        }
        return .corrupt(path: name, reason: "libpng: \(message)")
    }

    /// Checks the signature and IHDR, and walks the chunk list (without verifying CRCs, which libpng
    /// does) to find the colour-space chunks and whether the file stops before IEND. Returns the
    /// byte ranges of the colour-space chunks, in file order, and the total length of the IDAT chunks.
    static func scanChunks(_ data: [UInt8], name: String) throws -> (colorChunks: [Range<Int>], compressedBytes: Int) {
        if data.count < 8 {
            if data.elementsEqual(signature.prefix(data.count)) {
                throw MediaError.truncated(path: name, reason: "\(data.count) bytes, shorter than the PNG signature")
            }
            throw MediaError.notRecognised(path: name, reason: "not a PNG file (bad signature)")
        }
        guard data[0..<8].elementsEqual(signature) else {
            throw MediaError.notRecognised(path: name, reason: "not a PNG file (bad signature)")
        }
        func u32(_ at: Int) -> Int {
            Int(data[at]) << 24 | Int(data[at + 1]) << 16 | Int(data[at + 2]) << 8 | Int(data[at + 3])
        }
        var colorChunks: [Range<Int>] = []
        var at = 8, sawIHDR = false, sawIEND = false, compressedBytes = 0
        while at + 8 <= data.count {
            let length = u32(at)
            let type = String(decoding: data[(at + 4)..<(at + 8)], as: UTF8.self)
            guard length <= 0x7fff_ffff else {
                throw MediaError.corrupt(path: name, reason: "chunk '\(type)' at byte \(at) has length \(length)")
            }
            if !sawIHDR {
                guard type == "IHDR", length == 13 else {
                    throw MediaError.corrupt(path: name, reason: "first chunk is '\(type)', not a 13-byte IHDR")
                }
                guard at + 8 + 13 <= data.count else {
                    throw MediaError.truncated(path: name, reason: "file ends inside the IHDR chunk")
                }
                sawIHDR = true
            }
            if ["gAMA", "sRGB", "iCCP", "cHRM"].contains(type) && at + 12 + length <= data.count {
                colorChunks.append(at..<(at + 12 + length))
            }
            if type == "IDAT" { compressedBytes += length }
            if type == "IEND" { sawIEND = true; break }
            at += 12 + length
        }
        if !sawIHDR { throw MediaError.truncated(path: name, reason: "file ends before the IHDR chunk") }
        // The chunk list must run to a complete IEND: libpng alone would accept a file cut anywhere
        // after the image data, but such a file was not written completely.
        if at > data.count || (sawIEND && at + 12 > data.count) {
            throw MediaError.truncated(path: name, reason: "file ends inside a chunk after \(data.count) bytes")
        }
        if !sawIEND { throw MediaError.truncated(path: name, reason: "file ends before the IEND chunk") }
        return (colorChunks, compressedBytes)
    }
}
