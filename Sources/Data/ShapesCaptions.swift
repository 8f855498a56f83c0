// Captions of ShapesWorld scenes in several templates, all exactly true of the object list.
// Not questions (ShapesQuestions.swift) nor edit instructions (ShapesEdits.swift).

/// A caption template.
public enum CaptionStyle: Int, CaseIterable, Codable, Sendable {
    /// Every object with its place: "a red circle in the top left and a large blue square on the right".
    case objects
    /// Objects grouped by colour and shape with number words: "two blue squares and a red circle".
    case counts
    /// The total first: "three objects: two blue squares and a red circle".
    case total
    /// "there is a red circle in the top left" / "there are two blue squares and a red circle".
    case thereIs
    /// Every object with its place, then the background: "a red circle in the center on a black background".
    case background
}

/// Writes captions. Every caption names each object exactly once (alone or in a counted
/// group) and mentions nothing that is not in the scene; when `mentionSizes` is true every
/// object's size is stated, otherwise none is.
///
/// ```swift
/// var rng = SplitMix64(seed: 1, stream: 0, index: 0)
/// Captioner.caption(scene, style: .counts, mentionSizes: false, rng: &rng)  // "two blue squares"
/// ```
public enum Captioner {
    /// A caption of `scene` in `style`; `rng` only picks among equivalent phrasings.
    public static func caption(_ scene: Scene, style: CaptionStyle, mentionSizes: Bool, rng: inout SplitMix64) -> String {
        switch style {
        case .objects:
            return list(objectItems(scene, mentionSizes: mentionSizes, rng: &rng))
        case .counts:
            return list(countItems(scene, mentionSizes: mentionSizes, rng: &rng).map(\.text))
        case .total:
            let n = scene.objects.count
            let items = countItems(scene, mentionSizes: mentionSizes, rng: &rng).map(\.text)
            return "\(NumberWords.word(n)) \(n == 1 ? "object" : "objects"): " + list(items)
        case .thereIs:
            let items: [(text: String, count: Int)]
            if rng.chance(0.5) {
                items = objectItems(scene, mentionSizes: mentionSizes, rng: &rng).map { ($0, 1) }
            } else {
                items = countItems(scene, mentionSizes: mentionSizes, rng: &rng)
            }
            let verb = items.first.map { $0.count == 1 } ?? true ? "is" : "are"
            return "there \(verb) " + list(items.map(\.text))
        case .background:
            let article = NumberWords.article(before: scene.background.name)
            return list(objectItems(scene, mentionSizes: mentionSizes, rng: &rng))
                + " on \(article) \(scene.background.name) background"
        }
    }

    /// The canonical caption (objects with sizes and first phrasings), for evaluation.
    public static func canonical(_ scene: Scene) -> String {
        list(scene.objects.map { describe($0, mentionSize: true) + " " + $0.cell.phrases[0] })
    }

    /// A random caption: random style, sizes mentioned half the time.
    public static func randomCaption(_ scene: Scene, rng: inout SplitMix64) -> String {
        let style = rng.pick(CaptionStyle.allCases)
        let sizes = rng.chance(0.5)
        return caption(scene, style: style, mentionSizes: sizes, rng: &rng)
    }

    // MARK: - Pieces

    /// "a small red circle" (with an article; size only if `mentionSize`).
    public static func describe(_ object: SceneObject, mentionSize: Bool) -> String {
        let words = (mentionSize ? [object.size.name] : []) + [object.colour.name, object.shape.name]
        return NumberWords.article(before: words[0]) + " " + words.joined(separator: " ")
    }

    /// One item per object in reading order: "a red circle in the top left".
    static func objectItems(_ scene: Scene, mentionSizes: Bool, rng: inout SplitMix64) -> [String] {
        scene.objects.map { describe($0, mentionSize: mentionSizes) + " " + rng.pick($0.cell.phrases) }
    }

    /// One item per (size?, colour, shape) group in order of first appearance: "two blue squares".
    static func countItems(_ scene: Scene, mentionSizes: Bool, rng: inout SplitMix64) -> [(text: String, count: Int)] {
        var groups: [(object: SceneObject, count: Int)] = []
        for o in scene.objects {
            if let g = groups.firstIndex(where: {
                $0.object.shape == o.shape && $0.object.colour == o.colour && (!mentionSizes || $0.object.size == o.size)
            }) {
                groups[g].count += 1
            } else {
                groups.append((o, 1))
            }
        }
        return groups.map { g in
            if g.count == 1 {
                let text = describe(g.object, mentionSize: mentionSizes)
                return (rng.chance(0.2) ? "one" + text.drop { $0 != " " } : text, 1)
            }
            let words = (mentionSizes ? [g.object.size.name] : []) + [g.object.colour.name, g.object.shape.plural]
            return (NumberWords.word(g.count) + " " + words.joined(separator: " "), g.count)
        }
    }

    /// "a", "a and b", "a, b and c".
    static func list(_ items: [String]) -> String {
        switch items.count {
        case 0: return "nothing"
        case 1: return items[0]
        default: return items.dropLast().joined(separator: ", ") + " and " + items.last!
        }
    }
}
