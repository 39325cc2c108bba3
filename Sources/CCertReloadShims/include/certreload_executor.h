#ifndef CERTRELOAD_EXECUTOR_H
#define CERTRELOAD_EXECUTOR_H

#include <stdint.h>

/// certreload's own thread pool and timer thread (executor.c).
///
/// Why: on Linux, Swift's default global executor is libdispatch, whose thread-pool monitor
/// is a 1 s repeating timer started with the first worker thread and never stopped; a daemon
/// that waits for months would wake 3,600 times an hour for it. This pool's threads wait on a
/// condition variable and the timer thread in read(2) on a timerfd: idle, neither wakes.

/// Makes the pool Swift's global concurrent executor (swift_task_enqueueGlobal_hook). Call
/// once, first thing in main, before any task runs. Threads start on first use, at most one
/// per CPU this process may run on; a job the pool cannot take (no thread could be created at
/// all) goes to the runtime's own executor instead.
void certreload_executor_install(void);

/// Queues `work(context)` on the pool: 0, or ENOMEM when the queue cannot grow (the work is
/// not queued then). When no pool thread exists and none can be created, the queued work is
/// handed back: Swift jobs to the runtime's own executor, other work run by this call.
int certreload_pool_submit(void (*work)(void *), void *context);

/// Threads the pool has started so far, and the most it will start.
int certreload_pool_threads(void);
int certreload_pool_width(void);

/// CPUs this process may run on (sched_getaffinity), at least 1.
int certreload_cpu_count(void);

/// Calls `fire(context)` on the timer thread once `nanoseconds` have passed on CLOCK_BOOTTIME
/// (the clock of Swift's ContinuousClock on Linux: time asleep counts). Returns the timer's
/// id (never 0), or 0 with errno set when the timer thread could not be started.
uint64_t certreload_timer_after(int64_t nanoseconds, void (*fire)(void *), void *context);

/// Cancels a timer: 1 when it was removed before firing (`fire` will not be called and the
/// context is the caller's again), 0 when it has fired or is firing.
int certreload_timer_cancel(uint64_t id);

#endif
