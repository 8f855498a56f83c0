// PNG: exact 8-bit round trips, files accepted by pngcheck and an independent Python decoder, decoding
// of palette/16-bit/low-bit files from a second encoder, and errors (never crashes) on damaged files.
import Foundation
import Testing
import Data
@testable import Media

@Suite struct PNGTests {
    /// An image whose samples are exact multiples of 1/255 (so an 8-bit round trip is lossless).
    func pattern(_ w: Int, _ h: Int, channels: Int, seed: Int = 1) -> Image {
        var px = [Float](repeating: 0, count: w * h * channels)
        for i in 0..<px.count { px[i] = Float((i * 37 + seed * 11 + (i / 7) * 5) % 256) / 255 }
        return Image(width: w, height: h, channels: channels, pixels: px)
    }

    @Test(arguments: [1, 2, 3, 4])
    func roundTripIsIdentical(channels: Int) throws {
        let dir = temporaryDirectory()
        let img = pattern(13, 7, channels: channels)
        let path = dir + "/img.png"
        try PNG.write(img, to: path)
        let back = try PNG.read(path)
        #expect(back == img)
        // No temporary file is left beside it, and a second write replaces the first.
        try PNG.write(pattern(3, 2, channels: channels, seed: 2), to: path)
        #expect(try PNG.read(path).width == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["img.png"])
    }

    @Test func writeClampsAndRounds() throws {
        let img = Image(width: 4, height: 1, channels: 1, pixels: [-0.5, 0.5, 1.5, 100.4 / 255])
        let back = try PNG.decode(try PNG.encode(img), name: "x.png")
        #expect(back.pixels == [0, 128 / 255, 1, 100 / 255])
    }

    @Test(.enabled(if: Tools.which("pngcheck") != nil, "pngcheck is not installed (apt-get install -y pngcheck)"))
    func pngcheckAcceptsWrittenFiles() throws {
        let dir = temporaryDirectory()
        for channels in 1...4 {
            let path = dir + "/c\(channels).png"
            try PNG.write(pattern(31, 17, channels: channels), to: path)
            let (status, output) = try Tools.run(Tools.which("pngcheck")!, ["-v", path])
            #expect(status == 0, "pngcheck rejected a \(channels)-channel PNG:\n\(output)")
            #expect(output.contains("No errors detected"))
        }
    }

    /// Decodes with Python's zlib and a hand-written unfilter: checks the pixel bytes, not just
    /// the structure, with a reader that shares no code with libpng.
    static let pythonDecoder = """
        import sys, zlib, struct
        d = open(sys.argv[1], 'rb').read()
        assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
        i, idat = 8, b''
        while i < len(d):
            n, t = struct.unpack('>I4s', d[i:i+8]); body = d[i+8:i+8+n]
            assert zlib.crc32(d[i+4:i+8+n]) & 0xffffffff == struct.unpack('>I', d[i+8+n:i+12+n])[0], t
            if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', body[:10])
            if t == b'IDAT': idat += body
            i += 12 + n
        assert bd == 8
        bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ct]; raw = zlib.decompress(idat); stride = w * bpp
        prev, out, p = bytearray(stride), bytearray(), 0
        for y in range(h):
            f, line = raw[p], bytearray(raw[p+1:p+1+stride]); p += 1 + stride
            for x in range(stride):
                a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
                if f == 1: line[x] = (line[x] + a) & 255
                elif f == 2: line[x] = (line[x] + b) & 255
                elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
                elif f == 4:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            out += line; prev = line
        print(w, h, bpp, out.hex())
        """

    @Test(.enabled(if: Tools.which("python3") != nil, "python3 is not installed"))
    func independentDecoderReadsWrittenPixels() throws {
        let dir = temporaryDirectory()
        for channels in 1...4 {
            let img = pattern(29, 11, channels: channels, seed: channels)
            let path = dir + "/p\(channels).png"
            try PNG.write(img, to: path)
            let (status, output) = try Tools.run(Tools.which("python3")!, ["-c", PNGTests.pythonDecoder, path])
            #expect(status == 0, "Python decoder failed:\n\(output)")
            let fields = output.split(separator: " ").map(String.init)
            #expect(fields.count == 4)
            guard fields.count == 4 else { continue }
            #expect(fields[0] == "29" && fields[1] == "11" && fields[2] == "\(channels)")
            let hex = img.pixels.map { String(format: "%02x", Int(($0 * 255).rounded())) }.joined()
            #expect(fields[3].trimmingCharacters(in: .whitespacesAndNewlines) == hex)
        }
    }

