#define _GNU_SOURCE
#include "certreload_access.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int certreload_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}
