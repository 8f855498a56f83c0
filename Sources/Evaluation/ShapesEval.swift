// ShapesEval (GenEval's idea on ShapesWorld): a fixed prompt set, deterministic by seed, in six
// categories, each prompt generated from a scene so its expectation is known exactly; scoring of
// generated images by the analytic detector; per-category and overall scores. Not the detector
// (ShapesDetector.swift) and not image generation: callers bring the images.
import Data
import Foundation
import Media

/// A skill that ShapesEval measures.
public enum ShapesEvalCategory: String, CaseIterable, Codable, Sendable {
    /// "a red circle": exactly one object, of that colour and shape.
    case singleObject = "single_object"
    /// "a small green cross": exactly one object, of that colour (shape not checked).
    case colour
    /// "a large blue ring": exactly one object, of that shape (colour not checked).
    case shape
    /// "three yellow triangles": exactly n objects, all of that shape.
    case counting
    /// "a red circle in the top left": exactly one object, that colour and shape, in that cell.
    case position
    /// "a red circle and a blue square": exactly two objects, each colour on its own shape.
    case colourBinding = "colour_binding"
}

/// One prompt of the set: its text, what an image of it must show, and a scene that shows it.
public struct EvalPrompt: Codable, Hashable, Sendable {
    public var category: ShapesEvalCategory
    public var text: String
    public var expectation: ShapesExpectation
    /// A scene satisfying the prompt (what a perfect model could draw; tests render it).
    public var scene: Scene
}

/// The prompt set and its scoring.
///
/// ```swift
/// let eval = ShapesEval(seed: 0, promptsPerCategory: 4)         // 24 prompts
/// let images = eval.prompts.map { p in [generate(p.text)] }      // [[Image]], one list per prompt
/// print(eval.score(images: images))                              // a table; .overall in [0, 1]
/// ```
public struct ShapesEval: Sendable {
    public let seed: UInt64
    public let imageSize: Int
    public let prompts: [EvalPrompt]
    public let detector: ShapesDetector

    /// `promptsPerCategory` prompts of each category (of `categories`, by default all), in
    /// category order; the same for the same seed, and a prefix of a larger set with the same seed.
    /// A category's prompts do not depend on which other categories are asked for.
    public init(seed: UInt64 = 0, promptsPerCategory: Int = 16, imageSize: Int = 32,
                categories: [ShapesEvalCategory] = ShapesEvalCategory.allCases) {
        self.seed = seed
        self.imageSize = imageSize
        detector = ShapesDetector(imageSize: imageSize)
        prompts = ShapesEvalCategory.allCases.enumerated().filter { categories.contains($0.element) }.flatMap { c, category in
            (0..<promptsPerCategory).map { k in
                var rng = SplitMix64(seed: seed, stream: 0xE7A1_0000 + UInt64(c), index: k)
                return Self.prompt(category, rng: &rng)
            }
        }
    }

    /// About `count` prompts spread evenly over the categories (at least one each).
    public init(seed: UInt64 = 0, totalPrompts count: Int, imageSize: Int = 32) {
        let per = max(1, (count + ShapesEvalCategory.allCases.count - 1) / ShapesEvalCategory.allCases.count)
        self.init(seed: seed, promptsPerCategory: per, imageSize: imageSize)
    }

    // MARK: - Prompts

    static func randomObject(_ rng: inout SplitMix64, cell: GridCell? = nil) -> SceneObject {
        SceneObject(shape: rng.pick(ShapeKind.allCases), colour: rng.pick(Colour.allCases),
                    size: rng.pick(ObjectSize.allCases), cell: cell ?? GridCell(index: rng.int(below: 9)))
    }

    static func prompt(_ category: ShapesEvalCategory, rng: inout SplitMix64) -> EvalPrompt {
        var cells = GridCell.all
        rng.shuffle(&cells)
        let o = randomObject(&rng, cell: cells[0])
        let background = rng.pick(Background.allCases)
        func make(_ text: String, _ items: [ExpectedItem], _ objects: [SceneObject]) -> EvalPrompt {
            EvalPrompt(category: category, text: text, expectation: ShapesExpectation(items: items),
                       scene: Scene(objects: objects, background: background))
        }
        switch category {
        case .singleObject:
            return make(Captioner.describe(o, mentionSize: false), [ExpectedItem(shape: o.shape, colour: o.colour)], [o])
        case .colour:
            return make(Captioner.describe(o, mentionSize: true), [ExpectedItem(colour: o.colour)], [o])
        case .shape:
            return make(Captioner.describe(o, mentionSize: true), [ExpectedItem(shape: o.shape)], [o])
        case .counting:
            let n = rng.int(in: 2...3)
            let objects = (0..<n).map { k in
                SceneObject(shape: o.shape, colour: o.colour, size: rng.pick(ObjectSize.allCases), cell: cells[k])
            }
            let text = "\(NumberWords.word(n)) \(o.colour.name) \(o.shape.plural)"
            return make(text, [ExpectedItem(count: n, shape: o.shape)], objects)
        case .position:
            let text = Captioner.describe(o, mentionSize: false) + " " + rng.pick(o.cell.phrases)
            return make(text, [ExpectedItem(shape: o.shape, colour: o.colour, cell: o.cell)], [o])
        case .colourBinding:
            var b = randomObject(&rng, cell: cells[1])
            while b.shape == o.shape { b.shape = rng.pick(ShapeKind.allCases) }
            while b.colour == o.colour { b.colour = rng.pick(Colour.allCases) }
            let text = Captioner.describe(o, mentionSize: false) + " and " + Captioner.describe(b, mentionSize: false)
            return make(text, [ExpectedItem(shape: o.shape, colour: o.colour), ExpectedItem(shape: b.shape, colour: b.colour)],
                        [o, b])
        }
    }

