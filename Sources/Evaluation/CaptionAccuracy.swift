// Captioning accuracy: generated captions read by ShapesCaptionParser and compared with the true
// object lists: exact match, object count, and per-attribute accuracy (colour, shape, and size,
// position and background where the caption states them), each with its standard error, and the
// per-caption verdicts that two reports on the same scenes are paired by. Not caption generation
// (the model's) nor BLEU-style text overlap.
import Data
import Foundation

/// A figure of a caption report. Each is a ratio of two sums over the captions, Σ right / Σ
/// counted: one per caption for readable, exact and count; the scene's objects for colour and
/// shape; the caption's stated sizes, places or background for size, position and background.
public enum CaptionFigure: String, CaseIterable, Codable, Sendable {
    case readable, exact, count, colour, shape, size, position, background
}

/// One caption's verdicts: what the report's figures are sums of.
public struct CaptionCheck: Codable, Sendable, Hashable {
    public var caption: String
    /// The scene the caption was scored against (pairs two reports' captions).
    public var scene: Scene
    public var readable: Bool
    public var exact: Bool
    public var count: Bool
    /// Objects in the scene, and those whose matched caption item has their colour / shape.
    public var objects: Int
    public var colourRight: Int
    public var shapeRight: Int
    /// Matched items stating a size / a place, and those right.
    public var sizeStated: Int
    public var sizeRight: Int
    public var placeStated: Int
    public var placeRight: Int
    public var backgroundStated: Bool
    public var backgroundRight: Bool

    /// This caption's (right, counted) for `figure`, a unit of its `RatioMean`.
    public func part(_ figure: CaptionFigure) -> (sum: Double, count: Double) {
        func flag(_ b: Bool) -> Double { b ? 1 : 0 }
        switch figure {
        case .readable: return (flag(readable), 1)
        case .exact: return (flag(exact), 1)
        case .count: return (flag(count), 1)
        case .colour: return (Double(colourRight), Double(objects))
        case .shape: return (Double(shapeRight), Double(objects))
        case .size: return (Double(sizeRight), Double(sizeStated))
        case .position: return (Double(placeRight), Double(placeStated))
        case .background: return (flag(backgroundRight), flag(backgroundStated))
        }
    }
}

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
    /// Each stated figure's standard error, keyed by `CaptionFigure` raw value (the caption as
    /// the unit; see `RatioMean`). Empty in reports written before they were kept.
    public var standardErrors: [String: Double] = [:]
    /// The per-caption verdicts (empty in reports written before they were kept).
    public var results: [CaptionCheck] = []

    public init(results: [CaptionCheck]) {
        self.results = results
        captions = results.count
        var values: [CaptionFigure: Double] = [:]
        for figure in CaptionFigure.allCases {
            guard let (value, se) = RatioMean.estimate(results.map { $0.part(figure) }) else { continue }
            values[figure] = value
            standardErrors[figure.rawValue] = se
        }
        readable = values[.readable] ?? 0
        exact = values[.exact] ?? 0
        count = values[.count] ?? 0
        colour = values[.colour] ?? 0
        shape = values[.shape] ?? 0
        size = values[.size]
        position = values[.position]
        background = values[.background]
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        captions = try c.decode(Int.self, forKey: .captions)
        readable = try c.decode(Double.self, forKey: .readable)
        exact = try c.decode(Double.self, forKey: .exact)
        count = try c.decode(Double.self, forKey: .count)
        colour = try c.decode(Double.self, forKey: .colour)
        shape = try c.decode(Double.self, forKey: .shape)
        size = try c.decodeIfPresent(Double.self, forKey: .size)
        position = try c.decodeIfPresent(Double.self, forKey: .position)
        background = try c.decodeIfPresent(Double.self, forKey: .background)
        standardErrors = try c.decodeIfPresent([String: Double].self, forKey: .standardErrors) ?? [:]
        results = try c.decodeIfPresent([CaptionCheck].self, forKey: .results) ?? []
    }

    /// A figure's value (nil: nothing of its kind was stated) and standard error (nil: not kept).
    public func value(_ figure: CaptionFigure) -> Double? {
        switch figure {
        case .readable: return readable
        case .exact: return exact
        case .count: return count
        case .colour: return colour
        case .shape: return shape
        case .size: return size
        case .position: return position
        case .background: return background
        }
    }

    /// `caption_*` entries for metrics rows, with `caption_*_se` where the error is known.
    public var metrics: [String: Double] {
        var m: [String: Double] = [:]
        for figure in CaptionFigure.allCases {
            guard let v = value(figure) else { continue }
            m["caption_" + figure.rawValue] = v
            if let se = standardErrors[figure.rawValue] { m["caption_" + figure.rawValue + "_se"] = se }
        }
        return m
    }

    public var description: String {
        var lines = ["captions   \(captions)"]
        for figure in CaptionFigure.allCases {
            let name = figure.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)
            guard let v = value(figure) else { lines.append(name + "     –"); continue }
            lines.append(name + String(format: " %5.1f%%", 100 * v)
                         + (standardErrors[figure.rawValue].map { String(format: " ± %.1f", 100 * $0) } ?? ""))
        }
        return lines.joined(separator: "\n")
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
        return CaptionAccuracyReport(results: zip(captions, scenes).map(check))
    }

    /// One caption's verdicts against its scene.
    public static func check(caption: String, scene: Scene) -> CaptionCheck {
        let parsed = ShapesCaptionParser.parse(caption)
        let e = parsed.expectation
        var c = CaptionCheck(caption: caption, scene: scene, readable: parsed.isComplete,
                             exact: parsed.isComplete && e.isSatisfied(by: scene.objects, background: scene.background),
                             count: (parsed.statedTotal ?? e.total) == scene.objects.count && e.total == scene.objects.count,
                             objects: scene.objects.count, colourRight: 0, shapeRight: 0, sizeStated: 0, sizeRight: 0,
                             placeStated: 0, placeRight: 0, backgroundStated: e.background != nil,
                             backgroundRight: e.background.map { $0 == scene.background } ?? false)
        let slots = e.items.flatMap { Array(repeating: $0, count: min($0.count, 9)) }
        let match = bestMatch(slots: slots, objects: scene.objects)
        for (i, o) in scene.objects.enumerated() {
            guard let s = match[i].map({ slots[$0] }) else { continue }
            if s.colour == o.colour { c.colourRight += 1 }
            if s.shape == o.shape { c.shapeRight += 1 }
            if let size = s.size { c.sizeStated += 1; if size == o.size { c.sizeRight += 1 } }
            if let cell = s.cell { c.placeStated += 1; if cell == o.cell { c.placeRight += 1 } }
        }
        return c
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
