// Small ShapesWorld-like images for the tokenizer tests: 1–3 flat-coloured discs and squares on a
// black background, deterministic by seed. ModelsTests does not depend on the Data module, so
// this stands in for ShapesWorld(seed:imageSize:).example(i).pixels.
import Media
import Models
import Tensors

enum TestImages {
    static let colours: [[Float]] = [
        [0.9, 0.12, 0.12], [0.16, 0.78, 0.16], [0.16, 0.35, 0.94], [0.94, 0.86, 0.16],
        [0.59, 0.24, 0.82], [0.98, 0.55, 0.08], [0.96, 0.96, 0.96], [0.16, 0.86, 0.9],
    ]

    /// Image `index` of a `size`×`size` set (HWC RGB in [0, 1]).
    static func image(_ index: Int, size: Int = 16, seed: UInt64 = 7) -> Image {
        let rng = RNG(seed: seed &+ UInt64(index) &* 0x9E37_79B9)
        var img = Image(width: size, height: size, channels: 3, fill: 0)
        for _ in 0..<(1 + rng.nextInt(below: 3)) {
            let colour = colours[rng.nextInt(below: colours.count)]
            let r = Float(size) * (0.12 + 0.12 * rng.nextFloat())
            let cx = Float(size) * (0.2 + 0.6 * rng.nextFloat()), cy = Float(size) * (0.2 + 0.6 * rng.nextFloat())
            let disc = rng.nextInt(below: 2) == 0
            for y in 0..<size {
                for x in 0..<size {
                    let dx = Float(x) + 0.5 - cx, dy = Float(y) + 0.5 - cy
                    let inside = disc ? dx * dx + dy * dy <= r * r : abs(dx) <= r && abs(dy) <= r
                    if inside { img.setPixel(x: x, y: y, colour) }
                }
            }
        }
        return img
    }

    /// A batch (N, 3, size, size) in [-1, 1] of images `first ..< first + count`.
    static func batch(_ count: Int, first: Int = 0, size: Int = 16) -> Tensor {
        imageBatch((first..<(first + count)).map { image($0, size: size) })
    }
}
