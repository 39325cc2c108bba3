#include "certreload_memory.h"

#include <stdlib.h> /* defines __GLIBC__ with glibc */
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void certreload_limit_malloc_arenas(int arenas) {
#if defined(__GLIBC__)
    if (getenv("MALLOC_ARENA_MAX") == NULL && arenas > 0) mallopt(M_ARENA_MAX, arenas);
#else
    (void)arenas;
#endif
}

void certreload_release_free_memory(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
