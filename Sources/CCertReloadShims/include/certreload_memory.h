#ifndef CERTRELOAD_MEMORY_H
#define CERTRELOAD_MEMORY_H

/// Returns the free memory of every malloc arena to the system (glibc's malloc_trim(0)); does
/// nothing with another C library.
void certreload_release_free_memory(void);

#endif
