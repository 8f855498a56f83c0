// ShapesEval for edits: given an edit triplet and the objects the detector reads from an edited
// image, did the asked change happen (accuracy), and did the objects the instruction left alone
// stay (preservation)? Per edit kind and overall. Not the editing itself: callers bring images.
import Data
import Foundation
import Media

/// The verdict on one edited image.
public struct EditCheck: Codable, Hashable, Sendable {
    public var kind: EditKind
    /// The named object shows the asked value (colour, size, cell, presence or absence).
    public var changed: Bool
    /// Objects the instruction did not touch that were found in their cell with their shape and colour.
    public var preserved: Int
    /// Objects the instruction did not touch.
    public var untouched: Int

    public init(kind: EditKind, changed: Bool, preserved: Int, untouched: Int) {
        self.kind = kind; self.changed = changed; self.preserved = preserved; self.untouched = untouched
    }
}

/// Scores edited images of triplets with the analytic detector.
///
/// ```swift
/// let eval = EditEval(imageSize: 32)
/// let check = eval.check(triplet, image: edited)   // changed: true/false, preserved k of untouched n
/// let report = EditEvalReport(checks: checks)      // per kind and overall
/// ```
public struct EditEval: Sendable {
    public let detector: ShapesDetector

    public init(imageSize: Int = 32) { detector = ShapesDetector(imageSize: imageSize) }

    /// Detects the objects of `image` and checks them against `triplet`.
    public func check(_ triplet: EditTriplet, image: Image) -> EditCheck {
        Self.check(triplet, found: detector.detect(image).sceneObjects)
    }

    /// Checks detected objects against a triplet. The edited object is the one the target holds
    /// and the source does not (for remove: the one the source holds and the target does not):
    ///
    /// - recolour: the object in its cell has the new colour and its shape;
    /// - resize: the object in its cell has the new size and its shape;
    /// - move: an object of its shape and colour is in the new cell and none is left in the old;
    /// - add: an object of the added shape and colour is in the named cell;
    /// - remove: the removed object's cell is empty.
    ///
    /// Untouched objects (in both scenes, unchanged) count as preserved when an object of the same
    /// shape and colour is found in the same cell (size is not asked: it is the least reliable read).
    public static func check(_ triplet: EditTriplet, found: [SceneObject]) -> EditCheck {
        let source = triplet.source.objects, target = triplet.target.objects
        let added = target.filter { !source.contains($0) }
        let removed = source.filter { !target.contains($0) }
        let untouched = target.filter { source.contains($0) }
        func at(_ cell: GridCell) -> SceneObject? { found.first { $0.cell == cell } }
        func sameLook(_ a: SceneObject?, _ b: SceneObject) -> Bool { a.map { $0.shape == b.shape && $0.colour == b.colour } ?? false }
        let changed: Bool
        switch triplet.kind {
        case .recolour, .add:
            changed = added.first.map { sameLook(at($0.cell), $0) } ?? false
        case .resize:
            changed = added.first.map { o in at(o.cell).map { $0.shape == o.shape && $0.size == o.size } ?? false } ?? false
        case .move:
            guard let new = added.first, let old = removed.first else { changed = false; break }
            changed = sameLook(at(new.cell), new) && at(old.cell) == nil
        case .remove:
            changed = removed.first.map { at($0.cell) == nil } ?? false
        }
        let preserved = untouched.filter { sameLook(at($0.cell), $0) }.count
        return EditCheck(kind: triplet.kind, changed: changed, preserved: preserved, untouched: untouched.count)
    }
}

/// Edit accuracy and preservation per kind and overall, each with its standard error.
public struct EditEvalReport: Codable, Sendable, CustomStringConvertible {
    public struct KindScore: Codable, Sendable {
        public var kind: EditKind
        /// Fraction of edits whose asked change happened.
        public var accuracy: Double
        public var accuracySE: Double
        /// Fraction of untouched objects that stayed (over all edits of this kind).
        public var preservation: Double
        public var preservationSE: Double
        public var edits: Int
    }

    public var accuracy: Double
    public var accuracySE: Double
    public var preservation: Double
    public var preservationSE: Double
    public var kinds: [KindScore]
    public var checks: [EditCheck]

    public init(checks: [EditCheck]) {
        self.checks = checks
        (accuracy, accuracySE, preservation, preservationSE) = Self.score(checks)
        kinds = EditKind.allCases.compactMap { kind in
            let mine = checks.filter { $0.kind == kind }
            guard !mine.isEmpty else { return nil }
            let (a, aSE, p, pSE) = Self.score(mine)
            return KindScore(kind: kind, accuracy: a, accuracySE: aSE, preservation: p, preservationSE: pSE, edits: mine.count)
        }
    }

    /// Accuracy (the mean of one 0/1 verdict per edit) and preservation (kept over untouched
    /// objects, pooled over the edits) with their standard errors. Preservation is a ratio of two
    /// sums over the same edits, so its error is the ratio estimator's (delta method, the edit as
    /// the unit): √(Σ (kept_i − R·untouched_i)² / (n (n − 1))) / mean untouched. No untouched
    /// objects: preservation 1 ± 0.
    static func score(_ c: [EditCheck]) -> (Double, Double, Double, Double) {
        guard !c.isEmpty else { return (0, 0, 1, 0) }
        let (accuracy, accuracySE) = meanAndStandardError(c.map { $0.changed ? 1 : 0 })
        guard let (r, se) = RatioMean.estimate(c.map { (Double($0.preserved), Double($0.untouched)) }) else {
            return (accuracy, accuracySE, 1, 0)
        }
        return (accuracy, accuracySE, r, se)
    }

    /// `edit_accuracy`, `edit_preservation` and `edit_accuracy_<kind>`, `edit_preservation_<kind>`,
    /// prefixed by `prefix` (e.g. "inversion_").
    public func metrics(prefix: String = "") -> [String: Double] {
        var m = [prefix + "edit_accuracy": accuracy, prefix + "edit_preservation": preservation,
                 prefix + "edit_accuracy_se": accuracySE, prefix + "edit_preservation_se": preservationSE]
        for k in kinds {
            m[prefix + "edit_accuracy_\(k.kind.rawValue)"] = k.accuracy
            m[prefix + "edit_preservation_\(k.kind.rawValue)"] = k.preservation
        }
        return m
    }

    public var description: String {
        var lines = ["kind        edits        accuracy    preservation"]
        func row(_ name: String, _ edits: Int, _ a: Double, _ aSE: Double, _ p: Double, _ pSE: Double) -> String {
            String(format: "%@  %5d  %.3f ± %.3f  %.3f ± %.3f", name.padding(toLength: 10, withPad: " ", startingAt: 0), edits, a, aSE, p, pSE)
        }
        for k in kinds { lines.append(row(k.kind.rawValue, k.edits, k.accuracy, k.accuracySE, k.preservation, k.preservationSE)) }
        lines.append(row("overall", checks.count, accuracy, accuracySE, preservation, preservationSE))
        return lines.joined(separator: "\n")
    }
}
