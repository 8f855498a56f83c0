// Training the AudioCodec's codebook, the discrete variant for the Chameleon baseline: k-means
// (Lloyd) over all patches as the initialisation, then minibatch steps of the VectorQuantizer (Adam
// on the codebook loss, or EMA updates) with dead-code restarts; reports error and code usage.
// Not an encoder: the patches are fixed features, so there is no commitment gradient to follow.
// Legend: M training patches, D patch dimension, K codebook size, B batch.
import Foundation
import Media
import NN
import Tensors

/// Settings of `AudioCodec.trainQuantizer`.
public struct AudioQuantizerOptions: Codable, Equatable, Sendable {
    /// Lloyd iterations over all patches before the minibatch steps (0: start from random patches).
    public var kMeansIterations: Int
    /// Minibatch steps after k-means (0: k-means only).
    public var steps: Int
    public var batchSize: Int
    /// Adam step size on the codebook loss (unused with an EMA codebook).
    public var learningRate: Float
    public var seed: UInt64
    /// Print a line every this many steps (0: never).
    public var logEvery: Int

    public init(kMeansIterations: Int = 10, steps: Int = 100, batchSize: Int = 256, learningRate: Float = 1e-3,
                seed: UInt64 = 0, logEvery: Int = 0) {
        self.kMeansIterations = kMeansIterations
        self.steps = steps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.seed = seed
        self.logEvery = logEvery
    }
}

/// What `trainQuantizer` achieved on its training patches. Errors are mean squared errors per value
/// in normalised units (≈ 1 for a codebook of zeros when the data has unit variance).
public struct AudioQuantizerReport: Sendable, CustomStringConvertible {
    public var patches: Int
    /// With the codebook as it was before training.
    public var initialError: Float
    public var kMeansError: Float
    public var finalError: Float
    public var usage: CodebookUsage
    /// Dead codes restarted during the minibatch steps.
    public var restarts: Int

    public var description: String {
        String(format: "%d patches: mse %.4f → %.4f (k-means) → %.4f, ",
               patches, initialError, kMeansError, finalError)
            + "\(usage), \(restarts) restarts"
    }
}

extension AudioCodec {
    /// The patches of every clip stacked into one (M, D) matrix.
    public func patchMatrix(_ clips: [Audio]) -> Tensor {
        var values: [Float] = []
        var rows = 0
        for clip in clips {
            let p = encode(clip).values
            values.append(contentsOf: p.scalars)
            rows += p.dim(0)
        }
        return Tensor(values, shape: [rows, config.patchDim])
    }

    /// Mean squared error per value between `patches` (M, D) and their nearest codes.
    public func quantizationError(_ data: Tensor) -> Float {
        let q = patches(fromCodes: codes(fromPatches: data))
        var s = 0.0
        // The quantised patches are read through their pointer: they stay alive until the loop is done.
        withExtendedLifetime(q) { for i in 0..<data.count { let e = Double(data.data[i] - q.data[i]); s += e * e } }
        return Float(s / Double(max(data.count, 1)))
    }

    /// Trains the codebook on the patches of `clips` (call `fit` first, so patches are normalised).
    @discardableResult
    public func trainQuantizer(on clips: [Audio], options: AudioQuantizerOptions = .init()) -> AudioQuantizerReport {
        trainQuantizer(onPatches: patchMatrix(clips), options: options)
    }

