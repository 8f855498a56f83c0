// Layers through their modules: gradient checks over parameters and inputs, naming, the KV
// cache, optimizers and schedules.
import Foundation
import Models
import NN
import Tensors
import TestSupport
import Testing

/// Gradient-checks `f` with respect to `input` and every parameter of `module`.
func checkModule(_ module: Module, _ input: Tensor, _ f: (Tensor) -> Tensor, sourceLocation: SourceLocation = #_sourceLocation) {
    let params = module.parameters()
    input.requiresGrad = true
    gradCheck([input] + params, sourceLocation: sourceLocation) { f($0[0]) }
}

@Suite struct LayerTests {
    let rng = RNG(seed: 3)

    @Test func linearEmbeddingNorms() {
        // The module checked is the one the closure runs (a closure building a new Linear each call
        // would leave the checked module's parameter gradients untested).
        let lin = Linear(4, 3, rng: rng)
        checkModule(lin, randomInput([2, 4], seed: 1)) { lin($0) }
        let emb = Embedding(6, 3, rng: rng)
        let ids = Tensor(ints: [1, 5, 1])
        gradCheck(emb.parameters()) { _ in emb(ids) }
        let rms = RMSNorm(5), ln = LayerNorm(5), gn = GroupNorm(groups: 2, channels: 4)
        rms.weight.assign(rng.uniform([5], lo: 0.5, hi: 1.5))
        checkModule(rms, randomInput([3, 5], seed: 2)) { rms($0) }
        checkModule(ln, randomInput([3, 5], seed: 3)) { ln($0) }
        checkModule(gn, randomInput([2, 4, 3, 3], seed: 4)) { gn($0) }
    }

    @Test func attentionMLPAndBlock() throws {
        let config = DecoderConfig(dim: 8, layers: 2, heads: 2, mlpHidden: 12, qkNorm: true)
        let mask = try AttentionMask(documents: [[0, 0, 0, 0, 1]], spans: [[-1, 0, 0, -1, -1]])
        let pos = Tensor(ints: [0, 1, 2, 3, 0])
        let attn = SelfAttention(config, rng: rng)
        checkModule(attn, randomInput([1, 5, 8], seed: 5)) { attn($0, mask: mask, positions: pos) }
        let mlp = SwiGLU(dim: 8, hidden: 12, rng: rng)
        checkModule(mlp, randomInput([2, 8], seed: 6)) { mlp($0) }
        let block = DecoderBlock(config, rng: rng)
        checkModule(block, randomInput([1, 5, 8], seed: 7)) { block($0, mask: mask, positions: pos) }
        let temb = TimestepEmbedding(dim: 6, features: 8, rng: rng)
        gradCheck(temb.parameters()) { _ in temb([3, 500]) }
    }

    @Test func parameterNamesAndDecay() {
        let model = DecoderLM(vocab: 10, config: DecoderConfig(dim: 8, layers: 2, heads: 2, qkNorm: true), rng: rng)
        let names = model.namedParameters().map(\.0)
        #expect(names.first == "embed.weight" && names.last == "head.weight")
        #expect(names.contains("decoder.blocks.1.attn.qkv.weight"))
        #expect(names.contains("decoder.blocks.0.attn.qNorm.weight"))
        #expect(Set(names).count == names.count)
        let decay = defaultDecayNames(model)
        #expect(decay.contains("decoder.blocks.0.mlp.w13.weight") && decay.contains("head.weight"))
        #expect(!decay.contains("embed.weight") && !decay.contains("decoder.norm.weight"))
        #expect(model.parameterCount == model.decoder.config.parameterCount + 2 * 10 * 8)
    }

    /// A property declared with `@Key` is saved under its key, not its name: a module whose
    /// properties were renamed (keys kept) loads the checkpoint the old one wrote, and an
    /// optional or array child under a key is named through it too.
    @Test func declaredKeysOutliveRenamedProperties() throws {
        final class Before: Module {
            let proj: Linear, norm: RMSNorm
            init(rng: RNG) { proj = Linear(3, 2, rng: rng); norm = RMSNorm(2) }
        }
        final class After: Module {
            @Key("proj") var projection: Linear
            @Key("norm") var outputNorm: RMSNorm?
            @Key("extra") var extras: [Linear]
            init(rng: RNG) {
                _projection.wrappedValue = Linear(3, 2, rng: rng)
                _outputNorm.wrappedValue = RMSNorm(2)
                _extras.wrappedValue = [Linear(2, 2, rng: rng)]
            }
        }
        let old = Before(rng: RNG(seed: 1)), new = After(rng: RNG(seed: 2))
        #expect(new.namedParameters().map(\.0) == ["proj.weight", "proj.bias", "norm.weight", "extra.0.weight", "extra.0.bias"])
        // The old checkpoint, plus the layers the new module added.
        try new.load(old.stateDict().merging(new.stateDict().filter { $0.key.hasPrefix("extra.") }) { a, _ in a })
        #expect(new.projection.weight.scalars == old.proj.weight.scalars && new.outputNorm!.weight.scalars == old.norm.weight.scalars)
        #expect(new.namedModules().map(\.0) == ["", "proj", "norm", "extra.0"])
    }

