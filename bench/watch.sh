#!/usr/bin/env bash
# bench/watch.sh — real-time detection latency of `mamori watch`. Not a test.
#
#   bench/watch.sh [FILES]            (default 100000-file tree)
#
# Measures, on a generated shop tree with the daemon running (alert mode, fanotify when
# root): the time from close() of a write to the finding line on the daemon's stdout,
# for 200 writes to a critical file and 200 to an ordinary one (p50/p99/max); a burst
# of 10,000 new files (every one must be reported, by events or by the overflow sweep);
# idle CPU over 30 s; peak RSS. Prints a Markdown table.
# PERF=FILE also records the daemon with `perf record -g` from the first latency write
# to the end of the burst (where its CPU goes; `perf report -i FILE --children`).
set -euo pipefail
FILES=${1:-100000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
KIT="$HERE/../shared/scenarios/shopsim.py"
WORK=${BENCH_DIR:-/var/tmp/mamori-bench-watch}
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
# BIN=path/to/mamori measures that binary instead of building the release one.
BIN=${BIN:-$TARGET/release/mamori}
[ "$BIN" != "$TARGET/release/mamori" ] || (cd "$HERE" && cargo build --release -q -p mamori)
mkdir -p "$WORK"
TREE="$WORK/t$FILES/shop"
[ -d "$TREE" ] || python3 "$KIT" tree "$TREE" --files "$FILES" --flavor eccube --seed 2 >&2
rm -rf "$TREE/vendor/burst" "$WORK/.mamori" "$WORK/m.toml"
"$BIN" --config "$WORK/m.toml" -q init --root "$TREE" >/dev/null
python3 - "$BIN" "$WORK" "$TREE" <<'PY'
import json, os, subprocess, sys, time, statistics, threading, queue
binary, work, tree = sys.argv[1:4]
manifest = json.load(open(tree + ".manifest.json"))
critical = manifest["critical"][0]
ordinary = next(os.path.join(d, f)[len(tree) + 1:] for d, _, fs in os.walk(os.path.join(tree, "vendor")) for f in fs if f.endswith(".php"))
# The daemon's notes go to a file: a pipe nobody reads would block it once full.
errlog = open(work + "/watch.stderr", "w+")
p = subprocess.Popen([binary, "--config", work + "/m.toml", "--json", "watch", "--response", "alert"],
                     stdout=subprocess.PIPE, stderr=errlog, text=True, bufsize=1)
mode = ""
while not mode and p.poll() is None:
    time.sleep(0.05)
    mode = open(work + "/watch.stderr").readline().strip()
q = queue.Queue()
def reader():
    for line in p.stdout:
        q.put((time.monotonic_ns(), json.loads(line)))
threading.Thread(target=reader, daemon=True).start()
time.sleep(2.0)
while not q.empty(): q.get()

def mem():
    st = {l.split(":")[0]: int(l.split()[1]) // 1024 for l in open("/proc/%d/status" % p.pid)
          if l.split(":")[0] in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
    return st
time.sleep(10.0)  # the start-up sweep is over: steady state
start_mem = mem()

def wait_for(path, kind, t0, timeout=10):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            t, f = q.get(timeout=0.5)
        except queue.Empty:
            continue
        if f.get("path") == path and f["kind"] == kind:
            return (t - t0) / 1e6
    return None

def series(rel, n=200):
    path = os.path.join(tree, rel)
    orig = open(path, "rb").read()
    lat = []
    for i in range(n):
        fh = open(path, "r+b")
        fh.write(b"<?php /*%06d*/" % i)
        fh.flush()
        t0 = time.monotonic_ns()  # just before close(): an upper bound of close → finding
        fh.close()
        l = wait_for(rel, "file.modified", t0)
        lat.append(l if l is not None else float("inf"))
        with open(path, "wb") as fh:
            fh.write(orig)
        time.sleep(0.03)  # let the daemon see the file is good again
    return lat

def pct(v, q):
    v = sorted(v); return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]

perf = None
if os.environ.get("PERF"):
    perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "-g", "-p", str(p.pid), "-o", os.environ["PERF"]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
crit = series(critical)
ordi = series(ordinary)
def cpu():
    st = open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
# Burst: 10,000 new files at once.
b0 = cpu()
burst = os.path.join(tree, "vendor", "burst")
t0 = time.monotonic()
for i in range(100):
    d = os.path.join(burst, "d%03d" % i); os.makedirs(d)
    for j in range(100):
        with open(os.path.join(d, "f%03d.php" % j), "w") as fh: fh.write("<?php // %d\n" % j)
seen = set(); late = 0; end = time.monotonic() + 120
while len(seen) < 10000 and time.monotonic() < end:
    try:
        _, f = q.get(timeout=1)
    except queue.Empty:
        continue
    if f["kind"] == "file.added" and f.get("path", "").startswith("vendor/burst/"):
        seen.add(f["path"])
        late += bool(f.get("evidence", {}).get("late"))
burst_s = time.monotonic() - t0
burst_cpu = cpu() - b0
overflows = open(work + "/watch.stderr").read().count("overflowed")
if perf:
    perf.send_signal(2); perf.wait(30)
# Idle CPU over 30 s, and peak RSS.
time.sleep(3)
c0 = cpu(); time.sleep(30); c1 = cpu()
end_mem = mem()
p.terminate(); p.wait(10)
print("### watch: %d-file tree, %s, %d cores (%s)\n" % (manifest["files"], "fanotify" if "fanotify" in mode else "inotify", os.cpu_count(), time.strftime("%Y-%m-%d")))
print("| what | p50 ms | p99 ms | max ms | goal |")
print("| --- | ---: | ---: | ---: | --- |")
for name, v in (("critical file (%s)" % critical, crit), ("ordinary file", ordi)):
    print("| close() → finding, %s, 200 writes | %.1f | %.1f | %.1f | p99 ≤ 100 |" % (name, pct(v, .5), pct(v, .99), max(v)))
print("\n| what | value | goal |\n| --- | ---: | --- |")
print("| 10,000-file burst reported | %d / 10000 in %.1f s (%d by the sweep after %d queue overflows) | all |"
      % (len(seen), burst_s, late, overflows))
print("| daemon CPU for the burst (user + system) | %.1f s | |" % burst_cpu)
print("| idle CPU over 30 s | %.2f %% | < 1 %% |" % ((c1 - c0) / 30 * 100))
print("| RSS 12 s after start (anonymous + file-backed) | %d MiB (%d + %d), peak so far %d | ≤ 64 |"
      % (start_mem["VmRSS"], start_mem["RssAnon"], start_mem["RssFile"], start_mem["VmHWM"]))
print("| RSS at the end (anonymous + file-backed) / peak over the whole bench | %d MiB (%d + %d) / %d MiB | ≤ 64 |"
      % (end_mem["VmRSS"], end_mem["RssAnon"], end_mem["RssFile"], end_mem["VmHWM"]))
PY
