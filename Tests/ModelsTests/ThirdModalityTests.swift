// A third continuous modality added from outside the library, as a newcomer would: a 1-D signal
// ("wave") declared once (ModalitySpec: name, markers, span length, values per position, adapter
// kind, codebook), one adapter kind of its own registered under a name, and one DocumentSource.
// Nothing in Data, Modalities or Models names it. Both families then lay it out, train on it, and
// open its spans when generating; documents built apart (one rank's rows) equal the same rows of
// the whole batch, because every draw of a document is a function of (seed, document).
import Data
import Diffusion
import Foundation
import Models
import Modalities
import NN
import Tensors
import Testing
import Text

// MARK: - The modality: one declaration, one adapter, one source

/// Text ids of the toy vocabulary: after the reserved ids, "wave" and four frequencies; the two
/// ids after them mark wave spans.
private enum Words {
    static let wave: Int32 = 7
    static let frequencies: [Int32] = [8, 9, 10, 11]
    static let vocab = 14
}

/// Spans of 16 samples of one value each; Chameleon reads them as 8 amplitude levels.
private let waveSpec = ModalitySpec(name: "wave", opening: 12, closing: 13, length: 16, dim: 1, adapter: "wave-mlp",
                                    codebookSize: 8)

/// The adapter: each sample goes through a two-layer MLP (not FrameSpans' one linear layer), plus
/// a learned position per sample; a linear layer out. Its keys are its own (`waveHidden`, …).
private final class WaveSpans: Module, SpanAdapter {
    let modality: Modality
    let length: Int
    @Key var hidden: Linear
    @Key var input: Linear
    @Key var output: Linear
    @Key var position: Tensor

    init(_ modality: Modality, _ spec: ModalitySpec, width: Int, rng: RNG) {
        self.modality = modality; length = spec.length
        _hidden = Key(wrappedValue: Linear(spec.dim, width, rng: rng), "waveHidden")
        _input = Key(wrappedValue: Linear(width, width, rng: rng), "waveIn")
        _output = Key(wrappedValue: Linear(width, spec.dim, rng: rng), "waveOut")
        _position = Key(wrappedValue: parameter(rng.normal([spec.length, width], std: 0.02)), "wavePosition")
    }

    var valueShape: [Int] { [length, hidden.inFeatures] }

    func embed(_ values: Tensor, time: Tensor) -> (rows: Tensor, context: SpanContext) {
        let (n, d, dim) = (values.dim(0), position.dim(1), hidden.inFeatures)
        let rows = input(hidden(values.reshaped([n * length, dim])).gelu()).reshaped([n, length, d])
            + time.reshaped([n, 1, d]) + position
        return (rows.reshaped([n * length, d]), SpanContext(count: n, time: time))
    }

    func predict(_ rows: Tensor, context: SpanContext) -> Tensor {
        output(rows).reshaped([context.count, length, hidden.inFeatures])
    }

    func zeroOutput() {
        output.weight.data.update(repeating: 0, count: output.weight.count)
        output.bias?.data.update(repeating: 0, count: output.bias!.count)
    }

    func trainingFlops(spans: Int, dim d: Int) -> Double {
        6 * Double(spans * length) * Double(d) * Double(hidden.inFeatures + d + output.outFeatures)
    }
}

/// Documents: "wave f" then the signal (the model draws it), or the signal then "wave f" (the model
/// names its frequency from it, read clean). A sine of frequency f ∈ 1…4 cycles per span, a
/// random phase; the kind and phase drawn from the document's generator.
private struct WaveSource: DocumentSource {
    let modality: Modality

    func document(_ index: Int, rng: RNG) throws -> Document {
        let f = rng.nextInt(below: 4), phase = rng.nextFloat() * 2 * .pi, drawn = rng.nextInt(below: 2) == 0
        let samples = (0..<16).map { 0.8 * sin(2 * .pi * Float(f + 1) * Float($0) / 16 + phase) }
        let words: Document.Piece = .text([Words.wave, Words.frequencies[f]])
        let span: Document.Piece = .span(modality, values: samples, length: 16, role: drawn ? .generated : .condition)
        return Document(index: index, pieces: drawn ? [words, span] : [span, words])
    }
}

/// Chameleon's tokenizer for the wave: each sample's amplitude in 8 levels over [−1, 1].
private func waveCodes(_ values: [Float]) -> [Int32] {
    values.map { Int32(min(7, max(0, (($0 + 1) / 2 * 8).rounded(.down)))) }
}

