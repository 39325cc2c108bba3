#!/usr/bin/env python3
"""certreload's benchmark suite (prints numbers; not a test). Run it through scripts/bench.

Every comparison runs its commands alternately (round after round, the order rotated each
round) on the same machine in one go, and reports medians (and p90 where it helps) of whole
processes, with ratios. Sections: startup, check, deploy, event, footprint, verify, doctor.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SUPPORT = os.path.join(ROOT, "Tests", "Support")
HOST = "www.bench.test"
USER = "nobody"

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("sections", nargs="*", default=[])
parser.add_argument("--certreload", default=os.environ.get("CERTRELOAD", os.path.join(ROOT, ".build/release/certreload")))
parser.add_argument("--cache", default=os.environ.get("BENCH_CACHE", "/var/tmp/certreload-bench"))
parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "10")))
parser.add_argument("--quick", action="store_true", help="smoke run: small trees, few runs, short idle window")
parser.add_argument("--idle", type=float, default=float(os.environ.get("BENCH_IDLE", "60")), help="idle window, seconds")
parser.add_argument("--renewals", type=int, default=int(os.environ.get("BENCH_RENEWALS", "100")))
parser.add_argument("--json", help="also write every figure to this file")
args = parser.parse_args()
ALL = ["startup", "check", "deploy", "event", "footprint", "verify", "doctor"]
sections = args.sections or ALL
for s in sections:
    if s not in ALL:
        sys.exit("unknown section %s (sections: %s)" % (s, " ".join(ALL)))
if args.quick:
    args.runs = min(args.runs, 3)
    args.idle = min(args.idle, 5)
    args.renewals = min(args.renewals, 5)
CR = os.path.abspath(args.certreload)
if not os.access(CR, os.X_OK):
    sys.exit("no certreload binary at %s (swift build -c release --static-swift-stdlib, or CERTRELOAD=)" % CR)
if os.geteuid() != 0:
    sys.exit("run as root: check runs with --user %s (the privilege-dropping access probe)" % USER)
WORK = tempfile.mkdtemp(prefix="certreload-bench.")
os.chmod(WORK, 0o755)
RESULTS = {"machine": {}, "figures": {}}
CLEANUP = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- running and timing ----------------------------------------------------------------------

def run_once(argv, env=None, stdin=subprocess.DEVNULL, cwd=None):
    """Wall ns, user+sys CPU ns, max RSS KiB and exit status of one whole process."""
    start = time.perf_counter_ns()
    p = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter_ns() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    return wall, int((usage.ru_utime + usage.ru_stime) * 1e9), usage.ru_maxrss, p.returncode


def preflight(name, argv, env=None, ok=(0,)):
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    if p.returncode not in ok:
        log("preflight failed (%s, exit %d): %s\n%s%s" % (name, p.returncode, " ".join(argv), p.stdout[-1500:], p.stderr[-1500:]))
        sys.exit(1)
    return p


def alternate(commands, runs, warmup=1):
    """commands: {name: (argv, env)}; runs them round-robin; {name: [wall ns...]} (+ cpu)."""
    names = list(commands)
    for _ in range(warmup):
        for n in names:
            run_once(*commands[n])
    walls = {n: [] for n in names}
    cpus = {n: [] for n in names}
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            wall, cpu, _, _ = run_once(*commands[n])
            walls[n].append(wall)
            cpus[n].append(cpu)
    return walls, cpus


def med_ms(values):
    return statistics.median(values) / 1e6


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def fmt_ms(ms):
    if ms != ms:
        return "—"
    if ms >= 10000:
        return "{:,.0f}".format(ms)
    if ms >= 100:
        return "%.0f" % ms
    if ms >= 10:
        return "%.1f" % ms
    return "%.2f" % ms


TABLES = []


def table(title, header, rows, notes=()):
    TABLES.append((title, header, rows, list(notes)))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    print("\n### %s\n" % title)
    print("| " + " | ".join(str(h) for h in header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(x) for x in row) + " |")
    for n in notes:
        print("\n" + n)
    sys.stdout.flush()


def figure(key, value):
    RESULTS["figures"][key] = value


def callgrind_ir(argv, env=None):
    """Instructions executed (callgrind's Ir, all threads) by one run; None without valgrind.

    certreload runs as a copy without DWARF (objcopy --strip-debug): valgrind 3.19 gives up on
    the Swift binary's debug information ("Possibly corrupted debuginfo file")."""
    if not shutil.which("valgrind") or not shutil.which("objcopy"):
        return None
    if argv[0] == CR:
        bare = os.path.join(WORK, "certreload-nodebug")
        if not os.path.exists(bare):
            subprocess.run(["objcopy", "--strip-debug", CR, bare], check=True)
        argv = [bare] + argv[1:]
    out = os.path.join(WORK, "callgrind.out")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + argv,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    for line in p.stderr.splitlines():
        if "Collected :" in line:
            return int(line.split(":")[1].strip().replace(",", ""))
    return None


# --- fixtures ----------------------------------------------------------------------------------

def trees(counts, cycle=None):
    argv = [sys.executable, os.path.join(HERE, "make_trees.py"), "--group", subprocess.check_output(["id", "-gn", USER], text=True).strip()]
    if cycle:
        argv += ["--key-cycle", cycle]
    out = {}
    for c in counts:
        log("tree with %d lineage(s) (generated once into %s) ..." % (c, args.cache))
        line = subprocess.check_output(argv + [args.cache, str(c)], text=True).split()
        out[c] = line[1]
    return out


def ca_file():
    return os.path.join(args.cache, "pki", "root.pem")


def lineage_names(tree):
    return sorted(n for n in os.listdir(os.path.join(tree, "live")) if n != "README")


def start(argv, name):
    out = open(os.path.join(WORK, name + ".out"), "w+")
    err = open(os.path.join(WORK, name + ".err"), "w")
    p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    CLEANUP.append(p)
    return p, out


def first_line(out, what, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out.seek(0)
        line = out.readline()
        if line.endswith("\n"):
            return line.strip()
        time.sleep(0.05)
    sys.exit("%s did not start (see %s)" % (what, WORK))


def endpoint():
    record = os.path.join(WORK, "endpoint-%d.jsonl" % len(CLEANUP))
    open(record, "w").close()
    _, out = start([sys.executable, os.path.join(HERE, "reload_endpoint.py"), "--record", record, "--lifetime", "3600"], "endpoint-%d" % len(CLEANUP))
    return int(first_line(out, "reload endpoint")), record


def starttls_server(protocol, cert, key):
    _, out = start([sys.executable, os.path.join(SUPPORT, "starttls_server.py"), "--protocol", protocol, "--cert", cert,
                    "--key", key, "--lifetime", "3600"], "%s-%d" % (protocol, len(CLEANUP)))
    return int(first_line(out, protocol + " server").split()[1])


def records(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Notify:
    """systemd's notify socket, read on a thread; READY=1 and WATCHDOG=1 counted."""

    def __init__(self):
        import threading
        self.path = os.path.join(WORK, "notify-%d.sock" % len(CLEANUP))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.ready = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            data = self.sock.recv(65536).decode("utf-8", "replace")
            if "READY=1" in data:
                self.ready += 1

    def wait_ready(self, count, timeout, proc):
        deadline = time.monotonic() + timeout
        while self.ready < count:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


def write_config(path, tree, targets, extra=""):
    text = 'certbot-dir = "%s"\nstate-dir = "%s"\n%s\n' % (tree, path + ".state", extra)
    for name, body in targets.items():
        text += "\n[target.%s]\n%s\n" % (name, body)
    with open(path, "w") as f:
        f.write(text)
    return path


def died(what, name):
    """Exits with the daemon's last lines of standard error (the work directory is removed)."""
    try:
        with open(os.path.join(WORK, name + ".err")) as f:
            tail = f.read()[-2000:]
    except OSError:
        tail = ""
    sys.exit("%s\n%s" % (what, tail))


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# --- sections ----------------------------------------------------------------------------------

def compile_once(name, source, argv_of):
    """Builds a tiny program once into the cache (keyed by its source)."""
    import hashlib
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    exe = os.path.join(args.cache, "bin", "%s-%s" % (name, digest))
    if not os.path.exists(exe):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        src = os.path.join(WORK, name + (".swift" if "swift" in name else ".c"))
        with open(src, "w") as f:
            f.write(source)
        subprocess.run(argv_of(src, exe + ".tmp"), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(exe + ".tmp", exe)
    return exe


def section_startup():
    swift = compile_once("bare-swift", 'print("1.0")\n', lambda s, o: ["swiftc", "-O", "-static-stdlib", s, "-o", o])
    c_true = compile_once("c-true", "int main(void) { return 0; }\n", lambda s, o: ["cc", "-O2", s, "-o", o])
    cmds = {"certreload --version": ([CR, "--version"], None), "bare Swift program (print, -static-stdlib)": ([swift], None),
            "C `true` (cc -O2)": ([c_true], None)}
    walls, cpus = alternate(cmds, max(args.runs * 3, 9))
    base = med_ms(walls["bare Swift program (print, -static-stdlib)"])
    rows = []
    for n in cmds:
        ir = callgrind_ir(cmds[n][0])
        rows.append([n, fmt_ms(med_ms(walls[n])), fmt_ms(pct(walls[n], 90) / 1e6), fmt_ms(med_ms(cpus[n])),
                     "%.2f×" % (med_ms(walls[n]) / base), "{:,}".format(ir) if ir else "—"])
    figure("startup_ms", med_ms(walls["certreload --version"]))
    figure("startup_ratio_to_bare_swift", med_ms(walls["certreload --version"]) / base)
    table("Start-up (whole process)", ["command", "median ms", "p90 ms", "CPU ms", "vs bare Swift", "instructions (callgrind)"], rows,
          ["Target: certreload within 1.5× of a bare Swift program."])


def section_check():
    counts = [1, 10] if args.quick else [1, 100, 1000, 10000]
    t = trees(counts)
    ca = ca_file()
    cbw = os.path.join(WORK, "certbot")
    rows, per = [], {}
    for c in counts:
        cr = [CR, "check", "--certbot-dir", t[c], "--user", USER, "--hostname", HOST]
        preflight("certreload check %d" % c, cr)
        cmds = {"certreload": (cr, None)}
        baseline_counts = [1] if args.quick else [1, 100]
        if c in baseline_counts:
            sh = [os.path.join(HERE, "baseline-check.sh"), t[c], ca, HOST, USER]
            preflight("shell baseline %d" % c, sh)
            cmds["shell + openssl + sudo -u"] = (sh, None)
        if c in ([1] if args.quick else [1, 100, 1000]):
            cb = ["certbot", "certificates", "--config-dir", t[c], "--work-dir", cbw, "--logs-dir", cbw]
            preflight("certbot certificates %d" % c, cb)
            cmds["certbot certificates"] = (cb, None)
        runs = args.runs if c == 1 else 3
        if c >= 1000:
            # The baselines take minutes here: run them fewer times than certreload.
            walls = {}
            w, _ = alternate({"certreload": cmds["certreload"]}, runs, warmup=0 if c >= 10000 else 1)
            walls.update(w)
            for n in cmds:
                if n != "certreload":
                    w, _ = alternate({n: cmds[n]}, 1, warmup=0)
                    walls.update(w)
        else:
            walls, _ = alternate(cmds, runs)
        per[c] = {n: med_ms(v) for n, v in walls.items()}
        if c == max(counts) and not args.quick:
            one = [CR, "check", "--certbot-dir", t[c], "--user", USER, "--hostname", HOST]
            w, _ = alternate({"one core": (["taskset", "-c", "0"] + one, None)}, 2, warmup=0)
            per[c]["certreload, 1 core (taskset -c 0)"] = med_ms(w["one core"])
    # Extrapolate the baselines linearly from their largest measured tree, and say so.
    for name in ("shell + openssl + sudo -u", "certbot certificates"):
        measured = [c for c in counts if name in per[c]]
        top = max(measured)
        for c in counts:
            if name not in per[c]:
                per[c][name + " (extrapolated from %d)" % top] = per[top][name] / top * c
    for c in counts:
        crm = per[c]["certreload"]
        for n, ms in per[c].items():
            ratio = "" if n == "certreload" else ("%.1f× certreload" % (ms / crm) if not n.startswith("certreload") else "")
            rows.append(["{:,}".format(c), n, fmt_ms(ms), fmt_ms(ms / c), ratio])
    figure("check_ms", {str(c): per[c]["certreload"] for c in counts})
    figure("check_vs_shell_1", per[1]["shell + openssl + sudo -u"] / per[1]["certreload"])
    figure("check_vs_certbot_1", per[1]["certbot certificates"] / per[1]["certreload"])
    ir = {c: callgrind_ir([CR, "check", "--certbot-dir", t[c], "--user", USER, "--hostname", HOST]) for c in counts if c <= 100}
    notes = ["Lineages: certbot layout, half ECDSA P-256, a quarter each RSA 2048 and RSA 4096 (keys from a pool of 4 per type, "
             "each lineage its own leaf), one intermediate; `--hostname %s`, as root with `--user %s` (access tried as that user). "
             "The shell script: readlink, `sudo -u %s test -r` ×4, `x509 -checkend`, `pkey -pubout` vs `x509 -pubkey`, "
             "`verify -untrusted`, fullchain = cert + chain, `x509 -checkhost`." % (HOST, USER, USER),
             "Growth (certreload, ms per lineage): " + ", ".join("%s at %s" % (fmt_ms(per[c]["certreload"] / c), "{:,}".format(c)) for c in counts) + ".",
             "Instructions (callgrind, all threads; the probe child not included): " + ", ".join(
                 "{:,} at {:,}".format(v, c) for c, v in ir.items() if v) + ".",
             "Targets: ≥ 12× the shell and ≥ 40× certbot certificates at one lineage; 10,000 in < 4 s on 2 cores; linear."]
    table("check, whole process", ["lineages", "command", "median ms", "ms / lineage", "ratio"], rows, notes)


def section_deploy():
    t = trees([1])[1]
    name = lineage_names(t)[0]
    port, record = endpoint()
    conf = write_config(os.path.join(WORK, "deploy.toml"), t, {
        "web": 'lineages = ["%s"]\nuser = "%s"\nhostnames = ["%s"]\nreload = { http = "http://127.0.0.1:%d/reload" }' % (name, USER, HOST, port)})
    env = dict(os.environ, RENEWED_LINEAGE=os.path.join(t, "live", name), RENEWED_DOMAINS=name)
    argv = [CR, "deploy", "--config", conf]
    preflight("deploy", argv, env)
    lat, walls = [], []
    for _ in range(max(args.runs * 2, 5)):
        before = len(records(record))
        t0 = time.monotonic_ns()
        wall, _, _, rc = run_once(argv, env)
        got = records(record)
        if rc != 0 or len(got) != before + 1:
            sys.exit("deploy run failed (exit %d, %d request(s))" % (rc, len(got) - before))
        lat.append(got[-1]["t"] - t0)
        walls.append(wall)
    figure("deploy_to_endpoint_ms", med_ms(lat))
    table("Deploy hook: `certreload deploy` start → reload request at a loopback endpoint", ["measure", "median ms", "p90 ms", "max ms"], [
        ["spawn → request line received (one `http` target, check as %s first)" % USER, fmt_ms(med_ms(lat)), fmt_ms(pct(lat, 90) / 1e6), fmt_ms(max(lat) / 1e6)],
        ["whole process (to exit)", fmt_ms(med_ms(walls)), fmt_ms(pct(walls, 90) / 1e6), fmt_ms(max(walls) / 1e6)]],
        ["%d runs; the time is CLOCK_MONOTONIC in the bench before spawning and in the endpoint when the request arrives. Target: < 20 ms." % len(lat)])


def section_event():
    src = trees([1], cycle="ec256")
    base = os.path.join(WORK, "event")
    os.makedirs(base)
    shutil.copytree(os.path.join(args.cache, "pki"), os.path.join(base, "pki"))
    tree = os.path.join(base, "tree")
    subprocess.run(["cp", "-a", list(src.values())[0], tree], check=True)
    name = lineage_names(tree)[0]
    n = args.renewals
    versions = []
    for _ in range(n):
        versions.append(int(subprocess.check_output([sys.executable, os.path.join(HERE, "renew.py"), "prepare", tree, name], text=True)))
    port, record = endpoint()
    settle = 0.25
    conf = write_config(os.path.join(WORK, "event.toml"), tree, {
        "web": 'lineages = ["%s"]\nuser = "%s"\nreload = { http = "http://127.0.0.1:%d/reload" }' % (name, USER, port)},
        "settle = %s\nsettle-max = 30" % settle)
    notify = Notify()
    p, _ = start(["env", "NOTIFY_SOCKET=" + notify.path, CR, "watch", "--config", conf], "event-watch")
    if not notify.wait_ready(1, 30, p):
        sys.exit("watch did not become ready (see %s)" % WORK)
    time.sleep(0.5)  # not a synchronisation: lets the first pass's own reload land before counting
    lat = []
    for v in versions:
        before = len(records(record))
        done = int(subprocess.check_output([sys.executable, os.path.join(HERE, "renew.py"), "link", tree, name, str(v)], text=True))
        deadline = time.monotonic() + 10 + settle
        while len(records(record)) == before and time.monotonic() < deadline:
            time.sleep(0.005)
        got = records(record)
        if len(got) != before + 1:
            stop(p)
            sys.exit("renewal to version %d: %d reload request(s) instead of 1" % (v, len(got) - before))
        lat.append(got[-1]["t"] - done - int(settle * 1e9))
        # Wait for the daemon to record the deploy before the next renewal.
        time.sleep(0.05)
    stop(p)
    ms = [x / 1e6 for x in lat]
    figure("event_beyond_settle_ms", {"median": statistics.median(ms), "p99": pct(ms, 99)})
    table("Watch: last link update → reload request, minus the settle window (%s s)" % settle,
          ["renewals", "median ms", "p90 ms", "p99 ms", "max ms", "min ms"],
          [[n, fmt_ms(statistics.median(ms)), fmt_ms(pct(ms, 90)), fmt_ms(pct(ms, 99)), fmt_ms(max(ms)), fmt_ms(min(ms))]],
          ["Each renewal is certbot's sequence (archive files written beforehand, previous_ links, unlink+symlink ×4 in certbot's order; "
           "Tests/bench/renew.py); the reload is an `http` target on loopback; the full check as %s runs before it. "
           "Targets: < 10 ms beyond the settle window at the median, < 50 ms at p99." % USER])


def idle_probe(pid, seconds):
    out = subprocess.check_output([sys.executable, os.path.join(HERE, "idle_probe.py"), str(pid), str(seconds)], text=True)
    return json.loads(out)


def memory(pid):
    """(VmHWM, Pss_Anon) in KiB."""
    with open("/proc/%d/status" % pid) as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    with open("/proc/%d/smaps_rollup" % pid) as f:
        anon = next(int(line.split()[1]) for line in f if line.startswith("Pss_Anon:"))
    return hwm, anon


def section_footprint():
    counts = [1, 10] if args.quick else [1, 1000, 10000]
    t = trees(counts)
    rows = []
    for c in counts:
        names = lineage_names(t[c])
        conf = write_config(os.path.join(WORK, "fp-%d.toml" % c), t[c], {
            "all": 'lineages = [%s]\nuser = "%s"\nreload = { command = ["/bin/true"] }' % (", ".join('"%s"' % x for x in names), USER)})
        notify = Notify()
        started = time.monotonic()
        p, _ = start(["env", "NOTIFY_SOCKET=" + notify.path, CR, "watch", "--config", conf], "fp-watch-%d" % c)
        if not notify.wait_ready(1, 300, p):
            died("watch on %d lineages did not become ready (exit status %s)" % (c, p.poll()), "fp-watch-%d" % c)
        ready = time.monotonic() - started
        window = args.idle if c == counts[0] else min(args.idle, 20)
        probe = idle_probe(p.pid, window)
        hwm, anon = memory(p.pid)
        stop(p)
        rows.append(["{:,}".format(c), "one target, command", "%.1f" % (probe["rss_kib"] / 1024), "%.1f" % (anon / 1024), "%.1f" % (hwm / 1024), "%.1f" % ready,
                     "%.0f" % (probe["wakeups"] / window * 3600), "%.0f" % (probe["cpu_ms"] / window * 3600), "%.0f s" % window])
        figure("rss_mib_%d" % c, probe["rss_kib"] / 1024)
        figure("anon_mib_%d" % c, anon / 1024)
    # A hosting box's other shape: one target per lineage (a task pair each).
    c = counts[1]
    names = lineage_names(t[c])
    conf = write_config(os.path.join(WORK, "fp-targets-%d.toml" % c), t[c], {
        "t%05d" % i: 'lineages = ["%s"]\nuser = "%s"\nreload = { command = ["/bin/true"] }' % (x, USER) for i, x in enumerate(names)})
    notify = Notify()
    started = time.monotonic()
    p, _ = start(["env", "NOTIFY_SOCKET=" + notify.path, CR, "watch", "--config", conf], "fp-watch-targets")
    if not notify.wait_ready(1, 600, p):
        sys.exit("watch with %d targets did not become ready (see %s)" % (c, WORK))
    ready = time.monotonic() - started
    window = min(args.idle, 20)
    probe = idle_probe(p.pid, window)
    hwm, anon = memory(p.pid)
    stop(p)
    rows.append(["{:,}".format(c), "{:,} targets, one lineage each".format(c), "%.1f" % (probe["rss_kib"] / 1024), "%.1f" % (anon / 1024), "%.1f" % (hwm / 1024), "%.1f" % ready,
                 "%.0f" % (probe["wakeups"] / window * 3600), "%.0f" % (probe["cpu_ms"] / window * 3600), "%.0f s" % window])
    figure("rss_mib_%d_targets" % c, probe["rss_kib"] / 1024)
    # The real-shaped configuration: http reload endpoint, two STARTTLS verify URLs, notify socket.
    t1 = trees([1], cycle="ec256")[1]
    name = lineage_names(t1)[0]
    live = os.path.join(t1, "live", name)
    smtp = starttls_server("smtp", os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem"))
    imap = starttls_server("imap", os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem"))
    port, _ = endpoint()
    conf = write_config(os.path.join(WORK, "fp-real.toml"), t1, {
        "mail": 'lineages = ["%s"]\nuser = "%s"\nhostnames = ["mx.bench.test"]\nreload = { http = "http://127.0.0.1:%d/reload" }\n'
                'verify = ["smtp://mx.bench.test:%d", "imap://mx.bench.test:%d"]\nconnect = "127.0.0.1"\nca-file = "%s"'
                % (name, USER, port, smtp, imap, ca_file())})
    notify = Notify()
    p, _ = start(["env", "NOTIFY_SOCKET=" + notify.path, CR, "watch", "--config", conf], "fp-watch-real")
    if not notify.wait_ready(1, 60, p):
        sys.exit("watch (real-shaped) did not become ready (see %s)" % WORK)
    probe = idle_probe(p.pid, args.idle)
    hwm, anon = memory(p.pid)
    stop(p)
    rows.append(["1", "http + smtp/imap verify + notify", "%.1f" % (probe["rss_kib"] / 1024), "%.1f" % (anon / 1024), "%.1f" % (hwm / 1024), "—",
                 "%.0f" % (probe["wakeups"] / args.idle * 3600), "%.0f" % (probe["cpu_ms"] / args.idle * 3600), "%.0f s" % args.idle])
    figure("idle_wakeups_per_hour", probe["wakeups"] / args.idle * 3600)
    figure("idle_per_thread", probe["per_thread"])
    table("Watch footprint while idle", ["lineages", "targets", "RSS MiB", "anon MiB", "peak RSS MiB", "ready after s", "wake-ups / hour", "CPU ms / hour", "window"], rows,
          ["RSS is VmRSS after the first pass and the idle window; anon is Pss_Anon (/proc/PID/smaps_rollup), the memory the daemon "
           "itself holds — the rest of RSS is clean file pages of the binary (~9 MiB of its 10 MiB of text, mapped 64 KiB at a time by "
           "the kernel's fault-around) and of libcrypto, shared and reclaimable; wake-ups are voluntary context switches of every thread (Tests/bench/idle_probe.py), "
           "scaled to an hour. Per thread (real-shaped): %s." % probe["per_thread"],
           "libdispatch's thread-pool monitor on Linux is a 1 s repeating timer on its manager thread, started with the first worker "
           "thread and never stopped (swift-corelibs-libdispatch src/event/workqueue.c): 3,600 wake-ups an hour in any Swift program "
           "that uses the concurrency pool; certreload's own threads stay asleep.",
           "Targets: RSS < 16 MiB at 1,000 lineages and < 64 MiB at 10,000; zero wake-ups apart from the watchdog and recheck."])


def section_verify():
    t1 = trees([1], cycle="ec256")[1]
    name = lineage_names(t1)[0]
    live = os.path.join(t1, "live", name)
    smtp = starttls_server("smtp", os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem"))
    conf = write_config(os.path.join(WORK, "verify.toml"), t1, {
        "mail": 'lineages = ["%s"]\nhostnames = ["mx.bench.test"]\nreload = { command = ["/bin/true"] }\n'
                'verify = ["smtp://mx.bench.test:%d"]\nconnect = "127.0.0.1"\nca-file = "%s"' % (name, smtp, ca_file())})
    cr = [CR, "verify", "--config", conf]
    preflight("certreload verify", cr)
    osc = ["openssl", "s_client", "-starttls", "smtp", "-connect", "127.0.0.1:%d" % smtp, "-servername", "mx.bench.test",
           "-CAfile", ca_file(), "-verify_return_error", "-brief"]
    walls, cpus = alternate({"certreload verify (smtp STARTTLS, SNI, compare with cert.pem)": (cr, None),
                             "openssl s_client -starttls smtp": (osc, None)}, max(args.runs * 2, 5))
    rows = [[n, fmt_ms(med_ms(v)), fmt_ms(pct(v, 90) / 1e6), fmt_ms(med_ms(cpus[n]))] for n, v in walls.items()]
    table("Verify: one STARTTLS probe, whole process", ["command", "median ms", "p90 ms", "CPU ms"], rows,
          ["s_client reads from /dev/null, so it ends after the handshake; it does not compare the leaf with a file."])
    figure("verify_ms", med_ms(walls["certreload verify (smtp STARTTLS, SNI, compare with cert.pem)"]))


def section_doctor():
    listing = subprocess.run([CR, "--help"], capture_output=True, text=True).stdout
    has = any(line.split()[:1] == ["doctor"] for line in listing.splitlines())
    if not has:
        table("doctor across eight ports", ["measure", "value"], [["certreload doctor", "not measured: this build has no `doctor` subcommand"]])
        return
    t1 = trees([1], cycle="ec256")[1]
    name = lineage_names(t1)[0]
    live = os.path.join(t1, "live", name)
    urls = []
    for proto, scheme, count in (("smtp", "smtp", 3), ("smtp", "submission", 1), ("imap", "imap", 2), ("pop3", "pop3", 2)):
        for _ in range(count):
            urls.append('"%s://mx.bench.test:%d"' % (scheme, starttls_server(proto, os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem"))))
    conf = write_config(os.path.join(WORK, "doctor.toml"), t1, {
        "mail": 'lineages = ["%s"]\nhostnames = ["mx.bench.test"]\nreload = { command = ["/bin/true"] }\n'
                'verify = [%s]\nconnect = "127.0.0.1"\nca-file = "%s"' % (name, ", ".join(urls), ca_file())})
    argv = [CR, "doctor", "--config", conf]
    rc = subprocess.run(argv, capture_output=True).returncode
    walls, _ = alternate({"doctor": (argv, None)}, max(args.runs, 3))
    table("doctor across eight ports", ["command", "median ms", "p90 ms", "exit"],
          [["certreload doctor --config (8 STARTTLS verify URLs)", fmt_ms(med_ms(walls["doctor"])), fmt_ms(pct(walls["doctor"], 90) / 1e6), rc]])


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    ver = subprocess.run([CR, "--version"], capture_output=True, text=True).stdout.strip()
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    info = {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release, "openssl": ossl, "certreload": ver,
            "load_before": open("/proc/loadavg").read().split()[:3], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    RESULTS["machine"] = info
    return info


def main():
    info = machine()
    print("## certreload benchmark, %s\n" % info["date"])
    print("Machine: %s, %d cores, Linux %s, %s; certreload %s (%s). Load average before: %s." % (
        info["cpu"], info["cores"], info["kernel"], info["openssl"], info["certreload"], CR, " ".join(info["load_before"])))
    print("Runs: %d per command (fewer for the slowest baselines, as marked), alternating%s." % (args.runs, "; QUICK smoke run" if args.quick else ""))
    try:
        for s in sections:
            log("== %s" % s)
            started = time.monotonic()
            globals()["section_" + s]()
            log("   (%s: %.0f s)" % (s, time.monotonic() - started))
    finally:
        for p in CLEANUP:
            stop(p)
        RESULTS["machine"]["load_after"] = open("/proc/loadavg").read().split()[:3]
        print("\nLoad average after: %s (other work on the machine inflates wall times; instruction counts do not move with it)."
              % " ".join(RESULTS["machine"]["load_after"]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(RESULTS, f, indent=1, default=str)
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
