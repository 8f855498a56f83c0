// The C heap and the system: free memory handed back after short-lived work (the memory plan's
// probes), so a resident-size reading sees what the process really keeps; and a fixed mmap
// threshold, so large buffers always come from (and go back to) the system.
#include "CKernels.h"
#include <stdlib.h>   /* defines __GLIBC__ under glibc */
#if defined(__GLIBC__)
#include <malloc.h>
void fusion_release_free_heap(void) { malloc_trim(0); }
void fusion_fix_mmap_threshold(long bytes) { mallopt(M_MMAP_THRESHOLD, (int)bytes); }
#else
void fusion_release_free_heap(void) {}
void fusion_fix_mmap_threshold(long bytes) { (void)bytes; }
#endif
