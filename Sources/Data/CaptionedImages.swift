// Image–caption examples by index, whatever makes them: the ShapesWorld generator or the rows of a
// user's folder split into training and held-out rows by a stable rule. What the image–text
// families (Transfusion, Chameleon) train and are scored on. Not the document mixture or packing
// (Models/ImageText/ImageCaptionPairs) and not the folder's metadata parser (FolderMetadata).
import Foundation
import Media

/// Image–caption examples by index.
///
/// ```swift
/// let world: any CaptionedImages = ShapesWorld(seed: 0)              // count nil: every index ≥ 0
/// let folder = try FolderImageCaptions(folder: "my-images", imageSize: 32, split: .train)
/// folder.caption(0); try folder.image(0)                            // RGB, 32 × 32
/// ```
public protocol CaptionedImages: Sendable {
    /// Side of the square RGB images.
    var imageSize: Int { get }
    /// How many examples there are (indices 0..<count); nil for a generator, where every index
    /// ≥ 0 is an example.
    var count: Int? { get }
    /// The caption of example `index`.
    func caption(_ index: Int) -> String
    /// The image of example `index`: RGB, `imageSize` × `imageSize`, values in [0, 1].
    /// - Throws: `MediaError` naming the file when a stored image cannot be read.
    func image(_ index: Int) throws -> Image
}

/// Edit triplets by index (source image, instruction, target image): what a source offers when
/// the image–text families mix edits in (`data.edit_fraction`).
public protocol EditTriplets: Sendable {
    /// How many triplets there are; nil for a generator (every index ≥ 0).
    var editCount: Int? { get }
    func editInstruction(_ index: Int) -> String
    /// Source and target images of triplet `index`: RGB, `imageSize` × `imageSize`.
    func editImages(_ index: Int) throws -> (source: Image, target: Image)
}

extension ShapesWorld: EditTriplets {
    public var editCount: Int? { nil }
    public func editInstruction(_ index: Int) -> String { edit(index).instruction }
    public func editImages(_ index: Int) -> (source: Image, target: Image) {
        let e = edit(index)
        return (Image(width: imageSize, height: imageSize, channels: 3, pixels: e.source.render(imageSize: imageSize)),
                Image(width: imageSize, height: imageSize, channels: 3, pixels: e.target.render(imageSize: imageSize)))
    }
}

extension ShapesWorld: CaptionedImages {
    public var count: Int? { nil }
    public func caption(_ index: Int) -> String { example(index).caption }
    public func image(_ index: Int) -> Image {
        Image(width: imageSize, height: imageSize, channels: 3, pixels: scene(index).render(imageSize: imageSize))
    }
}

/// The image–caption rows of a data folder (`metadata.jsonl`, see ``FolderMetadata``) on one side
/// of its held-out split.
///
/// **The split rule.** A row is held out when the FNV-1a 64-bit hash of its `file_name` (UTF-8),
/// modulo 10 000, is below `heldOut` × 10 000. It depends on the file name alone, so adding,
/// removing or reordering rows never moves another row across the split, and every caption of an
/// image sits on the image's side. Rows keep their order in the file on both sides.
///
/// Images are read when asked for, converted to RGB, resized so the short side is `imageSize`
/// (bilinear) and centre-cropped to a square (``FolderDataset/image(named:)``).
///
/// The folder's edit rows (`source_file`, `instruction`, `target_file`) are its edit triplets,
/// split by the same rule applied to `source_file`: an edit sits on the side of its source image.
public struct FolderImageCaptions: CaptionedImages, EditTriplets {
    public enum Split: String, Sendable { case train, heldOut = "held-out" }

    public let dataset: FolderDataset
    public let split: Split
    /// The rows on this side of the split, in file order.
    public let rows: [FolderMetadata.Pair]
    /// The edit rows on this side of the split, in file order.
    public let edits: [FolderMetadata.Edit]
    public var imageSize: Int { dataset.imageSize! }
    public var count: Int? { rows.count }
    public var editCount: Int? { edits.count }

    /// Rows left out by `skipBad`, each as its error reads (file, line, reason).
    public let skipped: [String]

    /// Reads `folder`'s metadata and keeps the image rows on `split`'s side of the rule with
    /// `heldOut` (a fraction) of rows held out (see ``init(dataset:split:heldOut:skipBad:)``).
    public init(folder: String, imageSize: Int, split: Split, heldOut: Double = 0.1, skipBad: Bool = false) throws {
        let dataset = try FolderDataset(folder: folder, imageSize: imageSize)
        try self.init(dataset: dataset, split: split, heldOut: heldOut, skipBad: skipBad)
    }

