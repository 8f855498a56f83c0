// Textures: a second built-in source of captioned images, unrelated to ShapesWorld — coloured
// stripes, checks, dots and rings of random scale and phase, written at varied sizes as an
// imagefolder. It stands in for a user's own folder in tests, notebooks and the demo: nothing in
// Fusion knows its generator, so a model trained on it learns only from the folder. Not a reader
// (FolderDataset) and not ShapesWorld.
import Foundation
import Media

/// Procedural textures with captions such as "blue vertical stripes on white".
///
/// Example `i` is a pure function of `(seed, i)`. Images are drawn at one of a few sizes (square
/// and not), so a folder of them also exercises the reader's resize and centre crop.
///
/// ```swift
/// let t = Textures(seed: 0)
/// let (image, caption) = t.example(0)       // e.g. "red checks on black", 40 × 32
/// try t.writeFolder(examples: 0..<500, to: "data/textures")
/// ```
public struct Textures: Sendable {
    public enum Pattern: String, CaseIterable, Sendable {
        case horizontal = "horizontal stripes", vertical = "vertical stripes", diagonal = "diagonal stripes"
        case checks, dots, rings
    }

    /// Ink colours by name, RGB in [0, 1] (multiples of 1/255, so PNG round trips are exact).
    public static let colours: [(name: String, rgb: [Float])] = [
        ("red", [230, 25, 25]), ("green", [30, 170, 40]), ("blue", [30, 60, 230]),
        ("yellow", [240, 210, 0]), ("purple", [150, 40, 190]), ("orange", [250, 130, 0]),
    ].map { ($0.0, $0.1.map { Float($0) / 255 }) }
    /// Backgrounds by name.
    public static let backgrounds: [(name: String, rgb: [Float])] = [("white", [1, 1, 1]), ("black", [0, 0, 0])]
    /// The sizes images are drawn at (width, height).
    public static let sizes = [(32, 32), (40, 32), (32, 48), (64, 64)]

    public var seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// What example `index` shows.
    public struct Content: Sendable, Equatable {
        public var pattern: Pattern
        public var colour: Int
        public var background: Int
        public var caption: String {
            "\(Textures.colours[colour].name) \(pattern.rawValue) on \(Textures.backgrounds[background].name)"
        }
    }

    /// The content of example `index`.
    public func content(_ index: Int) -> Content {
        var rng = SplitMix64(seed: seed, stream: 0x7E87_0125, index: index)
        return Content(pattern: rng.pick(Pattern.allCases), colour: rng.int(in: 0...(Self.colours.count - 1)),
                       background: rng.int(in: 0...(Self.backgrounds.count - 1)))
    }

    /// Example `index`: its image (RGB, at one of ``sizes``) and caption.
    public func example(_ index: Int) -> (image: Image, caption: String) {
        draw(index, content(index))
    }

    /// Edit triplet `index`: example `index` of the edit stream, and the same texture in another
    /// ink ("make it blue").
    public func edit(_ index: Int) -> (source: Image, instruction: String, target: Image) {
        let edits = Textures(seed: seed ^ 0xED17)
        var c = edits.content(index)
        var rng = SplitMix64(seed: seed, stream: 0x7E87_0127, index: index)
        let ink = (c.colour + 1 + rng.int(in: 0...(Self.colours.count - 2))) % Self.colours.count
        let source = edits.draw(index, c)
        c.colour = ink
        return (source.image, "make it \(Self.colours[ink].name)", edits.draw(index, c).image)
    }

    /// Example `index`'s geometry (size, scale, phase, centre) drawn with content `c`.
    func draw(_ index: Int, _ c: Content) -> (image: Image, caption: String) {
        var rng = SplitMix64(seed: seed, stream: 0x7E87_0126, index: index)
        let (w, h) = rng.pick(Self.sizes)
        let scale = Float(min(w, h)) / 32
        let period = Float(rng.int(in: 6...10)) * scale, phase = Float(rng.unit()) * period
        let ink = Self.colours[c.colour].rgb, paper = Self.backgrounds[c.background].rgb
        let cx = Float(rng.unit()) * Float(w), cy = Float(rng.unit()) * Float(h)
        var pixels = [Float](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let (fx, fy) = (Float(x) + 0.5, Float(y) + 0.5)
                func band(_ v: Float) -> Bool { ((v + phase).truncatingRemainder(dividingBy: period) + period)
                    .truncatingRemainder(dividingBy: period) < period / 2 }
                let on: Bool
                switch c.pattern {
                case .horizontal: on = band(fy)
                case .vertical: on = band(fx)
                case .diagonal: on = band((fx + fy) * 0.7071)
                case .checks: on = band(fx) != band(fy)
                case .dots:
                    let dx = (fx + phase).truncatingRemainder(dividingBy: period) - period / 2
                    let dy = (fy + phase).truncatingRemainder(dividingBy: period) - period / 2
                    on = dx * dx + dy * dy < period * period / 9
                case .rings: on = band(((fx - cx) * (fx - cx) + (fy - cy) * (fy - cy)).squareRoot())
                }
                let rgb = on ? ink : paper
                for k in 0..<3 { pixels[(y * w + x) * 3 + k] = rgb[k] }
            }
        }
        return (Image(width: w, height: h, channels: 3, pixels: pixels), c.caption)
    }

    /// Writes examples `indices` as `folder/texture-NNNNNN.png` with their captions in
    /// `metadata.jsonl` (created or replaced), and edit triplets `edits` as
    /// `edit-NNNNNN-source.png`, `edit-NNNNNN-target.png` with `source_file`, `instruction`,
    /// `target_file` rows.
    public func writeFolder(examples indices: Range<Int>, edits: Range<Int> = 0..<0, to folder: String,
                            progress: ((Int) -> Void)? = nil) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var rows: [ShapesWorld.MetadataRow] = []
        func write(_ image: Image, _ name: String) throws { try PNG.write(image, to: (folder as NSString).appendingPathComponent(name)) }
        for i in indices {
            let (image, caption) = example(i)
            let name = String(format: "texture-%06d.png", i)
            try write(image, name)
            rows.append(.init(fileName: name, text: caption))
            progress?(rows.count)
        }
        for i in edits {
            let e = edit(i)
            let source = String(format: "edit-%06d-source.png", i), target = String(format: "edit-%06d-target.png", i)
            try write(e.source, source)
            try write(e.target, target)
            rows.append(.init(sourceFile: source, instruction: e.instruction, targetFile: target))
            progress?(rows.count)
        }
        try ShapesWorld.writeMetadata(rows, to: folder)
    }
}
