// The diffusion process as an object apart from the network (DiT's `diffusion/`): noising x0 to
// x_t, the training target and loss, and conversions from a prediction to (x̂0, ε̂). Not a sampler
// (DDPMSampler, DDIMSampler, EulerSampler) and knows nothing of networks or conditioning.
import Foundation
import Tensors

/// What the network is trained to predict from (x_t, t).
public enum DiffusionTarget: String, Codable, Sendable, CaseIterable {
    /// The added noise ε (Ho et al. 2020, eq. 14).
    case eps
    /// v = √ᾱ_t·ε − √(1 − ᾱ_t)·x0 (Salimans & Ho 2022, Sec. 4).
    case v
    /// The velocity dx_t/dt = ε − x0 of the straight flow path (rectified flow / flow matching).
    case flow
}

/// A Gaussian noising process with a target: a discrete variance-preserving schedule with the ε or
/// v target, or the straight flow path with the velocity target.
///
/// Tensors are (N, …) with one timestep per row. Timesteps are Floats: the integer index in
/// 0..<T on a discrete schedule (what DiT feeds its timestep embedder), the time in [0, 1] on the
/// flow path. Samplers call the model with the same values.
///
/// ```swift
/// let diffusion = GaussianDiffusion(schedule: .cosine(), target: .eps)
/// let rng = RNG(seed: 0)
/// let x0 = rng.normal([4, 16, 8])                      // 4 images of 16 patches × 8 channels
/// let t = diffusion.sampleTimesteps(n: 4, rng: rng)
/// let noise = rng.normal(x0.shape)
/// let xt = diffusion.qSample(x0: x0, t: t, noise: noise)
/// let loss = diffusion.loss(prediction: model(xt, t), x0: x0, noise: noise, t: t)
/// ```
public struct GaussianDiffusion: Sendable {
    public enum Process: Sendable, Equatable {
        case discrete(NoiseSchedule)
        case flow(FlowSchedule)
    }

    public let process: Process
    public let target: DiffusionTarget

    /// A discrete schedule with the ε or v target (1000-step cosine and ε by default, as Transfusion).
    public init(schedule: NoiseSchedule = .cosine(), target: DiffusionTarget = .eps) {
        if target == .flow { fatalError("GaussianDiffusion: the flow target belongs to the flow path; use init(flow:)") }
        process = .discrete(schedule)
        self.target = target
    }

    /// The straight flow path x_t = (1 − t)·x0 + t·ε with the velocity target ε − x0.
    /// (No default argument, so that `GaussianDiffusion()` stays the discrete default.)
    public init(flow: FlowSchedule) {
        process = .flow(flow)
        target = .flow
    }

    /// The discrete schedule, nil on the flow path.
    public var schedule: NoiseSchedule? {
        if case .discrete(let s) = process { return s }
        return nil
    }

    /// T of the discrete schedule, or the grid of `FlowSchedule.steps` on which caps are written.
    public var steps: Int {
        switch process {
        case .discrete(let s): return s.steps
        case .flow(let f): return f.steps
        }
    }

    // MARK: - Coefficients

    /// The scales (a, s) of x_t = a·x0 + s·ε at timestep `t`: (√ᾱ_t, √(1 − ᾱ_t)) on a discrete
    /// schedule (t an integer index), (1 − t, t) on the flow path.
    public func coefficients(_ t: Float) -> (signal: Double, noise: Double) {
        switch process {
        case .discrete(let s):
            precondition(t == t.rounded(), "GaussianDiffusion: discrete timestep \(t) is not an integer")
            return s.coefficients(Int(t))
        case .flow(let f):
            return f.coefficients(Double(t))
        }
    }

    /// Per-row signal and noise scales for timesteps `t`.
    func rowCoefficients(_ t: [Float]) -> (signal: [Float], noise: [Float]) {
        let c = t.map { coefficients($0) }
        return (c.map { Float($0.signal) }, c.map { Float($0.noise) })
    }

    // MARK: - Training

    /// x_t = a_t·x0 + s_t·ε per row (`x0` and `noise` (N, …), `t` N timesteps).
    ///
    /// 1. a_t, s_t = √ᾱ_t, √(1 − ᾱ_t), or 1 − t, t on the flow path
    /// 2. x_t = a_t·x0 + s_t·ε          (Ho et al. 2020, eq. 4; the straight path for flow)
    public func qSample(x0: Tensor, t: [Float], noise: Tensor) -> Tensor {
        checkRows(x0, t, "qSample")
        precondition(noise.shape == x0.shape, "qSample: noise \(noise.shape) vs x0 \(x0.shape)")
        let (a, s) = rowCoefficients(t)
        return scaledRows(x0, a) + scaledRows(noise, s)
    }

    /// What the model should predict at (x_t, t) for this `x0` and `noise`:
    /// ε; v = a_t·ε − s_t·x0 (Salimans & Ho 2022, Sec. 4); or the velocity ε − x0.
    public func trainingTarget(x0: Tensor, noise: Tensor, t: [Float]) -> Tensor {
        checkRows(x0, t, "trainingTarget")
        precondition(noise.shape == x0.shape, "trainingTarget: noise \(noise.shape) vs x0 \(x0.shape)")
        switch target {
        case .eps:
            return noise
        case .v:
            let (a, s) = rowCoefficients(t)
            return scaledRows(noise, a) - scaledRows(x0, s)
        case .flow:
            return noise - x0
        }
    }

    /// Mean squared error between `prediction` and the training target (Ho et al. 2020, eq. 14,
    /// L_simple). The target is a constant: no gradient reaches `x0` or `noise` through it.
    public func loss(prediction: Tensor, x0: Tensor, noise: Tensor, t: [Float]) -> Tensor {
        let target = withoutGrad { trainingTarget(x0: x0, noise: noise, t: t) }.detached()
        return mse(prediction, target)
    }

