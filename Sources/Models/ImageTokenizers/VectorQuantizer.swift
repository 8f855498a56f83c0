// The vector quantiser of VQ-VAE (van den Oord et al. 2017): nearest-code search by one GEMM,
// straight-through gradients, codebook + commitment losses, dead-code restarts and optional EMA
// codebook updates (the paper's appendix A.1). Not product or residual quantisation.
// Legend: N images, D code dimension, h×w latent grid, M = N·h·w vectors, K codebook size.
import Foundation
import NN
import Tensors

/// How much of a codebook a set of code ids uses.
public struct CodebookUsage: Equatable, Sendable, CustomStringConvertible {
    /// Codes that occur at least once.
    public var used: Int
    public var codebookSize: Int
    /// exp(entropy) of the empirical code distribution: K for uniform use, 1 for a single code.
    public var perplexity: Double

    public var fraction: Double { Double(used) / Double(max(codebookSize, 1)) }

    public var description: String {
        String(format: "%d/%d codes used (%.1f%%), perplexity %.1f", used, codebookSize, 100 * fraction, perplexity)
    }

    /// Usage of the Int32 `ids` (any shape) in a codebook of `codebookSize` codes.
    public init(ids: Tensor, codebookSize: Int) {
        precondition(ids.dtype == .int32, "CodebookUsage: ids must be int32")
        var counts = [Int](repeating: 0, count: codebookSize)
        for i in 0..<ids.count { counts[Int(ids.ints[i])] += 1 }
        self.init(counts: counts)
    }

    public init(counts: [Int]) {
        let total = Double(max(counts.reduce(0, +), 1))
        var entropy = 0.0
        for c in counts where c > 0 { let p = Double(c) / total; entropy -= p * Foundation.log(p) }
        used = counts.filter { $0 > 0 }.count
        codebookSize = counts.count
        perplexity = Foundation.exp(entropy)
    }
}

/// Straight-through estimator: the forward value is `quantized`, the gradient goes to `input`
/// unchanged (z_e + sg(z_q − z_e) without the two extra passes).
public func straightThrough(_ input: Tensor, _ quantized: Tensor) -> Tensor {
    precondition(input.shape == quantized.shape, "straightThrough: \(input.shape) vs \(quantized.shape)")
    let out = quantized.detached().copy()
    return out.recorded([input]) { g in [g] }
}

/// A codebook of K vectors of dimension D with nearest-neighbour lookup.
///
/// In training mode each forward pass also updates the quantiser's state: per-code idle counters,
/// the EMA codebook (when `ema` is on) and dead-code restarts, which replace every code unused
/// for `restartAfterSteps` forward passes with a random encoder output of the current batch.
///
/// ```swift
/// let vq = VectorQuantizer(codes: 512, dim: 8, rng: RNG(seed: 0))
/// let out = vq(z, rng: rng)            // z (N, 8, h, w): out.quantized, out.ids (N, h, w)
/// ```
public final class VectorQuantizer: Module {
    /// (K, D) code vectors. Trained by the codebook loss, or by EMA (then not a gradient leaf).
    public let codebook: Tensor
    /// EMA statistics (only with `ema`): per-code assignment counts N_k and vector sums m_k.
    public let emaClusterSize: Tensor?
    public let emaCodeSum: Tensor?
    public let beta: Float
    public let emaDecay: Float
    /// Codes idle for this many training forward passes are restarted; 0 disables restarts.
    public let restartAfterSteps: Int
    /// Per code, training forward passes since it was last chosen.
    public private(set) var idleSteps: [Int]
    /// Codes restarted so far (for logging).
    public private(set) var restartCount = 0
    /// Codes chosen in the last training forward pass (over the whole batch the ranks share).
    public private(set) var activeCodes = 0
    /// Under data parallelism: which rows of the whole batch this rank's forward passes hold, and
    /// how to sum statistics over the ranks. The assignment counts, the EMA sums and the vectors
    /// dead codes restart from are then those of the whole batch, so every rank keeps the state
    /// one process would. nil: the forward pass sees the whole batch.
    public var batchShare: BatchShare?

    /// One rank's part of a batch: rows `rows` of `batchRows`, and `sum`, which adds a buffer
    /// elementwise over the ranks (every rank calls it with a buffer of the same size).
    public struct BatchShare {
        public var rows: Range<Int>
        public var batchRows: Int
        public var sum: (inout [Double]) -> Void

        public init(rows: Range<Int>, batchRows: Int, sum: @escaping (inout [Double]) -> Void) {
            self.rows = rows; self.batchRows = batchRows; self.sum = sum
        }
    }