    /// Trains the codebook on `data` (M, D): k-means, then `steps` minibatch steps (Adam on
    /// ‖sg(z) − e‖², or EMA), restarting codes idle for `restartAfterSteps` steps.
    @discardableResult
    public func trainQuantizer(onPatches data: Tensor,
                               options: AudioQuantizerOptions = .init()) -> AudioQuantizerReport {
        let (m, d) = (data.dim(0), config.patchDim)
        precondition(data.rank == 2 && data.dim(1) == d && m > 0,
                     "AudioCodec.trainQuantizer: patches must be (M > 0, \(d)), got \(data.shape)")
        let rng = RNG(seed: options.seed)
        let initial = quantizationError(data)
        let restartsBefore = quantizer.restartCount

        // 1. k-means initialisation over all patches.
        let b = min(options.batchSize, m)
        if options.kMeansIterations > 0 { kMeans(data, iterations: options.kMeansIterations, batch: b, rng: rng) }
        let afterKMeans = quantizationError(data)

        // 2. Minibatch steps of the quantiser: input (B, D, 1, 1) is a 1×1 "grid" of patch vectors.
        quantizer.train()
        let adam = config.ema ? nil
            : AdamW([("quantizer.codebook", quantizer.codebook)], lr: options.learningRate, weightDecay: 0)
        for step in 0..<options.steps {
            let batch = Tensor.empty([b, d, 1, 1])
            for r in 0..<b {
                (batch.data + r * d).update(from: data.data + rng.nextInt(below: m) * d, count: d)
            }
            let out = quantizer(batch, rng: rng)
            if let adam {
                out.codebookLoss.backward()
                adam.update()
                quantizer.zeroGrad()
            }
            if options.logEvery > 0 && (step + 1) % options.logEvery == 0 {
                print(String(format: "audio vq step %d: commit %.4f, %d/%d codes active in the batch",
                             step + 1, out.commitmentLoss.item, quantizer.recentlyUsedCodes(within: 1),
                             config.codebookSize))
            }
        }
        quantizer.eval()
        quantizerTrained = true
        let usage = CodebookUsage(ids: codes(fromPatches: data), codebookSize: config.codebookSize)
        return AudioQuantizerReport(patches: m, initialError: initial, kMeansError: afterKMeans,
                                    finalError: quantizationError(data), usage: usage,
                                    restarts: quantizer.restartCount - restartsBefore)
    }

    /// Lloyd's algorithm on `data` (M, D), written into the codebook: K distinct random patches to
    /// start, then `iterations` rounds of assign-to-nearest and move-to-mean; a code left empty is
    /// moved onto a random patch. With an EMA codebook the EMA statistics are set to match, in units
    /// of a `batch`-patch step.
    func kMeans(_ data: Tensor, iterations: Int, batch: Int, rng: RNG) {
        let (m, d, k) = (data.dim(0), config.patchDim, quantizer.codebookSize)
        let book = quantizer.codebook.data
        let order = rng.permutation(m)
        for j in 0..<k { (book + j * d).update(from: data.data + order[j % m] * d, count: d) }
        var counts = [Int](repeating: 0, count: k)
        for _ in 0..<iterations {
            let ids = quantizer.nearestCodes(data)
            var sums = [Double](repeating: 0, count: k * d)
            counts = [Int](repeating: 0, count: k)
            for i in 0..<m {
                let j = Int(ids.ints[i]), row = data.data + i * d
                counts[j] += 1
                for t in 0..<d { sums[j * d + t] += Double(row[t]) }
            }
            // The ids are read through their pointer only: they stay alive until the sums are done.
            withExtendedLifetime(ids) {}
            for j in 0..<k {
                if counts[j] > 0 {
                    for t in 0..<d { book[j * d + t] = Float(sums[j * d + t] / Double(counts[j])) }
                } else {
                    (book + j * d).update(from: data.data + rng.nextInt(below: m) * d, count: d)
                }
            }
        }
        if let size = quantizer.emaClusterSize, let sum = quantizer.emaCodeSum {
            // EMA state in per-batch units: N_k = expected assignments per batch, m_k = e_k·N_k.
            let scale = Float(batch) / Float(m)
            for j in 0..<k {
                let n = max(Float(counts[j]) * scale, 1e-2)
                size.data[j] = n
                for t in 0..<d { sum.data[j * d + t] = book[j * d + t] * n }
            }
        }
    }
}
