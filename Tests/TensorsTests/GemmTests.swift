// The GEMM kernels behind `sgemm`: fp32 products against an fp64 sum, and the bf16 products
// (MatmulPrecision.bf16) exact against an fp64 sum of the bf16-rounded operands, within bf16's
// rounding of the fp32 products, per caller, and through a linear layer's gradients.
import Foundation
import Synchronization
import Testing
import Tensors
import TestSupport

/// `x` rounded to bf16, nearest even: what the kernel multiplies.
func bf16(_ x: Float) -> Float {
    let u = x.bitPattern
    return Float(bitPattern: (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000)
}

/// `sgemm` on raw buffers with every transpose, leading dimensions past the row and sizes off the
/// bf16 kernel's tiles (6×64 tiles, K blocks of 384, odd K), α and β, against an fp64 sum of the
/// operands as `round` leaves them: the worst error relative to the size of the terms.
func gemmError(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, alpha: Float, beta: Float,
               round: (Float) -> Float) -> Double {
    let lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1
    let a = RNG(seed: 1).normal([(ta ? k : m) * lda]), b = RNG(seed: 2).normal([(tb ? n : k) * ldb])
    let c = RNG(seed: 3).normal([m * ldc]), before = c.scalars
    sgemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, a.data, lda: lda, b.data, ldb: ldb,
          beta: beta, c.data, ldc: ldc)
    let pa = a.scalars, pb = b.scalars, out = c.scalars
    var worst = 0.0
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0, size = 0.0
            for p in 0..<k {
                let x = Double(round(ta ? pa[p * lda + i] : pa[i * lda + p]))
                let y = Double(round(tb ? pb[j * ldb + p] : pb[p * ldb + j]))
                s += x * y; size += abs(x * y)
            }
            let want = Double(alpha) * s + Double(beta) * Double(before[i * ldc + j])
            worst = max(worst, abs(Double(out[i * ldc + j]) - want) / (size + 1))
        }
        // Padding past column n is never written.
        if out[i * ldc + n] != before[i * ldc + n] { return .infinity }
    }
    return worst
}

let gemmCases: [(Int, Int, Int, Float, Float)] = [(37, 45, 29, 1, 0), (13, 130, 801, 0.5, 1), (97, 65, 1, 2, -0.5), (1, 1, 2, 1, 0), (200, 70, 500, 1, 0)]

@Suite struct GemmTests {
    /// fp32 (OpenBLAS), within fp32 rounding.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func fp32MatchesReference(_ ta: Bool, _ tb: Bool) {
        for (m, n, k, alpha, beta) in gemmCases {
            let worst = gemmError(ta, tb, m, n, k, alpha: alpha, beta: beta) { $0 }
            #expect(worst < 1e-5, "m \(m) n \(n) k \(k): worst error \(worst)")
        }
    }

    /// Products split across threads, each way `sgemm` cuts them: along C's rows, along its columns
    /// (N > M), and along K (K ≥ 2·max(M, N), halves summed through a scratch); every transpose, α
    /// and β, and the same numbers each time.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func splitProductsMatchReference(_ ta: Bool, _ tb: Bool) {
        for (m, n, k, alpha, beta) in [(1040, 40, 24, 1, 0), (24, 1100, 24, 0.5, 1), (520, 20, 1100, 1, -0.5)]
                as [(Int, Int, Int, Float, Float)] {
            let worst = gemmError(ta, tb, m, n, k, alpha: alpha, beta: beta) { $0 }
            #expect(worst < 1e-5, "m \(m) n \(n) k \(k): worst error \(worst)")
            #expect(gemmError(ta, tb, m, n, k, alpha: alpha, beta: beta) { $0 } == worst, "m \(m) n \(n) k \(k): not reproducible")
        }
    }

    /// OpenBLAS runs kernels of this CPU's vector width: where its build did not recognise the CPU
    /// (a Prescott fallback on a newer Xeon), Fusion re-selected them. The products above are
    /// checked on whatever set runs.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, "OPENBLAS_CORETYPE decides"))
    func openBLASRunsTheCPUsVectorKernels() throws {
        let (detected, running) = BLAS.cores
        try #require(!running.isEmpty, "the BLAS is not OpenBLAS")
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let vector = ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"]
        if flags.isSuperset(of: ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]) && !vector.contains(detected) {
            #expect(running == (flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX"), "detected \(detected)")
        } else if flags.isSuperset(of: ["avx2", "fma"]) {
            #expect(vector.contains(running), "OpenBLAS runs \(running) kernels (detected \(detected))")
        } else {
            #expect(running == detected)
        }
    }
}

