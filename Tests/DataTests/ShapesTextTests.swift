// ShapesWorld text: captions agree with the object lists, answers are right, edits do exactly
// what their instructions say, and BPE compresses captions.
import Foundation
import Testing
@testable import Data
@testable import Text

@Suite("ShapesWorld text")
struct ShapesTextTests {
    /// Checks a caption against a scene; returns a problem or nil.
    func check(_ caption: String, against scene: Scene) throws -> String? {
        let parsed = try ShapesParser.parseCaption(caption)
        let objects = scene.objects
        if let total = parsed.total, total != objects.count { return "total \(total) ≠ \(objects.count)" }
        if let bg = parsed.background, bg != scene.background { return "background \(bg) ≠ \(scene.background)" }
        let sized = parsed.items.map { $0.size != nil }
        if Set(sized).count > 1 { return "sizes mentioned for some items only" }
        if parsed.items.reduce(0, { $0 + $1.count }) != objects.count { return "counts add up to the wrong number" }
        var matched = Set<Int>()
        for item in parsed.items {
            let matching = objects.indices.filter { i in
                let o = objects[i]
                return o.colour == item.colour && o.shape == item.shape && (item.size == nil || o.size == item.size)
                    && (item.cell == nil || o.cell == item.cell)
            }
            if item.cell != nil {
                guard matching.count == 1, item.count == 1 else { return "no object for \(item)" }
            } else if matching.count != item.count {
                return "\(item) but the scene has \(matching.count)"
            }
            for m in matching where !matched.insert(m).inserted { return "object \(objects[m]) named twice" }
        }
        if matched.count != objects.count { return "objects left out" }
        return nil
    }

    @Test func captionsAgreeWithObjectLists() throws {
        let world = ShapesWorld(seed: 21)
        var styles = Set<CaptionStyle>()
        var counted = 0
        for i in 0..<5000 {
            let ex = world.example(i)
            styles.insert(ex.captionStyle)
            if let problem = try check(ex.caption, against: ex.scene) {
                Issue.record("example \(i): '\(ex.caption)' vs \(ex.scene.objects): \(problem)")
            }
            if ex.caption.contains("two ") || ex.caption.contains("three ") { counted += 1 }
        }
        #expect(styles.count == CaptionStyle.allCases.count)
        #expect(counted > 100, "counted captions: \(counted)")
    }

    @Test func everyStyleAndSizeOptionIsTruthful() throws {
        let world = ShapesWorld(seed: 4)
        for i in 0..<600 {
            let scene = world.scene(i)
            var rng = SplitMix64(seed: 0, stream: 9, index: i)
            for style in CaptionStyle.allCases {
                for sizes in [false, true] {
                    let caption = Captioner.caption(scene, style: style, mentionSizes: sizes, rng: &rng)
                    if let problem = try check(caption, against: scene) { Issue.record("'\(caption)': \(problem)") }
                    #expect(try ShapesParser.parseCaption(caption).items.allSatisfy { ($0.size != nil) == sizes })
                }
            }
            #expect(try check(Captioner.canonical(scene), against: scene) == nil)
        }
    }

    @Test func captionExamples() {
        let scene = Scene(objects: [
            SceneObject(shape: .square, colour: .blue, size: .small, cell: GridCell(row: 0, column: 0)),
            SceneObject(shape: .square, colour: .blue, size: .large, cell: GridCell(row: 1, column: 1)),
            SceneObject(shape: .circle, colour: .orange, size: .large, cell: GridCell(row: 2, column: 2)),
        ], background: .darkGrey)
        var rng = SplitMix64(state: 0)
        #expect(Captioner.canonical(scene) == "a small blue square in the top left, a large blue square in the center and a large orange circle in the bottom right")
        let counts = Captioner.caption(scene, style: .counts, mentionSizes: false, rng: &rng)
        #expect(counts == "two blue squares and an orange circle" || counts == "two blue squares and one orange circle")
        let total = Captioner.caption(scene, style: .total, mentionSizes: true, rng: &rng)
        #expect(total.hasPrefix("three objects: "))
        #expect(Captioner.caption(scene, style: .background, mentionSizes: false, rng: &rng).hasSuffix(" on a dark grey background"))
    }

