// The bf16 GEMM: C = α·op(A)·op(B) + β·C with both operands rounded to bf16 and fp32 sums, on
// AVX512-BF16 (vdpbf16ps: 16 lanes, each adding the products of one pair of bf16s). Blocked like
// BLIS: a KC×NC block of op(B) and an MC×KC block of op(A) are packed as bf16 pairs along K, and a
// micro-kernel keeps an MR×NR tile of C in 24 zmm accumulators.
//
// Packed layouts (u32 = one bf16 pair, the even k in the low half):
//   B: panels of NR columns, each [p][j] (p = k/2), so one p is NR/16 vector loads; a transposed
//      B (a weight, its pairs adjacent in memory) goes through a 16×16 register transpose;
//   A: panels of MR rows, [i][p] when A is not transposed (its pairs are adjacent in memory), or
//      the whole block as [p][i] when it is (its rows are), so both pack in whole vectors; the
//      kernel broadcasts one u32 per row and p.
// Edges are zero-padded in the packs and masked in the stores.
// Measured single-threaded on the Zen 4 machine Fusion is benchmarked on: 1.7-2.0x OpenBLAS sgemm
// at the decoder's shapes (M = 2048 rows, N and K 256-2048), and the results match an fp64 sum of
// the bf16-rounded operands to fp32 rounding. On Intel cores with AMX (Sapphire Rapids and later),
// where vdpbf16ps runs at half the FMA's FLOP rate, the product goes to tile registers instead
// (AMX section below): 170-370 GFLOP/s single-threaded at those shapes on Emerald Rapids, where
// the dot-product kernel ran about 40 and OpenBLAS fp32 120-150.
#include "CKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MR 6          /* rows of the C tile */
#define NRV 4         /* zmm vectors across the C tile: NR = 64 columns */
#define NR (16 * NRV)
#define KC 384        /* K per packed block (192 pairs): an A panel is 4.5 KB, a B panel 48 KB */
#define MC 96         /* rows of op(A) per packed block (36 KB, in L2) */
#define NC 2048       /* columns of op(B) per packed block */

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

int fusion_bf16_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

