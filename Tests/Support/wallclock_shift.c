/* wallclock_shift.so: an LD_PRELOAD library that moves a process's wall clock (and only that)
 * by the number of seconds in the file named by $WALLCLOCK_SHIFT_FILE, read at every call, the
 * way setting the system clock would: time(), gettimeofday() and clock_gettime() of
 * CLOCK_REALTIME(_COARSE) are shifted; CLOCK_MONOTONIC, CLOCK_BOOTTIME and every timer are left
 * alone. Used by Tests/e2e/watch-faults.sh for wall-clock jumps while `certreload watch` runs.
 *
 * Why not libfaketime: its timerfd_settime() wrapper shifts absolute deadlines of CLOCK_MONOTONIC
 * and CLOCK_BOOTTIME timers too (DONT_FAKE_MONOTONIC=1 notwithstanding), so with -1d libdispatch's
 * timers fire a day late (a 500 ms Task.sleep never returns) and with +60d at once; and without
 * its wrapper its constructor setenv()s FAKETIME_SHARED, which moves `environ` to the heap and
 * leaves Swift's CommandLine.arguments empty (Swift on Linux finds argv by walking back from it).
 *
 *   gcc -shared -fPIC -O2 -o wallclock_shift.so wallclock_shift.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long shift_seconds(void) {
    const char *path = getenv("WALLCLOCK_SHIFT_FILE");
    if (!path) return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buffer[32] = {0};
    ssize_t n = read(fd, buffer, sizeof buffer - 1);
    close(fd);
    return n > 0 ? strtoll(buffer, NULL, 10) : 0;
}

static int (*real_clock_gettime)(clockid_t, struct timespec *);

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (!real_clock_gettime) real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real_clock_gettime(clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) ts->tv_sec += shift_seconds();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    struct timespec ts;
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    (void)tz;
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}
