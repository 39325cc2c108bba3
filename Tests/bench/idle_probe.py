#!/usr/bin/env python3
"""Measures how often a running process wakes up while idle, from /proc (no tracing).

  idle_probe.py PID SECONDS [--settle MAX]    prints one JSON object

First (--settle MAX, default 40 s) it waits until the process's set of threads has not changed
for 7 s, so that libdispatch's idle worker threads have exited (each exit is itself a wake-up).
Then, over SECONDS, it samples /proc/PID/task every 0.2 s and reports:
  wakeups      voluntary context switches of every thread (each is one sleep ended by a wake);
               a thread that appears counts all its switches, one that exits at least one
  new_threads, exited_threads
  cpu_ms       user + system CPU time of the whole process over the window (/proc/PID/stat)
  rss_kib      VmRSS at the end;  per_thread   {tid: [comm, switches in the window]}
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("pid", type=int)
parser.add_argument("seconds", type=float)
parser.add_argument("--settle", type=float, default=40)
args = parser.parse_args()
tick = os.sysconf("SC_CLK_TCK")


def threads():
    out = {}
    for tid in os.listdir("/proc/%d/task" % args.pid):
        try:
            with open("/proc/%d/task/%s/status" % (args.pid, tid)) as f:
                fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
            out[int(tid)] = (fields["Name"].strip(), int(fields["voluntary_ctxt_switches"]))
        except (OSError, KeyError, ValueError):
            pass
    return out


def cpu_ticks():
    with open("/proc/%d/stat" % args.pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def rss_kib():
    with open("/proc/%d/status" % args.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


try:
    deadline = time.monotonic() + args.settle
    last, since = set(threads()), time.monotonic()
    while time.monotonic() - since < 7 and time.monotonic() < deadline:
        time.sleep(0.2)
        now = set(threads())
        if now != last:
            last, since = now, time.monotonic()
    first = threads()
    seen = dict(first)
    cpu0 = cpu_ticks()
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        time.sleep(0.2)
        for tid, value in threads().items():
            seen[tid] = value
    final = threads()
    cpu1 = cpu_ticks()
    rss = rss_kib()
except FileNotFoundError:
    print(json.dumps({"error": "process %d is gone" % args.pid}))
    sys.exit(1)

per_thread, wakeups, new, exited = {}, 0, 0, 0
for tid, (name, count) in seen.items():
    before = first[tid][1] if tid in first else 0
    delta = count - before
    if tid not in first:
        new += 1
    if tid not in final:
        exited += 1
        delta = max(delta, 1)
    wakeups += delta
    per_thread[tid] = [name, delta]
print(json.dumps({
    "seconds": args.seconds, "wakeups": wakeups, "new_threads": new, "exited_threads": exited,
    "cpu_ms": (cpu1 - cpu0) * 1000 // tick, "rss_kib": rss, "per_thread": per_thread,
}))
