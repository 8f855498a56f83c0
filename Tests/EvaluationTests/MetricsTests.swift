// Caption accuracy, the Jacobi eigensolver, the Fréchet distance (closed forms, and over
// classifier features: real-vs-real near 0, growing with noise) and the classifier's plumbing.
import Data
import Evaluation
import Foundation
import Media
import Tensors
import Testing

@Suite struct CaptionAccuracyTests {
    @Test func trueCaptionsAreExactShuffledOnesAreNot() {
        let world = ShapesWorld(seed: 8)
        let examples = (0..<300).map(world.example)
        let own = CaptionAccuracy.score(captions: examples.map(\.caption), scenes: examples.map(\.scene))
        #expect(own.readable == 1 && own.exact == 1 && own.count == 1 && own.colour == 1 && own.shape == 1)
        #expect(own.size == 1 && own.position == 1 && own.background == 1)
        let n = examples.count
        let shuffled = CaptionAccuracy.score(captions: (0..<n).map { examples[($0 * 7 + 1) % n].caption },
                                             scenes: examples.map(\.scene))
        #expect(shuffled.exact < 0.05 && shuffled.colour < 0.5 && shuffled.shape < 0.5, "\(shuffled)")
    }

    @Test func attributesAreScoredSeparately() {
        let scene = Scene(objects: [
            SceneObject(shape: .circle, colour: .red, size: .small, cell: GridCell(index: 0)),
            SceneObject(shape: .square, colour: .blue, size: .large, cell: GridCell(index: 8)),
        ], background: .black)
        // Right shapes and places, one colour wrong.
        let r = CaptionAccuracy.score(captions: ["a red circle in the top left and a green square in the bottom right"],
                                      scenes: [scene])
        #expect(r.exact == 0 && r.count == 1 && r.colour == 0.5 && r.shape == 1 && r.position == 1 && r.size == nil)
        // A wrong background alone makes a caption inexact, and is counted among stated backgrounds.
        let b = CaptionAccuracy.score(captions: ["a red circle in the top left and a blue square in the bottom right on a dark grey background",
                                                 "a red circle in the top left and a blue square in the bottom right on a black background",
                                                 "a red circle in the top left and a blue square in the bottom right"],
                                      scenes: [scene, scene, scene])
        #expect(abs(b.exact - 2.0 / 3) < 1e-9 && b.colour == 1 && b.background == 0.5, "\(b)")
        // Garbage is unreadable and wrong.
        let g = CaptionAccuracy.score(captions: ["the the of"], scenes: [scene])
        #expect(g.readable == 0 && g.exact == 0 && g.colour == 0)
    }
}

@Suite struct CaptionAccuracyErrorTests {
    static let scene = Scene(objects: [
        SceneObject(shape: .circle, colour: .red, size: .small, cell: GridCell(index: 0)),
        SceneObject(shape: .square, colour: .blue, size: .large, cell: GridCell(index: 8)),
    ], background: .black)
    static let right = "a red circle in the top left and a blue square in the bottom right"
    static let oneColourWrong = "a red circle in the top left and a green square in the bottom right"
    static let garbage = "the the of"

