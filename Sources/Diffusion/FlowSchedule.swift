// The rectified-flow / flow-matching path x_t = (1 − t)·x0 + t·ε on t ∈ [0, 1], and its time grids.
// Not a variance-preserving schedule (NoiseSchedule); no learned, shifted or logit-normal times.
import Foundation

/// The straight path from data (t = 0) to Gaussian noise (t = 1) of rectified flow (Liu et al.
/// 2022) and flow matching (Lipman et al. 2023), in the convention of Esser et al. 2024 (SD3):
/// x_t = (1 − t)·x0 + t·ε, velocity dx_t/dt = ε − x0.
///
/// ```swift
/// let f = FlowSchedule()
/// f.coefficients(0.25)   // (signal: 0.75, noise: 0.25)
/// f.timeGrid(4)          // [1, 0.75, 0.5, 0.25, 0]
/// ```
public struct FlowSchedule: Sendable, Equatable {
    /// The grid on which integer timestep caps are written: step k is time k/steps. Transfusion's
    /// noise limit "t ≤ 500" of 1000 becomes t ≤ 0.5 here.
    public let steps: Int

    public init(steps: Int = 1000) {
        precondition(steps >= 1, "FlowSchedule: steps must be ≥ 1")
        self.steps = steps
    }

    /// The signal and noise scales (1 − t, t) of x_t = (1 − t)·x0 + t·ε.
    public func coefficients(_ t: Double) -> (signal: Double, noise: Double) {
        precondition(t >= 0 && t <= 1, "FlowSchedule: time \(t) outside [0, 1]")
        return (1 - t, t)
    }

    /// log SNR = 2·log((1 − t)/t); +∞ at t = 0, −∞ at t = 1.
    public func logSNR(_ t: Double) -> Double { 2 * Foundation.log((1 - t) / t) }

    /// `count` + 1 times evenly spaced from 1 (noise) down to 0 (data): the nodes of a `count`-step
    /// integrator.
    public func timeGrid(_ count: Int) -> [Float] {
        precondition(count >= 1, "FlowSchedule.timeGrid: count must be ≥ 1")
        return (0...count).map { i in Float(Double(count - i) / Double(count)) }
    }
}