    public init(codes: Int, dim: Int, beta: Float = 0.25, ema: Bool = false, emaDecay: Float = 0.99,
                restartAfterSteps: Int = 32, rng: RNG) {
        precondition(codes > 0 && dim > 0, "VectorQuantizer: \(codes) codes of dimension \(dim)")
        let initial = rng.draw([codes, dim], .uniform(lo: -1 / Float(codes), hi: 1 / Float(codes)))
        codebook = ema ? initial : parameter(initial)
        emaClusterSize = ema ? Tensor.ones([codes]) : nil  // with m_k = e_k: e_k = m_k / N_k
        emaCodeSum = ema ? initial.copy() : nil
        self.beta = beta
        self.emaDecay = emaDecay
        self.restartAfterSteps = restartAfterSteps
        idleSteps = [Int](repeating: 0, count: codes)
    }

    /// With EMA updates the running code sums start equal to the codebook (cluster sizes 1).
    override public func initialValuesDrawn() {
        emaCodeSum?.data.update(from: codebook.data, count: codebook.count)
    }

    public var codebookSize: Int { codebook.dim(0) }
    public var codeDimension: Int { codebook.dim(1) }
    public var usesEMA: Bool { emaClusterSize != nil }

    // MARK: - Lookup

    /// Index of the nearest code (squared Euclidean distance) for each row of `vectors` (M, D):
    /// argmin_k ‖e_k‖² − 2·z·e_k (‖z‖² is the same for every k), one GEMM for all z·e_k.
    public func nearestCodes(_ vectors: Tensor) -> Tensor {
        precondition(vectors.rank == 2 && vectors.dim(1) == codeDimension,
                     "VectorQuantizer: vectors must be (M, \(codeDimension)), got \(vectors.shape)")
        let m = vectors.dim(0), k = codebookSize, d = codeDimension
        let norms = [Float](unsafeUninitializedCapacity: k) { buf, n in
            for j in 0..<k { buf[j] = vdotRow(codebook.data + j * d, d) }
            n = k
        }
        let dots = Tensor.empty([m, k])                 // z·eᵀ (M, K)
        sgemm(transA: false, transB: true, m: m, n: k, k: d, vectors.data, lda: d, codebook.data, ldb: d,
              dots.data, ldc: k)
        let ids = Tensor.empty([m], dtype: .int32)
        let pd = dots.data, pi = ids.ints
        norms.withUnsafeBufferPointer { pn in
            Parallel.forRange(m, grain: max(1, 16384 / k)) { r in
                for i in r {
                    let row = pd + i * k
                    var best = pn[0] - 2 * row[0], arg = 0
                    for j in 1..<k {
                        let dist = pn[j] - 2 * row[j]
                        if dist < best { best = dist; arg = j }
                    }
                    pi[i] = Int32(arg)
                }
            }
        }
        // The dot products are read through `pd` only: they stay alive until the search is done.
        withExtendedLifetime(dots) {}
        return ids
    }

    /// Code ids (any shape) → their vectors (ids.shape…, D), differentiable w.r.t. the codebook.
    public func lookup(_ ids: Tensor) -> Tensor { embedding(codebook, ids) }

    // MARK: - Forward

    public struct Output {
        /// z_q with straight-through gradients to the input, (N, D, h, w).
        public var quantized: Tensor
        /// Code ids, Int32 (N, h, w).
        public var ids: Tensor
        /// mean ‖sg(z_e) − z_q‖² (0 and untracked with EMA updates, which replace it).
        public var codebookLoss: Tensor
        /// mean ‖z_e − sg(z_q)‖², weighted by β in `loss`.
        public var commitmentLoss: Tensor
        /// codebookLoss + β·commitmentLoss.
        public var loss: Tensor
    }

    /// Quantises encoder outputs `z` (N, D, h, w). In training mode also updates idle counters,
    /// the EMA codebook and dead codes (drawing replacements with `rng`).
    public func callAsFunction(_ z: Tensor, rng: RNG) -> Output {
        precondition(z.rank == 4 && z.dim(1) == codeDimension,
                     "VectorQuantizer: input must be (N, \(codeDimension), h, w), got \(z.shape)")
        let (n, d, h, w) = (z.dim(0), z.dim(1), z.dim(2), z.dim(3))
        let flat = z.permuted([0, 2, 3, 1]).reshaped([n * h * w, d])     // (M, D)
        let ids = withoutGrad { nearestCodes(flat) }                     // (M)
        let zq = lookup(ids)                                             // (M, D)
        let commitment = mse(flat, zq.detached())
        let codebookLoss = usesEMA ? Tensor.zeros([]) : mse(zq, flat.detached())
        let quantized = straightThrough(flat, zq)
            .reshaped([n, h, w, d]).permuted([0, 3, 1, 2])               // (N, D, h, w)
        if isTraining { withoutGrad { updateState(vectors: flat.detached(), ids: ids, rng: rng) } }
        return Output(quantized: quantized, ids: ids.reshaped([n, h, w]), codebookLoss: codebookLoss,
                      commitmentLoss: commitment, loss: codebookLoss + commitment * beta)
    }