    // MARK: - Scoring

    /// Scores `images[i]` (any number of images) against prompt i.
    public func score(images: [[Image]]) -> ShapesEvalReport {
        precondition(images.count == prompts.count, "ShapesEval.score: \(images.count) image lists for \(prompts.count) prompts")
        return score(detections: images.map { $0.map(detector.detect) })
    }

    /// Scores detections (one list per prompt) against the prompts.
    public func score(detections: [[ShapesDetection]]) -> ShapesEvalReport {
        precondition(detections.count == prompts.count, "ShapesEval.score: \(detections.count) lists for \(prompts.count) prompts")
        var results: [ShapesEvalReport.PromptResult] = []
        for (p, found) in zip(prompts, detections) {
            let passed = found.filter { p.expectation.isSatisfied(by: $0.sceneObjects) }.count
            results.append(.init(category: p.category, text: p.text, passed: passed, images: found.count,
                                 found: found.first.map { $0.objects.map(\.description).joined(separator: ", ") } ?? ""))
        }
        return ShapesEvalReport(results: results)
    }

    /// Real renders of every prompt's reference scene (one image each): the ceiling of the scores.
    public func referenceImages() -> [[Image]] {
        prompts.map { [Image(width: imageSize, height: imageSize, channels: 3, pixels: $0.scene.render(imageSize: imageSize))] }
    }
}

/// ShapesEval's scores: per prompt, per category (mean over its prompts of the fraction of images
/// that pass) and overall (mean over categories, as GenEval reports).
public struct ShapesEvalReport: Codable, Sendable, CustomStringConvertible {
    public struct PromptResult: Codable, Sendable {
        public var category: ShapesEvalCategory
        public var text: String
        public var passed: Int
        public var images: Int
        /// What the detector found in the prompt's first image.
        public var found: String
        public var score: Double { images == 0 ? 0 : Double(passed) / Double(images) }

        public init(category: ShapesEvalCategory, text: String, passed: Int, images: Int, found: String) {
            self.category = category; self.text = text; self.passed = passed; self.images = images; self.found = found
        }
    }

    public struct CategoryScore: Codable, Sendable {
        public var category: ShapesEvalCategory
        public var score: Double
        /// The standard error of `score` over prompts: the sample standard deviation of the
        /// prompts' pass rates / √prompts (the images of one prompt are not independent draws);
        /// 0 with one prompt.
        public var standardError: Double
        public var prompts: Int
        public var images: Int
    }

    public var overall: Double
    /// The standard error of `overall` (the mean of the categories): √(Σ SE²) / categories.
    public var standardError: Double
    public var categories: [CategoryScore]
    public var results: [PromptResult]

    public init(results: [PromptResult]) {
        self.results = results
        categories = ShapesEvalCategory.allCases.compactMap { c in
            let scores = results.filter { $0.category == c }.map(\.score)
            guard !scores.isEmpty else { return nil }
            let (mean, se) = meanAndStandardError(scores)
            return CategoryScore(category: c, score: mean, standardError: se,
                                 prompts: scores.count, images: results.filter { $0.category == c }.map(\.images).reduce(0, +))
        }
        (overall, standardError) = meanOfCategories(categories.map { ($0.score, $0.standardError) })
    }

    /// `shapes_eval` (overall) and `shapes_<category>` scores, and `shapes_eval_se` (the overall
    /// score's standard error), for metrics rows.
    public var metrics: [String: Double] {
        var m = ["shapes_eval": overall, "shapes_eval_se": standardError]
        for c in categories { m["shapes_" + c.category.rawValue] = c.score }
        return m
    }

    public var description: String {
        var lines = ["category          score    ± s.e.  prompts  images"]
        for c in categories {
            lines.append(c.category.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
                         + String(format: "  %5.1f%%  ± %4.1f  %7d  %6d", 100 * c.score, 100 * c.standardError, c.prompts, c.images))
        }
        lines.append("overall".padding(toLength: 16, withPad: " ", startingAt: 0)
                     + String(format: "  %5.1f%%  ± %4.1f  %7d  %6d", 100 * overall, 100 * standardError, results.count,
                              results.map(\.images).reduce(0, +)))
        return lines.joined(separator: "\n")
    }

    /// One line per prompt: score, prompt, what was found in its first image.
    public var details: String {
        results.map { String(format: "%3d/%-3d ", $0.passed, $0.images) + "\($0.text)  →  \($0.found.isEmpty ? "nothing" : $0.found)" }
            .joined(separator: "\n")
    }
}

/// The mean of `scores` and its standard error: the sample standard deviation over √n (0 for a
/// single score).
func meanAndStandardError(_ scores: [Double]) -> (mean: Double, standardError: Double) {
    let n = Double(scores.count), mean = scores.reduce(0, +) / n
    let variance = scores.count < 2 ? 0 : scores.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
    return (mean, (variance / n).squareRoot())
}

/// ShapesEval's overall figure from its categories' (mean, standard error): the mean of the
/// categories, with √(Σ SE²) / categories (the categories' prompts are independent).
func meanOfCategories(_ parts: [(mean: Double, standardError: Double)]) -> (mean: Double, standardError: Double) {
    let k = Double(max(parts.count, 1))
    return (parts.map(\.mean).reduce(0, +) / k, parts.map { $0.standardError * $0.standardError }.reduce(0, +).squareRoot() / k)
}
