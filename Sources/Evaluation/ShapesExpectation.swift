// What an image should contain, as a checkable structure: items (a count of objects with some
// attributes fixed), an exact-total rule and an optional background; and the check against an
// object list. Also the lenient parser that reads ShapesWorld captions (real or generated) into
// one. Not the detector (ShapesDetector.swift) nor prompt sets (ShapesEval.swift).
import Data
import Foundation

/// `count` objects that share every attribute given (nil: any).
public struct ExpectedItem: Codable, Hashable, Sendable {
    public var count: Int
    public var shape: ShapeKind?
    public var colour: Colour?
    public var size: ObjectSize?
    public var cell: GridCell?

    public init(count: Int = 1, shape: ShapeKind? = nil, colour: Colour? = nil, size: ObjectSize? = nil,
                cell: GridCell? = nil) {
        self.count = count; self.shape = shape; self.colour = colour; self.size = size; self.cell = cell
    }

    /// Whether `o` has every attribute this item fixes.
    public func matches(_ o: SceneObject) -> Bool {
        (shape == nil || shape == o.shape) && (colour == nil || colour == o.colour)
            && (size == nil || size == o.size) && (cell == nil || cell == o.cell)
    }
}

/// A structured expectation about an image.
///
/// ```swift
/// let e = ShapesExpectation(items: [ExpectedItem(count: 2, shape: .square, colour: .blue)])
/// e.isSatisfied(by: detection.sceneObjects)   // exactly two blue squares, nothing else
/// ```
public struct ShapesExpectation: Codable, Hashable, Sendable {
    public var items: [ExpectedItem]
    /// When true the image holds exactly the items' objects and nothing else.
    public var exact: Bool
    public var background: Background?

    public init(items: [ExpectedItem], exact: Bool = true, background: Background? = nil) {
        self.items = items; self.exact = exact; self.background = background
    }

    /// The number of objects the items name.
    public var total: Int { items.reduce(0) { $0 + $1.count } }

    /// Whether `objects` (and `background`, when both are known) meet the expectation: each named
    /// object is matched to a distinct object, and with `exact` no object is left over.
    public func isSatisfied(by objects: [SceneObject], background found: Background? = nil) -> Bool {
        if let background, let found, background != found { return false }
        let slots = items.flatMap { Array(repeating: $0, count: $0.count) }
        if exact ? objects.count != slots.count : objects.count < slots.count { return false }
        var used = [Bool](repeating: false, count: objects.count)
        func assign(_ k: Int) -> Bool {
            if k == slots.count { return true }
            for i in objects.indices where !used[i] && slots[k].matches(objects[i]) {
                used[i] = true
                if assign(k + 1) { return true }
                used[i] = false
            }
            return false
        }
        return assign(0)
    }
}

// MARK: - Captions

/// A caption read back: the expectation it states, and the pieces that could not be read.
public struct ParsedCaption: Codable, Hashable, Sendable {
    public var expectation: ShapesExpectation
    /// The number of objects a "three objects: …" prefix states, if any.
    public var statedTotal: Int?
    /// Comma/"and" pieces that named no colour or shape.
    public var unread: [String]
    /// Whether the whole caption was read.
    public var isComplete: Bool { unread.isEmpty && !expectation.items.isEmpty }
}

/// Reads ShapesWorld captions of every ``CaptionStyle`` ("there are two blue squares and a red
/// circle in the top left on a black background"), leniently: a piece with a colour or shape word
/// becomes an item; anything else is reported in `unread`. Captions describe every object, so the
/// expectation is exact.
///
/// ```swift
/// ShapesCaptionParser.parse("two blue squares").expectation.items  // [count 2, blue, square]
/// ```
public enum ShapesCaptionParser {
    /// Cell phrases and names, longest first, for suffix matching.
    static let cellPhrases: [(String, GridCell)] = GridCell.all.flatMap { cell in
        ([cell.name] + cell.phrases).map { ($0, cell) }
    }.sorted { $0.0.count > $1.0.count }

    public static func parse(_ caption: String) -> ParsedCaption {
        var s = caption.lowercased().trimmingCharacters(in: .whitespacesAndNewlines)
        var background: Background?
        for bg in Background.allCases {
            for article in ["a", "an"] where s.hasSuffix(" on \(article) \(bg.name) background") {
                background = bg
                s.removeLast(" on \(article) \(bg.name) background".count)
            }
        }
        var total: Int?
        for prefix in ["there is ", "there are "] where s.hasPrefix(prefix) { s.removeFirst(prefix.count) }
        if let colon = s.range(of: ":") {
            let head = s[..<colon.lowerBound].split(separator: " ").map(String.init)
            if let first = head.first { total = NumberWords.value(first) }
            s = String(s[colon.upperBound...])
        }
        let pieces = s.replacingOccurrences(of: " and ", with: ", ").components(separatedBy: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var items: [ExpectedItem] = [], unread: [String] = []
        for piece in pieces {
            if let item = parseItem(piece) { items.append(item) } else { unread.append(piece) }
        }
        return ParsedCaption(expectation: ShapesExpectation(items: items, exact: true, background: background),
                             statedTotal: total, unread: unread)
    }

    /// "[a|an|one|two|…] [size] [colour] [shape] [place]"; nil when it names neither colour nor shape.
    public static func parseItem(_ piece: String) -> ExpectedItem? {
        var rest = piece
        var cell: GridCell?
        for (phrase, c) in cellPhrases where rest == phrase || rest.hasSuffix(" " + phrase) {
            cell = c
            rest = String(rest.dropLast(phrase.count)).trimmingCharacters(in: .whitespaces)
            break
        }
        var item = ExpectedItem(count: 1, cell: cell)
        for word in rest.split(separator: " ").map(String.init) {
            if let n = NumberWords.value(word) { item.count = max(n, 1) }
            else if let size = ObjectSize(word: word) { item.size = size }
            else if let colour = Colour(word: word) { item.colour = colour }
            else if let shape = ShapeKind(word: word) { item.shape = shape }
        }
        return item.colour == nil && item.shape == nil ? nil : item
    }
}