    /// Each figure is a ratio over the captions with the ratio estimator's error: a mean's error
    /// where every caption counts once (exact), the delta method's where captions count several
    /// objects (colour). Nothing counted: no figure.
    @Test func errorsAreThoseOfAMeanAndOfARatioOverCaptions() throws {
        // (1, 2), (1, 1), (0, 1): R = 2/4; residuals 0, 0.5, −0.5 → √(0.5 / 6) / (4/3).
        let r = try #require(RatioMean.estimate([(1, 2), (1, 1), (0, 1)]))
        #expect(r.value == 0.5 && abs(r.standardError - (0.5 / 6).squareRoot() * 3 / 4) < 1e-12)
        let m = try #require(RatioMean.estimate([(1, 1), (0, 1), (1, 1), (1, 1)]))
        #expect(m.value == 0.75 && abs(m.standardError - 0.25) < 1e-12)
        #expect(RatioMean.estimate([(0, 0), (0, 0)]) == nil)

        let report = CaptionAccuracy.score(captions: [Self.right, Self.oneColourWrong, Self.garbage],
                                           scenes: [Self.scene, Self.scene, Self.scene])
        // exact 1, 0, 0: 1/3 with sd √(1/3) over √3 → 1/3.
        #expect(abs(report.exact - 1.0 / 3) < 1e-12 && abs(report.standardErrors["exact"]! - 1.0 / 3) < 1e-12)
        // colour 2, 1, 0 of 2 objects each: R = 0.5; residuals 1, 0, −1 → √(2 / 6) / 2.
        #expect(report.colour == 0.5 && abs(report.standardErrors["colour"]! - (2.0 / 6).squareRoot() / 2) < 1e-12)
        #expect(report.metrics["caption_colour_se"] == report.standardErrors["colour"])
        #expect(report.background == nil && report.standardErrors["background"] == nil && report.metrics["caption_background"] == nil)
        #expect(report.results.map(\.colourRight) == [2, 1, 0] && report.results.allSatisfy { $0.scene == Self.scene })

        // A report written before verdicts were kept still reads, and cannot be paired.
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(report)) as! [String: Any]
        old["results"] = nil
        old["standardErrors"] = nil
        let decoded = try JSONDecoder().decode(CaptionAccuracyReport.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(decoded.exact == report.exact && decoded.results.isEmpty && decoded.standardErrors.isEmpty)
        #expect(throws: CaptionAccuracyDifference.Mismatch.self) { try CaptionAccuracyDifference(baseline: decoded, other: report) }
    }

    /// Two reports on the same scenes: each figure's difference is paired caption by caption, and
    /// reports on other scenes are refused.
    @Test func differencesArePairedByCaption() throws {
        let scenes = Array(repeating: Self.scene, count: 4)
        let a = CaptionAccuracy.score(captions: [Self.right, Self.oneColourWrong, Self.garbage, Self.right], scenes: scenes)
        let b = CaptionAccuracy.score(captions: [Self.right, Self.right, Self.garbage, Self.right], scenes: scenes)
        let d = try CaptionAccuracyDifference(baseline: a, other: b)
        // exact 1, 0, 0, 1 against 1, 1, 0, 1: differences 0, 1, 0, 0 → 0.25 ± 0.25.
        let exact = try #require(d.figures.first { $0.name == "exact" })
        #expect(abs(exact.difference - 0.25) < 1e-12 && abs(exact.standardError - 0.25) < 1e-12 && exact.isTie)
        // colour 2, 1, 0, 2 against 2, 2, 0, 2 of 2: R 5/8 and 6/8; zᵢ = (bᵢ − aᵢ)/2 − 1/8 → √(0.1875 / 12).
        let colour = try #require(d.figures.first { $0.name == "colour" })
        #expect(abs(colour.difference - 0.125) < 1e-12 && abs(colour.standardError - 0.125) < 1e-12)
        #expect(d.figures.first { $0.name == "background" } == nil)
        let same = try CaptionAccuracyDifference(baseline: a, other: a)
        #expect(same.figures.allSatisfy { $0.difference == 0 && $0.standardError == 0 })

        var other = scenes
        other[2] = Scene(objects: [SceneObject(shape: .circle, colour: .red, size: .small, cell: GridCell(index: 0))], background: .black)
        let moved = CaptionAccuracy.score(captions: [Self.right, Self.right, Self.garbage, Self.right], scenes: other)
        #expect(throws: CaptionAccuracyDifference.Mismatch.self) { try CaptionAccuracyDifference(baseline: a, other: moved) }
        let fewer = CaptionAccuracy.score(captions: [Self.right], scenes: [Self.scene])
        #expect(throws: CaptionAccuracyDifference.Mismatch.self) { try CaptionAccuracyDifference(baseline: a, other: fewer) }
    }
}

