#ifndef CCERTRELOAD_SHIMS_H
#define CCERTRELOAD_SHIMS_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/xattr.h>

/* Each concern keeps its shims in its own header and C file. */
#include "certreload_curl.h"
#include "certreload_systemd.h"
#include "certreload_tls.h"

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

/// A PEM password callback that refuses, so an encrypted key fails instead of prompting.
int certreload_pem_no_password(char *buf, int size, int rwflag, void *userdata);

/// subjectAltName entries of a certificate (NULL when it has none). Free with
/// certreload_general_names_free.
GENERAL_NAMES *certreload_x509_get_sans(const X509 *cert);
int certreload_general_names_count(const GENERAL_NAMES *names);
/// Entry `index`: its GEN_* type and, for DNS/IP/email, its bytes. Returns 0 on success.
int certreload_general_name_at(const GENERAL_NAMES *names, int index, int *type,
                               const unsigned char **data, int *length);
void certreload_general_names_free(GENERAL_NAMES *names);

/// STACK_OF(X509) accessors (macros in OpenSSL).
int certreload_x509_stack_count(const STACK_OF(X509) *stack);
X509 *certreload_x509_stack_at(const STACK_OF(X509) *stack, int index);

/// XN_FLAG_RFC2253 (a macro built from other macros).
unsigned long certreload_xn_flag_rfc2253(void);

#endif
