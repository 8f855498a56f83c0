// Discrete-time variance-preserving noise schedules: β_t, α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s for
// T steps. Not the noising or the samplers (GaussianDiffusion, *Sampler) nor the flow path (FlowSchedule).
import Foundation

/// A discrete variance-preserving schedule of `steps` (T) noise levels, kept in Double.
///
/// Indices run over `0..<T`; index `t` is step t+1 of the papers (Ho et al. 2020 count 1…T), as in
/// DiT and diffusers. `alphaBar(-1) == 1` names the clean data level, where every sampler ends.
///
/// ```swift
/// let s = NoiseSchedule.cosine()   // T = 1000 (Nichol & Dhariwal 2021)
/// s.alphaBar(0)                    // ≈ 0.99996: almost clean
/// s.alphaBar(999)                  // ≈ 2.4e-9: almost pure noise
/// s.spacedTimesteps(50)            // [999, 979, …, 20, 0]
/// ```
/// The discrete schedules by name, as recipes choose them (`diffusion.schedule`).
public enum NoiseScheduleName: String, Codable, Sendable, CaseIterable {
    case cosine, linear

    /// The schedule of this name over `steps` levels, with its default parameters.
    public func schedule(steps: Int) -> NoiseSchedule {
        switch self {
        case .cosine: return .cosine(steps: steps)
        case .linear: return .linear(steps: steps)
        }
    }
}