@Suite struct HeldOutLossDifferenceTests {
    /// Two runs' losses on the same documents: the difference of the two ratio means, with the
    /// error of the per-document linearised differences; documents hard for both cancel, so the
    /// paired error is far below the two errors combined. Other documents are refused.
    @Test func lossesArePairedByDocument() throws {
        let a = HeldOutLossReport.Kind(name: "text", documents: [0, 1, 2, 3], sums: [2, 6, 3, 9], counts: [2, 4, 2, 4])
        let b = HeldOutLossReport.Kind(name: "text", documents: [0, 1, 2, 3], sums: [1, 5, 2, 8], counts: [2, 4, 2, 4])
        #expect(a.mean == 20.0 / 12 && b.mean == 16.0 / 12)
        func report(_ k: HeldOutLossReport.Kind) -> HeldOutLossReport {
            HeldOutLossReport(run: "r", step: 1, weights: "raw", kinds: [k], metrics: [:])
        }
        let d = try HeldOutLossDifference(baseline: report(a), other: report(b))
        let row = try #require(d.kinds.first)
        // zᵢ = (bᵢ − Rᵇ nᵢ)/3 − (aᵢ − Rᵃ nᵢ)/3 = (bᵢ − aᵢ + nᵢ/3)/3: −1/9, 1/9, −1/9, 1/9 (each
        // document's difference is −1, against −n/3 expected) → √((4/81) / 12).
        #expect(abs(row.difference + 1.0 / 3) < 1e-12 && abs(row.standardError - (4.0 / 81 / 12).squareRoot()) < 1e-12)
        #expect(row.standardError < (a.standardError * a.standardError + b.standardError * b.standardError).squareRoot() / 2)
        #expect(!row.isTie && row.items == 4)
        let other = HeldOutLossReport.Kind(name: "text", documents: [0, 1, 2, 4], sums: [1, 5, 2, 8], counts: [2, 4, 2, 4])
        #expect(throws: HeldOutLossDifference.Mismatch.self) { try HeldOutLossDifference(baseline: report(a), other: report(other)) }
        let unshared = HeldOutLossReport.Kind(name: "corpus", documents: [0], sums: [1], counts: [1])
        #expect(throws: HeldOutLossDifference.Mismatch.self) { try HeldOutLossDifference(baseline: report(a), other: report(unshared)) }
    }
}

@Suite struct FrechetDistanceTests {
    @Test func jacobiReconstructsASymmetricMatrix() {
        let d = 12
        let rng = RNG(seed: 4)
        let x = rng.normal([d, d]).scalars.map(Double.init)
        var a = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { a[i * d + j] = x[i * d + j] + x[j * d + i] } }
        let (values, v) = symmetricEigen(a, d)
        var worst = 0.0
        for i in 0..<d {
            for j in 0..<d {
                var s = 0.0
                for k in 0..<d { s += v[i * d + k] * values[k] * v[j * d + k] }
                worst = max(worst, abs(s - a[i * d + j]))
            }
        }
        #expect(worst < 1e-9)
    }

    @Test func matchesTheClosedFormForDiagonalGaussians() {
        // Samples whose mean and covariance are exactly known: ± columns around a mean.
        func features(mean: [Float], sd: [Float]) -> [[Float]] {
            let d = mean.count
            return (0..<(2 * d)).map { k in
                (0..<d).map { j in mean[j] + (j == k / 2 ? (k % 2 == 0 ? 1 : -1) * sd[j] * Float(2 * d - 1).squareRoot() / Float(2).squareRoot() : 0) }
            }
        }
        let a = FeatureStatistics(features(mean: [0, 0, 0], sd: [1, 2, 3]))
        let b = FeatureStatistics(features(mean: [1, 0, 2], sd: [2, 2, 1]))
        // |Δμ|² + Σ (σ₁ − σ₂)² = 5 + (1 + 0 + 4) = 10.
        #expect(abs(frechetDistance(a, b) - 10) < 1e-6)
        #expect(abs(frechetDistance(a, a)) < 1e-9)
    }

    /// Real-vs-real held-out splits score near 0, and the distance grows with the noise added to
    /// one split (features of an untrained but fixed classifier are enough to show the property).
    @Test func realVersusRealIsNearZeroAndNoiseRaisesIt() {
        let net = ShapesClassifier(rng: RNG(seed: 1))
        net.eval()
        let world = ShapesWorld(seed: 21)
        let images = (0..<400).map { render(world.scene($0), 32) }
        let real = net.features(Array(images[0..<200]))
        let other = Array(images[200..<400])
        var rng = SplitMix64(seed: 3, stream: 0, index: 0)
        var distances: [Double] = []
        for sigma in [0.0, 0.1, 0.2, 0.4] as [Float] {
            let noisy = other.map { image -> Image in
                var out = image
                for k in out.pixels.indices { out.pixels[k] = min(max(out.pixels[k] + sigma * Float(rng.unit() * 2 - 1) * 1.732, 0), 1) }
                return out
            }
            distances.append(frechetDistance(real, net.features(noisy)))
        }
        #expect(zip(distances, distances.dropFirst()).allSatisfy { $0 < $1 }, "\(distances)")
        #expect(distances[0] < 0.1 * distances[2], "\(distances)")
    }
}