    @Test func answersAreRight() throws {
        let world = ShapesWorld(seed: 8)
        var kinds = Set<QuestionAnswer.Kind>()
        var answers: [String: Int] = [:]
        for i in 0..<3000 {
            let ex = world.example(i)
            #expect(ex.questions.count == 3)
            #expect(Set(ex.questions).count == ex.questions.count)
            for qa in ex.questions {
                kinds.insert(qa.kind)
                answers[qa.answer, default: 0] += 1
                let expected = try ShapesParser.answer(qa.question, in: ex.scene)
                #expect(qa.answer == expected, "\(qa.question) → \(qa.answer), expected \(expected) for \(ex.scene.objects)")
            }
        }
        #expect(kinds.count == QuestionAnswer.Kind.allCases.count)
        // Yes/no balance: neither answer dominates.
        let yes = answers["yes", default: 0], no = answers["no", default: 0]
        #expect(yes > no / 2 && no > yes / 2, "yes \(yes) no \(no)")
        // Every question of every scene (not only the sampled ones) is answerable and right.
        for i in 0..<300 {
            let scene = world.scene(i)
            for qa in Questioner.allQuestions(scene) {
                #expect(try ShapesParser.answer(qa.question, in: scene) == qa.answer)
            }
        }
    }

    @Test func editsChangeExactlyWhatTheInstructionSays() throws {
        let world = ShapesWorld(seed: 13)
        var kinds: [EditKind: Int] = [:]
        for i in 0..<3000 {
            let edit = world.edit(i)
            kinds[edit.kind, default: 0] += 1
            #expect((1...3).contains(edit.source.objects.count) && (1...3).contains(edit.target.objects.count))
            #expect(edit.source.background == edit.target.background)
            let (kind, expected) = try ShapesParser.apply(edit.instruction, to: edit.source)
            #expect(kind == edit.kind, "\(edit.instruction)")
            #expect(expected == edit.target, "\(edit.instruction): \(edit.source.objects) → \(edit.target.objects)")

            // Pixels change only inside the cells whose object changed.
            let changedCells = Set(Set(edit.source.objects).symmetricDifference(edit.target.objects).map { $0.cell })
            #expect(!changedCells.isEmpty && changedCells.count <= 2)
            let before = edit.source.render(), after = edit.target.render()
            let raster = Rasterizer(imageSize: 32)
            for y in 0..<32 {
                for x in 0..<32 where (0..<3).contains(where: { before[(y * 32 + x) * 3 + $0] != after[(y * 32 + x) * 3 + $0] }) {
                    let inChanged = changedCells.contains { raster.cellRange($0.column).contains(x) && raster.cellRange($0.row).contains(y) }
                    #expect(inChanged, "pixel (\(x), \(y)) changed outside the edited cells for '\(edit.instruction)'")
                }
            }
        }
        #expect(EditKind.allCases.allSatisfy { kinds[$0, default: 0] == 600 })
    }

    @Test func referringExpressionsAreUnique() throws {
        let world = ShapesWorld(seed: 17)
        for i in 0..<1000 {
            let scene = world.scene(i)
            for k in scene.objects.indices {
                for ref in Editor.referringExpressions(to: k, in: scene) {
                    #expect(try ShapesParser.resolve(ref, in: scene) == [k], "\(ref) in \(scene.objects)")
                }
            }
        }
    }

    @Test func bpeCompressesCaptions() {
        let world = ShapesWorld(seed: 1)
        let train = (0..<5000).flatMap { i -> [String] in
            let ex = world.example(i)
            return [ex.caption] + ex.questions.flatMap { [$0.question, $0.answer] }
        }
        let tok = BPETokenizer.train(corpus: train, vocabSize: 512)
        var bytes = 0, tokens = 0
        for i in 10_000..<11_000 {
            let caption = world.example(i).caption
            let ids = tok.encode(caption)
            #expect(tok.decode(ids) == caption)
            bytes += caption.utf8.count
            tokens += ids.count
        }
        let ratio = Double(tokens) / Double(bytes)
        print("ShapesWorld captions: vocab \(tok.vocabSize), \(tokens) tokens for \(bytes) bytes on 1000 held-out captions: \(String(format: "%.3f", ratio)) tokens/byte (\(String(format: "%.1f", Double(bytes) / Double(tokens))) bytes/token)")
        #expect(ratio < 0.25)
    }
}
