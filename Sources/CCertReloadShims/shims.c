#define _GNU_SOURCE
#include "certreload_access.h"
#include "certreload_x509.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
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

/* Reaps a probe child that did not die at once after SIGKILL (a task stuck in an
 * uninterruptible wait on a hung mount), so it never stays a zombie and the caller
 * never waits for it. */
static void *probe_reaper(void *arg) {
    pid_t pid = (pid_t)(intptr_t)arg;
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return NULL;
}

static void probe_kill_and_reap(pid_t pid) {
    kill(pid, SIGKILL);
    for (int i = 0; i < 100; i++) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) return;
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    pthread_t thread;
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) == 0) {
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&thread, &attributes, probe_reaper, (void *)(intptr_t)pid) != 0) {
            /* No thread: the child stays a zombie until certreload exits. */
        }
        pthread_attr_destroy(&attributes);
    }
}

static long long probe_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int certreload_access_probe(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups,
                            const char *const *paths, const unsigned char *kinds,
                            size_t count, int timeout_ms, size_t *completed, int *results) {
    *completed = 0;
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
            } else if (kinds[i] == CERTRELOAD_PROBE_STALL) {
                pause();
            } else {
                /* The type first: an open of a socket fails oddly (ENXIO), of a device may
                 * act on it. O_PATH opens nothing but the name, and needs only search
                 * permission on the directories. */
                int pathfd = open(paths[i], O_PATH | O_CLOEXEC);
                struct stat info;
                if (pathfd < 0) {
                    result = errno;
                } else if (fstat(pathfd, &info) != 0) {
                    result = errno;
                    close(pathfd);
                } else if (!S_ISREG(info.st_mode)) {
                    result = -(int)(info.st_mode & S_IFMT);
                    close(pathfd);
                } else {
                    close(pathfd);
                    int fd = open(paths[i], O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                    if (fd < 0) {
                        result = errno;
                    } else {
                        /* Swapped for something else between the two opens. */
                        if (fstat(fd, &info) == 0 && !S_ISREG(info.st_mode))
                            result = -(int)(info.st_mode & S_IFMT);
                        close(fd);
                    }
                }
            }
            probe_write_all(fds[1], &result, sizeof result);
        }
        _exit(0);
    }
    close(fds[1]);
    /* Parent: read the child's status word, then one int per path, within the deadline. */
    size_t want = (count + 1) * sizeof(int);
    int *buffer = malloc(want);
    if (buffer == NULL) {
        close(fds[0]);
        probe_kill_and_reap(pid);
        return -ENOMEM;
    }
    long long deadline = probe_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    size_t got = 0;
    int timed_out = 0;
    while (got < want) {
        long long left = deadline - probe_now_ms();
        if (timeout_ms > 0) {
            if (left <= 0) { timed_out = 1; break; }
            struct pollfd waiting = {fds[0], POLLIN, 0};
            int ready = poll(&waiting, 1, left > INT_MAX ? INT_MAX : (int)left);
            if (ready < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (ready == 0) { timed_out = 1; break; }
        }
        ssize_t n = read(fds[0], (char *)buffer + got, want - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    close(fds[0]);
    int rc = 0;
    if (timed_out) {
        probe_kill_and_reap(pid);
    } else {
        int wstatus = 0;
        while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {}
    }
    size_t done = got < sizeof(int) ? 0 : (got - sizeof(int)) / sizeof(int);
    if (got >= sizeof(int) && buffer[0] != 0) {
        rc = buffer[0];
    } else if (timed_out) {
        memcpy(results, buffer + 1, done * sizeof(int));
        *completed = done;
        rc = -ETIMEDOUT;
    } else if (got < sizeof(int) || got < want) {
        rc = -EIO;
    } else {
        memcpy(results, buffer + 1, count * sizeof(int));
        *completed = count;
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