private func registerWave() -> Modality {
    SpanAdapters.register("wave-mlp") { spec, modality, width, rng in WaveSpans(modality, spec, width: width, rng: rng) }
    return try! waveSpec.register()
}

private let decoder = DecoderConfig(dim: 32, layers: 2, heads: 2)

/// A Transfusion model whose config names the wave beside its (unused) image layers.
private func waveTransfusion() -> Transfusion {
    _ = registerWave()
    let config = TransfusionConfig(vocab: Words.vocab, decoder: decoder, latentChannels: 2, latentSize: 2, patchSize: 2,
                                   timestepScale: 1000, modalities: [waveSpec])
    let model = Transfusion(config, rng: RNG(seed: 3))
    model.initialise(rng: RNG(seed: 4))
    return model
}

/// AdamW steps (lr 3e-3, clipped at 1) on batches of 8 one-document rows; the per-step parts of the loss.
private func train(_ model: Module, steps: Int, loss: (_ documents: [Document]) throws -> (total: Tensor, parts: [Float]))
    throws -> [[Float]] {
    let source = WaveSource(modality: registerWave())
    let optimizer = AdamW(model: model, lr: 3e-3, weightDecay: 0)
    var parts: [[Float]] = []
    for step in 0..<steps {
        let l = try loss(try source.documents((step * 8)..<(step * 8 + 8), seed: 0))
        model.zeroGrad()
        l.total.backward()
        clipGradNorm(model.parameters(), maxNorm: 1)
        optimizer.update()
        parts.append(l.parts)
    }
    return parts
}

/// Mean of part `k` over the first and over the last `n` steps.
private func firstAndLast(_ parts: [[Float]], _ k: Int, _ n: Int = 10) -> (first: Float, last: Float) {
    (parts.prefix(n).map { $0[k] }.reduce(0, +) / Float(n), parts.suffix(n).map { $0[k] }.reduce(0, +) / Float(n))
}

// MARK: - Tests