public struct NoiseSchedule: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// β rising linearly from `betaStart` to `betaEnd` (Ho et al. 2020, Sec. 4: 1e-4 → 0.02).
        case linear(betaStart: Double, betaEnd: Double)
        /// ᾱ following a squared cosine (Nichol & Dhariwal 2021, eq. 17), β clipped at `maxBeta`.
        case cosine(offset: Double, maxBeta: Double)
    }

    public let kind: Kind
    /// β_t for t in 0..<T.
    public let betas: [Double]
    /// ᾱ_t = Π_{s≤t} (1 − β_s) for t in 0..<T.
    public let alphaBars: [Double]

    /// The number of steps T.
    public var steps: Int { betas.count }

    private init(kind: Kind, betas: [Double]) {
        precondition(!betas.isEmpty, "NoiseSchedule: at least one step")
        precondition(betas.allSatisfy { $0 > 0 && $0 < 1 }, "NoiseSchedule: every β must lie in (0, 1)")
        self.kind = kind
        self.betas = betas
        var product = 1.0
        alphaBars = betas.map { product *= 1 - $0; return product }
    }

    // MARK: - The two schedules

    /// Linear β from `betaStart` to `betaEnd` over `steps` (Ho et al. 2020, Sec. 4).
    ///
    /// ```swift
    /// let s = NoiseSchedule.linear()
    /// s.beta(0), s.beta(999)   // 1e-4, 0.02
    /// ```
    public static func linear(steps: Int = 1000, betaStart: Double = 1e-4, betaEnd: Double = 0.02) -> NoiseSchedule {
        precondition(steps >= 1, "NoiseSchedule.linear: steps must be ≥ 1")
        let betas = (0..<steps).map { i in
            steps == 1 ? betaStart : betaStart + (betaEnd - betaStart) * Double(i) / Double(steps - 1)
        }
        return NoiseSchedule(kind: .linear(betaStart: betaStart, betaEnd: betaEnd), betas: betas)
    }

    /// The cosine schedule (Nichol & Dhariwal 2021, eq. 17), discretised as in their code:
    ///
    /// 1. ᾱ(u) = f(u)/f(0) with f(u) = cos²((u + s)/(1 + s) · π/2), u ∈ [0, 1]   (eq. 17)
    /// 2. β_t = 1 − ᾱ((t+1)/T) / ᾱ(t/T), clipped at `maxBeta` = 0.999 so the last step, where
    ///    ᾱ(1) = 0, stays finite                                                     (Sec. 3.2)
    /// 3. ᾱ_t = Π_{s≤t} (1 − β_s)
    public static func cosine(steps: Int = 1000, offset: Double = 0.008, maxBeta: Double = 0.999) -> NoiseSchedule {
        precondition(steps >= 1, "NoiseSchedule.cosine: steps must be ≥ 1")
        let kind = Kind.cosine(offset: offset, maxBeta: maxBeta)
        let betas = (0..<steps).map { i in
            min(1 - cosineAlphaBar(Double(i + 1) / Double(steps), offset) / cosineAlphaBar(Double(i) / Double(steps), offset),
                maxBeta)
        }
        return NoiseSchedule(kind: kind, betas: betas)
    }

    /// ᾱ(u) = f(u)/f(0) of eq. 17, unclipped.
    private static func cosineAlphaBar(_ u: Double, _ s: Double) -> Double {
        let f = { (u: Double) -> Double in let c = cos((u + s) / (1 + s) * Double.pi / 2); return c * c }
        return f(u) / f(0)
    }

    // MARK: - Per-step values

    /// β_t.
    public func beta(_ t: Int) -> Double { betas[checked(t)] }

    /// α_t = 1 − β_t.
    public func alpha(_ t: Int) -> Double { 1 - betas[checked(t)] }

    /// ᾱ_t; `alphaBar(-1) == 1` (clean data).
    public func alphaBar(_ t: Int) -> Double {
        if t == -1 { return 1 }
        return alphaBars[checked(t)]
    }

    /// The signal and noise scales (√ᾱ_t, √(1 − ᾱ_t)) of x_t = √ᾱ_t·x0 + √(1 − ᾱ_t)·ε.
    public func coefficients(_ t: Int) -> (signal: Double, noise: Double) {
        let ab = alphaBar(t)
        return (ab.squareRoot(), (1 - ab).squareRoot())
    }

    /// log SNR_t = log(ᾱ_t / (1 − ᾱ_t)).
    public func logSNR(_ t: Int) -> Double {
        let ab = alphaBar(t)
        return Foundation.log(ab / (1 - ab))
    }

    /// `count` timesteps evenly spaced over 0..<T, highest first, always ending at 0 (DiT's
    /// "uniform" respacing): the visiting order of a sampler with `count` steps.
    ///
    /// ```swift
    /// NoiseSchedule.cosine().spacedTimesteps(4)   // [999, 666, 333, 0]
    /// ```
    public func spacedTimesteps(_ count: Int) -> [Int] {
        precondition(count >= 1 && count <= steps, "spacedTimesteps: \(count) not in 1...\(steps)")
        if count == 1 { return [steps - 1] }
        let picked = (0..<count).map { i in Int((Double(i) * Double(steps - 1) / Double(count - 1)).rounded()) }
        return Array(Set(picked)).sorted(by: >)
    }

    // MARK: - Continuous time

    /// ᾱ at continuous time u ∈ [0, 1], where discrete index t sits at u = (t + 1)/T.
    ///
    /// - cosine: ᾱ(u) = f(u)/f(0) (Nichol & Dhariwal 2021, eq. 17), unclipped, so ᾱ(1) = 0.
    /// - linear: the continuous-time limit of Π(1 − β_s), ᾱ(u) = exp(−∫₀ᵘ β(r)·T dr) with
    ///   β(r) = β_start + r·(β_end − β_start) (the VP SDE of Song et al. 2021).
    public func continuousAlphaBar(_ u: Double) -> Double {
        precondition(u >= 0 && u <= 1, "continuousAlphaBar: u = \(u) outside [0, 1]")
        switch kind {
        case .cosine(let s, _):
            return NoiseSchedule.cosineAlphaBar(u, s)
        case .linear(let b0, let b1):
            return Foundation.exp(-Double(steps) * (b0 * u + 0.5 * (b1 - b0) * u * u))
        }
    }

    /// log(ᾱ(u) / (1 − ᾱ(u))) at continuous time u; −∞ where ᾱ(u) = 0.
    public func continuousLogSNR(_ u: Double) -> Double {
        let ab = continuousAlphaBar(u)
        return Foundation.log(ab / (1 - ab))
    }

    private func checked(_ t: Int) -> Int {
        precondition(t >= 0 && t < steps, "NoiseSchedule: timestep \(t) outside 0..<\(steps)")
        return t
    }
}
