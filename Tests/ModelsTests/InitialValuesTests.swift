// Initial weights by checkpoint key: a parameter's initial values are a function of the seed and
// its key alone, so adding a layer anywhere leaves every other parameter's initial values as they
// were, and every family's model draws all of its random parameters that way.
import Evaluation
import Foundation
@testable import Models
import NN
import Tensors
import Testing

/// Two layers, and a version with a third built between them (as a new feature's layer would be).
private final class Pair: Module {
    let first: Linear
    let added: Linear?
    let last: Linear
    init(addingOne: Bool, rng: RNG) {
        first = Linear(4, 6, rng: rng)
        added = addingOne ? Linear(6, 6, rng: rng) : nil
        last = Linear(6, 3, rng: rng)
    }
}

private func values(_ m: Module) -> [String: [Float]] {
    Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.0, $0.1.scalars) })
}

@Suite struct InitialValuesTests {
    @Test func aLayerAddedInBetweenLeavesTheOthersInitialValues() {
        let before = Pair(addingOne: false, rng: RNG(seed: 3)), after = Pair(addingOne: true, rng: RNG(seed: 3))
        // Drawn in construction order, the layer after the new one moves (what key streams fix).
        #expect(before.last.weight.scalars != after.last.weight.scalars)
        before.drawInitialValues(seed: 9)
        after.drawInitialValues(seed: 9)
        for (key, v) in values(before) { #expect(values(after)[key] == v, "\(key)") }
        // Distributions are kept: U(±1/√in) for a Linear.
        #expect(after.last.weight.scalars.allSatisfy { abs($0) <= 1 / Float(6).squareRoot() })
        // Another seed draws other values; two same-shaped parameters draw different ones.
        let other = Pair(addingOne: true, rng: RNG(seed: 3))
        other.drawInitialValues(seed: 10)
        #expect(other.last.weight.scalars != after.last.weight.scalars)
        #expect(after.added!.weight.scalars != Pair(addingOne: true, rng: RNG(seed: 3)).added!.weight.scalars)
    }

    /// Every family's model, built from two different construction streams, holds the same weights
    /// once drawn by key: no random parameter is left to the order layers were built in.
    @Test(arguments: ["transfusion", "chameleon", "lm", "var", "vae", "vq", "msvq", "classifier", "clip"])
    func everyRandomParameterIsDrawnByKey(family: String) throws {
        func build(_ rng: RNG) -> Module {
            let decoder = DecoderConfig(dim: 16, layers: 2, heads: 2, qkNorm: true)
            switch family {
            case "transfusion":
                let m = Transfusion(TransfusionConfig(vocab: 24, decoder: decoder, latentChannels: 2, latentSize: 4, patchSize: 2,
                                                      patchifier: .unet, unetChannels: 8, audioDim: 5, audioLength: 3), rng: rng)
                m.initialise(rng: rng)
                return m
            case "chameleon":
                let m = Chameleon(ChameleonConfig(textVocab: 20, codebookSize: 12, gridSize: 2, decoder: decoder,
                                                  audioCodebookSize: 8, audioLength: 3), rng: rng)
                m.initialise(rng: rng)
                return m
            case "lm":
                let m = DecoderLM(vocab: 30, config: decoder, rng: rng)
                m.decoder.initialise(rng: rng)
                return m
            case "var":
                let m = VAR(VARConfig(textVocab: 24, codebookSize: 6, codeDim: 3, scales: [1, 2, 4], decoder: decoder), rng: rng)
                m.initialise(rng: rng)
                return m
            case "vae": return ImageVAE(.init(channels: 8, latentChannels: 4, downsample: 4, groups: 4), rng: rng)
            case "vq": return VQTokenizer(.init(channels: 8, downsample: 4, groups: 4, codebookSize: 16, codeDim: 4, ema: true), rng: rng)
            case "msvq":
                return MultiScaleVQTokenizer(.init(base: .init(channels: 8, downsample: 4, groups: 4, codebookSize: 16, codeDim: 4),
                                                   scales: [1, 2, 4]), rng: rng)
            case "classifier": return ShapesClassifier(.init(imageSize: 32, channels: 8, features: 16), rng: rng)
            default: return ImageTextEncoder(.init(imageSize: 32, channels: 8, embedding: 16, vocab: 30, text: decoder), rng: rng)
            }
        }
        let a = build(RNG(seed: 1)), b = build(RNG(seed: 2))
        #expect(values(a) != values(b))
        a.drawInitialValues(seed: 5)
        b.drawInitialValues(seed: 5)
        let (va, vb) = (values(a), values(b))
        #expect(va.count > 4)
        for (key, v) in va { #expect(vb[key] == v, "\(family): \(key) is not drawn by key") }
        if let vq = (a as? VQTokenizer)?.quantizer {
            #expect(vq.emaCodeSum?.scalars == vq.codebook.scalars)  // the EMA sums follow the redrawn codebook
        }
    }
}