    // MARK: - Files from another encoder

    @Test func paletteWithTransparencyExpandsToRGBA() throws {
        let palette: [UInt8] = [255, 0, 0, 0, 255, 0, 0, 0, 255]
        let png = TinyPNG.encode(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[0, 1, 2]],
                                 palette: palette, transparency: [255, 128])
        let img = try PNG.decode(png, name: "pal.png")
        #expect(img.channels == 4)
        #expect(img.pixels == [1, 0, 0, 1, 0, 1, 0, 128 / 255, 0, 0, 1, 1])
        let opaque = TinyPNG.encode(width: 2, height: 1, bitDepth: 8, colorType: 3, rows: [[2, 0]], palette: palette)
        let rgb = try PNG.decode(opaque, name: "pal.png")
        #expect(rgb.channels == 3 && rgb.pixels == [0, 0, 1, 1, 0, 0])
    }

    @Test func lowBitDepthGrayAndGrayAlpha() throws {
        // 1-bit: 8 pixels in one byte 0b10110000 → 1 0 1 1 0 0 0 0.
        let one = try PNG.decode(TinyPNG.encode(width: 8, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1011_0000]]), name: "1.png")
        #expect(one.channels == 1 && one.pixels == [1, 0, 1, 1, 0, 0, 0, 0])
        let ga = try PNG.decode(TinyPNG.encode(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [[10, 255, 200, 51]]), name: "ga.png")
        #expect(ga.channels == 2 && ga.pixels == [10 / 255, 1, 200 / 255, 51 / 255])
    }

    @Test func sixteenBitKeepsFullPrecision() throws {
        let values: [UInt16] = [0, 1000, 32768, 65535, 12345, 54321]
        let row = values.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] }
        let gray = try PNG.decode(TinyPNG.encode(width: 6, height: 1, bitDepth: 16, colorType: 0, rows: [row]), name: "g16.png")
        #expect(gray.channels == 1)
        for (p, v) in zip(gray.pixels, values) { #expect(abs(p - Float(v) / 65535) < 1e-6) }

        // RGBA: libpng hands back premultiplied linear values, which PNG.decode un-premultiplies.
        let rgba: [UInt16] = [40000, 20000, 100, 65535, 30000, 65535, 0, 40000]
        let rgbaRow = rgba.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] }
        let img = try PNG.decode(TinyPNG.encode(width: 2, height: 1, bitDepth: 16, colorType: 6, rows: [rgbaRow]), name: "c16.png")
        #expect(img.channels == 4)
        for (p, v) in zip(img.pixels, rgba) { #expect(abs(p - Float(v) / 65535) < 1e-4, "\(p) vs \(v)") }

        // Colour-space chunks are ignored: with gAMA (1/2.2, or 1.0) or sRGB the values are still raw.
        for (gamma, srgb) in [(UInt32(45455), false), (UInt32(100_000), false), (nil, true)] as [(UInt32?, Bool)] {
            let png = TinyPNG.encode(width: 6, height: 1, bitDepth: 16, colorType: 0, rows: [row], gamma: gamma, sRGB: srgb)
            let g = try PNG.decode(png, name: "g.png")
            for (p, v) in zip(g.pixels, values) { #expect(abs(p - Float(v) / 65535) < 1e-6, "\(p) vs \(v)") }
        }
        let linear8 = TinyPNG.encode(width: 3, height: 1, bitDepth: 8, colorType: 0, rows: [[0, 7, 200]], gamma: 100_000)
        #expect(try PNG.decode(linear8, name: "l.png").pixels == [0, 7 / 255, 200 / 255])
    }

    // MARK: - Damaged files

    func sample() throws -> [UInt8] {
        var img = pattern(24, 16, channels: 3)
        for i in 0..<img.pixels.count { img.pixels[i] = Float((i * 7919) % 251) / 255 }   // poorly compressible
        return try PNG.encode(img)
    }

    @Test func badSignatureIsNamed() throws {
        #expect(throws: MediaError.notRecognised(path: "in.png", reason: "not a PNG file (bad signature)")) {
            try PNG.decode(Array("GIF89a not a png at all".utf8), name: "in.png")
        }
        let error = #expect(throws: MediaError.self) { try PNG.decode([1, 2, 3], name: "dir/in.png") }
        #expect(error?.description == "in.png: not a PNG file (bad signature)")
    }

    @Test func everyTruncationThrows() throws {
        let bytes = try sample()
        var cuts = Array(0..<60) + [bytes.count / 3, bytes.count / 2, bytes.count - 20, bytes.count - 13]
        cuts += (bytes.count - 12)..<bytes.count
        for cut in cuts {
            #expect(throws: MediaError.self, "cut at \(cut) of \(bytes.count)") {
                try PNG.decode(Array(bytes[0..<cut]), name: "cut.png")
            }
        }
        let error = #expect(throws: MediaError.self) { try PNG.decode(Array(bytes[0..<bytes.count / 2]), name: "cut.png") }
        #expect(error?.description.hasPrefix("cut.png: truncated") == true, "\(String(describing: error))")
    }

    @Test func corruptChunksThrow() throws {
        let bytes = try sample()
        // A flipped byte in IHDR (CRC no longer matches), in IDAT's zlib data, and a zero width.
        var ihdr = bytes; ihdr[18] ^= 0x40
        var idat = bytes; idat[bytes.count / 2] ^= 0xFF
        var zeroWidth = bytes; zeroWidth.replaceSubrange(16..<20, with: [0, 0, 0, 0])
        zeroWidth.replaceSubrange(29..<33, with: TinyPNG.be32(TinyPNG.crc32(Array(zeroWidth[12..<29]))))
        // Every chunk intact (CRCs valid) but the zlib stream inside IDAT stops early: libpng's own check.
        let rows = (0..<4).map { _ in [UInt8](repeating: 7, count: 12) }
        var shortIDAT = PNG.signature + TinyPNG.chunk("IHDR", TinyPNG.be32(4) + TinyPNG.be32(4) + [8, 2, 0, 0, 0])
        shortIDAT += TinyPNG.chunk("IDAT", Array(TinyPNG.zlibStored(rows.flatMap { [0] + $0 }).prefix(30)))
        shortIDAT += TinyPNG.chunk("IEND", [])
        for (label, data) in [("IHDR", ihdr), ("IDAT", idat), ("zero width", zeroWidth), ("short IDAT", shortIDAT)] {
            let error = #expect(throws: MediaError.self, "\(label)") { try PNG.decode(data, name: "bad.png") }
            #expect(error?.description.hasPrefix("bad.png: ") == true)
        }
    }

    @Test func hugeHeaderWithLittleDataIsRefusedBeforeAllocating() throws {
        // 30000×30000 gray (9·10⁸ samples, under maxSamples) from a 12-byte IDAT: no 4 GB buffer.
        var bytes = PNG.signature + TinyPNG.chunk("IHDR", TinyPNG.be32(30000) + TinyPNG.be32(30000) + [8, 0, 0, 0, 0])
        bytes += TinyPNG.chunk("IDAT", TinyPNG.zlibStored([0, 0, 0])) + TinyPNG.chunk("IEND", [])
        let error = #expect(throws: MediaError.self) { try PNG.decode(bytes, name: "huge.png") }
        #expect(error?.description == "huge.png: truncated: 14 bytes of image data cannot hold 30000×30000×1")
    }

    @Test func randomDamageNeverCrashes() throws {
        let bytes = try sample()
        var rng = SplitMix64(state: 3)                 // the same 300 damaged files every run
        var thrown = 0
        for _ in 0..<300 {
            var d = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                d[Int.random(in: 8..<d.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            do { _ = try PNG.decode(d, name: "fuzz.png") } catch is MediaError { thrown += 1 }
        }
        #expect(thrown > 250)   // nearly every change breaks a CRC; none may crash
    }

    @Test func missingFileIsAnIOError() {
        let error = #expect(throws: MediaError.self) { try PNG.read("/nonexistent/dir/x.png") }
        #expect(error?.description.hasPrefix("x.png: cannot open") == true)
        #expect(throws: MediaError.self) { try PNG.write(Image(width: 2, height: 2), to: "/nonexistent/dir/y.png") }
    }
}
