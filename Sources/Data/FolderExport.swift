// Writes ShapesWorld examples and edits as data folders (PNG files + metadata.jsonl) in the
// imagefolder convention that FolderDataset reads. Not a general dataset converter.
import Foundation
import Media

extension ShapesWorld {
    /// One metadata row; keys as the imagefolder convention spells them.
    struct MetadataRow: Encodable {
        var fileName: String?
        var text: String?
        var sourceFile: String?
        var instruction: String?
        var targetFile: String?
        /// Ground truth for evaluation: one entry per object.
        var objects: [ObjectRow]?
        enum CodingKeys: String, CodingKey {
            case fileName = "file_name", text, sourceFile = "source_file", instruction, targetFile = "target_file", objects
        }
    }

    /// An object as a metadata row spells it: words, plus the grid cell as row/column 0–2.
    struct ObjectRow: Encodable {
        var shape: String, colour: String, size: String, cell: String, row: Int, column: Int
        init(_ o: SceneObject) {
            shape = o.shape.name; colour = o.colour.name; size = o.size.name
            cell = o.cell.name; row = o.cell.row; column = o.cell.column
        }
    }

    /// The ShapesWorld scene as a Media image.
    public func image(of scene: Scene) -> Image {
        Image(width: imageSize, height: imageSize, channels: 3, pixels: scene.render(imageSize: imageSize))
    }

    /// Writes examples `indices` as `folder/NNNNNN.png` with their captions in `metadata.jsonl`
    /// (created or replaced). Colours are multiples of 1/255, so reading back is exact.
    ///
    /// ```swift
    /// try ShapesWorld(seed: 0).writeFolder(examples: 0..<1000, to: "data/shapes")
    /// ```
    public func writeFolder(examples indices: Range<Int>, to folder: String, progress: ((Int) -> Void)? = nil) throws {
        var rows: [MetadataRow] = []
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in indices {
            let ex = example(i)
            let name = String(format: "%06d.png", i)
            try PNG.write(image(of: ex.scene), to: (folder as NSString).appendingPathComponent(name))
            rows.append(MetadataRow(fileName: name, text: ex.caption, objects: ex.scene.objects.map(ObjectRow.init)))
            progress?(rows.count)
        }
        try Self.writeMetadata(rows, to: folder)
    }

    /// Writes edit triplets `indices` as `NNNNNN_source.png`, `NNNNNN_target.png` and rows with
    /// `source_file`, `instruction`, `target_file` in `metadata.jsonl` (created or replaced).
    public func writeEditFolder(edits indices: Range<Int>, to folder: String, progress: ((Int) -> Void)? = nil) throws {
        var rows: [MetadataRow] = []
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in indices {
            let e = edit(i)
            let source = String(format: "%06d_source.png", i), target = String(format: "%06d_target.png", i)
            try PNG.write(image(of: e.source), to: (folder as NSString).appendingPathComponent(source))
            try PNG.write(image(of: e.target), to: (folder as NSString).appendingPathComponent(target))
            rows.append(MetadataRow(sourceFile: source, instruction: e.instruction, targetFile: target))
            progress?(rows.count)
        }
        try Self.writeMetadata(rows, to: folder)
    }

    static func writeMetadata(_ rows: [MetadataRow], to folder: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = ""
        for row in rows { text += String(decoding: try encoder.encode(row), as: UTF8.self) + "\n" }
        let path = (folder as NSString).appendingPathComponent(FolderMetadata.fileName)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}