    // MARK: - Training-time state

    /// Idle counters, EMA update (N_k ← γN_k + (1−γ)n_k, m_k ← γm_k + (1−γ)Σz, e_k = m_k / N̂_k
    /// with Laplace-smoothed N̂), then dead-code restarts from random rows of `vectors`.
    func updateState(vectors: Tensor, ids: Tensor, rng: RNG) {
        let k = codebookSize, d = codeDimension, m = vectors.dim(0)
        var counts = [Int](repeating: 0, count: k)
        for i in 0..<m { counts[Int(ids.ints[i])] += 1 }
        var batchSum = usesEMA ? [Float](unsafeUninitializedCapacity: k * d) { buf, c in
            buf.initialize(repeating: 0); c = k * d
            for i in 0..<m {
                let row = vectors.data + i * d, j = Int(ids.ints[i])
                for t in 0..<d { buf[j * d + t] += row[t] }
            }
        } : []
        if let share = batchShare {                      // the whole batch's counts and sums
            var stats = counts.map(Double.init) + batchSum.map(Double.init)
            share.sum(&stats)
            counts = stats[..<k].map { Int($0.rounded()) }
            batchSum = stats[k...].map(Float.init)
        }
        for j in 0..<k { idleSteps[j] = counts[j] > 0 ? 0 : idleSteps[j] + 1 }
        activeCodes = counts.lazy.filter { $0 > 0 }.count

        if let size = emaClusterSize, let sum = emaCodeSum {
            let g = emaDecay
            var total: Float = 0
            for j in 0..<k {
                size.data[j] = g * size.data[j] + (1 - g) * Float(counts[j])
                total += size.data[j]
                for t in 0..<d { sum.data[j * d + t] = g * sum.data[j * d + t] + (1 - g) * batchSum[j * d + t] }
            }
            let eps: Float = 1e-5
            for j in 0..<k {
                let smoothed = (size.data[j] + eps) / (total + Float(k) * eps) * total
                for t in 0..<d { codebook.data[j * d + t] = sum.data[j * d + t] / smoothed }
            }
        }

        guard restartAfterSteps > 0 else { return }
        let dead = (0..<k).filter { idleSteps[$0] >= restartAfterSteps }
        guard !dead.isEmpty else { return }
        // Each dead code restarts from a vector of the batch drawn at random; under data
        // parallelism the index is drawn over the whole batch (the same draws on every rank) and
        // the rank that holds the vector hands it to the others.
        let perRow = batchShare.map { m / max($0.rows.count, 1) } ?? 0
        let total = batchShare.map { $0.batchRows * perRow } ?? m
        let first = batchShare.map { $0.rows.lowerBound * perRow } ?? 0
        let drawn = dead.map { _ in rng.nextInt(below: total) }
        var held = [Double](repeating: 0, count: dead.count * d)         // exact for Float values
        for (r, i) in drawn.enumerated() where (first..<(first + m)).contains(i) {
            for t in 0..<d { held[r * d + t] = Double(vectors.data[(i - first) * d + t]) }
        }
        batchShare?.sum(&held)
        let restarts = held.map(Float.init)
        for (r, j) in dead.enumerated() {
            restarts.withUnsafeBufferPointer { row in
                (codebook.data + j * d).update(from: row.baseAddress! + r * d, count: d)
                if let size = emaClusterSize, let sum = emaCodeSum {
                    size.data[j] = 1
                    (sum.data + j * d).update(from: row.baseAddress! + r * d, count: d)
                }
            }
            idleSteps[j] = 0
            restartCount += 1
        }
    }

    /// Codes chosen in the last `steps` training forward passes (from the idle counters).
    public func recentlyUsedCodes(within steps: Int = 1) -> Int { idleSteps.filter { $0 < steps }.count }
}

/// ‖row‖² of a D-vector.
@inline(__always)
private func vdotRow(_ p: UnsafePointer<Float>, _ d: Int) -> Float {
    var s: Float = 0
    for t in 0..<d { s += p[t] * p[t] }
    return s
}
