// Parity with the PyTorch reference (Tests/Fixtures/make_reference.py): the decoder's logits,
// loss and every parameter gradient, then a 5-step AdamW trajectory with clipping and decay.
// Prints one OK / NOT OK line per tensor with its max difference, as llm.c's test does.
import Foundation
import Models
import NN
import Tensors
import Testing

enum Fixtures {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load(_ name: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        try Safetensors.read(dir.appendingPathComponent(name))
    }
}

/// max|a − b| / max|b|: the relative error scaled by the reference's largest magnitude.
func scaledError(_ a: Tensor, _ b: Tensor) -> Float {
    let x = a.scalars, y = b.scalars
    var diff: Float = 0, mag: Float = 0
    for i in 0..<y.count { diff = max(diff, abs(x[i] - y[i])); mag = max(mag, abs(y[i])) }
    return diff / max(mag, 1e-12)
}

struct ReferenceCase {
    let model: DecoderLM
    let ids: Tensor, targets: Tensor, mask: AttentionMask, positions: Tensor
    let ref: [String: Tensor], meta: [String: String]

    init() throws {
        let (weights, meta) = try Fixtures.load("decoder_weights.safetensors")
        let (ref, _) = try Fixtures.load("decoder_reference.safetensors")
        func int(_ k: String) throws -> Int {
            guard let v = meta[k].flatMap(Int.init) else { throw FixtureError(description: "decoder_weights.safetensors has no integer metadata \(k)") }
            return v
        }
        let config = DecoderConfig(dim: try int("dim"), layers: try int("layers"), heads: try int("heads"),
                                   mlpHidden: try int("hidden"), qkNorm: true)
        model = DecoderLM(vocab: try int("vocab"), config: config, rng: RNG(seed: 0))
        try model.load(weights)
        func tensor(_ k: String) throws -> Tensor {
            guard let t = ref[k] else { throw FixtureError(description: "decoder_reference.safetensors has no tensor \(k)") }
            return t
        }
        ids = try tensor("ids"); targets = try tensor("targets"); positions = try tensor("positions")
        let docs = try tensor("documents"), spans = try tensor("spans")
        let (b, t) = (ids.shape[0], ids.shape[1])
        mask = try AttentionMask(documents: (0..<b).map { Array(docs.intScalars[($0 * t)..<($0 * t + t)]) },
                                 spans: (0..<b).map { Array(spans.intScalars[($0 * t)..<($0 * t + t)]) })
        self.ref = ref; self.meta = meta
    }

    /// A reference tensor; a missing one fails the test that asks for it.
    func tensor(_ k: String) throws -> Tensor {
        guard let t = ref[k] else { throw FixtureError(description: "decoder_reference.safetensors has no tensor \(k)") }
        return t
    }
}

@Suite struct ParityTests {
    @Test func decoderMatchesPyTorch() throws {
        let c = try ReferenceCase()
        let logits = c.model(c.ids, mask: c.mask, positions: c.positions)
        let loss = crossEntropy(logits, c.targets, ignoreIndex: -1)
        loss.backward()
        let logitErr = scaledError(logits, (try c.tensor("logits")))
        let refLoss = try c.tensor("loss").item
        let lossErr = abs(loss.item - refLoss) / refLoss
        print("logits  \(logitErr <= 1e-4 ? "OK" : "NOT OK")  \(logitErr)")
        print("loss    \(lossErr <= 1e-5 ? "OK" : "NOT OK")  \(lossErr)  (\(loss.item) vs \(refLoss))")
        #expect(logitErr <= 1e-4)
        #expect(lossErr <= 1e-5)
        for (name, p) in c.model.namedParameters() {
            guard let grad = p.grad else { Issue.record("no gradient for \(name)"); continue }
            let err = scaledError(grad, try c.tensor("grad." + name))
            print("grad \(name)  \(err <= 1e-4 ? "OK" : "NOT OK")  \(err)")
            #expect(err <= 1e-4, "gradient of \(name): scaled error \(err)")
        }
    }

    @Test func adamWTrajectoryMatchesPyTorch() throws {
        let c = try ReferenceCase()
        let m = c.meta
        let opt = AdamW(model: c.model, lr: Float(m["lr"]!)!, beta1: Float(m["beta1"]!)!, beta2: Float(m["beta2"]!)!,
                        eps: Float(m["eps"]!)!, weightDecay: Float(m["weight_decay"]!)!)
        var losses: [Float] = []
        for _ in 0..<Int(m["steps"]!)! {
            c.model.zeroGrad()
            let loss = c.model.loss(c.ids, targets: c.targets, mask: c.mask, positions: c.positions)
            loss.backward()
            clipGradNorm(c.model.parameters(), maxNorm: Float(m["clip"]!)!)
            opt.update()
            losses.append(loss.item)
        }
        let refLosses = (try c.tensor("adamw.losses")).scalars
        print("AdamW losses \(losses) vs \(refLosses)")
        for (a, b) in zip(losses, refLosses) { #expect(abs(a - b) / b <= 1e-5) }
        // Adam divides each gradient element by its own running RMS, so float32 rounding on
        // near-zero gradients (the reference runs in float64) moves weights by up to ~1% of lr.
        for (name, p) in c.model.namedParameters() {
            let err = scaledError(p, (try c.tensor("adamw.final." + name)))
            #expect(err <= 1e-3, "weights of \(name) after AdamW: scaled error \(err)")
        }
    }
}

struct FixtureError: Error, CustomStringConvertible { let description: String }