static inline __mmask16 lanes(long n) { return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* Two rows of 16 floats → 16 lanes holding (lo, hi) bf16 pairs, rounded to nearest even. */
TGT static inline __m512i pairs16(__m512 lo, __m512 hi) {
    /* [lo0..lo15, hi0..hi15] as bf16, then interleaved: lo0 hi0 lo1 hi1 … */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                           23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(order, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* 32 consecutive floats (masked to n) → 16 lanes of consecutive pairs. */
TGT static inline __m512i adjacent16(const float *x, long n) {
    __m512 lo = _mm512_maskz_loadu_ps(lanes(n), x);
    __m512 hi = _mm512_maskz_loadu_ps(lanes(n - 16), x + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
}

static inline long roundUp(long x, long m) { return (x + m - 1) / m * m; }

/* The row stride of a transposed A block of mc rows: whole MR panels, rounded up to 16 lanes. */
static inline long rowsOfA(long mc) { return roundUp(roundUp(mc, MR), 16); }

/* Rows of an op(A) that is not transposed (its pairs adjacent in memory) → [i][p], kpad pairs a
   row. Rows mc..<mpad and the pairs past kc are zero. */
TGT static void packRows(const float *a, long lda, long mc, long kc, long mpad, long kpad, uint32_t *ap) {
    for (long i = 0; i < mpad; i++) {
        uint32_t *row = ap + i * kpad;
        if (i >= mc) { memset(row, 0, (size_t)kpad * 4); continue; }
        for (long p = 0; p < kpad; p += 16)
            _mm512_mask_storeu_epi32(row + p, lanes(kpad - p), adjacent16(a + i * lda + 2 * p, kc - 2 * p));
    }
}

/* Element (r, p) of op(X) where X is stored row-major with leading dimension ld. */
#define AT(X, trans, ld, r, p) ((trans) ? (X)[(p) * (ld) + (r)] : (X)[(r) * (ld) + (p)])

/* A block (mc × kc). Not transposed: row panels of MR, each [i][p] (pairs adjacent in memory);
   transposed: the block as [p][i], rowsOfA(mc) apart (rows adjacent in memory). Rows past mc and
   the odd k are zero. */
TGT static void packA(int trans, const float *a, long lda, long mc, long kc, uint32_t *ap) {
    long kp = (kc + 1) / 2;
    if (trans) {
        /* One row of pairs per p across the whole block, 16 rows at a time. */
        long width = rowsOfA(mc);
        for (long p = 0; p < kp; p++) {
            const float *r0 = a + (2 * p) * lda;
            for (long i = 0; i < width; i += 16) {
                __mmask16 m = lanes(mc - i);
                __m512 lo = _mm512_maskz_loadu_ps(m, r0 + i);
                __m512 hi = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(m, r0 + lda + i) : _mm512_setzero_ps();
                _mm512_storeu_si512(ap + p * width + i, pairs16(lo, hi));
            }
        }
        return;
    }
    packRows(a, lda, mc, kc, roundUp(mc, MR), kp, ap);
}

/* r[j] lane p → r[p] lane j: a 16 × 16 transpose of 32-bit elements. */
TGT static inline void transpose16(__m512i r[16]) {
    __m512i t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* u[4g + c], 128-bit lane L: rows 4g..4g+3 at element 4L + c. */
    for (int g = 0; g < 4; g++) {
        u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
    }
    for (int c = 0; c < 4; c++) {
        __m512i v = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88), w = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);
        __m512i x = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88), y = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_i32x4(v, x, 0x88);
        r[8 + c] = _mm512_shuffle_i32x4(v, x, 0xDD);
        r[4 + c] = _mm512_shuffle_i32x4(w, y, 0x88);
        r[12 + c] = _mm512_shuffle_i32x4(w, y, 0xDD);
    }
}

/* B block (kc × nc) → column panels of NR, each [p][j] with kpad ≥ (kc + 1)/2 rows of pairs.
   Columns past nc, the odd k and the pairs past it up to kpad are zero. */
TGT static void packB(int trans, const float *b, long ldb, long kc, long nc, long kpad, uint32_t *bp) {
    long kp = (kc + 1) / 2;
    for (long j0 = 0; j0 < nc; j0 += NR) {
        long nr = nc - j0 < NR ? nc - j0 : NR;
        uint32_t *panel = bp + j0 * kpad;
        if (kpad > kp) memset(panel + kp * NR, 0, (size_t)(kpad - kp) * NR * 4);
        if (!trans) {
            for (long p = 0; p < kp; p++) {
                const float *r0 = b + (2 * p) * ldb + j0;
                for (int v = 0; v < NRV; v++) {
                    __mmask16 m = lanes(nr - 16 * v);
                    __m512 lo = _mm512_maskz_loadu_ps(m, r0 + 16 * v);
                    __m512 hi = 2 * p + 1 < kc ? _mm512_maskz_loadu_ps(m, r0 + ldb + 16 * v) : _mm512_setzero_ps();
                    _mm512_storeu_si512(panel + p * NR + 16 * v, pairs16(lo, hi));
                }
            }
        } else {
            /* Column j of op(B) is row j of B, its pairs adjacent: 16 columns × 16 pairs at a
               time are converted and transposed in registers. */
            for (long jj = 0; jj < NR; jj += 16) {
                for (long p0 = 0; p0 < kp; p0 += 16) {
                    __m512i r[16];
                    for (int j = 0; j < 16; j++)
                        r[j] = jj + j < nr ? adjacent16(b + (j0 + jj + j) * ldb + 2 * p0, kc - 2 * p0)
                                           : _mm512_setzero_si512();
                    transpose16(r);
                    for (int q = 0; q < 16 && p0 + q < kp; q++) _mm512_storeu_si512(panel + (p0 + q) * NR + jj, r[q]);
                }
            }
        }
    }
}

/* C tile (mr × nr) = α·Σ_p a_p ⊗ b_p (+ β·C on the first K block, else + C). */
#define MICRO(NAME, AI, AP)                                                                           \
    TGT static void NAME(long kp, const uint32_t *restrict a, long stride, const uint32_t *restrict b, float *c, long ldc, \
                         long mr, long nr, float alpha, float beta, int first) {                      \
        __m512 acc[MR][NRV];                                                                          \
        for (int i = 0; i < MR; i++)                                                                  \
            for (int v = 0; v < NRV; v++) acc[i][v] = _mm512_setzero_ps();                            \
        for (long p = 0; p < kp; p++) {                                                               \
            __m512bh bv[NRV];                                                                         \
            for (int v = 0; v < NRV; v++) bv[v] = (__m512bh)_mm512_loadu_si512(b + p * NR + 16 * v);  \
            for (int i = 0; i < MR; i++) {                                                            \
                __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[(i) * (AI) + p * (AP)]);             \
                for (int v = 0; v < NRV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], av, bv[v]);     \
            }                                                                                         \
        }                                                                                             \
        __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);                                 \
        for (int i = 0; i < MR; i++) {                                                                \
            if (i >= mr) break;                                                                       \
            float *ci = c + i * ldc;                                                                  \
            for (int v = 0; v < NRV; v++) {                                                           \
                __mmask16 m = lanes(nr - 16 * v);                                                     \
                __m512 r = _mm512_mul_ps(acc[i][v], va);                                              \
                if (!first) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, ci + 16 * v));              \
                else if (beta != 0) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, ci + 16 * v), r); \
                _mm512_mask_storeu_ps(ci + 16 * v, m, r);                                             \
            }                                                                                         \
        }                                                                                             \
    }