    /// One span's training example, the whole objective but the model (DiT's `training_losses`):
    /// a timestep drawn from `rng` (capped at `maxT`, see ``sampleTimesteps(n:rng:maxT:)``), then
    /// noise like `x0` from the same generator, the noised values and the regression target.
    /// `x0` is one span (any shape); its batch is a row of one.
    public func trainingExample(x0: Tensor, rng: RNG, maxT: Int? = nil) -> (t: Float, noisy: Tensor, target: Tensor) {
        let t = sampleTimesteps(n: 1, rng: rng, maxT: maxT)
        let row = x0.reshaped([1] + x0.shape), noise = rng.normal(row.shape)
        return (t[0], qSample(x0: row, t: t, noise: noise).reshaped(x0.shape),
                trainingTarget(x0: row, noise: noise, t: t).reshaped(x0.shape))
    }

    /// `n` training timesteps drawn uniformly: integers in 0...maxT (maxT defaults to T − 1) on a
    /// discrete schedule; times in [0, maxT/steps) on the flow path (default [0, 1)).
    ///
    /// `maxT` is Transfusion's noise limit: for image-first pairs (the caption is predicted from the
    /// image) the image is noised at most to t = 500 of 1000, so the caption still has a view of it.
    public func sampleTimesteps(n: Int, rng: RNG, maxT: Int? = nil) -> [Float] {
        precondition(n >= 0, "sampleTimesteps: negative count")
        switch process {
        case .discrete(let s):
            let cap = maxT ?? s.steps - 1
            precondition(cap >= 0 && cap < s.steps, "sampleTimesteps: maxT \(cap) outside 0..<\(s.steps)")
            return (0..<n).map { _ in Float(rng.nextInt(below: cap + 1)) }
        case .flow(let f):
            let cap = maxT ?? f.steps
            precondition(cap >= 0 && cap <= f.steps, "sampleTimesteps: maxT \(cap) outside 0...\(f.steps)")
            let limit = Float(Double(cap) / Double(f.steps))
            return (0..<n).map { _ in rng.nextFloat() * limit }
        }
    }

    // MARK: - Conversions

    /// x̂0 from the model's prediction at (x_t, t):
    ///
    /// - ε: x̂0 = (x_t − s_t·ε̂)/a_t                       (Ho et al. 2020, eq. 15)
    /// - v: x̂0 = a_t·x_t − s_t·v̂, since a² + s² = 1      (Salimans & Ho 2022, App. D)
    /// - flow: x̂0 = x_t − t·û                            (x_t − t·(ε − x0) = x0)
    ///
    /// ```swift
    /// let x0Hat = diffusion.predictX0(xt: xt, t: t, prediction: model(xt, t))
    /// ```
    public func predictX0(xt: Tensor, t: [Float], prediction: Tensor) -> Tensor {
        checkRows(xt, t, "predictX0")
        precondition(prediction.shape == xt.shape, "predictX0: prediction \(prediction.shape) vs x_t \(xt.shape)")
        let (a, s) = rowCoefficients(t)
        switch target {
        case .eps:
            precondition(a.allSatisfy { $0 > 0 }, "predictX0: x0 is not recoverable from ε where ᾱ_t = 0")
            return scaledRows(xt - scaledRows(prediction, s), a.map { 1 / $0 })
        case .v:
            return scaledRows(xt, a) - scaledRows(prediction, s)
        case .flow:
            return xt - scaledRows(prediction, s)
        }
    }

    /// ε̂ from the model's prediction at (x_t, t):
    ///
    /// - ε: the prediction itself
    /// - v: ε̂ = s_t·x_t + a_t·v̂                         (Salimans & Ho 2022, App. D)
    /// - flow: ε̂ = x_t + (1 − t)·û                       (x_t + (1 − t)·(ε − x0) = ε)
    public func predictEps(xt: Tensor, t: [Float], prediction: Tensor) -> Tensor {
        checkRows(xt, t, "predictEps")
        precondition(prediction.shape == xt.shape, "predictEps: prediction \(prediction.shape) vs x_t \(xt.shape)")
        let (a, s) = rowCoefficients(t)
        switch target {
        case .eps:
            return prediction
        case .v:
            return scaledRows(xt, s) + scaledRows(prediction, a)
        case .flow:
            return xt + scaledRows(prediction, a)
        }
    }

    private func checkRows(_ x: Tensor, _ t: [Float], _ op: String) {
        precondition(x.rank >= 1 && x.dim(0) == t.count, "\(op): \(t.count) timesteps for a batch of shape \(x.shape)")
    }
}

// MARK: - Per-row scaling

/// y[i, …] = c[i]·x[i, …] for x of shape (N, …) and N coefficients. The gradient flows to `x`
/// only: coefficients come from the schedule.
func scaledRows(_ x: Tensor, _ c: [Float]) -> Tensor {
    precondition(x.rank >= 1 && x.dim(0) == c.count, "scaledRows: \(c.count) scales for shape \(x.shape)")
    guard let first = c.first else { return x }
    if c.allSatisfy({ $0 == first }) { return x * first }
    let out = Tensor.empty(x.shape)
    let inner = x.count / c.count                 // elements per row
    let src = x.data, dst = out.data
    for (i, scale) in c.enumerated() {
        let row = i * inner
        for j in 0..<inner { dst[row + j] = scale * src[row + j] }
    }
    return out.recorded([x]) { g in [scaledRows(g, c)] }
}
