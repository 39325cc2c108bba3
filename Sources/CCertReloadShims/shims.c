#define _GNU_SOURCE
#include "certreload_access.h"
#include "certreload_x509.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void probe_write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

int certreload_access_probe(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                            const char *const *paths, const unsigned char *kinds,
                            size_t count, int *results) {
    int fds[2];
    if (certreload_pipe_cloexec(fds) != 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only from here to _exit. */
        close(fds[0]);
        int status = 0;
        if (setgroups(ngroups, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
            setresuid(uid, uid, uid) != 0) {
            status = -errno;
            probe_write_all(fds[1], &status, sizeof status);
            _exit(2);
        }
        probe_write_all(fds[1], &status, sizeof status);
        for (size_t i = 0; i < count; i++) {
            int result = 0;
            if (kinds[i] == CERTRELOAD_PROBE_TRAVERSE) {
                if (access(paths[i], X_OK) != 0) result = errno;
            } else {
                int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0) result = errno;
                else close(fd);
            }
            probe_write_all(fds[1], &result, sizeof result);
        }
        _exit(0);
    }
    close(fds[1]);
    /* Parent: read the child's status word, then one int per path. */
    size_t want = (count + 1) * sizeof(int);
    int *buffer = malloc(want);
    if (buffer == NULL) {
        close(fds[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fds[0], (char *)buffer + got, want - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {}
    int rc = 0;
    if (got < sizeof(int)) {
        rc = -EIO;
    } else if (buffer[0] != 0) {
        rc = buffer[0];
    } else if (got < want) {
        rc = -EIO;
    } else {
        memcpy(results, buffer + 1, count * sizeof(int));
    }
    free(buffer);
    return rc;
}

int certreload_pem_no_password(char *buf, int size, int rwflag, void *userdata) {
    (void)buf; (void)size; (void)rwflag; (void)userdata;
    return -1;
}

GENERAL_NAMES *certreload_x509_get_sans(const X509 *cert) {
    return X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
}

int certreload_general_names_count(const GENERAL_NAMES *names) {
    return names == NULL ? 0 : sk_GENERAL_NAME_num(names);
}

int certreload_general_name_at(const GENERAL_NAMES *names, int index, int *type,
                               const unsigned char **data, int *length) {
    const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
    if (name == NULL) return -1;
    *type = name->type;
    *data = NULL;
    *length = 0;
    switch (name->type) {
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI:
        *data = ASN1_STRING_get0_data(name->d.ia5);
        *length = ASN1_STRING_length(name->d.ia5);
        break;
    case GEN_IPADD:
        *data = ASN1_STRING_get0_data(name->d.iPAddress);
        *length = ASN1_STRING_length(name->d.iPAddress);
        break;
    default:
        break;
    }
    return 0;
}

void certreload_general_names_free(GENERAL_NAMES *names) {
    GENERAL_NAMES_free(names);
}

int certreload_x509_stack_count(const STACK_OF(X509) *stack) {
    return stack == NULL ? 0 : sk_X509_num(stack);
}

X509 *certreload_x509_stack_at(const STACK_OF(X509) *stack, int index) {
    return sk_X509_value(stack, index);
}

unsigned long certreload_xn_flag_rfc2253(void) {
    return XN_FLAG_RFC2253;
}
