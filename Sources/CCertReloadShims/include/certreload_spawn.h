#ifndef CERTRELOAD_SPAWN_H
#define CERTRELOAD_SPAWN_H

/// pipe2(fds, O_CLOEXEC) (pipe2 needs _GNU_SOURCE, which Swift's Glibc does not set).
/// Returns 0, or -errno.
int certreload_pipe_cloexec(int fds[2]);

#endif
