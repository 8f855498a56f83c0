// What the tokenizers share for evaluation: PSNR and code-usage metrics, the originals-over-
// reconstructions grid layout, and the analytic conv FLOPs. Not training (ImageTokenizerTask).
import Foundation
import Media
import Models
import NN
import Tensors
import TestSupport
import Testing

@Suite struct TokenizerEvaluationTests {
    @Test func evaluationMetricsAgreeWithPSNR() {
        let vae = tinyVAE(seed: 3)
        let x = TestImages.batch(4, size: 16)
        let e = evaluateImageTokenizer(vae, heldOut: x)
        #expect(vae.isTraining)   // restored
        let recon = reconstructImages(vae, x).scalars.map { ($0 + 1) / 2 }
        let perImage = psnr(recon, x.scalars.map { ($0 + 1) / 2 }, images: 4)
        // Not bit-exact: suites running beside this one change OpenBLAS's (process-wide) thread count.
        #expect(abs(e.meanPSNR - perImage.reduce(0, +) / 4) < 1e-3 && e.pooledPSNR <= e.meanPSNR + 1e-9)
        #expect(e.usage == nil && Set(e.metrics.keys) == ["psnr", "psnr_pooled"])

        let vq = tinyVQ()
        let v = evaluateImageTokenizer(vq, heldOut: x)
        let usage = vq.codebookUsage(x)
        #expect(v.usage == usage)
        #expect(v.metrics["code_usage"] == 100 * usage.fraction && v.metrics["perplexity"] == usage.perplexity)
    }

    @Test func gridPutsReconstructionsUnderTheirOriginals() {
        let images = (0..<10).map { TestImages.image($0, size: 16) }
        let grid = reconstructionGrid(tinyVAE(), images: images, columns: 8)
        // Rows: 8 originals, 8 reconstructions, 2 originals (+6 blanks), 2 reconstructions.
        #expect(grid.width == 8 * 18 + 2 && grid.height == 4 * 18 + 2)
        #expect(grid.pixel(x: 2 + 18 * 3, y: 2) == images[3].pixel(x: 0, y: 0))
        #expect(grid.pixel(x: 2 + 18 * 1, y: 2 + 18 * 2) == images[9].pixel(x: 0, y: 0))
        #expect(grid.pixel(x: 2 + 18 * 5 + 8, y: 2 + 18 * 2 + 8) == [0.5, 0.5, 0.5])   // a blank cell
    }

    @Test func convFlopsMatchAHandCount() {
        // 8×8 image, widths [8, 8], 2× down: convIn 3→8 at 64 px; a ResBlock at 64 px; a stride-2
        // conv to 16 px; two ResBlocks and convOut 8→8 at 16 px. 2·(weights)·(output pixels) each.
        let enc = ConvEncoder(imageChannels: 3, widths: [8, 8], outChannels: 8, groups: 4, rng: RNG(seed: 0))
        let k = 2 * 8 * 8 * 9
        let expected = 2 * 8 * 3 * 9 * 64 + 2 * k * 64 + k * 16 + 4 * k * 16 + k * 16
        #expect(enc.forwardFlops(height: 8, width: 8) == Double(expected))
        let dec = ConvDecoder(inChannels: 4, widths: [8, 8], imageChannels: 3, groups: 4, rng: RNG(seed: 0))
        // convIn 4→8, mid, blocks[0] at 16 px; up conv, blocks[1], convOut 8→3 at 64 px.
        let decExpected = 2 * 8 * 4 * 9 * 16 + 4 * k * 16 + k * 64 + 2 * k * 64 + 2 * 3 * 8 * 9 * 64
        #expect(dec.forwardFlops(height: 8, width: 8) == Double(decExpected))
        #expect(tinyVAE().forwardFlops(height: 16, width: 16) > 0)
    }
}

@Suite struct TokenizerFileTests {
    @Test func float16FileLoadsAndKeepsTheKind() throws {
        let vae = tinyVAE(seed: 4)
        vae.calibrateLatentScale(TestImages.batch(4, size: 16))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vae-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try vae.save(to: path, dtype: .f16)
        let back = try ImageVAE.load(from: path)
        #expect(back.config == vae.config && !back.isTraining)
        let x = TestImages.batch(2, size: 16)
        vae.eval()
        expectClose(withoutGrad { back.reconstruct(x) }.scalars, withoutGrad { vae.reconstruct(x) }.scalars,
                    atol: 2e-2, rtol: 2e-2)
        let error = #expect(throws: TokenizerCheckpointError.self) { try VQTokenizer.load(from: path) }
        #expect(error?.description.contains("holds a vae tokenizer, not a vq one") == true)
        let missing = #expect(throws: TokenizerCheckpointError.self) { try VQTokenizer.load(from: path + ".x") }
        #expect(missing?.description == "\(path).x: no such file (train one with a tokenizer recipe, e.g. "
                + "`fusion train recipes/vq-shapes.yaml`)")
    }
}