@Suite struct ShapesClassifierTests {
    @Test func lossAndFeaturesHaveTheirShapes() throws {
        let net = ShapesClassifier(rng: RNG(seed: 0))
        let world = ShapesWorld(seed: 1)
        let scenes = (0..<4).map(world.scene)
        let x = ShapesClassifier.batch(scenes.map { render($0, 32) })
        #expect(net.features(x).shape == [4, 64])
        let (loss, parts) = net.loss(x, scenes: scenes)
        #expect(loss.item.isFinite && parts.count == 4)
        let acc = net.accuracy(scenes.map { render($0, 32) }, scenes: scenes)
        #expect(acc.keys.sorted() == ["acc_background", "acc_colour", "acc_scene", "acc_shape", "acc_size"])
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("classifier-\(getpid()).safetensors").path
        try net.save(to: path)
        let back = try ShapesClassifier.load(from: path)
        #expect(back.features(scenes.map { render($0, 32) }) == net.features(scenes.map { render($0, 32) }))
    }
}

@Suite struct ShapesEvalDifferenceTests {
    /// Two reports on the same prompts: the difference per category is the mean of the per-prompt
    /// differences, its standard error theirs (a prompt both get wrong or right adds no variance),
    /// and reports on different prompts are refused.
    @Test func differencesArePairedByPrompt() throws {
        func report(_ passed: [Int]) -> ShapesEvalReport {
            ShapesEvalReport(results: passed.enumerated().map { i, p in
                .init(category: i < 4 ? .colour : .counting, text: "prompt \(i)", passed: p, images: 2, found: "")
            })
        }
        let a = report([2, 0, 1, 2, 0, 0, 2, 1]), b = report([2, 2, 1, 2, 1, 0, 2, 2])
        let d = try ShapesEvalDifference(baseline: a, other: b)
        // colour: per-prompt differences 0, 1, 0, 0 → mean 0.25, sd 0.5, SE 0.25.
        let colour = try #require(d.categories.first { $0.name == "colour" })
        #expect(abs(colour.difference - 0.25) < 1e-12 && abs(colour.standardError - 0.25) < 1e-12 && colour.isTie)
        // counting: 0.5, 0, 0, 0.5 → mean 0.25, sd 0.2887, SE 0.1443.
        let counting = try #require(d.categories.first { $0.name == "counting" })
        #expect(abs(counting.difference - 0.25) < 1e-12 && abs(counting.standardError - 0.5 / 12.0.squareRoot()) < 1e-12)
        #expect(abs(d.overall.difference - (b.overall - a.overall)) < 1e-12)
        #expect(abs(d.overall.standardError - (0.25 * 0.25 + 1.0 / 48).squareRoot() / 2) < 1e-12)
        // The same report against itself: no difference and no error.
        let same = try ShapesEvalDifference(baseline: a, other: a)
        #expect(same.overall.difference == 0 && same.overall.standardError == 0)
        // Paired errors are smaller than the two reports' combined when prompts vary in difficulty.
        #expect(d.overall.standardError < (a.standardError * a.standardError + b.standardError * b.standardError).squareRoot())
        var other = b
        other.results[3].text = "another prompt"
        #expect(throws: ShapesEvalDifference.Mismatch.self) { try ShapesEvalDifference(baseline: a, other: other) }
        #expect(throws: ShapesEvalDifference.Mismatch.self) { try ShapesEvalDifference(baseline: a, other: report([2, 2])) }
    }
}