MICRO(microRows, stride, 1)  /* A panel [i][p], rows `stride` apart */
MICRO(microCols, 1, stride)  /* A block [p][i], p `stride` apart */

/* Each thread's pack buffers, grown as needed and kept for its lifetime. */
static _Thread_local uint32_t *bufA, *bufB;
static _Thread_local size_t capA, capB;

static void *grow(uint32_t **buf, size_t *cap, size_t need) {
    if (need > *cap) {
        free(*buf);
        *buf = aligned_alloc(64, (need * 4 + 63) / 64 * 64);
        *cap = need;
    }
    return *buf;
}

TGT static void sgemmDot(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                         const float *B, long ldb, float beta, float *C, long ldc) {
    long kcMax = K < KC ? K : KC, kpMax = (kcMax + 1) / 2;
    long ncMax = N < NC ? N : NC, mcMax = M < MC ? M : MC;
    uint32_t *ap = grow(&bufA, &capA, (size_t)rowsOfA(mcMax) * kpMax);
    uint32_t *bp = grow(&bufB, &capB, (size_t)((ncMax + NR - 1) / NR * NR) * kpMax);
    for (long jc = 0; jc < N; jc += NC) {
        long nc = N - jc < NC ? N - jc : NC;
        for (long pc = 0; pc < K; pc += KC) {
            long kc = K - pc < KC ? K - pc : KC, kp = (kc + 1) / 2;
            const float *bsrc = transB ? B + jc * ldb + pc : B + pc * ldb + jc;
            packB(transB, bsrc, ldb, kc, nc, kp, bp);
            for (long ic = 0; ic < M; ic += MC) {
                long mc = M - ic < MC ? M - ic : MC;
                const float *asrc = transA ? A + pc * lda + ic : A + ic * lda + pc;
                packA(transA, asrc, lda, mc, kc, ap);
                for (long jr = 0; jr < nc; jr += NR) {
                    long nr = nc - jr < NR ? nc - jr : NR;
                    const uint32_t *bpanel = bp + jr * kp;
                    for (long ir = 0; ir < mc; ir += MR) {
                        long mr = mc - ir < MR ? mc - ir : MR;
                        float *c = C + (ic + ir) * ldc + jc + jr;
                        if (transA) microCols(kp, ap + ir, rowsOfA(mc), bpanel, c, ldc, mr, nr, alpha, beta, pc == 0);
                        else microRows(kp, ap + ir * kp, kp, bpanel, c, ldc, mr, nr, alpha, beta, pc == 0);
                    }
                }
            }
        }
    }
}

// MARK: AMX tiles
/* On CPUs with AMX-BF16 (Sapphire Rapids and later) the same product runs on tile registers:
   TDPBF16PS multiplies a 16×32 bf16 tile of A by a 32×16 one of B into a 16×16 fp32 tile, about
   ten times the FMA units' rate. A block is packed [i][p] (pairs along K) in rows of KPAD pairs, B
   reuses packB's [p][j] panels; both padded with zeros to whole 16-pair steps. The kernel keeps a
   32×32 block of C in four accumulator tiles (A0, A1 × B0, B1). Linux grants the tile state per
   process (arch_prctl); FUSION_AMX=0 keeps the AVX512-BF16 kernel above. */
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,amx-tile,amx-bf16")))
#define AKC 1024     /* K per packed block (512 pairs) */
#define AMC 128      /* rows of op(A) per packed block: 256 KB */
#define ANC 512      /* columns of op(B) per packed block: 1 MB */

static int amxState;  /* 0 unknown, 1 usable, -1 not */

static int amxUsable(void) {
    int s = __atomic_load_n(&amxState, __ATOMIC_ACQUIRE);
    if (s) return s > 0;
    const char *env = getenv("FUSION_AMX");
    __builtin_cpu_init();
    int ok = !(env && strcmp(env, "0") == 0) && __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16");
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18): refused by kernels without it. */
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    __atomic_store_n(&amxState, ok ? 1 : -1, __ATOMIC_RELEASE);
    return ok;
}

