#ifndef CERTRELOAD_ACCESS_H
#define CERTRELOAD_ACCESS_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/xattr.h> /* getxattr, for POSIX ACLs (Swift's Glibc does not export it) */

/* The access probe (Sources/CertReload/Access): code that runs between fork and _exit. */

/// What the access probe tries for one path.
enum {
    CERTRELOAD_PROBE_TRAVERSE = 0, /* search (x) permission on a directory, through all ancestors */
    CERTRELOAD_PROBE_READ = 1,     /* type check (O_PATH + fstat), then open(O_RDONLY|O_NONBLOCK) */
    CERTRELOAD_PROBE_STALL = 2     /* blocks for ever, like an open on a hung mount (tests only) */
};

/// Forks a child that takes on uid, gid and the supplementary groups, tries each path,
/// and reports one errno per path (0 = allowed) into `results`; a READ path that is not a
/// regular file reports -(its S_IFMT bits) and is never opened for reading.
/// Between fork and _exit the child calls only async-signal-safe functions.
/// Returns 0, or -errno when the probe itself failed (fork, pipe, or the identity change,
/// reported as -EPERM when not running as root). With `timeout_ms` > 0 the child is
/// killed when it has not answered in time: -ETIMEDOUT, and `*completed` says how many
/// results (those before the step that hung) are valid.
int certreload_access_probe(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                            const char *const *paths, const unsigned char *kinds,
                            size_t count, int timeout_ms, size_t *completed, int *results);

/// pipe2(fds, O_CLOEXEC) (pipe2 needs _GNU_SOURCE, which Swift's Glibc does not set).
/// Returns 0, or -errno. Used by the probe and by reload commands.
int certreload_pipe_cloexec(int fds[2]);

#endif
