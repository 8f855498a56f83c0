/* OpenBLAS's kernel choice on CPUs its build does not know. A DYNAMIC_ARCH OpenBLAS that cannot
 * identify the processor (Debian's 0.3.21 on Emerald Rapids, family 6 model 207) falls back to
 * its Prescott (SSE3) kernels, which run Fusion's GEMMs 4-5x slower than the AVX-512 ones the CPU
 * can execute. This re-selects OpenBLAS's own kernel table by the CPU's features, exactly as
 * OPENBLAS_CORETYPE would at load time. Not a BLAS, and never overrides a choice OpenBLAS made
 * for a CPU it recognised or one the user made. OpenBLAS is looked up at run time (dlsym), so
 * any other BLAS, or an OpenBLAS built for one architecture, is left alone. */
#define _GNU_SOURCE
#include "CKernels.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <strings.h>

const char *fusion_blas_core(void) {
    char *(*corename)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_corename");
    return corename ? corename() : "";
}

/* OpenBLAS core names whose kernels use AVX2/FMA or AVX-512 (0.3.x spellings). */
static int vectorCore(const char *name) {
    static const char *const cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"};
    for (unsigned i = 0; i < sizeof cores / sizeof cores[0]; i++)
        if (strcasecmp(name, cores[i]) == 0) return 1;
    return 0;
}

/* The core OpenBLAS would pick for a CPU with these features, or NULL (no AVX2 and FMA). */
static const char *coreForCPU(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512cd"))
        return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}

void fusion_blas_match_cpu(void) {
    if (getenv("OPENBLAS_CORETYPE")) return;  // the user's choice stands
    void (*quit)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_quit");
    void (*init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    const char *want = coreForCPU(), *have = fusion_blas_core();
    if (!quit || !init || !want || !*have || vectorCore(have)) return;
    /* gotoblas_dynamic_init reads OPENBLAS_CORETYPE, picks that table and sets its blocking
     * parameters; quit clears the current table first. Called before any BLAS routine has run,
     * so no packed buffer or thread holds the old table. */
    setenv("OPENBLAS_CORETYPE", want, 0);
    quit();
    init();
    unsetenv("OPENBLAS_CORETYPE");
}
