// Noise schedules: the cosine and linear schedules' known values, monotonicity and clipping, the
// continuous-time helpers against the discrete tables, step spacing, and the flow path's grid.
import Diffusion
import Foundation
import Testing

@Suite struct ScheduleTests {
    @Test func cosineKnownValues() {
        let s = NoiseSchedule.cosine()
        #expect(s.steps == 1000)
        // ᾱ_0 = f(1/T)/f(0) and ᾱ_499 = f(500/T)/f(0) from eq. 17 (computed independently in Python).
        #expect(abs(s.alphaBar(0) - 0.999958715775178) < 1e-12)
        #expect(abs(s.alphaBar(499) - 0.49384359044063775) < 1e-12)
        #expect(s.alphaBar(-1) == 1)
        // The last step reaches ᾱ(1) = 0 unclipped; the 0.999 clip leaves ᾱ_T tiny but positive.
        #expect(s.alphaBar(999) > 0 && s.alphaBar(999) < 1e-8)
        #expect(s.beta(999) == 0.999)
        #expect(s.betas.allSatisfy { $0 > 0 && $0 <= 0.999 })
        for t in 1..<s.steps { #expect(s.alphaBar(t) < s.alphaBar(t - 1)) }
        for t in 0..<s.steps { #expect(abs(s.alpha(t) - (1 - s.beta(t))) < 1e-15) }
        // Signal and noise scales are a unit vector; log SNR falls through 0 near the middle.
        let (a, n) = s.coefficients(300)
        #expect(abs(a * a + n * n - 1) < 1e-12)
        #expect(s.logSNR(400) > 0 && s.logSNR(600) < 0)
    }

    @Test func cosineContinuousMatchesDiscrete() {
        // Below the clip the product telescopes: ᾱ_t = Π f(s+1)/f(s) = f((t+1)/T)/f(0).
        let s = NoiseSchedule.cosine()
        for t in 0..<(s.steps - 1) {
            let u = Double(t + 1) / Double(s.steps)
            #expect(abs(s.continuousAlphaBar(u) - s.alphaBar(t)) <= 1e-12 + 1e-9 * s.alphaBar(t))
        }
        #expect(s.continuousAlphaBar(0) == 1)
        #expect(s.continuousAlphaBar(1) < 1e-30)
    }

    @Test func linearKnownValues() {
        let s = NoiseSchedule.linear()
        #expect(s.steps == 1000)
        #expect(s.beta(0) == 1e-4)
        #expect(abs(s.beta(999) - 0.02) < 1e-15)
        #expect(abs(s.beta(1) - s.beta(0) - 0.0199 / 999) < 1e-15)
        // Π(1 − β) over the linear table (computed independently with numpy).
        #expect(abs(s.alphaBar(499) - 0.07858724288177824) < 1e-12)
        #expect(abs(s.alphaBar(999) - 4.035829765375676e-05) < 1e-15)
        for t in 1..<s.steps { #expect(s.alphaBar(t) < s.alphaBar(t - 1)) }
        // The continuous limit exp(−∫β) differs from Π(1 − β) by Σβ²/2 ≈ 0.07 in log at most.
        for t in 0..<s.steps {
            let u = Double(t + 1) / Double(s.steps)
            #expect(abs(log(s.continuousAlphaBar(u)) - log(s.alphaBar(t))) < 0.08)
        }
    }

    @Test func spacing() {
        let s = NoiseSchedule.cosine()
        #expect(s.spacedTimesteps(4) == [999, 666, 333, 0])
        #expect(s.spacedTimesteps(1000) == Array((0..<1000).reversed()))
        let fifty = s.spacedTimesteps(50)
        #expect(fifty.count == 50 && fifty.first == 999 && fifty.last == 0)
        #expect(zip(fifty, fifty.dropFirst()).allSatisfy { $0 > $1 })
    }

    @Test func flowPath() {
        let f = FlowSchedule()
        #expect(f.coefficients(0) == (1, 0))
        #expect(f.coefficients(0.25) == (0.75, 0.25))
        #expect(f.coefficients(1) == (0, 1))
        #expect(f.timeGrid(4) == [1, 0.75, 0.5, 0.25, 0])
        #expect(f.logSNR(0.5) == 0)
    }
}
