// The folder suite: how well a Transfusion or Chameleon run draws the held-out captions of its own
// data — a folder or ShapesWorld — scored in the feature space of an ImageTextEncoder trained on
// the same data (model.kind clip), so it needs no ground truth beyond the captions: alignment of
// generated images with their prompts (against matched real images and mismatched prompts),
// caption retrieval, and a Fréchet distance to the real held-out images, each with its error.
// Not the encoder (Evaluation/ImageTextEncoder.swift) nor its training (ContrastiveTask.swift).
import Data
import Evaluation
import Foundation
import Media
import Training
import Tensors
import Text

/// The folder suite's figures.
public struct FolderEvalReport: Codable, Sendable, CustomStringConvertible {
    /// Held-out captions, one image each, and the distinct captions retrieval chooses among.
    public var images: Int
    public var distinctCaptions: Int
    /// Mean cosine of each generated image with its prompt, ± standard error over images.
    public var alignment: Double
    public var alignmentSE: Double
    /// The same for the real held-out images (the ceiling) and for generated images against
    /// another held-out caption (the floor: an unconditioned model scores about this).
    public var alignmentReal: Double
    public var alignmentMismatched: Double
    /// Share of generated (real) images whose own caption is the nearest of the distinct
    /// held-out captions; chance is 1 / distinctCaptions.
    public var retrieval: Double
    public var retrievalSE: Double
    public var retrievalReal: Double
    /// Fréchet distance between generated and real held-out images' embeddings, ± bootstrap SE.
    public var fd: Double
    public var fdSE: Double

    public var metrics: [String: Double] {
        ["folder_alignment": alignment, "folder_alignment_se": alignmentSE, "folder_alignment_real": alignmentReal,
         "folder_alignment_mismatched": alignmentMismatched, "folder_retrieval": retrieval, "folder_retrieval_se": retrievalSE,
         "folder_retrieval_real": retrievalReal, "folder_fd": fd, "folder_fd_se": fdSE]
    }

    public var description: String {
        [String(format: "alignment (cosine)  %.4f ± %.4f   real images %.4f   mismatched prompts %.4f",
                alignment, alignmentSE, alignmentReal, alignmentMismatched),
         String(format: "caption retrieval   %5.1f%% ± %.1f   real images %5.1f%%   chance %.1f%% (%d distinct captions)",
                100 * retrieval, 100 * retrievalSE, 100 * retrievalReal, 100 / Double(max(distinctCaptions, 1)), distinctCaptions),
         String(format: "FD to real          %.4f ± %.4f   (%d images each)", fd, fdSE, images)].joined(separator: "\n")
    }
}

extension ImageTextModel {
    /// The folder suite on held-out examples 0..<count of `heldOut` (all of them when fewer): one
    /// image per caption (caption i drawing from `RNG(seed).split(i)`; with ``ceiling``, the real
    /// image through the run's tokenizer), embedded by `encoder` (captions with `encoderTokenizer`).
    public func folderEval(encoder: ImageTextEncoder, encoderTokenizer: BPETokenizer, heldOut: any CaptionedImages,
                           count: Int, seed: UInt64, progress: ((Int) -> Void)? = nil) throws -> FolderEvalReport {
        let n = min(count, heldOut.count ?? count)
        guard n >= 2 else { throw RunError.option("the folder suite needs at least 2 held-out images, got \(n)") }
        let captions = (0..<n).map(heldOut.caption)
        let real = try (0..<n).map { try heldOut.image($0) }
        let base = RNG(seed: seed)
        let generated = (0..<n).map { i -> Image in
            defer { progress?(i + 1) }
            if isCeiling { return Image(chw: roundTrip(imageBatch([real[i]]))) }
            return Image(chw: images(prompt: prompt(captions[i]), count: 1, rng: base.split(UInt64(i))))
        }
        return FolderEvalReport.score(encoder: encoder, encoderTokenizer: encoderTokenizer, generated: generated, real: real,
                                      captions: captions)
    }
}

extension FolderEvalReport {
    /// The suite's figures for `generated[i]` drawn from `captions[i]`, beside `real[i]`, the real
    /// image the caption describes.
    public static func score(encoder: ImageTextEncoder, encoderTokenizer: BPETokenizer, generated: [Image], real: [Image],
                             captions: [String]) -> FolderEvalReport {
        let n = captions.count
        precondition(generated.count == n && real.count == n && n >= 2, "FolderEvalReport.score: \(generated.count), \(real.count), \(n)")
        let distinct = Array(Set(captions)).sorted()
        let textOf = Dictionary(uniqueKeysWithValues: zip(distinct, encoder.textEmbeddings(distinct.map(encoderTokenizer.encode))))
        let text = captions.map { textOf[$0]! }
        let gen = encoder.imageEmbeddings(generated), realE = encoder.imageEmbeddings(real)
        // Mismatched: each image against the next held-out caption that differs from its own.
        let other = (0..<n).map { i in (1..<n).lazy.map { (i + $0) % n }.first { captions[$0] != captions[i] } ?? i }
        func retrieved(_ e: [[Float]]) -> [Bool] {
            zip(e, captions).map { v, caption in
                let scores = distinct.map { c in zip(v, textOf[c]!).map { $0 * $1 }.reduce(0, +) }
                return distinct[scores.indices.max { scores[$0] < scores[$1] }!] == caption
            }
        }
        let hits = retrieved(gen), p = Double(hits.filter { $0 }.count) / Double(n)
        let (align, alignSE) = Alignment.meanCosine(gen, text)
        let (fd, fdSE) = Alignment.frechet(gen, realE)
        return FolderEvalReport(images: n, distinctCaptions: distinct.count, alignment: align, alignmentSE: alignSE,
                                alignmentReal: Alignment.meanCosine(realE, text).mean,
                                alignmentMismatched: Alignment.meanCosine(gen, other.map { text[$0] }).mean,
                                retrieval: p, retrievalSE: (p * (1 - p) / Double(n)).squareRoot(),
                                retrievalReal: Double(retrieved(realE).filter { $0 }.count) / Double(n), fd: fd, fdSE: fdSE)
    }
}

extension Recipe {
    /// The held-out examples of the recipe's data section (a folder's held-out rows, or the
    /// held-out ShapesWorld): what every family scores and the folder suite draws the captions of.
    public func heldOutExamples() throws -> any CaptionedImages {
        try ImageCaptionPairs.sources(self, family: model.kind).heldOut
    }
}

extension ImageTextEncoder {
    /// An encoder file written by a `model.kind clip` run, with the BPE tokenizer its captions are
    /// encoded with (kept in its metadata).
    public static func loadWithTokenizer(from path: String) throws -> (ImageTextEncoder, BPETokenizer) {
        let (net, metadata) = try load(from: path)
        guard let json = metadata["tokenizer"],
              let tokenizer = try? JSONDecoder().decode(BPETokenizer.self, from: Foundation.Data(json.utf8)) else {
            throw EvaluationError.file(path, "no BPE tokenizer in its metadata (was it written by a model.kind clip run?)")
        }
        return (net, tokenizer)
    }
}