    /// Layers grouped into parts (`@Inline`) keep the checkpoint keys they had as the owner's own,
    /// and the parts follow the owner's training mode.
    @Test func inlinedPartsKeepTheirOwnersKeys() throws {
        final class Flat: Module {
            let embed: Embedding, patchIn: Linear, audioIn: Linear
            init(rng: RNG) { embed = Embedding(5, 2, rng: rng); patchIn = Linear(3, 2, rng: rng); audioIn = Linear(4, 2, rng: rng) }
        }
        final class Part: Module {
            @Key var input: Linear
            init(_ key: String, inputs: Int, rng: RNG) { _input = Key(wrappedValue: Linear(inputs, 2, rng: rng), key) }
        }
        final class Grouped: Module {
            let embed: Embedding
            @Inline var parts: [Module]
            init(rng: RNG) {
                embed = Embedding(5, 2, rng: rng)
                _parts = Inline(wrappedValue: [Part("patchIn", inputs: 3, rng: rng), Part("audioIn", inputs: 4, rng: rng)])
            }
        }
        let flat = Flat(rng: RNG(seed: 1)), grouped = Grouped(rng: RNG(seed: 1))
        #expect(grouped.namedParameters().map(\.0) == flat.namedParameters().map(\.0))
        // Drawn in the same order from the same seed, and each loads the other's checkpoint.
        #expect(grouped.stateDict().mapValues(\.scalars) == flat.stateDict().mapValues(\.scalars))
        try grouped.load(Flat(rng: RNG(seed: 2)).stateDict())
        #expect((grouped.parts[1] as! Part).input.weight.scalars == Flat(rng: RNG(seed: 2)).audioIn.weight.scalars)
        grouped.eval()
        #expect(grouped.parts.allSatisfy { !$0.isTraining })
        #expect(grouped.namedModules().map(\.0) == ["", "embed", "", "patchIn", "", "audioIn"])
    }

    @Test func kvCachedDecodeEqualsFullForward() {
        let config = DecoderConfig(dim: 16, layers: 2, heads: 4, qkNorm: true)
        let model = DecoderLM(vocab: 20, config: config, rng: rng)
        let ids: [Int32] = [3, 7, 1, 19, 4, 4, 8]
        let t = ids.count
        let full = withoutGrad {
            model(Tensor(ints: ids, shape: [1, t]), mask: .causal(batch: 1, queries: t),
                  positions: Tensor(ints: (0..<t).map { Int32($0) }))
        }
        // Prefill 4 tokens, then one at a time.
        let cache = KVCache(layers: 2)
        var rows: [Float] = withoutGrad {
            model(Tensor(ints: Array(ids[0..<4]), shape: [1, 4]), mask: .causal(batch: 1, queries: 4),
                  positions: Tensor(ints: [0, 1, 2, 3]), cache: cache).scalars
        }
        for i in 4..<t {
            rows += withoutGrad {
                model(Tensor(ints: [ids[i]], shape: [1, 1]), mask: .causal(batch: 1, queries: 1, keys: i + 1),
                      positions: Tensor(ints: [Int32(i)]), cache: cache).scalars
            }
        }
        #expect(cache.length == t)
        expectClose(rows, full.scalars, atol: 1e-5, rtol: 1e-4)
    }