    /// The rows of `dataset` on `split`'s side, each checked now — a caption that is not empty, and
    /// images that read — so that a bad row stops a run before it starts, not hours in.
    /// - Throws: ``FolderDatasetError`` naming the file and line of the first bad row (with
    ///   `skipBad`, bad rows are left out and listed in ``skipped`` instead), or when no image row
    ///   falls on this side of the split.
    public init(dataset: FolderDataset, split: Split, heldOut: Double, skipBad: Bool = false) throws {
        precondition(dataset.imageSize != nil, "FolderImageCaptions: the dataset needs an image size")
        let path = dataset.metadata.path
        guard !dataset.imagePairs.isEmpty else {
            throw FolderDatasetError.empty(path: path, reason: "no image rows ({\"file_name\": \"….png\", \"text\": \"…\"})")
        }
        var skipped: [String] = []
        func usable(line: Int, _ problem: () -> String?) throws -> Bool {
            guard let reason = problem() else { return true }
            let error = FolderDatasetError.badRow(path: path, line: line, reason: reason)
            guard skipBad else { throw error }
            skipped.append(error.description)
            return false
        }
        func unreadable(_ names: String...) -> String? {
            for name in names {
                do { _ = try dataset.image(named: name) } catch { return "\(error)" }
            }
            return nil
        }
        let onSide = { (name: String) in Self.isHeldOut(name, fraction: heldOut) == (split == .heldOut) }
        rows = try dataset.imagePairs.filter { pair in
            guard onSide(pair.fileName) else { return false }
            return try usable(line: pair.line) {
                pair.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                    ? "\(pair.fileName): empty \"text\" (a caption is needed)" : unreadable(pair.fileName)
            }
        }
        edits = try dataset.edits.filter { edit in
            guard onSide(edit.sourceFile) else { return false }
            return try usable(line: edit.line) { unreadable(edit.sourceFile, edit.targetFile) }
        }
        self.dataset = dataset
        self.split = split
        self.skipped = skipped
        guard !rows.isEmpty else {
            let total = dataset.imagePairs.count
            throw FolderDatasetError.empty(
                path: path, reason: "none of its \(total) image rows fall on the \(split.rawValue) side of the split "
                    + "(data.held_out \(heldOut): rows whose file-name hash mod 10000 is below \(Int(heldOut * 10_000)) are held out)"
                    + (skipped.isEmpty ? "; " + (split == .heldOut ? "add images or raise data.held_out" : "lower data.held_out")
                                       : " and can be read (\(skipped.count) skipped)"))
        }
    }

    /// Whether a row with file name `name` is held out when `fraction` of rows are.
    public static func isHeldOut(_ name: String, fraction: Double) -> Bool {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return Double(hash % 10_000) < fraction * 10_000
    }

    public func caption(_ index: Int) -> String { rows[index].text }

    public func image(_ index: Int) throws -> Image { try dataset.image(named: rows[index].fileName) }

    public func editInstruction(_ index: Int) -> String { edits[index].instruction }

    public func editImages(_ index: Int) throws -> (source: Image, target: Image) {
        (try dataset.image(named: edits[index].sourceFile), try dataset.image(named: edits[index].targetFile))
    }
}

/// A pseudo-random permutation of 0..<n that needs no table: index i of the permutation is
/// computed on its own (a 4-round Feistel network over the smallest power-of-four domain ≥ n,
/// walking the cycle until it lands below n). Epoch `e` of a finite dataset reads its rows in the
/// order `IndexPermutation(n, seed: s, round: e)`, so a run's data order is a function of the step
/// alone and resumes exactly.
public struct IndexPermutation: Sendable {
    public let count: Int
    let halfBits: Int
    let keys: [UInt64]

    public init(_ count: Int, seed: UInt64, round: Int) {
        precondition(count > 0, "IndexPermutation: empty domain")
        self.count = count
        var bits = 1
        while (1 << (2 * bits)) < count { bits += 1 }
        halfBits = bits
        var rng = SplitMix64(seed: seed, stream: 0xFE15_7E1, index: round)
        keys = (0..<4).map { _ in rng.next() }
    }

    /// Element `i` (0 ≤ i < count) of the permutation.
    public func callAsFunction(_ i: Int) -> Int {
        precondition(i >= 0 && i < count, "IndexPermutation: \(i) outside 0..<\(count)")
        var x = UInt64(i)
        repeat { x = encrypt(x) } while x >= UInt64(count)
        return Int(x)
    }

    private func encrypt(_ x: UInt64) -> UInt64 {
        let mask: UInt64 = (1 << UInt64(halfBits)) - 1
        var left = x >> UInt64(halfBits), right = x & mask
        for key in keys {
            var h = (right &+ key) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 29
            (left, right) = (right, left ^ (h & mask))
        }
        return (left << UInt64(halfBits)) | right
    }
}
