// certreload's global executor: a FIFO of jobs served by at most one thread per CPU, and one
// timer thread; see certreload_executor.h for why. Job priorities are not used: certreload
// runs every task at the same priority.
#define _GNU_SOURCE
#include "certreload_executor.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

// --- the Swift runtime's hook (swift/Runtime/ConcurrencyHooks.def, swift_Concurrency) ---

typedef struct SwiftJob SwiftJob;
#define SWIFT_CC __attribute__((swiftcall))
typedef SWIFT_CC void (*enqueue_original)(SwiftJob *job);
extern SWIFT_CC void (*swift_task_enqueueGlobal_hook)(SwiftJob *job, enqueue_original original);
// swift_job_run(Job *, SerialExecutorRef): the executor reference is two words (identity,
// implementation), passed as two registers; {0, 0} is the generic executor.
extern SWIFT_CC void swift_job_run(SwiftJob *job, void *identity, uintptr_t implementation);

// --- the pool ---

typedef struct {
    void (*work)(void *);
    void *context;
} item;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    item *ring;        // circular buffer, `capacity` a power of two
    size_t capacity, head, count;
    int threads, idle, signalled, width;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .ready = PTHREAD_COND_INITIALIZER};

static pthread_once_t width_once = PTHREAD_ONCE_INIT;

int certreload_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void find_width(void) { pool.width = certreload_cpu_count(); }

int certreload_pool_width(void) {
    pthread_once(&width_once, find_width);
    return pool.width;
}

int certreload_pool_threads(void) {
    pthread_mutex_lock(&pool.lock);
    int n = pool.threads;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

static void *worker(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "certreload-pool");
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.count == 0) {
            pool.idle++;
            pthread_cond_wait(&pool.ready, &pool.lock); // no timeout: an idle pool never wakes
            pool.idle--;
            if (pool.signalled > 0) pool.signalled--;
        }
        item next = pool.ring[pool.head];
        pool.head = (pool.head + 1) & (pool.capacity - 1);
        pool.count--;
        pthread_mutex_unlock(&pool.lock);
        next.work(next.context);
        pthread_mutex_lock(&pool.lock);
    }
    return NULL;
}

// Grows the ring when full; false when out of memory. Called with the lock held.
static bool make_room(void) {
    if (pool.count < pool.capacity) return true;
    size_t capacity = pool.capacity ? pool.capacity * 2 : 256;
    item *ring = malloc(capacity * sizeof *ring);
    if (!ring) return false;
    for (size_t i = 0; i < pool.count; i++) ring[i] = pool.ring[(pool.head + i) & (pool.capacity - 1)];
    free(pool.ring);
    pool.ring = ring;
    pool.capacity = capacity;
    pool.head = 0;
    return true;
}

static void strand(item stranded);

int certreload_pool_submit(void (*work)(void *), void *context) {
    pthread_once(&width_once, find_width);
    pthread_mutex_lock(&pool.lock);
    bool spawn = false;
    if (pool.idle > pool.signalled) {
        pool.signalled++;
        pthread_cond_signal(&pool.ready);
    } else if (pool.threads < pool.width) {
        pool.threads++;
        spawn = true;
    }
    if (!make_room()) {
        if (spawn) pool.threads--;
        pthread_mutex_unlock(&pool.lock);
        return ENOMEM;
    }
    pool.ring[(pool.head + pool.count) & (pool.capacity - 1)] = (item){work, context};
    pool.count++;
    if (!spawn) {
        pthread_mutex_unlock(&pool.lock);
        return 0;
    }
    pthread_mutex_unlock(&pool.lock);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    int rc = pthread_create(&thread, &attributes, worker, NULL);
    pthread_attr_destroy(&attributes);
    if (rc == 0) return 0;
    pthread_mutex_lock(&pool.lock);
    pool.threads--;
    if (pool.threads > 0) { // another thread takes the item
        pthread_mutex_unlock(&pool.lock);
        return 0;
    }
    // No pool thread at all (EAGAIN: the process or user limit): hand every queued item back.
    size_t count = pool.count, head = pool.head, mask = pool.capacity - 1;
    item *stranded = malloc(count * sizeof *stranded);
    for (size_t i = 0; stranded && i < count; i++) stranded[i] = pool.ring[(head + i) & mask];
    if (stranded) pool.count = 0;
    pthread_mutex_unlock(&pool.lock);
    if (!stranded) return 0; // left queued: the next submit tries to start a thread again
    for (size_t i = 0; i < count; i++) strand(stranded[i]);
    free(stranded);
    return 0;
}

static void run_job(void *job) { swift_job_run((SwiftJob *)job, NULL, 0); }

static enqueue_original runtime_enqueue; // the runtime's own global executor

static SWIFT_CC void enqueue_global(SwiftJob *job, enqueue_original original) {
    __atomic_store_n(&runtime_enqueue, original, __ATOMIC_RELAXED);
    if (certreload_pool_submit(run_job, job) != 0) original(job);
}

