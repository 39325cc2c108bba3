#ifndef CERTRELOAD_MEMORY_H
#define CERTRELOAD_MEMORY_H

/// Returns the free memory of every malloc arena to the system (glibc's malloc_trim(0)); does
/// nothing with another C library.
void certreload_release_free_memory(void);

/// Caps glibc's malloc arenas at `arenas` (mallopt M_ARENA_MAX) unless MALLOC_ARENA_MAX is set
/// in the environment; does nothing with another C library. glibc's default is 8 per core: in
/// a daemon whose threads come and go, each new thread's arena keeps fragments of the first
/// pass for good (measured at 1,000 lineages: 10.3 MiB anonymous by default, 4.6 with 2).
void certreload_limit_malloc_arenas(int arenas);

#endif