/* op(A) block (mc × kc) → rows of kpad pairs, [i][p]; rows up to mpad and pairs past kc zero. */
AMX_TGT static void packAT(int trans, const float *a, long lda, long mc, long kc, long mpad, long kpad, uint32_t *ap) {
    if (!trans) {
        packRows(a, lda, mc, kc, mpad, kpad, ap);
        return;
    }
    /* Row k of A is column k of op(A): pairs of rows give 16 rows' pairs at a time ([p][i]),
       transposed in registers 16 × 16 into [i][p]. */
    for (long i0 = 0; i0 < mpad; i0 += 16) {
        __mmask16 m = lanes(mc - i0);
        for (long p0 = 0; p0 < kpad; p0 += 16) {
            __m512i r[16];
            for (int q = 0; q < 16; q++) {
                long k = 2 * (p0 + q);
                __m512 lo = k < kc ? _mm512_maskz_loadu_ps(m, a + k * lda + i0) : _mm512_setzero_ps();
                __m512 hi = k + 1 < kc ? _mm512_maskz_loadu_ps(m, a + (k + 1) * lda + i0) : _mm512_setzero_ps();
                r[q] = pairs16(lo, hi);
            }
            transpose16(r);
            for (int i = 0; i < 16; i++) _mm512_storeu_si512(ap + (i0 + i) * kpad + p0, r[i]);
        }
    }
}

/* C block (mr ≤ 32 × nr ≤ 32) from the A rows at a (kpad pairs each) and the B panel columns at b
   (rows NR apart): α·A·B, + β·C on the first K block (C unread when β = 0), else + C. */
AMX_TGT static void amxBlock(long kpad, const uint32_t *a, const uint32_t *b, float *c, long ldc, long mr, long nr,
                             float alpha, float beta, int first) {
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (long p0 = 0; p0 < kpad; p0 += 16) {
        _tile_loadd(4, a + p0, kpad * 4);
        _tile_loadd(5, a + 16 * kpad + p0, kpad * 4);
        _tile_loadd(6, b + p0 * NR, NR * 4);
        _tile_loadd(7, b + p0 * NR + 16, NR * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    float t[32 * 32] __attribute__((aligned(64)));
    _tile_stored(0, t, 128);
    _tile_stored(1, t + 16, 128);
    _tile_stored(2, t + 16 * 32, 128);
    _tile_stored(3, t + 16 * 32 + 16, 128);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (long i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (int v = 0; v < 2; v++) {
            __mmask16 m = lanes(nr - 16 * v);
            __m512 r = _mm512_mul_ps(_mm512_load_ps(t + i * 32 + 16 * v), va);
            if (!first) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(m, ci + 16 * v));
            else if (beta != 0) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m, ci + 16 * v), r);
            _mm512_mask_storeu_ps(ci + 16 * v, m, r);
        }
    }
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

AMX_TGT static void sgemmTiles(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                               const float *B, long ldb, float beta, float *C, long ldc) {
    TileConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int i = 0; i < 8; i++) { cfg.rows[i] = 16; cfg.colsb[i] = 64; }
    _tile_loadconfig(&cfg);
    long kcMax = K < AKC ? K : AKC, kpadMax = roundUp((kcMax + 1) / 2, 16);
    long ncMax = N < ANC ? N : ANC, mcMax = M < AMC ? M : AMC;
    uint32_t *ap = grow(&bufA, &capA, (size_t)roundUp(mcMax, 32) * kpadMax);
    uint32_t *bp = grow(&bufB, &capB, (size_t)roundUp(ncMax, NR) * kpadMax);
    for (long jc = 0; jc < N; jc += ANC) {
        long nc = N - jc < ANC ? N - jc : ANC;
        for (long pc = 0; pc < K; pc += AKC) {
            long kc = K - pc < AKC ? K - pc : AKC, kpad = roundUp((kc + 1) / 2, 16);
            packB(transB, transB ? B + jc * ldb + pc : B + pc * ldb + jc, ldb, kc, nc, kpad, bp);
            for (long ic = 0; ic < M; ic += AMC) {
                long mc = M - ic < AMC ? M - ic : AMC, mpad = roundUp(mc, 32);
                packAT(transA, transA ? A + pc * lda + ic : A + ic * lda + pc, lda, mc, kc, mpad, kpad, ap);
                for (long jr = 0; jr < nc; jr += 32) {
                    long nr = nc - jr < 32 ? nc - jr : 32;
                    const uint32_t *panel = bp + (jr / NR * NR) * kpad + jr % NR;
                    for (long ir = 0; ir < mc; ir += 32) {
                        long mr = mc - ir < 32 ? mc - ir : 32;
                        amxBlock(kpad, ap + ir * kpad, panel, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, alpha, beta, pc == 0);
                    }
                }
            }
        }
    }
    _tile_release();
}

void fusion_sgemm_bf16(int transA, int transB, long M, long N, long K, float alpha, const float *A, long lda,
                       const float *B, long ldb, float beta, float *C, long ldc) {
    if (amxUsable()) sgemmTiles(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else sgemmDot(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#else
int fusion_bf16_supported(void) { return 0; }
void fusion_sgemm_bf16(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                       const float *b, long ldb, float beta, float *c, long ldc) {
    __builtin_trap();  // callers check fusion_bf16_supported() first
}
#endif
