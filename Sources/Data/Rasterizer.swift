// Crisp ShapesWorld rasterisation: grid geometry and each shape's exact pixel-coverage rule.
// No antialiasing or blending: a pixel belongs to one object or the background, so detection is exact.

/// Geometry of a square ShapesWorld image of side `imageSize`.
///
/// Coverage rule: pixel `(x, y)` belongs to an object iff its centre `(x + ½, y + ½)`, taken
/// relative to the object's centre, satisfies the shape's closed inequality below (with `r`
/// the object's half-extent). Objects stay inside their cell, so they never overlap.
///
/// | shape    | inside when                                           |
/// |----------|-------------------------------------------------------|
/// | circle   | dx² + dy² ≤ r²                                        |
/// | square   | max(\|dx\|, \|dy\|) ≤ 0.85 r                          |
/// | triangle | dy ≤ r and \|dx\| ≤ (dy + r) / 2  (apex up)           |
/// | diamond  | \|dx\| + \|dy\| ≤ r                                   |
/// | cross    | (\|dx\| ≤ 0.34 r and \|dy\| ≤ r) or (\|dy\| ≤ 0.34 r and \|dx\| ≤ r) |
/// | ring     | (r/2)² < dx² + dy² ≤ r²                               |
public struct Rasterizer: Sendable {
    public let imageSize: Int

    public init(imageSize: Int) {
        precondition(imageSize >= 24, "ShapesWorld images need at least 24 pixels a side (got \(imageSize))")
        self.imageSize = imageSize
    }

    /// Pixel range of grid row/column `k` (0..<3): `[k·S/3, (k+1)·S/3)` with integer division.
    public func cellRange(_ k: Int) -> Range<Int> { (k * imageSize / 3)..<((k + 1) * imageSize / 3) }

    /// The object centre in pixel coordinates: the middle of the cell.
    public func centre(of cell: GridCell) -> (x: Double, y: Double) {
        let xs = cellRange(cell.column), ys = cellRange(cell.row)
        return (Double(xs.lowerBound + xs.upperBound) / 2, Double(ys.lowerBound + ys.upperBound) / 2)
    }

    /// Half-extent of an object: 0.085·S (small) or 0.14·S (large). A large object leaves at
    /// least one background pixel at each side of its cell, so neighbours never touch, and at
    /// 32 and 64 pixels every (shape, size) pair has a distinct mask in every cell (tested).
    public func halfExtent(_ size: ObjectSize) -> Double {
        Double(imageSize) * (size == .small ? 0.085 : 0.14)
    }

    /// Whether offset `(dx, dy)` from the centre lies inside `shape` of half-extent `r`.
    @inlinable
    public static func inside(_ shape: ShapeKind, dx: Double, dy: Double, r: Double) -> Bool {
        let ax = abs(dx), ay = abs(dy)
        switch shape {
        case .circle: return dx * dx + dy * dy <= r * r
        case .square: return max(ax, ay) <= 0.85 * r
        case .triangle: return dy <= r && ax <= (dy + r) / 2
        case .diamond: return ax + ay <= r
        case .cross:
            let arm = 0.34 * r
            return (ax <= arm && ay <= r) || (ay <= arm && ax <= r)
        case .ring:
            let d2 = dx * dx + dy * dy
            return d2 <= r * r && d2 > 0.25 * r * r
        }
    }

    /// Whether pixel `(x, y)` belongs to `object`.
    public func covers(_ object: SceneObject, x: Int, y: Int) -> Bool {
        let c = centre(of: object.cell)
        return Self.inside(object.shape, dx: Double(x) + 0.5 - c.x, dy: Double(y) + 0.5 - c.y, r: halfExtent(object.size))
    }

    /// Which object covers each pixel, row-major `(y, x)`: the object's index, or -1.
    public func coverage(_ objects: [SceneObject]) -> [Int8] {
        var owner = [Int8](repeating: -1, count: imageSize * imageSize)
        for (k, object) in objects.enumerated() {
            // Only the object's own cell can contain its pixels.
            for y in cellRange(object.cell.row) {
                for x in cellRange(object.cell.column) where covers(object, x: x, y: y) {
                    owner[y * imageSize + x] = Int8(k)
                }
            }
        }
        return owner
    }
}
