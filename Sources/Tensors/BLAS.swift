// How Fusion sets OpenBLAS up, once, before its first call: single-threaded (Parallel splits large
// products over its own threads), on the kernel set this CPU can run. Not a wrapper of BLAS
// routines: products go through `sgemm` (Ops/Matmul.swift).
import CBLAS
import CKernels

public enum BLAS {
    /// The kernel set OpenBLAS picked when it loaded, and the one products run on. They differ
    /// where a DYNAMIC_ARCH OpenBLAS did not recognise the CPU and fell back to SSE3 kernels
    /// (Debian's 0.3.21 on Emerald Rapids picks "Prescott"): Fusion then selects the set
    /// OpenBLAS uses for the CPU's features ("Cooperlake", "SkylakeX" or "Haswell"), 4-5× faster.
    /// OPENBLAS_CORETYPE, when set, is left to decide. Empty strings when the BLAS is not OpenBLAS.
    public static let cores: (detected: String, running: String) = {
        let detected = String(cString: fusion_blas_core())
        fusion_blas_match_cpu()
        openblas_set_num_threads(1)
        return (detected, String(cString: fusion_blas_core()))
    }()

    /// One line for logs and benchmarks, e.g. "OpenBLAS Cooperlake kernels (it detected Prescott)".
    public static var summary: String {
        let (detected, running) = cores
        if running.isEmpty { return "BLAS: not OpenBLAS" }
        return "OpenBLAS \(running) kernels" + (detected == running ? "" : " (it detected \(detected); chosen for this CPU)")
    }
}