    @Test func sgdScheduleAndEMA() {
        // SGD with momentum on f(w) = ½‖w‖²: buf ← μ·buf + w; w ← w − lr·buf.
        let w = parameter(Tensor([1, -2]))
        let opt = SGD([w], lr: 0.1, momentum: 0.9)
        var expected: [Float] = [1, -2], buf: [Float] = [0, 0]
        for _ in 0..<3 {
            w.grad = nil
            (w * w * 0.5).sum().backward()
            opt.update()
            for i in 0..<2 { buf[i] = 0.9 * buf[i] + expected[i]; expected[i] -= 0.1 * buf[i] }
        }
        expectClose(w.scalars, expected, atol: 1e-6)

        let lr = LRSchedule.make(peak: 1, warmup: 10, total: 110, decay: .cosine, minRatio: 0.1)
        #expect(abs(lr(0) - 0.1) < 1e-6 && abs(lr(9) - 1) < 1e-6)
        #expect(abs(lr(60) - 0.55) < 1e-5 && abs(lr(110) - 0.1) < 1e-6 && abs(lr(500) - 0.1) < 1e-6)
        let lin = LRSchedule.make(peak: 2, warmup: 0, total: 100, decay: .linear, minRatio: 0)
        #expect(abs(lin(50) - 1) < 1e-6)

        let lin2 = Linear(2, 2, rng: rng)
        let ema = EMA(lin2, decay: 0.5)
        let before = lin2.weight.scalars
        lin2.weight.fill(0)
        ema.update()                                         // warm-up: d = min(0.5, 1/10)
        expectClose(ema.stateDict()["weight"]!.scalars, before.map { $0 * 0.1 })
        for n in 1..<12 { ema.update(); #expect(ema.decay(atUpdate: n) == min(0.5, Float(1 + n) / Float(10 + n))) }
        #expect(ema.updates == 12 && ema.decay(atUpdate: 40) == 0.5)
    }

    /// A short run's EMA holds no trace of the initialisation: after 100 updates towards trained
    /// weights the initial weights' share is 9!·100!/109! (≈ 3·10⁻¹³), where a plain EMA at 0.999
    /// would still hold 0.999¹⁰⁰ ≈ 90% of them. A restored EMA continues the same warm-up.
    @Test func emaWarmsUpSoAShortRunHoldsNoInitialisation() {
        let model = Linear(4, 3, rng: rng)
        let initial = model.weight.scalars
        let ema = EMA(model, decay: 0.999)
        let trained = (0..<initial.count).map { Float($0) * 0.25 - 1 }
        model.weight.assign(Tensor(trained, shape: model.weight.shape))
        for _ in 0..<100 { ema.update() }
        let averaged = ema.stateDict()["weight"]!.scalars
        // Float32 rounding of 100 updates leaves ~1e-7 per weight; a 0.999 EMA without warm-up
        // would be ~0.9·|initial − trained| (about 1) away.
        let distance = zip(averaged, trained).map { abs($0 - $1) }.max()!
        let scale = zip(initial, trained).map { abs($0 - $1) }.max()!
        #expect(scale > 0.5 && distance < 1e-5 * scale, "the EMA after 100 updates is \(distance) from the trained weights")

        let resumed = EMA(model, decay: 0.999)
        resumed.restore(ema.stateDict().mapValues { $0.copy() }, updates: ema.updates)
        model.weight.assign(Tensor(initial, shape: model.weight.shape))
        ema.update(); resumed.update()
        #expect(resumed.updates == 101 && resumed.stateDict()["weight"]!.scalars == ema.stateDict()["weight"]!.scalars)
    }

    @Test func gradientClipping() {
        let a = parameter(Tensor([3, 0])), b = parameter(Tensor([4]))
        a.grad = Tensor([3, 0]); b.grad = Tensor([4])
        let norm = clipGradNorm([a, b], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6)
        #expect(abs(a.grad!.scalars[0] - 0.6) < 1e-5 && abs(b.grad!.scalars[0] - 0.8) < 1e-5)
    }
}

@Suite struct ConvLayerTests {
    @Test func resBlockAndUNetBlocks() {
        let rng = RNG(seed: 9)
        let res = ResBlock(2, 4, timeDim: 3, groups: 2, rng: rng)
        let t = randomInput([1, 3], seed: 1)
        checkModule(res, randomInput([1, 2, 4, 4], seed: 2)) { res($0, t: t) }
        let down = DownBlock(2, 2, groups: 1, rng: rng), pooled = DownBlock(2, 2, groups: 1, pooled: true, rng: rng)
        let x = randomInput([1, 2, 4, 4], seed: 3)
        let (y, skip) = down(x)
        #expect(y.shape == [1, 2, 2, 2] && skip.shape == [1, 2, 4, 4])
        #expect(pooled(x).0.shape == [1, 2, 2, 2])
        checkModule(down, x) { down($0).0 }
        let up = UpBlock(2, skipChannels: 2, 3, groups: 1, rng: rng)
        let s = randomInput([1, 2, 4, 4], seed: 4)
        #expect(up(y, skip: s).shape == [1, 3, 4, 4])
        checkModule(up, randomInput([1, 2, 2, 2], seed: 5)) { up($0, skip: s) }
    }
}
