// Question/answer pairs about a ShapesWorld scene, asked only when the answer is unambiguous.
// Not captions, and not a VQA model: answers come straight from the object list.

/// A question about a scene with its one-word or short answer.
public struct QuestionAnswer: Hashable, Codable, Sendable {
    /// What the question asks about.
    public enum Kind: String, CaseIterable, Codable, Sendable {
        case colourOfShape, shapeInCell, countShape, countColour, countAll, exists, whereIs, sizeOf, background
    }

    public var kind: Kind
    public var question: String
    public var answer: String

    public init(kind: Kind, question: String, answer: String) {
        self.kind = kind
        self.question = question
        self.answer = answer
    }
}

/// Asks questions about scenes. Each question is asked only when its answer is determined by
/// the object list (e.g. "what colour is the square?" only when there is exactly one square).
///
/// ```swift
/// var rng = SplitMix64(seed: 1, stream: 0, index: 0)
/// let qa = Questioner.questions(scene, count: 3, rng: &rng)
/// // [("how many circles are there?", "two"), ("what colour is the square?", "red"), …]
/// ```
public enum Questioner {
    /// Every answerable question about `scene` (in a fixed order; phrasing variants included).
    public static func allQuestions(_ scene: Scene) -> [QuestionAnswer] {
        let objects = scene.objects
        var out: [QuestionAnswer] = []
        func add(_ kind: QuestionAnswer.Kind, _ q: String, _ a: String) { out.append(.init(kind: kind, question: q, answer: a)) }

        for shape in ShapeKind.allCases {
            let matching = objects.filter { $0.shape == shape }
            if matching.count == 1 {
                add(.colourOfShape, "what colour is the \(shape.name)?", matching[0].colour.name)
            }
            add(.countShape, "how many \(shape.plural) are there?", NumberWords.word(matching.count))
        }
        for colour in Colour.allCases {
            let n = objects.filter { $0.colour == colour }.count
            add(.countColour, "how many \(colour.name) objects are there?", NumberWords.word(n))
        }
        add(.countAll, "how many objects are there?", NumberWords.word(objects.count))
        for cell in GridCell.all {
            let answer = scene.object(in: cell)?.shape.name ?? "nothing"
            add(.shapeInCell, "what shape is \(cell.phrases[0])?", answer)
        }
        for shape in ShapeKind.allCases {
            for colour in Colour.allCases {
                let matching = objects.filter { $0.shape == shape && $0.colour == colour }
                let article = NumberWords.article(before: colour.name)
                add(.exists, "is there \(article) \(colour.name) \(shape.name)?", matching.isEmpty ? "no" : "yes")
                if matching.count == 1 {
                    add(.whereIs, "where is the \(colour.name) \(shape.name)?", matching[0].cell.name)
                    add(.sizeOf, "what size is the \(colour.name) \(shape.name)?", matching[0].size.name)
                }
            }
        }
        add(.background, "what colour is the background?", scene.background.name)
        return out
    }

    /// `count` distinct questions. Draws a kind uniformly among the kinds left, then an answer
    /// uniformly among that kind's answers, then a question: so rare kinds (where, size) are not
    /// drowned by many "is there" questions, and "yes" is as likely as "no", "two" as "zero".
    public static func questions(_ scene: Scene, count: Int, rng: inout SplitMix64) -> [QuestionAnswer] {
        var pool = allQuestions(scene)
        var out: [QuestionAnswer] = []
        while out.count < count && !pool.isEmpty {
            var kinds: [QuestionAnswer.Kind] = []
            for q in pool where !kinds.contains(q.kind) { kinds.append(q.kind) }
            let kind = rng.pick(kinds)
            var answers: [String] = []
            for q in pool where q.kind == kind && !answers.contains(q.answer) { answers.append(q.answer) }
            let answer = rng.pick(answers)
            let candidates = pool.indices.filter { pool[$0].kind == kind && pool[$0].answer == answer }
            out.append(pool.remove(at: rng.pick(candidates)))
        }
        return out
    }
}
