// Spoken utterances by index — the words and a recording saying them — whatever makes them:
// ShapesWorld captions spoken by espeak-ng, or the `.wav` rows of a user's audio folder split into
// training and held-out rows by the same stable rule as its images. What the speech documents of
// the image–text families train and are scored on. Not the audio codec (Models/AudioCodec) and
// not the document mixture (Models/ImageText/ImageCaptionPairs).
import Foundation
import Media

/// Spoken utterances by index: a transcript and the audio of it.
///
/// ```swift
/// let voice: any SpokenTexts = ShapesSpeech(world: ShapesWorld(seed: 0))   // count nil: espeak-ng
/// let folder = try FolderSpeech(folder: "my-speech", split: .train)
/// folder.transcript(0); try folder.speech(0, sampleRate: 8000)
/// ```
public protocol SpokenTexts: Sendable {
    /// How many utterances there are (indices 0..<count); nil for a generator (every index ≥ 0).
    var count: Int? { get }
    /// The words of utterance `index`.
    func transcript(_ index: Int) -> String
    /// Utterance `index` as mono audio at `sampleRate` (resampled when stored at another rate).
    /// - Throws: `MediaError` naming the file, or `SpeechError` when espeak-ng fails.
    func speech(_ index: Int, sampleRate: Int) throws -> Audio
}

/// ShapesWorld example captions spoken by espeak-ng: a short caption of each scene (objects grouped
/// and counted, no sizes or places), so a clip fits a span of a few seconds. Utterance `i` describes
/// example `i`'s image, which is what lets a model learn to describe an image aloud.
public struct ShapesSpeech: SpokenTexts {
    public let world: ShapesWorld
    /// espeak-ng's speaking rate.
    public let wordsPerMinute: Int

    public init(world: ShapesWorld, wordsPerMinute: Int = 200) {
        self.world = world; self.wordsPerMinute = wordsPerMinute
    }

    public var count: Int? { nil }

    public func transcript(_ index: Int) -> String {
        var rng = SplitMix64(seed: world.seed, stream: 0x5BEEC4, index: index)
        return Captioner.caption(world.scene(index), style: .counts, mentionSizes: false, rng: &rng)
    }

    public func speech(_ index: Int, sampleRate: Int) throws -> Audio {
        try Speech.speak(transcript(index), sampleRate: sampleRate, wordsPerMinute: wordsPerMinute)
    }
}

/// The audio–transcript rows of a data folder (`{"file_name": "0001.wav", "text": "…"}` in its
/// `metadata.jsonl`) on one side of its held-out split — the rule of ``FolderImageCaptions``
/// (FNV-1a of `file_name` mod 10 000 below `heldOut` × 10 000), so a folder holding both images
/// and speech splits them alike. Clips of any length and sample rate are read when asked for and
/// resampled; the speech documents pad them with silence or cut them to the span.
public struct FolderSpeech: SpokenTexts {
    public let dataset: FolderDataset
    public let split: FolderImageCaptions.Split
    /// The `.wav` rows on this side of the split, in file order.
    public let rows: [FolderMetadata.Pair]
    /// Rows left out by `skipBad`, each as its error reads (file, line, reason).
    public let skipped: [String]

    public var count: Int? { rows.count }

    /// Reads `folder`'s metadata and keeps its `.wav` rows on `split`'s side (see
    /// ``init(dataset:split:heldOut:skipBad:)``).
    public init(folder: String, split: FolderImageCaptions.Split, heldOut: Double = 0.1, skipBad: Bool = false) throws {
        try self.init(dataset: try FolderDataset(folder: folder), split: split, heldOut: heldOut, skipBad: skipBad)
    }

    /// The `.wav` rows of `dataset` on `split`'s side, each checked now — a transcript that is not
    /// empty and a file libsndfile reads — so a bad row stops a run before it starts.
    /// - Throws: ``FolderDatasetError`` naming the file and line of the first bad row (with
    ///   `skipBad`, bad rows are left out and listed in ``skipped``), or when no audio row falls
    ///   on this side of the split.
    public init(dataset: FolderDataset, split: FolderImageCaptions.Split, heldOut: Double, skipBad: Bool = false) throws {
        let path = dataset.metadata.path
        guard !dataset.audioPairs.isEmpty else {
            throw FolderDatasetError.empty(path: path, reason: "no audio rows ({\"file_name\": \"….wav\", \"text\": \"…\"})")
        }
        var skipped: [String] = []
        rows = try dataset.audioPairs.filter { pair in
            guard FolderImageCaptions.isHeldOut(pair.fileName, fraction: heldOut) == (split == .heldOut) else { return false }
            var problem: String? = nil
            if pair.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                problem = "\(pair.fileName): empty \"text\" (a transcript is needed)"
            } else {
                do { _ = try AudioFile.read(dataset.path(pair.fileName)) } catch { problem = "\(error)" }
            }
            guard let problem else { return true }
            let error = FolderDatasetError.badRow(path: path, line: pair.line, reason: problem)
            guard skipBad else { throw error }
            skipped.append(error.description)
            return false
        }
        self.dataset = dataset
        self.split = split
        self.skipped = skipped
        guard !rows.isEmpty else {
            throw FolderDatasetError.empty(
                path: path, reason: "none of its \(dataset.audioPairs.count) audio rows fall on the \(split.rawValue) side of the split "
                    + "(data.held_out \(heldOut))" + (skipped.isEmpty ? "" : " and can be read (\(skipped.count) skipped)"))
        }
    }

    public func transcript(_ index: Int) -> String { rows[index].text }

    public func speech(_ index: Int, sampleRate: Int) throws -> Audio {
        try AudioFile.read(dataset.path(rows[index].fileName), sampleRate: sampleRate)
    }
}
