// The closed vocabulary of ShapesWorld: shapes, colours, sizes, grid cells, backgrounds and
// number words, each with its English forms. Not the scenes, rendering or captions themselves.

/// A shape kind. Geometry lives in ``Rasterizer``.
public enum ShapeKind: Int, CaseIterable, Codable, Sendable {
    case circle, square, triangle, diamond, cross, ring

    /// The singular noun ("circle").
    public var name: String { Self.names[rawValue] }
    /// The plural noun ("crosses").
    public var plural: String { Self.plurals[rawValue] }

    static let names = ["circle", "square", "triangle", "diamond", "cross", "ring"]
    static let plurals = ["circles", "squares", "triangles", "diamonds", "crosses", "rings"]

    /// The kind whose singular or plural noun is `word`.
    public init?(word: String) {
        guard let i = Self.names.firstIndex(of: word) ?? Self.plurals.firstIndex(of: word) else { return nil }
        self.init(rawValue: i)
    }
}

/// An object colour: eight distinct 8-bit RGB values (so PNG round trips are exact).
public enum Colour: Int, CaseIterable, Codable, Sendable {
    case red, green, blue, yellow, purple, orange, white, cyan

    public var name: String { Self.names[rawValue] }

    static let names = ["red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"]
    static let bytes: [(UInt8, UInt8, UInt8)] = [
        (230, 30, 30), (40, 200, 40), (40, 90, 240), (240, 220, 40),
        (150, 60, 210), (250, 140, 20), (245, 245, 245), (40, 220, 230),
    ]

    /// The 8-bit RGB value.
    public var rgb8: (r: UInt8, g: UInt8, b: UInt8) { Self.bytes[rawValue] }
    /// The RGB value in [0, 1] (each channel is a multiple of 1/255).
    public var rgb: SIMD3<Float> {
        let (r, g, b) = Self.bytes[rawValue]
        return SIMD3(Float(r), Float(g), Float(b)) / 255
    }

    public init?(word: String) {
        guard let i = Self.names.firstIndex(of: word) else { return nil }
        self.init(rawValue: i)
    }
}

/// An object size.
public enum ObjectSize: Int, CaseIterable, Codable, Sendable {
    case small, large

    public var name: String { self == .small ? "small" : "large" }
    /// The other size.
    public var flipped: ObjectSize { self == .small ? .large : .small }

    public init?(word: String) {
        switch word {
        case "small": self = .small
        case "large": self = .large
        default: return nil
        }
    }
}

/// A plain image background.
public enum Background: Int, CaseIterable, Codable, Sendable {
    case black, darkGrey

    public var name: String { self == .black ? "black" : "dark grey" }
    public var rgb8: UInt8 { self == .black ? 0 : 48 }
    public var rgb: SIMD3<Float> { SIMD3(repeating: Float(rgb8) / 255) }
}

/// A cell of the 3×3 grid, numbered in reading order (0 = top left, 8 = bottom right).
public struct GridCell: Hashable, Comparable, Codable, Sendable {
    /// 0 (top) … 2 (bottom).
    public var row: Int
    /// 0 (left) … 2 (right).
    public var column: Int

    public init(row: Int, column: Int) {
        precondition((0..<3).contains(row) && (0..<3).contains(column), "grid cell (\(row), \(column)) is outside 3×3")
        self.row = row
        self.column = column
    }

    /// The cell at reading-order index `index` (0..<9).
    public init(index: Int) { self.init(row: index / 3, column: index % 3) }

    public var index: Int { row * 3 + column }
    public static let all: [GridCell] = (0..<9).map(GridCell.init(index:))

    public static func < (a: GridCell, b: GridCell) -> Bool { a.index < b.index }

    static let names = [
        "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right",
    ]

    /// The bare name: "top left", "top", "center", "bottom right", …
    public var name: String { Self.names[index] }

    /// Ways to say "at this cell" in a sentence; the first is the canonical one.
    public var phrases: [String] {
        switch index {
        case 4: return ["in the center", "at the center", "in the middle"]
        case 1, 7: return ["at the \(name)"]
        case 3, 5: return ["on the \(name)"]
        default: return ["in the \(name)", "in the \(name) corner"]
        }
    }

    /// The cell a name or phrase refers to ("top left", "in the top left corner", "in the middle").
    public init?(phrase: String) {
        for cell in Self.all where cell.name == phrase || cell.phrases.contains(phrase) {
            self = cell
            return
        }
        return nil
    }
}

/// English number words and articles for captions.
public enum NumberWords {
    static let words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

    /// "zero" … "nine" (digits beyond).
    public static func word(_ n: Int) -> String { (0..<words.count).contains(n) ? words[n] : String(n) }

    /// The number a word means ("a", "an" and "one" are 1), or nil.
    public static func value(_ word: String) -> Int? {
        if word == "a" || word == "an" { return 1 }
        return words.firstIndex(of: word)
    }

    /// "a" or "an" before `nextWord`.
    public static func article(before nextWord: String) -> String {
        guard let first = nextWord.first else { return "a" }
        return "aeiou".contains(first) ? "an" : "a"
    }
}
