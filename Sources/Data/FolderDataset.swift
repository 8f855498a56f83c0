// A user's data folder (imagefolder convention): image-text pairs, audio-text pairs and edit
// triplets loaded through Media. Not the metadata parser (FolderMetadata.swift), not batching.
import Foundation
import Media

/// Image, audio and edit examples from a folder with a `metadata.jsonl` (see ``FolderMetadata``).
///
/// Images are read with `PNG.read`, converted to RGB and, when `imageSize` is set, resized
/// (short side to `imageSize`) and centre-cropped to `imageSize` × `imageSize`.
///
/// ```swift
/// let folder = try FolderDataset(folder: "data/my-shapes", imageSize: 32)
/// let (image, caption) = try folder.imagePair(0)
/// ```
public struct FolderDataset: Sendable {
    public let metadata: FolderMetadata
    /// Side of the square images returned, or nil to keep each file's size.
    public let imageSize: Int?

    /// Rows whose file is a PNG image.
    public let imagePairs: [FolderMetadata.Pair]
    /// Rows whose file is WAV audio.
    public let audioPairs: [FolderMetadata.Pair]
    /// Edit rows.
    public var edits: [FolderMetadata.Edit] { metadata.edits }

    /// Reads the folder's metadata and checks every named file exists.
    /// - Throws: ``FolderDatasetError`` (metadata problems, with file and line; a pair whose
    ///   file is neither `.png` nor `.wav`).
    public init(folder: String, imageSize: Int? = nil) throws {
        let metadata = try FolderMetadata(folder: folder)
        var images: [FolderMetadata.Pair] = [], audio: [FolderMetadata.Pair] = []
        for pair in metadata.pairs {
            switch (pair.fileName as NSString).pathExtension.lowercased() {
            case "png": images.append(pair)
            case "wav": audio.append(pair)
            default:
                throw FolderDatasetError.badRow(path: metadata.path, line: pair.line,
                                                reason: "\(pair.fileName): only .png images and .wav audio are supported")
            }
        }
        self.metadata = metadata
        self.imageSize = imageSize
        self.imagePairs = images
        self.audioPairs = audio
    }

    func path(_ name: String) -> String { (metadata.folder as NSString).appendingPathComponent(name) }

    /// Reads an image of the folder as RGB, resized and cropped to `imageSize` if set.
    /// - Throws: `MediaError` naming the file.
    public func image(named name: String) throws -> Image {
        var image = try PNG.read(path(name)).converted(channels: 3)
        if let size = imageSize, image.width != size || image.height != size {
            let scale = Double(size) / Double(min(image.width, image.height))
            let w = max(size, Int((Double(image.width) * scale).rounded()))
            let h = max(size, Int((Double(image.height) * scale).rounded()))
            image = image.resized(width: w, height: h).centerCropped(size: size)
        }
        return image
    }

    /// Image-text pair `index`.
    public func imagePair(_ index: Int) throws -> (image: Image, text: String) {
        let pair = imagePairs[index]
        return (try image(named: pair.fileName), pair.text)
    }

    /// Audio-text pair `index`, resampled to `sampleRate` if given.
    public func audioPair(_ index: Int, sampleRate: Int? = nil) throws -> (audio: Audio, text: String) {
        let pair = audioPairs[index]
        return (try AudioFile.read(path(pair.fileName), sampleRate: sampleRate), pair.text)
    }

    /// Edit triplet `index`: source image, instruction, target image.
    public func edit(_ index: Int) throws -> (source: Image, instruction: String, target: Image) {
        let e = edits[index]
        return (try image(named: e.sourceFile), e.instruction, try image(named: e.targetFile))
    }
}
