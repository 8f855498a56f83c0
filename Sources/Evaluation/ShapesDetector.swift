// ShapesDetector: finds the objects in a ShapesWorld-style image (real or generated) without a
// model: background estimate, foreground mask, connected components, per object colour (palette
// vote), shape and size (best-matching rasteriser mask), grid cell and a count. Not the scoring
// of prompts (ShapesEval.swift) nor a general object detector: it knows ShapesWorld's geometry.
import Data
import Media

/// One object found in an image.
public struct DetectedObject: Codable, Hashable, Sendable, CustomStringConvertible {
    /// What the detector read: shape, colour, size class and grid cell.
    public var object: SceneObject
    /// Foreground pixels assigned to the object.
    public var area: Int
    /// Centroid in pixels (x right, y down).
    public var x: Double, y: Double
    /// Intersection over union of the object's pixels with the best (shape, size) mask: 1 for a
    /// real render, lower for a generated blob.
    public var shapeIoU: Double
    /// Fraction of the object's (bg-distance weighted) pixel votes that went to its colour.
    public var colourAgreement: Double

    public var description: String { object.description }
}

/// Everything found in one image.
public struct ShapesDetection: Codable, Hashable, Sendable {
    /// Objects in reading order of their cells (at most one per cell).
    public var objects: [DetectedObject]
    /// The nearer of ShapesWorld's two backgrounds to the estimated background colour.
    public var background: Background
    public var count: Int { objects.count }
    /// The objects as scene objects (what expectations are checked against).
    public var sceneObjects: [SceneObject] { objects.map(\.object) }
}

/// The analytic detector for square ShapesWorld images of one size (32 or 64 pixels; any ≥ 24).
///
/// 1. Background: the per-channel median of all pixels (objects cover under a fifth of the image).
/// 2. Foreground: pixels farther than `foregroundThreshold` (RGB distance, values in [0, 1]) from
///    the background; every palette colour is at least 0.7 from both backgrounds.
/// 3. Components: 8-connected foreground regions; regions whose centroids share a grid cell are
///    merged (ShapesWorld holds one object per cell, so a fragmented blob stays one object), and
///    regions smaller than `minAreaFraction` of the smallest object mask are dropped as specks.
/// 4. Colour: each pixel votes for the palette colour whose background→colour ray explains it best
///    (``unblend(_:background:)``), weighted by its coverage along that ray, so blended edges and
///    faded blobs keep their hue and count little.
/// 5. Shape and size: the (shape, size) whose rasteriser mask, centred in the object's cell and
///    shifted by up to S/16 pixels, has the highest soft IoU with the object's coverage map (the
///    object's colour ray, other objects' pixels masked out). On real renders the exact mask
///    scores IoU 1 (the rasteriser guarantees distinct masks per cell).
///
/// ```swift
/// let detector = ShapesDetector(imageSize: 32)
/// let found = detector.detect(Image(width: 32, height: 32, channels: 3, pixels: example.pixels))
/// found.sceneObjects == example.scene.objects   // true on real renders
/// ```
public struct ShapesDetector: Sendable {
    public let imageSize: Int
    public var foregroundThreshold: Float = 0.35
    public var minAreaFraction: Double = 0.4
    let raster: Rasterizer
    /// Pixel offsets (dx, dy) from the cell's top-left corner, per cell and (shape, size) pair
    /// (index shape·2 + size).
    let masks: [[[(Int, Int)]]]
    let minArea: Int

    public init(imageSize: Int) {
        raster = Rasterizer(imageSize: imageSize)
        self.imageSize = imageSize
        var masks: [[[(Int, Int)]]] = []
        var smallest = Int.max
        for cell in GridCell.all {
            let x0 = raster.cellRange(cell.column).lowerBound, y0 = raster.cellRange(cell.row).lowerBound
            var perCell: [[(Int, Int)]] = []
            for shape in ShapeKind.allCases {
                for size in ObjectSize.allCases {
                    let o = SceneObject(shape: shape, colour: .red, size: size, cell: cell)
                    var pixels: [(Int, Int)] = []
                    for y in raster.cellRange(cell.row) {
                        for x in raster.cellRange(cell.column) where raster.covers(o, x: x, y: y) {
                            pixels.append((x - x0, y - y0))
                        }
                    }
                    smallest = min(smallest, pixels.count)
                    perCell.append(pixels)
                }
            }
            masks.append(perCell)
        }
        self.masks = masks
        minArea = smallest
    }

