// Numeric kernels that need CPU instructions Swift cannot reach: the bf16 GEMM (AVX512-BF16);
// and OpenBLAS's kernel choice on CPUs its build does not recognise (blas_core.c).
#ifndef FUSION_CKERNELS_H
#define FUSION_CKERNELS_H

/// 1 when this CPU runs fusion_sgemm_bf16 (x86-64 with AVX512-BF16, BW and VL), else 0.
int fusion_bf16_supported(void);

/// C(M×N) = α·op(A)·op(B) + β·C, row-major, like cblas_sgemm, but with op(A) and op(B) rounded to
/// bf16 (nearest even) and the products summed in fp32. Single-threaded; needs
/// fusion_bf16_supported(). β = 0 never reads C. Runs on AMX tiles where the CPU has AMX-BF16 and
/// the kernel grants their state (FUSION_AMX=0 says no), else on AVX512-BF16 dot products.
void fusion_sgemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                       const float *b, long ldb, float beta, float *c, long ldc);

/// The name of the kernel set OpenBLAS runs ("SkylakeX", "Haswell", …), or "" when the BLAS is not
/// OpenBLAS.
const char *fusion_blas_core(void);

/// When a DYNAMIC_ARCH OpenBLAS fell back to pre-AVX2 kernels (a CPU newer than its build) on a
/// CPU with AVX2+FMA or AVX-512, re-selects the kernel set OpenBLAS would pick for those features
/// (fusion_blas_core() then names it); otherwise, or with OPENBLAS_CORETYPE set, changes nothing.
/// Must run before any BLAS routine.
void fusion_blas_match_cpu(void);

/// Returns the C heap's free memory to the system (glibc's malloc_trim(0)); a no-op elsewhere.
void fusion_release_free_heap(void);

/// Blocks of at least `bytes` are mapped from the system and unmapped when freed (glibc's
/// M_MMAP_THRESHOLD, fixed: glibc otherwise raises it each time it unmaps a block, and freed
/// large blocks then stay in its heap); a no-op elsewhere.
void fusion_fix_mmap_threshold(long bytes);

#endif
