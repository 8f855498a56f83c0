// A small parser for ShapesWorld text, written independently of the generator, so tests can
// read captions, questions and instructions back and check them against the object lists.
@testable import Data

/// One parsed caption item: "two small blue squares", "a red circle in the top left".
struct CaptionItem: Equatable {
    var count: Int
    var size: ObjectSize?
    var colour: Colour
    var shape: ShapeKind
    var cell: GridCell?
}

struct ParsedCaption {
    var items: [CaptionItem]
    var total: Int?
    var background: Background?
}

enum ShapesParser {
    enum Failure: Error, CustomStringConvertible {
        case bad(String)
        var description: String { if case .bad(let s) = self { return s } else { return "" } }
    }

    /// All cell phrases (names and sentence phrases), longest first, for suffix matching.
    static let cellPhrases: [(String, GridCell)] = GridCell.all.flatMap { cell in
        ([cell.name] + cell.phrases).map { ($0, cell) }
    }.sorted { $0.0.count > $1.0.count }

    static func parseCaption(_ caption: String) throws -> ParsedCaption {
        var s = caption
        var background: Background?
        for bg in Background.allCases {
            let suffix = " on a \(bg.name) background"
            if s.hasSuffix(suffix) {
                background = bg
                s.removeLast(suffix.count)
            }
        }
        var total: Int?
        if s.hasPrefix("there is ") { s.removeFirst("there is ".count) }
        else if s.hasPrefix("there are ") { s.removeFirst("there are ".count) }
        else if let colon = s.range(of: ": ") {
            let head = s[..<colon.lowerBound].split(separator: " ").map(String.init)
            guard head.count == 2, let n = NumberWords.value(head[0]), head[1] == (n == 1 ? "object" : "objects")
            else { throw Failure.bad("bad total prefix in \(caption)") }
            total = n
            s = String(s[colon.upperBound...])
        }
        let pieces = s.replacingOccurrences(of: " and ", with: ", ").components(separatedBy: ", ")
        return ParsedCaption(items: try pieces.map { try parseItem($0, in: caption) }, total: total, background: background)
    }

    /// "[a|an|one|two|three] [size] colour shape[s] [cell phrase]".
    static func parseItem(_ item: String, in caption: String) throws -> CaptionItem {
        var words = item.split(separator: " ").map(String.init)
        guard words.count >= 3, let count = NumberWords.value(words[0]) else { throw Failure.bad("no count in '\(item)' of '\(caption)'") }
        if words[0] == "a" || words[0] == "an" {
            guard words[0] == NumberWords.article(before: words[1]) else { throw Failure.bad("wrong article in '\(item)'") }
        }
        words.removeFirst()
        let size = ObjectSize(word: words[0])
        if size != nil { words.removeFirst() }
        guard words.count >= 2, let colour = Colour(word: words[0]), let shape = ShapeKind(word: words[1])
        else { throw Failure.bad("no colour/shape in '\(item)' of '\(caption)'") }
        guard words[1] == (count == 1 ? shape.name : shape.plural) else { throw Failure.bad("number agreement in '\(item)'") }
        let rest = words.dropFirst(2).joined(separator: " ")
        var cell: GridCell?
        if !rest.isEmpty {
            guard let c = GridCell(phrase: rest), c.phrases.contains(rest) else { throw Failure.bad("unknown place '\(rest)' in '\(caption)'") }
            cell = c
        }
        return CaptionItem(count: count, size: size, colour: colour, shape: shape, cell: cell)
    }

    /// Resolves "the [size] [colour] shape [cell phrase]" to the indices of matching objects.
    static func resolve(_ ref: String, in scene: Scene) throws -> [Int] {
        guard ref.hasPrefix("the ") else { throw Failure.bad("reference '\(ref)' lacks 'the'") }
        var words = ref.dropFirst(4).split(separator: " ").map(String.init)
        let size = ObjectSize(word: words.first ?? "")
        if size != nil { words.removeFirst() }
        let colour = Colour(word: words.first ?? "")
        if colour != nil { words.removeFirst() }
        guard let shapeWord = words.first, let shape = ShapeKind(word: shapeWord), shapeWord == shape.name
        else { throw Failure.bad("no shape in reference '\(ref)'") }
        words.removeFirst()
        var cell: GridCell?
        if !words.isEmpty {
            let rest = words.joined(separator: " ")
            guard let c = GridCell(phrase: rest) else { throw Failure.bad("bad place in reference '\(ref)'") }
            cell = c
        }
        return scene.objects.indices.filter { i in
            let o = scene.objects[i]
            return o.shape == shape && (colour == nil || o.colour == colour) && (size == nil || o.size == size)
                && (cell == nil || o.cell == cell)
        }
    }

    /// Splits "… <cell phrase>" into the text before and the cell, trying "to the <name>" and
    /// every phrase as a suffix, longest first.
    static func splitTrailingPlace(_ s: String) -> (String, GridCell)? {
        let options = GridCell.all.map { ("to the \($0.name)", $0) } + cellPhrases
        for (phrase, cell) in options.sorted(by: { $0.0.count > $1.0.count }) where s.hasSuffix(" " + phrase) {
            return (String(s.dropLast(phrase.count + 1)), cell)
        }
        return nil
    }