    // MARK: - Detection

    /// The objects in `image` (RGB or RGBA, `imageSize` a side, samples in [0, 1]).
    public func detect(_ image: Image) -> ShapesDetection {
        precondition(image.width == imageSize && image.height == imageSize,
                     "ShapesDetector(\(imageSize)): got a \(image.width)×\(image.height) image")
        let rgb = image.channels == 3 ? image : image.converted(channels: 3)
        let n = imageSize * imageSize
        let bg = Self.median(rgb.pixels, channels: 3)
        // 1–2. Distance of every pixel from the background, and the foreground mask.
        var distance = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let d = SIMD3(rgb.pixels[3 * i], rgb.pixels[3 * i + 1], rgb.pixels[3 * i + 2]) - bg
            distance[i] = (d * d).sum().squareRoot()
        }
        // 3. Components, merged by the cell of their centroid.
        var byCell: [Int: [Int]] = [:]
        for component in components(distance.map { $0 > foregroundThreshold }) {
            let cx = component.reduce(0.0) { $0 + Double($1 % imageSize) } / Double(component.count) + 0.5
            let cy = component.reduce(0.0) { $0 + Double($1 / imageSize) } / Double(component.count) + 0.5
            byCell[cellIndex(x: cx, y: cy), default: []] += component
        }
        let kept = byCell.filter { Double($0.value.count) >= minAreaFraction * Double(minArea) }
        var owner = [Int](repeating: -1, count: n)          // the cell index of each kept object's pixels
        for (cellIndex, pixels) in kept { for p in pixels { owner[p] = cellIndex } }
        func pixel(_ p: Int) -> SIMD3<Float> { SIMD3(rgb.pixels[3 * p], rgb.pixels[3 * p + 1], rgb.pixels[3 * p + 2]) }
        var objects: [DetectedObject] = []
        for (cellIndex, pixels) in kept.sorted(by: { $0.key < $1.key }) {
            let cell = GridCell(index: cellIndex)
            // 4. Colour by coverage-weighted vote along background→colour rays.
            var votes = [Double](repeating: 0, count: Colour.allCases.count)
            for p in pixels {
                let (colour, alpha) = Self.unblend(pixel(p), background: bg)
                votes[colour.rawValue] += Double(alpha)
            }
            let best = votes.indices.max { votes[$0] < votes[$1] }!
            // 5. Shape and size by soft mask IoU over the coverage of that colour.
            let colourRay = Colour(rawValue: best)!.rgb - bg
            var coverage = [Float](repeating: 0, count: n)
            for p in 0..<n where owner[p] < 0 || owner[p] == cellIndex {
                coverage[p] = min(max(((pixel(p) - bg) * colourRay).sum() / (colourRay * colourRay).sum(), 0), 1)
            }
            let (shape, size, iou) = bestMask(coverage, cell: cell)
            let cx = pixels.reduce(0.0) { $0 + Double($1 % imageSize) } / Double(pixels.count) + 0.5
            let cy = pixels.reduce(0.0) { $0 + Double($1 / imageSize) } / Double(pixels.count) + 0.5
            objects.append(DetectedObject(
                object: SceneObject(shape: shape, colour: Colour(rawValue: best)!, size: size, cell: cell),
                area: pixels.count, x: cx, y: cy, shapeIoU: iou,
                colourAgreement: votes[best] / max(votes.reduce(0, +), 1e-12)))
        }
        let grey = (bg.x + bg.y + bg.z) / 3
        let background = Background.allCases.min { abs(Float($0.rgb8) / 255 - grey) < abs(Float($1.rgb8) / 255 - grey) }!
        return ShapesDetection(objects: objects, background: background)
    }

    /// The grid cell (reading-order index) holding pixel position (x, y).
    func cellIndex(x: Double, y: Double) -> Int {
        func k(_ v: Double) -> Int {
            let p = min(max(Int(v.rounded(.down)), 0), imageSize - 1)
            return (0..<3).first { raster.cellRange($0).contains(p) }!
        }
        return k(y) * 3 + k(x)
    }

    /// 8-connected components of `mask`, each as row-major pixel indices.
    func components(_ mask: [Bool]) -> [[Int]] {
        let s = imageSize
        var seen = [Bool](repeating: false, count: s * s)
        var out: [[Int]] = []
        for start in 0..<(s * s) where mask[start] && !seen[start] {
            var stack = [start], component: [Int] = []
            seen[start] = true
            while let p = stack.popLast() {
                component.append(p)
                let (x, y) = (p % s, p / s)
                for dy in -1...1 {
                    for dx in -1...1 {
                        let (nx, ny) = (x + dx, y + dy)
                        guard nx >= 0, ny >= 0, nx < s, ny < s else { continue }
                        let q = ny * s + nx
                        if mask[q] && !seen[q] { seen[q] = true; stack.append(q) }
                    }
                }
            }
            out.append(component)
        }
        return out
    }

    /// The (shape, size) mask of `cell`, shifted by up to S/16 pixels, with the highest soft IoU
    /// Σ_T f / (|T| + Σ f − Σ_T f) against the coverage map f ∈ [0, 1] (f = 1 on a crisp object's
    /// pixels and 0 elsewhere, where this is the plain IoU) summed over the cell and its margin.
    func bestMask(_ coverage: [Float], cell: GridCell) -> (ShapeKind, ObjectSize, Double) {
        let s = imageSize
        let x0 = raster.cellRange(cell.column).lowerBound, y0 = raster.cellRange(cell.row).lowerBound
        let reach = max(1, s / 16)
        let xs = max(x0 - reach, 0)..<min(raster.cellRange(cell.column).upperBound + reach, s)
        let ys = max(y0 - reach, 0)..<min(raster.cellRange(cell.row).upperBound + reach, s)
        var total = 0.0
        for y in ys { for x in xs { total += Double(coverage[y * s + x]) } }
        var best = (ShapeKind.circle, ObjectSize.small, -1.0)
        for (k, mask) in masks[cell.index].enumerated() {
            for dy in -reach...reach {
                for dx in -reach...reach {
                    var hit = 0.0
                    for (mx, my) in mask {
                        let x = x0 + mx + dx, y = y0 + my + dy
                        if xs.contains(x), ys.contains(y) { hit += Double(coverage[y * s + x]) }
                    }
                    // Ties (never on real renders) prefer the unshifted mask: strict improvement only.
                    let iou = hit / (Double(mask.count) + total - hit)
                    let shiftPenalty = 1e-9 * Double(abs(dx) + abs(dy))
                    if iou - shiftPenalty > best.2 {
                        best = (ShapeKind(rawValue: k / 2)!, ObjectSize(rawValue: k % 2)!, iou - shiftPenalty)
                    }
                }
            }
        }
        return (best.0, best.1, max(best.2, 0))
    }

    // MARK: - Colours

    /// The palette colour c whose ray from the background best explains `rgb` as a blend
    /// α·c + (1 − α)·bg (smallest residual), and that coverage α ∈ [0, 1]. Blurred or antialiased
    /// edges and desaturated blobs keep their hue this way, where the nearest colour would not.
    public static func unblend(_ rgb: SIMD3<Float>, background bg: SIMD3<Float>) -> (Colour, Float) {
        var best = (Colour.red, Float(0)), bestResidual = Float.infinity
        let v = rgb - bg
        for c in Colour.allCases {
            let d = c.rgb - bg
            let alpha = min(max((v * d).sum() / (d * d).sum(), 0), 1)
            let r = v - alpha * d
            let residual = (r * r).sum()
            if residual < bestResidual { bestResidual = residual; best = (c, alpha) }
        }
        return best
    }

    /// The palette colour nearest to `rgb` (values in [0, 1]).
    public static func nearestColour(_ rgb: SIMD3<Float>) -> Colour {
        var best = Colour.red, bestD = Float.infinity
        for c in Colour.allCases {
            let d = c.rgb - rgb
            let dd = (d * d).sum()
            if dd < bestD { bestD = dd; best = c }
        }
        return best
    }

    /// Per-channel median of interleaved samples.
    static func median(_ samples: [Float], channels: Int) -> SIMD3<Float> {
        var out = SIMD3<Float>()
        for c in 0..<min(channels, 3) {
            let sorted = stride(from: c, to: samples.count, by: channels).map { samples[$0] }.sorted()
            out[c] = sorted[sorted.count / 2]
        }
        return out
    }
}
