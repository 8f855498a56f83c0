// Audio spans in the Transfusion model: gradients through the audio layers, an audio loss part kept
// apart from the text and image parts, speech and image spans sharing one row (bidirectional inside
// each, causal across), cached span sampling and transcription equal to the full forward, and old
// configs (no audio keys) reading as models without audio.
import Data
import Diffusion
import Foundation
import Modalities
import Models
import NN
import Tensors
import TestSupport
import Testing
import Text

/// Tiny model with 2×2 latents of 2 channels (1 patch per image) and audio spans of 3 patches of 5 values.
private let audioConfig = TransfusionConfig(vocab: 24, decoder: DecoderConfig(dim: 16, layers: 2, heads: 2),
                                            latentChannels: 2, latentSize: 2, patchSize: 2, audioDim: 5, audioLength: 3)

private func audioModel(seed: UInt64 = 1) -> Transfusion {
    let m = Transfusion(audioConfig, rng: RNG(seed: seed))
    m.initialise(rng: RNG(seed: seed + 1))
    // Nonzero output layers, so gradients reach everything below.
    let rng = RNG(seed: seed + 2)
    rng.fillNormal(m.image.output.weight.data, m.image.output.weight.count, std: 0.2)
    rng.fillNormal(m.audio!.output.weight.data, m.audio!.output.weight.count, std: 0.2)
    return m
}

/// `BOS a BOI [image] EOI BOA [speech×3] EOA b EOS`: one row, image at 3, speech at 6.
private func mixedRow(audio: Tensor, latents: Tensor, audioT: Float = 400) -> (TransfusionInput, targets: Tensor) {
    let seq = MixedSequence(segments: [.text([10]), .image(patches: 1), .audio(frames: 3), .text([11])])
    let mask = try! AttentionMask(documents: [seq.documentIDs], spans: [seq.spanIDs])
    let starts = seq.spans.map(\.start)
    let input = TransfusionInput(ids: Tensor(ints: seq.tokens, shape: [1, seq.count]), positions: Tensor(ints: seq.positions),
                                 mask: mask, spans: [.image: SpanBatch(latents, timesteps: [200], starts: [starts[0]]),
                                                     .audio: SpanBatch(audio, timesteps: [audioT], starts: [starts[1]])])
    return (input, Tensor(ints: seq.targets))
}

