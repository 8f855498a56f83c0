// ShapesWorld: the built-in synthetic dataset, deterministic by (seed, index): scenes, rendered
// images, captions, questions and edit triplets. Not a file reader and not an evaluator.

/// One image-text example: a scene, its pixels and text about it.
public struct ShapesExample: Sendable {
    /// The example's index in its world.
    public var index: Int
    public var scene: Scene
    /// `imageSize`² · 3 floats, HWC RGB in [0, 1].
    public var pixels: [Float]
    public var caption: String
    public var captionStyle: CaptionStyle
    public var questions: [QuestionAnswer]
}

/// The synthetic world of coloured shapes on a 3×3 grid.
///
/// Example `i` is a pure function of `(seed, i)`: each index keys its own ``SplitMix64``, so
/// it is the same whatever else was generated, in any order or on any thread, and byte-identical
/// across runs.
///
/// ```swift
/// let world = ShapesWorld(seed: 42)
/// let ex = world.example(0)    // ex.caption == "a red circle in the top left and …"
/// let edit = world.edit(0)     // edit.instruction == "make the red circle blue"
/// ```
public struct ShapesWorld: Sendable {
    public var seed: UInt64
    /// Side of the rendered images in pixels (32 by default; 64 also supported).
    public var imageSize: Int
    /// Scenes hold 1…`maxObjects` objects (at most 3).
    public var maxObjects: Int
    /// Probability that an object copies the shape and colour of the previous one, so counted
    /// captions ("two blue squares") are common.
    public var repeatProbability: Double
    /// Questions generated per example.
    public var questionsPerExample: Int

    public init(seed: UInt64, imageSize: Int = 32, maxObjects: Int = 3, repeatProbability: Double = 0.3,
                questionsPerExample: Int = 3) {
        precondition((1...3).contains(maxObjects), "ShapesWorld scenes hold 1 to 3 objects")
        _ = Rasterizer(imageSize: imageSize)  // validates the size
        self.seed = seed
        self.imageSize = imageSize
        self.maxObjects = maxObjects
        self.repeatProbability = repeatProbability
        self.questionsPerExample = questionsPerExample
    }

    /// Random streams: each use of an index draws from its own stream.
    enum Stream: UInt64 { case example = 1, edit = 2 }

    // MARK: - Scenes

    /// A random scene with `objects` objects in distinct cells.
    public static func randomScene(objects count: Int, repeatProbability: Double, rng: inout SplitMix64) -> Scene {
        var cells = GridCell.all
        rng.shuffle(&cells)
        var objects: [SceneObject] = []
        for k in 0..<count {
            var o = SceneObject(shape: rng.pick(ShapeKind.allCases), colour: rng.pick(Colour.allCases),
                                size: rng.pick(ObjectSize.allCases), cell: cells[k])
            if let previous = objects.last, rng.chance(repeatProbability) {
                o.shape = previous.shape
                o.colour = previous.colour
            }
            objects.append(o)
        }
        return Scene(objects: objects, background: rng.pick(Background.allCases))
    }

    /// The scene of example `index` (the same scene ``example(_:)`` renders and describes).
    public func scene(_ index: Int) -> Scene {
        var rng = SplitMix64(seed: seed, stream: Stream.example.rawValue, index: index)
        return drawScene(&rng)
    }

    private func drawScene(_ rng: inout SplitMix64) -> Scene {
        Self.randomScene(objects: rng.int(in: 1...maxObjects), repeatProbability: repeatProbability, rng: &rng)
    }

    // MARK: - Examples

    /// Example `index`: a scene, its image, a caption in a random style (sizes mentioned half
    /// the time) and `questionsPerExample` question/answer pairs.
    public func example(_ index: Int) -> ShapesExample {
        var rng = SplitMix64(seed: seed, stream: Stream.example.rawValue, index: index)
        let scene = drawScene(&rng)
        let style = rng.pick(CaptionStyle.allCases)
        let caption = Captioner.caption(scene, style: style, mentionSizes: rng.chance(0.5), rng: &rng)
        let questions = Questioner.questions(scene, count: questionsPerExample, rng: &rng)
        return ShapesExample(index: index, scene: scene, pixels: scene.render(imageSize: imageSize),
                             caption: caption, captionStyle: style, questions: questions)
    }

    /// Example `index` of the default world with `seed` (32×32 images).
    public static func example(_ index: Int, seed: UInt64, imageSize: Int = 32) -> ShapesExample {
        ShapesWorld(seed: seed, imageSize: imageSize).example(index)
    }

    /// Edit triplet `index`: the kind cycles through ``EditKind`` (index mod 5) so kinds are
    /// balanced; the source scene has 1–2 objects for `add`, 2–3 for `remove`, else 1–3.
    public func edit(_ index: Int) -> EditTriplet {
        var rng = SplitMix64(seed: seed, stream: Stream.edit.rawValue, index: index)
        let kind = EditKind.allCases[index % EditKind.allCases.count]
        let range: ClosedRange<Int>
        switch kind {
        case .add: range = 1...max(1, min(2, maxObjects - 1))
        case .remove: range = min(2, maxObjects)...maxObjects
        default: range = 1...maxObjects
        }
        let source = Self.randomScene(objects: rng.int(in: range), repeatProbability: repeatProbability, rng: &rng)
        let fits = kind != .add || source.objects.count < maxObjects
        if fits, let edit = Editor.edit(source, kind: kind, rng: &rng) { return edit }
        // Only reachable when maxObjects == 1 makes add/remove impossible: recolour instead.
        return Editor.edit(source, kind: .recolour, rng: &rng)!
    }
}
