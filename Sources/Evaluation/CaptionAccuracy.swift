// Captioning accuracy: generated captions read by ShapesCaptionParser and compared with the true
// object lists: exact match, object count, and per-attribute accuracy (colour, shape, and size,
// position and background where the caption states them). Not caption generation (the model's) nor BLEU-style
// text overlap.
import Data
import Foundation

/// Accuracy of captions against their scenes; every figure is a fraction in [0, 1].
public struct CaptionAccuracyReport: Codable, Sendable, CustomStringConvertible {
    public var captions: Int
    /// Captions read completely (every piece named a colour or a shape).
    public var readable: Double
    /// Captions whose statement is exactly true of the scene (every object, nothing else).
    public var exact: Double
    /// Captions stating the right number of objects.
    public var count: Double
    /// True objects whose matched caption item has their colour / shape (unmatched objects count as wrong).
    public var colour: Double
    public var shape: Double
    /// Among matched items that state a size / a place, the fraction that is right (nil: none stated).
    public var size: Double?
    public var position: Double?
    /// Among captions that state a background, the fraction that names the scene's (nil: none stated).
    public var background: Double? = nil

    /// `caption_*` entries for metrics rows.
    public var metrics: [String: Double] {
        var m = ["caption_exact": exact, "caption_count": count, "caption_colour": colour, "caption_shape": shape,
                 "caption_readable": readable]
        if let size { m["caption_size"] = size }
        if let position { m["caption_position"] = position }
        if let background { m["caption_background"] = background }
        return m
    }

    public var description: String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%5.1f%%", 100 * $0) } ?? "    –" }
        return """
            captions   \(captions)
            readable   \(pct(readable))
            exact      \(pct(exact))
            count      \(pct(count))
            colour     \(pct(colour))
            shape      \(pct(shape))
            size       \(pct(size))
            position   \(pct(position))
            background \(pct(background))
            """
    }
}

/// Scores captions against scenes.
///
/// ```swift
/// let report = CaptionAccuracy.score(captions: generated, scenes: heldOut.map(\.scene))
/// report.colour    // fraction of objects whose colour the caption got right
/// ```
public enum CaptionAccuracy {
    public static func score(captions: [String], scenes: [Scene]) -> CaptionAccuracyReport {
        precondition(captions.count == scenes.count, "CaptionAccuracy: \(captions.count) captions for \(scenes.count) scenes")
        var readable = 0, exact = 0, count = 0, objects = 0, colour = 0, shape = 0
        var sizeStated = 0, sizeRight = 0, placeStated = 0, placeRight = 0, backgroundStated = 0, backgroundRight = 0
        for (caption, scene) in zip(captions, scenes) {
            let parsed = ShapesCaptionParser.parse(caption)
            let e = parsed.expectation
            if let stated = e.background {
                backgroundStated += 1
                if stated == scene.background { backgroundRight += 1 }
            }
            if parsed.isComplete { readable += 1 }
            if parsed.isComplete && e.isSatisfied(by: scene.objects, background: scene.background) { exact += 1 }
            if (parsed.statedTotal ?? e.total) == scene.objects.count && e.total == scene.objects.count { count += 1 }
            let slots = e.items.flatMap { Array(repeating: $0, count: min($0.count, 9)) }
            let match = bestMatch(slots: slots, objects: scene.objects)
            objects += scene.objects.count
            for (i, o) in scene.objects.enumerated() {
                guard let s = match[i].map({ slots[$0] }) else { continue }
                if s.colour == o.colour { colour += 1 }
                if s.shape == o.shape { shape += 1 }
                if let size = s.size { sizeStated += 1; if size == o.size { sizeRight += 1 } }
                if let cell = s.cell { placeStated += 1; if cell == o.cell { placeRight += 1 } }
            }
        }
        let n = Double(max(captions.count, 1)), m = Double(max(objects, 1))
        return CaptionAccuracyReport(
            captions: captions.count, readable: Double(readable) / n, exact: Double(exact) / n, count: Double(count) / n,
            colour: Double(colour) / m, shape: Double(shape) / m,
            size: sizeStated == 0 ? nil : Double(sizeRight) / Double(sizeStated),
            position: placeStated == 0 ? nil : Double(placeRight) / Double(placeStated),
            background: backgroundStated == 0 ? nil : Double(backgroundRight) / Double(backgroundStated))
    }

    /// For each object, the slot matched to it (distinct slots), maximising the number of agreeing
    /// attributes over all objects; exhaustive, which is cheap for ShapesWorld's ≤ 3 objects.
    static func bestMatch(slots: [ExpectedItem], objects: [SceneObject]) -> [Int?] {
        func agreement(_ s: ExpectedItem, _ o: SceneObject) -> Int {
            (s.colour == o.colour ? 2 : 0) + (s.shape == o.shape ? 2 : 0) + (s.cell == o.cell ? 1 : 0)
                + (s.size == o.size ? 1 : 0)
        }
        var best: [Int?] = Array(repeating: nil, count: objects.count), bestScore = -1
        var current: [Int?] = Array(repeating: nil, count: objects.count)
        var used = [Bool](repeating: false, count: slots.count)
        func search(_ i: Int, _ score: Int) {
            if i == objects.count {
                if score > bestScore { bestScore = score; best = current }
                return
            }
            for k in slots.indices where !used[k] {
                used[k] = true; current[i] = k
                search(i + 1, score + agreement(slots[k], objects[i]))
                used[k] = false
            }
            current[i] = nil
            search(i + 1, score)  // leave object i unmatched (fewer slots than objects)
        }
        search(0, 0)
        return best
    }
}
