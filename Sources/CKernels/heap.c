// The C heap's free memory back to the system, after short-lived work (the memory plan's probes)
// whose freed blocks glibc would otherwise keep: a resident-size reading after it sees what the
// process really keeps.
#include "CKernels.h"
#include <stdlib.h>   /* defines __GLIBC__ under glibc */
#if defined(__GLIBC__)
#include <malloc.h>
void fusion_release_free_heap(void) { malloc_trim(0); }
#else
void fusion_release_free_heap(void) {}
#endif
