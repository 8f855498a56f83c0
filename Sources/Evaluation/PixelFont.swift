// A 3×5 pixel font for axis labels: digits, a few letters and signs. Not typography: just
// enough to put numbers and short names on plots without a font library.

enum PixelFont {
    static let width = 3, height = 5

    /// Rows of 3 bits (MSB = left pixel) per glyph.
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7],
        "4": [5, 5, 7, 1, 1], "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 2, 2],
        "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7], ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0],
        "+": [0, 2, 7, 2, 0], "e": [0, 7, 7, 4, 7], "k": [4, 5, 6, 5, 5], "M": [5, 7, 7, 5, 5],
        "G": [7, 4, 5, 5, 7], " ": [0, 0, 0, 0, 0], "a": [0, 6, 1, 7, 7], "b": [4, 4, 7, 5, 7],
        "c": [0, 7, 4, 4, 7], "d": [1, 1, 7, 5, 7], "f": [3, 4, 6, 4, 4], "g": [7, 5, 7, 1, 7],
        "h": [4, 4, 7, 5, 5], "i": [2, 0, 2, 2, 2], "l": [2, 2, 2, 2, 3], "m": [0, 7, 7, 5, 5],
        "n": [0, 7, 5, 5, 5], "o": [0, 7, 5, 5, 7], "p": [7, 5, 7, 4, 4], "r": [0, 7, 4, 4, 4],
        "s": [7, 4, 7, 1, 7], "t": [4, 7, 4, 4, 3], "u": [0, 5, 5, 5, 7], "v": [0, 5, 5, 5, 2],
        "w": [0, 5, 5, 7, 7], "x": [0, 5, 2, 5, 5], "y": [5, 5, 7, 1, 7], "_": [0, 0, 0, 0, 7],
        "/": [1, 1, 2, 4, 4], "(": [1, 2, 2, 2, 1], ")": [4, 2, 2, 2, 4], ":": [0, 2, 0, 2, 0],
        "F": [7, 4, 6, 4, 4], "L": [4, 4, 4, 4, 7], "O": [7, 5, 5, 5, 7], "P": [7, 5, 7, 4, 4],
        "S": [7, 4, 7, 1, 7], "T": [7, 2, 2, 2, 2],
    ]

    /// Width in pixels of `text` at `scale` (one blank column between glyphs).
    static func measure(_ text: String, scale: Int) -> Int { max(0, text.count * (width + 1) - 1) * scale }

    /// Calls `set(x, y)` for every lit pixel of `text` with its top-left corner at (x, y).
    static func draw(_ text: String, x: Int, y: Int, scale: Int, _ set: (Int, Int) -> Void) {
        for (i, ch) in text.enumerated() {
            let rows = glyphs[ch] ?? glyphs[Character(ch.lowercased())] ?? [7, 5, 5, 5, 7]
            for (r, bits) in rows.enumerated() {
                for c in 0..<width where bits & (4 >> UInt8(c)) != 0 {
                    for dy in 0..<scale { for dx in 0..<scale { set(x + (i * (width + 1) + c) * scale + dx, y + r * scale + dy) } }
                }
            }
        }
    }
}