// An item no pool thread can take: a Swift job goes to the runtime's executor, other work
// runs here (only the tests submit other work).
static void strand(item stranded) {
    enqueue_original runtime = __atomic_load_n(&runtime_enqueue, __ATOMIC_RELAXED);
    if (stranded.work == run_job && runtime) {
        runtime((SwiftJob *)stranded.context);
    } else {
        stranded.work(stranded.context);
    }
}

void certreload_executor_install(void) { swift_task_enqueueGlobal_hook = enqueue_global; }

// --- the timer thread ---

typedef struct {
    int64_t deadline; // CLOCK_BOOTTIME, nanoseconds
    uint64_t id;
    void (*fire)(void *);
    void *context;
} timer;

static struct {
    pthread_mutex_t lock;
    timer *heap; // a binary min-heap on (deadline, id)
    size_t count, capacity;
    uint64_t last_id;
    int fd;
    int start_error;
} timers = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static pthread_once_t timers_once = PTHREAD_ONCE_INIT;

static int64_t boottime_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_BOOTTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static bool earlier(const timer *a, const timer *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->id < b->id);
}

static void swap(size_t i, size_t j) {
    timer t = timers.heap[i];
    timers.heap[i] = timers.heap[j];
    timers.heap[j] = t;
}

static void sift_up(size_t i) {
    while (i > 0 && earlier(&timers.heap[i], &timers.heap[(i - 1) / 2])) {
        swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(size_t i) {
    for (;;) {
        size_t least = i, left = 2 * i + 1, right = left + 1;
        if (left < timers.count && earlier(&timers.heap[left], &timers.heap[least])) least = left;
        if (right < timers.count && earlier(&timers.heap[right], &timers.heap[least])) least = right;
        if (least == i) return;
        swap(i, least);
        i = least;
    }
}

static void remove_at(size_t i) {
    timers.count--;
    if (i == timers.count) return;
    timers.heap[i] = timers.heap[timers.count];
    sift_down(i);
    sift_up(i);
}

// Arms the timerfd for the earliest deadline, or disarms it. Called with the lock held.
static void arm(void) {
    struct itimerspec when;
    memset(&when, 0, sizeof when);
    if (timers.count > 0) {
        int64_t deadline = timers.heap[0].deadline;
        if (deadline <= 0) deadline = 1; // {0, 0} would disarm; 1 ns is long past: fires now
        when.it_value.tv_sec = deadline / 1000000000;
        when.it_value.tv_nsec = deadline % 1000000000;
    }
    timerfd_settime(timers.fd, TFD_TIMER_ABSTIME, &when, NULL);
}

static void *timer_thread(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "certreload-time");
    for (;;) {
        uint64_t expirations;
        // Blocks until the earliest deadline; disarmed (no timers), it blocks for good.
        if (read(timers.fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN && errno != EINTR) {
            continue;
        }
        for (;;) {
            pthread_mutex_lock(&timers.lock);
            if (timers.count == 0 || timers.heap[0].deadline > boottime_now()) {
                arm();
                pthread_mutex_unlock(&timers.lock);
                break;
            }
            timer due = timers.heap[0];
            remove_at(0);
            pthread_mutex_unlock(&timers.lock);
            due.fire(due.context);
        }
    }
    return NULL;
}

static void start_timers(void) {
    timers.fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC);
    if (timers.fd < 0) {
        timers.start_error = errno;
        return;
    }
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    pthread_t thread;
    int rc = pthread_create(&thread, &attributes, timer_thread, NULL);
    pthread_attr_destroy(&attributes);
    if (rc != 0) {
        close(timers.fd);
        timers.fd = -1;
        timers.start_error = rc;
    }
}

uint64_t certreload_timer_after(int64_t nanoseconds, void (*fire)(void *), void *context) {
    pthread_once(&timers_once, start_timers);
    if (timers.fd < 0) {
        errno = timers.start_error;
        return 0;
    }
    int64_t now = boottime_now();
    int64_t deadline = nanoseconds > INT64_MAX - now ? INT64_MAX : now + (nanoseconds > 0 ? nanoseconds : 0);
    pthread_mutex_lock(&timers.lock);
    if (timers.count == timers.capacity) {
        size_t capacity = timers.capacity ? timers.capacity * 2 : 16;
        timer *heap = realloc(timers.heap, capacity * sizeof *heap);
        if (!heap) {
            pthread_mutex_unlock(&timers.lock);
            errno = ENOMEM;
            return 0;
        }
        timers.heap = heap;
        timers.capacity = capacity;
    }
    uint64_t id = ++timers.last_id;
    timers.heap[timers.count] = (timer){deadline, id, fire, context};
    sift_up(timers.count++);
    if (timers.heap[0].id == id) arm(); // a new earliest deadline
    pthread_mutex_unlock(&timers.lock);
    return id;
}

int certreload_timer_cancel(uint64_t id) {
    pthread_mutex_lock(&timers.lock);
    for (size_t i = 0; i < timers.count; i++) {
        if (timers.heap[i].id != id) continue;
        remove_at(i);
        if (i == 0) arm(); // so a cancelled earliest deadline does not wake the thread
        pthread_mutex_unlock(&timers.lock);
        return 1;
    }
    pthread_mutex_unlock(&timers.lock);
    return 0;
}