@Suite struct TransfusionAudioTests {
    @Test func layoutPutsSpeechBetweenBOAAndEOA() {
        let seq = MixedSequence(segments: [.text([10]), .image(patches: 1), .audio(frames: 3), .text([11])])
        #expect(seq.tokens == [SpecialTokens.bos, 10, SpecialTokens.boi, SpecialTokens.pad, SpecialTokens.eoi,
                               SpecialTokens.boa, SpecialTokens.pad, SpecialTokens.pad, SpecialTokens.pad, SpecialTokens.eoa,
                               11, SpecialTokens.eos])
        #expect(seq.spans.map(\.modality) == [.image, .audio])
        #expect(seq.spans[1].range == 6..<9)
        // BOA is predicted (after EOI); no LM target inside the speech span or into it.
        #expect(seq.targets[4] == SpecialTokens.boa)
        #expect(Array(seq.targets[5...8]) == [-1, -1, -1, -1])
        #expect(seq.targets[9] == 11)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let m = audioModel()
        let audio = randomInput([1, 3, 5], seed: 3)
        let latents = RNG(seed: 4).normal([1, 2, 2, 2])
        let audioTargets = RNG(seed: 5).normal([1, 3, 5]), imageTargets = RNG(seed: 6).normal([1, 2, 2, 2])
        gradCheck([audio, m.audio!.position, m.audio!.input.weight, m.audio!.output.weight], rtol: 3e-2, atol: 3e-3) { xs in
            let (x, tg) = mixedRow(audio: xs[0], latents: latents)
            return m.loss(x, targets: tg,
                spanTargets: [.image: SpanTargets(imageTargets, weight: 5),
                              .audio: SpanTargets(audioTargets, weight: 2)]).total
        }
    }

    @Test func audioLossIsItsOwnPart() {
        let m = audioModel()
        let (x, targets) = mixedRow(audio: RNG(seed: 7).normal([1, 3, 5]), latents: RNG(seed: 8).normal([1, 2, 2, 2]))
        let imageTargets = RNG(seed: 9).normal([1, 2, 2, 2]), audioTargets = RNG(seed: 10).normal([1, 3, 5])
        let parts = m.loss(x, targets: targets,
            spanTargets: [.image: SpanTargets(imageTargets, weight: 5),
                          .audio: SpanTargets(audioTargets, weight: 2)])
        #expect(abs(parts.total.item - (parts.text.item + 5 * parts.spans[.image]!.item + 2 * parts.spans[.audio]!.item)) < 1e-4)
        let predicted = withoutGrad { m(x).audio! }
        #expect(predicted.shape == [1, 3, 5])
        expectClose([parts.spans[.audio]!.item], [Float(spectralMSE(predicted.scalars, audioTargets.scalars))], atol: 1e-5)
        // The audio loss reaches the audio output layer only, not the image output or the LM head.
        m.zeroGrad()
        parts.spans[.audio]!.backward()
        #expect(m.audio!.output.weight.grad!.scalars.contains { $0 != 0 })
        #expect(m.image.output.weight.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true)
        #expect(m.head.weight.grad.map { $0.scalars.allSatisfy { $0 == 0 } } ?? true)
        // Unscored speech (given as a condition) adds nothing.
        let none = m.loss(x, targets: targets,
            spanTargets: [.image: SpanTargets(imageTargets, weight: 5),
                          .audio: SpanTargets(audioTargets, scored: [], weight: 5)])
        #expect(none.spans[.audio]!.item == 0)
    }

    @Test func speechIsBidirectionalInsideItsSpanAndCausalAcrossIt() {
        let m = audioModel()
        let latents = RNG(seed: 11).normal([1, 2, 2, 2])
        let a1 = RNG(seed: 12).normal([1, 3, 5])
        let a2 = a1.copy()
        for j in 10..<15 { a2.data[j] += 1 }                     // the last speech patch
        let d = audioConfig.decoder.dim
        let h1 = withoutGrad { m(mixedRow(audio: a1, latents: latents).0).hidden.scalars }
        let h2 = withoutGrad { m(mixedRow(audio: a2.detached(), latents: latents).0).hidden.scalars }
        // Positions 0…5 (BOS a BOI [image] EOI BOA) come before the speech: unchanged.
        #expect(Array(h1[0..<(6 * d)]) == Array(h2[0..<(6 * d)]))
        // The first speech patch (position 6) sees the last one: bidirectional inside the span.
        #expect(Array(h1[(6 * d)..<(7 * d)]) != Array(h2[(6 * d)..<(7 * d)]))
        // Text after EOA sees the speech.
        #expect(Array(h1[(10 * d)..<(11 * d)]) != Array(h2[(10 * d)..<(11 * d)]))
    }

    @Test func sampledSpeechUsesTheCachedPrefix() {
        let m = audioModel()
        let prompt: [Int32] = [SpecialTokens.bos, 10, 11]
        let options = ImageSamplingOptions(diffusion: GaussianDiffusion(schedule: .cosine(steps: 100)), sampler: .ddim, steps: 4)
        let sampled = m.sampleSpeech(prompt: prompt, count: 2, options: options, rng: RNG(seed: 13))
        #expect(sampled.shape == [2, 3, 5])
        // The same sampler over the full sequence recomputed at every step.
        let ids = prompt + [SpecialTokens.boa] + [Int32](repeating: SpecialTokens.pad, count: 3)
        let spans = [Int32](repeating: -1, count: 4) + [0, 0, 0]
        let mask = try! AttentionMask(documents: [[Int32]](repeating: [Int32](repeating: 0, count: ids.count), count: 2),
                                      spans: [spans, spans])
        let denoiser: Denoiser = { xt, t in
            m(TransfusionInput(ids: Tensor(ints: ids + ids, shape: [2, ids.count]),
                               positions: Tensor(ints: (0..<ids.count).map { Int32($0) }), mask: mask,
                               spans: [.audio: SpanBatch(xt, timesteps: t, starts: [4, ids.count + 4])])).audio!
        }
        let reference = withoutGrad {
            options.makeSampler().sample(from: RNG(seed: 13).normal([2, 3, 5]), rng: RNG(seed: 13), model: denoiser)
        }
        expectClose(sampled.scalars, reference.scalars, atol: 1e-4)
    }

    @Test func transcriptionReadsCleanSpeechThenDecodes() {
        let m = audioModel()
        let speech = RNG(seed: 14).normal([1, 3, 5])
        // Point the LM head's EOS row along the hidden state after EOA: a transcript still has a
        // first word (EOS and the other reserved ids are never picked first), and only words.
        let seq: [Int32] = [SpecialTokens.bos, SpecialTokens.boa, 2, 2, 2, SpecialTokens.eoa]
        let mask = try! AttentionMask(documents: [[Int32](repeating: 0, count: 6)], spans: [[-1, -1, 0, 0, 0, -1]])
        let full = withoutGrad {
            m(TransfusionInput(ids: Tensor(ints: seq, shape: [1, 6]), positions: Tensor(ints: (0..<6).map { Int32($0) }),
                               mask: mask, spans: [.audio: SpanBatch(speech, timesteps: [0], starts: [2])])).hidden.scalars
        }
        let d = audioConfig.decoder.dim
        let last = Array(full[(5 * d)..<(6 * d)])
        m.head.weight.data.update(repeating: 0, count: m.head.weight.count)
        for j in 0..<d {
            m.head.weight.data[Int(SpecialTokens.eos) * d + j] = 100 * last[j]
            m.head.weight.data[Int(SpecialTokens.boi) * d + j] = 90 * last[j]
        }
        let words = m.transcribe(patches: speech, maxTokens: 4, options: SamplingOptions(temperature: 0), rng: RNG(seed: 1))
        #expect(!words.isEmpty && words.allSatisfy { !SpecialTokens.isSpecial($0) }, "\(words)")
        // …and along token 12 instead: the cached path reaches the same hidden state, so it says 12 first.
        m.head.weight.data.update(repeating: 0, count: m.head.weight.count)
        for j in 0..<d { m.head.weight.data[12 * d + j] = 100 * last[j] }
        #expect(m.transcribe(patches: speech, maxTokens: 1, options: SamplingOptions(temperature: 0), rng: RNG(seed: 1)) == [12])
    }

    @Test func configsWithoutAudioKeysReadAsModelsWithoutAudio() throws {
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(audioConfig)) as! [String: Any]
        old["audioDim"] = nil; old["audioLength"] = nil
        let config = try JSONDecoder().decode(TransfusionConfig.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(!config.hasAudio && config.audioDim == 0)
        let m = Transfusion(config, rng: RNG(seed: 0))
        #expect(m.audio == nil && !m.namedParameters().contains { $0.0.hasPrefix("audio") })
        // A model without audio draws the same weights as before audio layers existed (they come last).
        let withAudio = Transfusion(audioConfig, rng: RNG(seed: 0))
        #expect(withAudio.head.weight.scalars == Transfusion(TransfusionConfig(
            vocab: 24, decoder: DecoderConfig(dim: 16, layers: 2, heads: 2), latentChannels: 2, latentSize: 2, patchSize: 2),
            rng: RNG(seed: 0)).head.weight.scalars)
        var bad = audioConfig
        bad.audioLength = 0
        #expect(bad.problem != nil)
    }
}

/// Mean squared difference, in Double.
private func spectralMSE(_ a: [Float], _ b: [Float]) -> Double {
    zip(a, b).map { Double($0 - $1) * Double($0 - $1) }.reduce(0, +) / Double(a.count)
}
