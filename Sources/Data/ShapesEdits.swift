// Edit triplets (source scene, instruction, target scene) for recolour, move, add, remove and
// resize. Not the scene sampler (ShapesWorld.swift): it edits a scene it is given.

/// What an edit changes.
public enum EditKind: String, CaseIterable, Codable, Sendable {
    case recolour, move, add, remove, resize
}

/// A source scene, an instruction, and the scene the instruction produces. The target
/// differs from the source in exactly the one object the instruction names and in exactly the
/// attribute it names; everything else (other objects, background) is identical.
public struct EditTriplet: Hashable, Codable, Sendable {
    public var kind: EditKind
    public var source: Scene
    public var instruction: String
    public var target: Scene
}

/// Writes edits and the expressions that name objects in them.
///
/// ```swift
/// var rng = SplitMix64(seed: 1, stream: 4, index: 0)
/// let edit = Editor.edit(scene, kind: .recolour, rng: &rng)
/// edit?.instruction  // "make the red circle blue"
/// ```
public enum Editor {
    /// Whether `kind` can apply to `scene` while keeping 1–3 objects.
    public static func canApply(_ kind: EditKind, to scene: Scene) -> Bool {
        switch kind {
        case .add: return scene.objects.count < 3
        case .remove: return scene.objects.count >= 2
        case .recolour, .move, .resize: return !scene.objects.isEmpty
        }
    }

    /// A random edit of `kind` on `scene`, or nil if ``canApply(_:to:)`` is false.
    public static func edit(_ scene: Scene, kind: EditKind, rng: inout SplitMix64) -> EditTriplet? {
        guard canApply(kind, to: scene) else { return nil }
        let objects = scene.objects
        let index = rng.int(below: objects.count)
        let object = objects[index]
        let ref = referringExpression(to: index, in: scene, rng: &rng)
        let instruction: String
        let target: Scene
        switch kind {
        case .recolour:
            let colour = rng.pick(Colour.allCases.filter { $0 != object.colour })
            var changed = object
            changed.colour = colour
            target = scene.replacing(at: index, with: changed)
            instruction = rng.pick(["make \(ref) \(colour.name)", "change \(ref) to \(colour.name)",
                                    "paint \(ref) \(colour.name)", "turn \(ref) \(colour.name)"])
        case .move:
            let cell = rng.pick(scene.emptyCells)
            var moved = object
            moved.cell = cell
            target = scene.replacing(at: index, with: moved)
            instruction = rng.chance(0.6) ? "move \(ref) to the \(cell.name)" : "put \(ref) \(rng.pick(cell.phrases))"
        case .add:
            let added = SceneObject(shape: rng.pick(ShapeKind.allCases), colour: rng.pick(Colour.allCases),
                                    size: rng.pick(ObjectSize.allCases), cell: rng.pick(scene.emptyCells))
            target = scene.adding(added)
            let what = Captioner.describe(added, mentionSize: true)
            instruction = rng.pick(["add", "draw", "put"]) + " \(what) \(rng.pick(added.cell.phrases))"
        case .remove:
            target = scene.removing(at: index)
            instruction = rng.pick(["remove", "delete", "erase", "take away"]) + " " + ref
        case .resize:
            var resized = object
            resized.size = object.size.flipped
            target = scene.replacing(at: index, with: resized)
            let grow = resized.size == .large
            instruction = rng.pick([
                "make \(ref) \(resized.size.name)",
                "make \(ref) \(grow ? "bigger" : "smaller")",
                "\(grow ? "enlarge" : "shrink") \(ref)",
            ])
        }
        return EditTriplet(kind: kind, source: scene, instruction: instruction, target: target)
    }

    /// The expressions that pick out the object at `index` and no other, most concise first:
    /// "the circle", "the red circle", "the small red circle", "the red circle in the top left".
    /// The last one always qualifies (one object per cell).
    public static func referringExpressions(to index: Int, in scene: Scene) -> [String] {
        let o = scene.objects[index]
        let candidates: [(String, (SceneObject) -> Bool)] = [
            ("the \(o.shape.name)", { $0.shape == o.shape }),
            ("the \(o.colour.name) \(o.shape.name)", { $0.shape == o.shape && $0.colour == o.colour }),
            ("the \(o.size.name) \(o.colour.name) \(o.shape.name)",
             { $0.shape == o.shape && $0.colour == o.colour && $0.size == o.size }),
        ]
        var out = candidates.filter { _, matches in scene.objects.filter(matches).count == 1 }.map(\.0)
        out += o.cell.phrases.map { "the \(o.colour.name) \(o.shape.name) \($0)" }
        return out
    }

    /// The most concise expression half the time, otherwise a random one of the others.
    static func referringExpression(to index: Int, in scene: Scene, rng: inout SplitMix64) -> String {
        let all = referringExpressions(to: index, in: scene)
        return rng.chance(0.5) ? all[0] : rng.pick(all)
    }
}
