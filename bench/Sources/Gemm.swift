// GEMM throughput: Fusion's `sgemm` (single-threaded OpenBLAS calls split across our threads) and,
// as the yardstick of DESIGN.md, OpenBLAS sgemm with its own 2-thread pool.
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
        print(String(format: "gemm n=%d  Fusion %.1f GFLOP/s  OpenBLAS 2-thread %.1f GFLOP/s", n, flops / ours / 1e9, flops / blas / 1e9))
        fields["fusion_\(n)"] = flops / ours / 1e9
        fields["openblas2_\(n)"] = flops / blas / 1e9
    }
    report("gemm", fields)
}
