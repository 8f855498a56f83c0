// A ShapesWorld scene: its ground-truth object list and background, and rendering it to HWC
// pixels. Not the random generator (ShapesWorld.swift) nor any text about the scene.

/// One object of a scene: what it is and which grid cell it occupies.
public struct SceneObject: Hashable, Codable, Sendable, CustomStringConvertible {
    public var shape: ShapeKind
    public var colour: Colour
    public var size: ObjectSize
    public var cell: GridCell

    public init(shape: ShapeKind, colour: Colour, size: ObjectSize, cell: GridCell) {
        self.shape = shape
        self.colour = colour
        self.size = size
        self.cell = cell
    }

    /// "small red circle (top left)".
    public var description: String { "\(size.name) \(colour.name) \(shape.name) (\(cell.name))" }
}

/// A scene: objects in distinct cells, kept in reading order of their cells, on a background.
///
/// ```swift
/// let scene = Scene(objects: [SceneObject(shape: .circle, colour: .red, size: .large,
///                                         cell: GridCell(row: 0, column: 0))], background: .black)
/// let pixels = scene.render(imageSize: 32)  // 32·32·3 floats, HWC, in [0, 1]
/// ```
public struct Scene: Hashable, Codable, Sendable {
    /// The objects, sorted by cell (reading order); at most one per cell.
    public private(set) var objects: [SceneObject]
    public var background: Background

    /// A scene from objects in any order; `precondition` fails if two share a cell.
    public init(objects: [SceneObject], background: Background) {
        let sorted = objects.sorted { $0.cell < $1.cell }
        for k in sorted.indices.dropFirst() {
            precondition(sorted[k].cell != sorted[k - 1].cell, "two objects in cell \(sorted[k].cell.name)")
        }
        self.objects = sorted
        self.background = background
    }

    /// Cells with no object, in reading order.
    public var emptyCells: [GridCell] {
        let used = Set(objects.map(\.cell))
        return GridCell.all.filter { !used.contains($0) }
    }

    /// The object in `cell`, if any.
    public func object(in cell: GridCell) -> SceneObject? { objects.first { $0.cell == cell } }

    /// The same scene with `object` added (its cell must be empty).
    public func adding(_ object: SceneObject) -> Scene {
        Scene(objects: objects + [object], background: background)
    }

    /// The same scene without the object at `index`.
    public func removing(at index: Int) -> Scene {
        var rest = objects
        rest.remove(at: index)
        return Scene(objects: rest, background: background)
    }

    /// The same scene with the object at `index` replaced (re-sorted if its cell changed).
    public func replacing(at index: Int, with object: SceneObject) -> Scene {
        var all = objects
        all[index] = object
        return Scene(objects: all, background: background)
    }

    // MARK: - Rendering

    /// Renders the scene to `imageSize`² · 3 floats, HWC RGB in [0, 1], with the crisp
    /// coverage rule of ``Rasterizer``: every covered pixel has exactly its object's colour,
    /// every other pixel exactly the background's.
    public func render(imageSize: Int = 32) -> [Float] {
        let raster = Rasterizer(imageSize: imageSize)
        let owner = raster.coverage(objects)
        let colours = objects.map(\.colour.rgb)
        let bg = background.rgb
        var pixels = [Float](repeating: 0, count: imageSize * imageSize * 3)
        pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<(imageSize * imageSize) {
                let c = owner[i] >= 0 ? colours[Int(owner[i])] : bg
                p[3 * i] = c.x
                p[3 * i + 1] = c.y
                p[3 * i + 2] = c.z
            }
        }
        return pixels
    }

    /// Per pixel (row-major), the index of the object covering it or -1 for background: the
    /// exact segmentation that ``render(imageSize:)`` draws.
    public func coverage(imageSize: Int = 32) -> [Int8] {
        Rasterizer(imageSize: imageSize).coverage(objects)
    }
}