    /// Applies an instruction to `scene` as the words say, independently of the generator.
    static func apply(_ instruction: String, to scene: Scene) throws -> (EditKind, Scene) {
        func unique(_ ref: String) throws -> Int {
            let m = try resolve(ref, in: scene)
            guard m.count == 1 else { throw Failure.bad("'\(ref)' matches \(m.count) objects in \(scene.objects)") }
            return m[0]
        }
        var words = instruction.split(separator: " ").map(String.init)
        let verb = words.removeFirst()
        if verb == "take" { words.removeFirst() }  // "take away"
        let rest = words.joined(separator: " ")
        // "put a …" adds, "put the …" moves.
        let addVerb = verb == "add" || verb == "draw" || (verb == "put" && !rest.hasPrefix("the "))
        switch addVerb ? "add" : verb {
        case "remove", "delete", "erase", "take":
            return (.remove, scene.removing(at: try unique(rest)))
        case "enlarge", "shrink":
            let i = try unique(rest)
            var o = scene.objects[i]
            guard o.size == (verb == "enlarge" ? .small : .large) else { throw Failure.bad("\(verb) of a \(o.size.name) object") }
            o.size = o.size.flipped
            return (.resize, scene.replacing(at: i, with: o))
        case "add":
            guard let (what, cell) = splitTrailingPlace(rest) else { throw Failure.bad("no place in '\(instruction)'") }
            let item = try parseItem(what, in: instruction)
            guard item.count == 1, let size = item.size else { throw Failure.bad("added object needs one size in '\(instruction)'") }
            guard scene.object(in: cell) == nil else { throw Failure.bad("adding to occupied \(cell.name)") }
            return (.add, scene.adding(SceneObject(shape: item.shape, colour: item.colour, size: size, cell: cell)))
        case "move", "put":
            guard let (ref, cell) = splitTrailingPlace(rest) else { throw Failure.bad("no place in '\(instruction)'") }
            let i = try unique(ref)
            guard scene.object(in: cell) == nil else { throw Failure.bad("moving onto occupied \(cell.name)") }
            var o = scene.objects[i]
            o.cell = cell
            return (.move, scene.replacing(at: i, with: o))
        case "make", "change", "paint", "turn":
            var ref = words
            let last = ref.removeLast()
            if verb == "change" {
                guard ref.last == "to" else { throw Failure.bad("'change' without 'to'") }
                ref.removeLast()
            }
            let i = try unique(ref.joined(separator: " "))
            var o = scene.objects[i]
            if let colour = Colour(word: last) {
                guard colour != o.colour else { throw Failure.bad("recolour to the same colour") }
                o.colour = colour
                return (.recolour, scene.replacing(at: i, with: o))
            }
            let newSize: ObjectSize? = ["large": .large, "bigger": .large, "small": .small, "smaller": .small][last]
            guard verb == "make", let size = newSize, size != o.size else { throw Failure.bad("bad ending '\(last)' in '\(instruction)'") }
            o.size = size
            return (.resize, scene.replacing(at: i, with: o))
        default:
            throw Failure.bad("unknown verb in '\(instruction)'")
        }
    }

    /// The answer a question should have, computed from the object list.
    static func answer(_ question: String, in scene: Scene) throws -> String {
        let objects = scene.objects
        guard question.hasSuffix("?") else { throw Failure.bad("no question mark: \(question)") }
        let q = String(question.dropLast())
        func count(_ n: Int) -> String { NumberWords.word(n) }
        if q == "what colour is the background" { return scene.background.name }
        if q == "how many objects are there" { return count(objects.count) }
        if q.hasPrefix("how many "), q.hasSuffix(" are there") {
            let what = q.dropFirst(9).dropLast(10).split(separator: " ").map(String.init)
            if what.count == 2, what[1] == "objects", let c = Colour(word: what[0]) {
                return count(objects.filter { $0.colour == c }.count)
            }
            if what.count == 1, let s = ShapeKind(word: what[0]), what[0] == s.plural {
                return count(objects.filter { $0.shape == s }.count)
            }
        }
        if q.hasPrefix("what colour is the ") {
            let m = try resolve(String(q.dropFirst("what colour is ".count)), in: scene)
            guard m.count == 1 else { throw Failure.bad("ambiguous: \(question)") }
            return objects[m[0]].colour.name
        }
        if q.hasPrefix("what shape is "), let cell = GridCell(phrase: String(q.dropFirst("what shape is ".count))) {
            return scene.object(in: cell)?.shape.name ?? "nothing"
        }
        if q.hasPrefix("is there ") {
            let item = try parseItem(String(q.dropFirst("is there ".count)), in: question)
            return objects.contains { $0.colour == item.colour && $0.shape == item.shape } ? "yes" : "no"
        }
        if q.hasPrefix("where is ") {
            let m = try resolve(String(q.dropFirst("where is ".count)), in: scene)
            guard m.count == 1 else { throw Failure.bad("ambiguous: \(question)") }
            return objects[m[0]].cell.name
        }
        if q.hasPrefix("what size is ") {
            let m = try resolve(String(q.dropFirst("what size is ".count)), in: scene)
            guard m.count == 1 else { throw Failure.bad("ambiguous: \(question)") }
            return objects[m[0]].size.name
        }
        throw Failure.bad("unknown question: \(question)")
    }
}