@Suite struct ThirdModalityTests {
    @Test func aRegisteredModalityLaysOutAndRefusesClashes() throws {
        let wave = registerWave()
        #expect(wave.name == "wave" && wave.opening == 12 && wave.closing == 13)
        #expect(Modality(opening: 12) == wave && Modality(named: "wave") == wave && Modality.spanModalities.contains(wave))
        #expect(try Modality.register("wave", opening: 12, closing: 13) == wave)        // again: the same modality
        #expect(throws: ModalityError.nameTaken("wave", opening: 12, closing: 13)) { try Modality.register("wave", opening: 20, closing: 21) }
        #expect(throws: ModalityError.markerInUse(SpecialTokens.boi, by: "image")) {
            try Modality.register("depth", opening: SpecialTokens.boi, closing: 30)
        }
        #expect(throws: ModalityError.badMarkers("depth", opening: SpecialTokens.pad, closing: 30)) {
            try Modality.register("depth", opening: SpecialTokens.pad, closing: 30)
        }
        let seq = MixedSequence(segments: [.text([Words.wave]), .span(wave, length: 3)])
        #expect(seq.tokens == [SpecialTokens.bos, Words.wave, 12, SpecialTokens.pad, SpecialTokens.pad, SpecialTokens.pad, 13,
                               SpecialTokens.eos])
        #expect(seq.spans.map(\.modality) == [wave] && seq.debugDescription { _ in "w" } == "<bos>w<wave>[wave×3]</wave><eos>")
        // A saved config names the modality and rebuilds it.
        let config = waveTransfusion().config
        let read = try JSONDecoder().decode(TransfusionConfig.self, from: try JSONEncoder().encode(config))
        #expect(read == config && read.problem == nil)
        var unknown = config
        unknown.modalities[0].adapter = "nope"
        #expect(unknown.problem == "modality 'wave': no adapter kind 'nope' is registered")
    }

    @Test func transfusionTrainsOnTheWaveThroughItsAdapter() throws {
        let model = waveTransfusion()
        let wave = registerWave()
        let keys = Set(model.namedParameters().map(\.0))
        #expect(["waveHidden.weight", "waveIn.weight", "waveOut.weight", "wavePosition"].allSatisfy(keys.contains))
        let diffusion = GaussianDiffusion(flow: FlowSchedule())
        let parts = try train(model, steps: 100) { documents in
            let x = try model.batch(documents.map { [$0] }, length: 24, diffusion: diffusion, seed: 0, lossWeight: 1)
            let l = model.loss(x.input, targets: x.targets, spanTargets: x.spanTargets)
            return (l.total, [l.text.item, l.spans[wave]!.item])
        }
        let text = firstAndLast(parts, 0), signal = firstAndLast(parts, 1)
        #expect(text.last < 0.5 * text.first, "text loss \(text.first) → \(text.last)")
        #expect(signal.last < 0.8 * signal.first, "wave flow loss \(signal.first) → \(signal.last)")
        // Generation opens the wave span the model writes after "wave f" and samples it with its adapter.
        let out = model.generate(prompt: [SpecialTokens.bos, Words.wave, Words.frequencies[1]], maxTokens: 3,
                                 text: SamplingOptions(temperature: 0),
                                 images: ImageSamplingOptions(diffusion: diffusion, sampler: .euler, steps: 4, cfgScale: 1),
                                 maxPositions: 24, rng: RNG(seed: 5))
        guard case .text(let opened) = out.first, opened == [12], out.count > 1, case .span(let m, let x) = out[1] else {
            Issue.record("generated \(out)"); return
        }
        #expect(m == wave && x.shape == [1, 16, 1])
    }

    @Test func chameleonTrainsOnTheWaveAsCodes() throws {
        let wave = registerWave()
        let config = ChameleonConfig(textVocab: Words.vocab, codebookSize: 4, gridSize: 1, decoder: decoder, modalities: [waveSpec])
        #expect(config.problem == nil && config.vocab == Words.vocab + 4 + 8)
        let range = try #require(config.codes(wave))
        #expect(range.offset == Words.vocab + 4 && range.codebookSize == 8 && range.length == 16)
        let model = Chameleon(config, rng: RNG(seed: 3))
        model.initialise(rng: RNG(seed: 4))
        let parts = try train(model, steps: 100) { documents in
            let x = try model.batch(documents.map { [$0] }, length: 24, tokenize: [wave: waveCodes])
            let l = model.loss(x.ids, targets: x.targets, mask: x.mask, positions: x.positions)
            return (l.total, [l.text, l.spans[wave]!])
        }
        let text = firstAndLast(parts, 0), codes = firstAndLast(parts, 1)
        #expect(text.last < 0.5 * text.first, "text loss \(text.first) → \(text.last)")
        #expect(codes.last < 0.8 * codes.first, "wave code loss \(codes.first) → \(codes.last)")
        // A read wave (a condition) is not predicted; a drawn one is.
        let source = WaveSource(modality: wave)
        let documents = try source.documents(0..<8, seed: 0)
        let x = try model.batch(documents.map { [$0] }, length: 24, tokenize: [wave: waveCodes])
        let targets = x.targets.intScalars, codeIDs = config.codes(wave)!.ids
        for (r, document) in documents.enumerated() {
            let scoredCodes = targets[(r * 24)..<(r * 24 + 24)].filter { codeIDs.contains($0) }.count
            #expect(scoredCodes == (document.spans[0].role == .generated ? 16 : 0))
        }
    }

    @Test func rowsBuiltApartEqualTheWholeBatchsRows() throws {
        let model = waveTransfusion()
        let wave = registerWave()
        let diffusion = GaussianDiffusion(flow: FlowSchedule())
        let documents = try WaveSource(modality: wave).documents(0..<6, seed: 7)
        #expect(try WaveSource(modality: wave).documents(3..<6, seed: 7) == Array(documents[3...]))
        #expect(try WaveSource(modality: wave).documents(0..<6, seed: 8) != documents)
        let whole = try model.batch(documents.map { [$0] }, length: 24, diffusion: diffusion, seed: 7, lossWeight: 1)
        let apart = try model.batch(documents[3...].map { [$0] }, length: 24, diffusion: diffusion, seed: 7, lossWeight: 1)
        let spans = whole.input.spans[wave]!, part = apart.input.spans[wave]!
        let kept = spans.starts.indices.filter { spans.starts[$0] >= 3 * 24 }
        #expect(part.values.scalars == spans.values.indexSelect(axis: 0, kept).scalars)
        #expect(part.timesteps == kept.map { spans.timesteps[$0] })
        #expect(part.starts == kept.map { spans.starts[$0] - 3 * 24 })
        #expect(apart.targets.intScalars == Array(whole.targets.intScalars[(3 * 24)...]))
        // Conditions are clean at t = 0 and unscored; generated spans are noised and scored.
        let roles = documents.map { $0.spans[0].role }
        #expect(zip(roles, spans.timesteps).allSatisfy { $0 == .condition ? $1 == 0 : $1 > 0 })
        #expect(whole.spanTargets[wave]!.scoredCount(of: spans.count) == roles.filter { $0 == .generated }.count)
    }
}
