// Image helpers on small hand-checkable patterns: access, CHW tensors, resize, crop, grid, channels.
import Testing
import Tensors
@testable import Media

@Suite struct ImageTests {
    /// A width×height gray ramp: value = (y * width + x) / (width * height).
    func ramp(_ w: Int, _ h: Int, channels: Int = 1) -> Image {
        var img = Image(width: w, height: h, channels: channels)
        for y in 0..<h { for x in 0..<w { for c in 0..<channels {
            img[x: x, y: y, c: c] = Float(y * w + x) / Float(w * h) + Float(c) * 0.01
        } } }
        return img
    }

    @Test func pixelAccessIsHWC() {
        var img = Image(width: 3, height: 2, channels: 3, fill: 0.25)
        img[x: 2, y: 1, c: 1] = 1
        #expect(img.pixels[(1 * 3 + 2) * 3 + 1] == 1)
        img.setPixel(x: 0, y: 1, [0.1, 0.2, 0.3])
        #expect(img.pixel(x: 0, y: 1) == [0.1, 0.2, 0.3])
        #expect(img.pixel(x: 1, y: 0) == [0.25, 0.25, 0.25])
    }

    @Test func tensorRoundTripIsCHWInMinusOneOne() {
        let img = ramp(4, 3, channels: 3)
        let t = img.toTensorCHW()
        #expect(t.shape == [3, 3, 4])
        let s = t.scalars
        // Channel 1, row 2, column 3 in CHW equals 2·img[3, 2, 1] − 1.
        #expect(abs(s[1 * 12 + 2 * 4 + 3] - (2 * img[x: 3, y: 2, c: 1] - 1)) < 1e-6)
        let back = Image(chw: t)
        #expect(back.width == 4 && back.height == 3 && back.channels == 3)
        for (a, b) in zip(back.pixels, img.pixels) { #expect(abs(a - b) < 1e-6) }
        // Out-of-range model output is clamped; a leading batch of 1 is accepted.
        let clamped = Image(chw: Tensor([-3, 0, 3, 1], shape: [1, 1, 2, 2]))
        #expect(clamped.pixels == [0, 0.5, 1, 1])
    }

    @Test func integerShrinkIsBlockMean() {
        let img = ramp(4, 4)
        let small = img.resized(width: 2, height: 2)
        #expect(small.width == 2 && small.height == 2 && small.channels == 1)
        // Top-left block: pixels 0, 1, 4, 5 (/16) -> mean 2.5/16.
        let expected: [Float] = [2.5, 4.5, 10.5, 12.5].map { $0 / 16 }
        for (a, b) in zip(small.pixels, expected) { #expect(abs(a - b) < 1e-6) }
    }

    @Test func fractionalShrinkIsAreaWeighted() {
        // 3 → 2 along x: output 0 covers [0, 1.5): (v0 + 0.5·v1) / 1.5.
        let img = Image(width: 3, height: 1, channels: 1, pixels: [0, 0.3, 0.9])
        let small = img.resized(width: 2, height: 1)
        #expect(abs(small.pixels[0] - 0.15 / 1.5) < 1e-6)
        #expect(abs(small.pixels[1] - (0.15 + 0.9) / 1.5) < 1e-6)
    }

    @Test func enlargeIsBilinearWithHalfPixelCentres() {
        let img = Image(width: 2, height: 1, channels: 1, pixels: [0, 1])
        let big = img.resized(width: 4, height: 1)
        for (a, b) in zip(big.pixels, [0, 0.25, 0.75, 1] as [Float]) { #expect(abs(a - b) < 1e-6) }
        // A constant image stays constant under any resize.
        let flat = Image(width: 5, height: 3, channels: 3, fill: 0.4)
        for size in [(7, 2), (2, 7), (5, 3), (10, 6), (1, 1)] {
            let r = flat.resized(width: size.0, height: size.1)
            #expect(r.width == size.0 && r.height == size.1)
            #expect(r.pixels.allSatisfy { abs($0 - 0.4) < 1e-6 })
        }
    }

    @Test func centerCropTakesTheMiddle() {
        let img = ramp(5, 4)
        let c = img.centerCropped(size: 2)
        #expect(c.width == 2 && c.height == 2)
        // Offsets (5−2)/2 = 1, (4−2)/2 = 1.
        #expect(c.pixels == [img[x: 1, y: 1, c: 0], img[x: 2, y: 1, c: 0], img[x: 1, y: 2, c: 0], img[x: 2, y: 2, c: 0]])
        #expect(img.cropped(x: 3, y: 2, width: 2, height: 2).pixel(x: 1, y: 1) == img.pixel(x: 4, y: 3))
    }

    @Test func gridPlacesCellsWithPadding() {
        let a = Image(width: 2, height: 2, channels: 3, fill: 1)
        let b = Image(width: 2, height: 2, channels: 1, fill: 0.5)
        let g = Image.grid([a, b, a], columns: 2, padding: 1)
        // 2 columns × 2 rows of 2×2 cells, 1 px padding around and between.
        #expect(g.width == 7 && g.height == 7 && g.channels == 3)
        #expect(g.pixel(x: 0, y: 0) == [0, 0, 0])
        #expect(g.pixel(x: 1, y: 1) == [1, 1, 1])
        #expect(g.pixel(x: 4, y: 2) == [0.5, 0.5, 0.5])      // gray converted to RGB
        #expect(g.pixel(x: 2, y: 5) == [1, 1, 1])            // third image, second row
        #expect(g.pixel(x: 5, y: 5) == [0, 0, 0])            // empty fourth cell
    }

    @Test func channelConversions() {
        let rgb = Image(width: 1, height: 1, channels: 3, pixels: [1, 0, 0])
        #expect(abs(rgb.converted(channels: 1).pixels[0] - 0.299) < 1e-6)
        #expect(rgb.converted(channels: 4).pixels == [1, 0, 0, 1])
        let ga = Image(width: 1, height: 1, channels: 2, pixels: [0.5, 0.25])
        #expect(ga.converted(channels: 4).pixels == [0.5, 0.5, 0.5, 0.25])
        #expect(ga.converted(channels: 1).pixels == [0.5])
    }

    @Test func upscaleRepeatsEachPixel() {
        let img = Image(width: 2, height: 1, channels: 1, pixels: [0.25, 0.75])
        let big = img.upscaled(2)
        #expect(big.width == 4 && big.height == 2)
        #expect(big.pixels == [0.25, 0.25, 0.75, 0.75, 0.25, 0.25, 0.75, 0.75])
        #expect(img.upscaled(1) == img)
    }
}