@Suite(.enabled(if: MatmulPrecision.bf16Available, "needs a CPU with AVX512-BF16"))
struct Bf16MatmulTests {
    /// The exact product of the rounded operands, to fp32 summation error.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matchesRoundedReference(_ ta: Bool, _ tb: Bool) {
        for (m, n, k, alpha, beta) in gemmCases {
            let worst = MatmulPrecision.with(.bf16) { gemmError(ta, tb, m, n, k, alpha: alpha, beta: beta, round: bf16) }
            #expect(worst < 1e-5, "m \(m) n \(n) k \(k): worst error \(worst)")
        }
    }

    /// Products large enough to be split across threads (by rows, by columns and along K) agree
    /// with fp32 to bf16's precision: about 2⁻⁸ of the size of the terms.
    @Test func closeToFP32AcrossThreadSplits() {
        for (m, n, k) in [(512, 96, 256), (64, 700, 128), (96, 80, 2048)] {
            let a = RNG(seed: 4).normal([m, k]), b = RNG(seed: 5).normal([k, n])
            let exact = matmul(a, b).scalars
            let rounded = MatmulPrecision.with(.bf16) { matmul(a, b).scalars }
            let scale = Float(k).squareRoot()  // the size of a sum of k unit products
            let worst = zip(exact, rounded).map { abs($0 - $1) }.max()!
            #expect(worst < 0.02 * scale, "\(m)×\(n)×\(k): worst \(worst)")
            #expect(worst > 0, "bf16 products should differ from fp32 ones")
        }
    }

    /// A linear layer's output and its three gradients in bf16 are fp32's to within 1% of their
    /// size (the gradients go through the same products; finite differences cannot check them,
    /// as the rounding of a perturbed input is as large as the perturbation).
    @Test func linearAndGradientsCloseToFP32() {
        func run(_ precision: MatmulPrecision) -> [[Float]] {
            let x = RNG(seed: 6).normal([4, 32, 96]), w = RNG(seed: 7).normal([80, 96]), bias = RNG(seed: 8).normal([80])
            for t in [x, w, bias] { t.requiresGrad = true }
            let y = MatmulPrecision.with(precision) { () -> Tensor in
                let y = linear(x, w, bias)
                y.backward(RNG(seed: 9).normal(y.shape))
                return y
            }
            return [y.scalars, x.grad!.scalars, w.grad!.scalars, bias.grad!.scalars]
        }
        for (name, (exact, rounded)) in zip(["y", "dx", "dw", "db"], zip(run(.fp32), run(.bf16))) {
            let size = (exact.map { $0 * $0 }.reduce(0, +) / Float(exact.count)).squareRoot()
            let worst = zip(exact, rounded).map { abs($0 - $1) }.max()!
            #expect(worst < 0.01 * size * 4, "\(name): worst \(worst), rms \(size)")
            let rms = (zip(exact, rounded).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(exact.count)).squareRoot()
            #expect(rms < 0.01 * size, "\(name): rms error \(rms), rms \(size)")
        }
    }

    /// The precision is the caller's: a bf16 region on one thread (its products split across the
    /// pool) leaves products on another thread in fp32.
    @Test func precisionBelongsToTheCaller() {
        let a = RNG(seed: 10).normal([256, 128]), b = RNG(seed: 11).normal([128, 192])
        let exact = matmul(a, b).scalars, rounded = MatmulPrecision.with(.bf16) { matmul(a, b).scalars }
        let results = Mutex([[Float]](repeating: [], count: 2))
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            for _ in 0..<20 {
                let c = i == 0 ? MatmulPrecision.with(.bf16) { matmul(a, b).scalars } : matmul(a, b).scalars
                results.withLock { $0[i] = c }
                if c != (i == 0 ? rounded : exact) { break }
            }
        }
        results.withLock {
            #expect($0[0] == rounded)
            #expect($0[1] == exact)
        }
    }

    /// NaN and Inf survive the rounding to bf16, so a run's non-finite checks still see them.
    @Test func nonFiniteValuesPropagate() {
        let a = RNG(seed: 12).normal([32, 48]), b = RNG(seed: 13).normal([48, 80])
        a.data[5 * 48 + 7] = .nan
        b.data[3 * 80 + 9] = .infinity
        let c = MatmulPrecision.with(.bf16) { matmul(a, b).scalars }
        #expect((0..<80).allSatisfy { c[5 * 80 + $0].isNaN }, "row 5 of A holds a NaN")
        #expect(c[0 * 80 + 9].isInfinite || c[0 * 80 + 9].isNaN, "column 9 of B holds an Inf")
        #expect(c[1 * 80 + 10].isFinite)
    }

    @Test func precisionIsScoped() {
        #expect(MatmulPrecision.current == .fp32)
        MatmulPrecision.with(.bf16) {
            #expect(MatmulPrecision.current == .bf16)
            MatmulPrecision.with(.fp32) { #expect(MatmulPrecision.current == .fp32) }
            #expect(MatmulPrecision.current == .bf16)
        }
        #expect(MatmulPrecision.current == .fp32)
    }
}
