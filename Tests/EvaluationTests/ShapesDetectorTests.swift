// The analytic detector and ShapesEval on real ShapesWorld renders: exact object lists, own
// captions satisfied, shuffled captions near chance, and fixed prompt sets per seed.
import Data
@testable import Evaluation
import Media
import Testing

func render(_ scene: Scene, _ size: Int) -> Image {
    Image(width: size, height: size, channels: 3, pixels: scene.render(imageSize: size))
}

@Suite struct ShapesDetectorTests {
    @Test(arguments: [32, 64]) func realRendersGiveTheirObjectLists(size: Int) {
        let world = ShapesWorld(seed: 11, imageSize: size)
        let detector = ShapesDetector(imageSize: size)
        let n = size == 32 ? 400 : 120
        var exact = 0, background = 0
        for i in 0..<n {
            let scene = world.scene(i)
            let found = detector.detect(render(scene, size))
            if found.sceneObjects == scene.objects { exact += 1 }
            if found.background == scene.background { background += 1 }
        }
        #expect(Double(exact) / Double(n) >= 0.99, "exact object lists \(exact)/\(n) at \(size)px")
        #expect(background == n)
    }

    /// The acceptance test: real renders satisfy their own captions (every style) and rarely a
    /// caption of another scene.
    @Test func ownCaptionsPassShuffledCaptionsDoNot() {
        let world = ShapesWorld(seed: 5)
        let detector = ShapesDetector(imageSize: 32)
        let n = 400
        let examples = (0..<n).map(world.example)
        let found = examples.map { detector.detect(Image(width: 32, height: 32, channels: 3, pixels: $0.pixels)) }
        func rate(_ caption: (Int) -> String) -> Double {
            Double((0..<n).filter { i in
                let p = ShapesCaptionParser.parse(caption(i))
                return p.isComplete && p.expectation.isSatisfied(by: found[i].sceneObjects, background: found[i].background)
            }.count) / Double(n)
        }
        let own = rate { examples[$0].caption }
        let shuffled = rate { examples[($0 * 7 + 3) % n].caption }   // a fixed derangement (7 ⟂ 400, 3 ≠ 0 mod …)
        #expect(own >= 0.99, "own captions \(own)")
        #expect(shuffled < 0.05, "shuffled captions \(shuffled)")
    }

    @Test func mildNoiseKeepsDetectionsRight() {
        let world = ShapesWorld(seed: 2)
        let detector = ShapesDetector(imageSize: 32)
        var rng = SplitMix64(seed: 9, stream: 0, index: 0)
        var right = 0
        let n = 200
        for i in 0..<n {
            let scene = world.scene(i)
            var image = render(scene, 32)
            for k in image.pixels.indices {
                // Uniform noise of standard deviation 0.06.
                image.pixels[k] = min(max(image.pixels[k] + Float(rng.unit() - 0.5) * 0.2, 0), 1)
            }
            if detector.detect(image).sceneObjects == scene.objects { right += 1 }
        }
        #expect(Double(right) / Double(n) >= 0.95, "noisy renders \(right)/\(n)")
    }

    @Test func emptyImageHasNoObjects() {
        let found = ShapesDetector(imageSize: 32).detect(Image(width: 32, height: 32, channels: 3, fill: 48.0 / 255))
        #expect(found.count == 0 && found.background == .darkGrey)
    }
}

@Suite struct ShapesEvalTests {
    @Test func referenceImagesScoreFullMarksAndShuffledOnesDoNot() {
        let eval = ShapesEval(seed: 0, promptsPerCategory: 20)
        #expect(eval.prompts.count == 120)
        let reference = eval.referenceImages()
        let report = eval.score(images: reference)
        #expect(report.overall == 1, "\(report)\n\(report.details)")
        #expect(report.categories.count == ShapesEvalCategory.allCases.count)
        // Images of other prompts: only chance agreement (e.g. a colour prompt whose colour recurs).
        let n = reference.count
        let shuffled = eval.score(images: (0..<n).map { reference[($0 * 7 + 1) % n] })
        #expect(shuffled.overall < 0.15, "\(shuffled)")
        #expect(report.metrics["shapes_eval"] == 1 && report.metrics["shapes_colour_binding"] == 1)
    }

    @Test func promptsAreFixedBySeedAndNested() {
        let a = ShapesEval(seed: 3, promptsPerCategory: 4), b = ShapesEval(seed: 3, promptsPerCategory: 4)
        #expect(a.prompts == b.prompts)
        #expect(ShapesEval(seed: 4, promptsPerCategory: 4).prompts != a.prompts)
        let big = ShapesEval(seed: 3, promptsPerCategory: 8)
        for c in ShapesEvalCategory.allCases {
            #expect(Array(big.prompts.filter { $0.category == c }.prefix(4)) == a.prompts.filter { $0.category == c })
        }
        #expect(ShapesEval(seed: 0, totalPrompts: 24).prompts.count == 24)
        // Asking for some categories gives those categories' prompts of the whole set.
        let some: [ShapesEvalCategory] = [.counting, .colourBinding]
        #expect(ShapesEval(seed: 3, promptsPerCategory: 8, categories: some).prompts == big.prompts.filter { some.contains($0.category) })
        // Every prompt text is a caption the parser reads back to at least the expectation's facts.
        for p in big.prompts {
            let parsed = ShapesCaptionParser.parse(p.text)
            #expect(parsed.isComplete, "\(p.text)")
            #expect(parsed.expectation.isSatisfied(by: p.scene.objects), "\(p.text) vs \(p.scene.objects)")
            #expect(p.expectation.isSatisfied(by: p.scene.objects))
        }
    }

    @Test func reportTableNamesEveryCategory() {
        let eval = ShapesEval(seed: 1, promptsPerCategory: 2)
        let text = eval.score(images: eval.referenceImages()).description
        for c in ShapesEvalCategory.allCases { #expect(text.contains(c.rawValue)) }
        #expect(text.contains("overall") && text.contains("100.0%"))
    }

    /// Scores carry standard errors over prompts: pass rates (1, 0, 1, 0) of one category give
    /// 0.5 ± √(1/3 / 4); the overall error is √(Σ SE²) / categories.
    @Test func reportStandardErrorsAreOverPrompts() {
        func result(_ c: ShapesEvalCategory, _ passed: Int) -> ShapesEvalReport.PromptResult {
            .init(category: c, text: "", passed: passed, images: 2, found: "")
        }
        let report = ShapesEvalReport(results: [2, 0, 2, 0].map { result(.colour, $0) } + [2, 2].map { result(.shape, $0) })
        let colour = report.categories.first { $0.category == .colour }!
        #expect(colour.score == 0.5 && abs(colour.standardError - (1.0 / 3 / 4).squareRoot()) < 1e-12)
        #expect(report.categories.first { $0.category == .shape }!.standardError == 0)
        #expect(abs(report.standardError - colour.standardError / 2) < 1e-12 && report.metrics["shapes_eval_se"] == report.standardError)
        #expect(report.description.contains("±"))
    }
}
