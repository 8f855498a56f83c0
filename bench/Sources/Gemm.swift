// GEMM throughput: Fusion's `sgemm` (single-threaded OpenBLAS calls split across our threads) and,
// as the yardstick of DESIGN.md, OpenBLAS sgemm with its own 2-thread pool; on AVX512-BF16 CPUs
// also Fusion's bf16 products (the same split over the CKernels bf16 GEMM).
import CBLAS
import Foundation
import Tensors

func benchGemm() {
    var fields: [String: Any] = [:]
    for n in [256, 512, 1024] {
        let a = RNG(seed: 1).normal([n, n]), b = RNG(seed: 2).normal([n, n]), c = Tensor.empty([n, n])
        let reps = n <= 256 ? 200 : n <= 512 ? 40 : 8
        let flops = 2.0 * Double(n * n * n) * Double(reps)
        let ours = time { for _ in 0..<reps { sgemm(transA: false, transB: false, m: n, n: n, k: n, a.data, lda: n, b.data, ldb: n, c.data, ldc: n) } }
        openblas_set_num_threads(2)
        let blas = time {
            for _ in 0..<reps {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a.data, Int32(n),
                            b.data, Int32(n), 0, c.data, Int32(n))
            }
        }
        openblas_set_num_threads(1)
        var line = String(format: "gemm n=%d  Fusion %.1f GFLOP/s  OpenBLAS 2-thread %.1f GFLOP/s", n, flops / ours / 1e9, flops / blas / 1e9)
        fields["fusion_\(n)"] = flops / ours / 1e9
        fields["openblas2_\(n)"] = flops / blas / 1e9
        if MatmulPrecision.bf16Available {
            let bf16 = MatmulPrecision.with(.bf16) { time { for _ in 0..<reps { sgemm(transA: false, transB: false, m: n, n: n, k: n, a.data, lda: n, b.data, ldb: n, c.data, ldc: n) } } }
            line += String(format: "  Fusion bf16 %.1f GFLOP/s", flops / bf16 / 1e9)
            fields["fusion_bf16_\(n)"] = flops / bf16 / 1e9
        }
        print(line)
    }
    report("gemm", fields)
}

/// The decoder step's GEMM shapes (forward x·Wᵀ, backward dX and dW) through Fusion's `sgemm`:
/// how close each gets to the square-matrix peak (`fusion-bench gemm-shapes`).
func benchGemmShapes() {
    let m = 2048  // tokens: B·T of the reference step
    for (name, n, k) in [("qkv", 768, 256), ("proj", 256, 256), ("w13", 2048, 256), ("w2", 256, 1024), ("head", 512, 256)] {
        let x = RNG(seed: 1).normal([m, k]), w = RNG(seed: 2).normal([n, k]), y = Tensor.empty([m, n])
        let gx = Tensor.empty([m, k]), gw = Tensor.empty([n, k])
        let flops = 2.0 * Double(m * n * k)
        let f = time(warmup: 3, repeats: 15) { sgemm(transA: false, transB: true, m: m, n: n, k: k, x.data, lda: k, w.data, ldb: k, y.data, ldc: n) }
        let dx = time(warmup: 3, repeats: 15) { sgemm(transA: false, transB: false, m: m, n: k, k: n, y.data, lda: n, w.data, ldb: k, gx.data, ldc: k) }
        let dw = time(warmup: 3, repeats: 15) { sgemm(transA: true, transB: false, m: n, n: k, k: m, y.data, lda: n, x.data, ldb: k, gw.data, ldc: k) }
        print(String(format: "gemm-shape %-5@ %4d×%4d×%4d  forward %.0f  dX %.0f  dW %.0f GFLOP/s", name, m, n, k,
                     flops / f / 1e9, flops / dx / 1e9, flops / dw / 1e9))
    }
}
