#!/usr/bin/env bash
# Benchmark of the exit (egress) layer against RITA's beacon score on the same data.
# Generates 30 days of one shop server's outbound connections per seed with the kit's
# shopsim.py, times mamori's analysis (the binary's `egress` command once wired, else
# the mamori-exit example `egress_bench`) and the RITA v5 reference score
# (shared/research/anchors/rita_score.py, sliding 24 h windows), and prints detections
# side by side. Not a test: numbers go to docs/exit.md by hand.
#
# Usage: bench/exit.sh [SEED...]        (default seeds: 1 2 3)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KIT="${KIT:-$ROOT/../shared}"
SHOPSIM="$KIT/scenarios/shopsim.py"
RITA="$KIT/research/anchors/rita_score.py"
GATEWAY="${GATEWAY:-api.pay-gateway.example}"
SEEDS=("$@"); [ ${#SEEDS[@]} -eq 0 ] && SEEDS=(1 2 3)
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
for f in "$SHOPSIM" "$RITA"; do [ -f "$f" ] || { echo "missing $f" >&2; exit 2; }; done

cd "$ROOT"
if [ -x target/release/mamori ] && target/release/mamori egress --help >/dev/null 2>&1; then
  run_mamori() { target/release/mamori egress --conn-log "$1" --dns-log "$1.dns.log" --orders "$1.orders.jsonl" --json; }
  echo "analyser: target/release/mamori egress"
else
  cargo build --release -q -p mamori-exit --example egress_bench
  run_mamori() { target/release/examples/egress_bench "$1" --dns-log "$1.dns.log" --orders "$1.orders.jsonl" --gateway "$GATEWAY" --json; }
  echo "analyser: mamori-exit example egress_bench (binary not wired yet)"
fi

now() { date +%s.%N; }
for s in "${SEEDS[@]}"; do
  out="$WORK/s$s/conn.log"; mkdir -p "$WORK/s$s"
  python3 "$SHOPSIM" conns "$out" --days 30 --seed "$s" --host-column >/dev/null 2>&1
  # RITA reference wants DIR/{conn.tsv,truth.tsv,meta.json,checkouts.tsv}.
  rd="$WORK/s$s/rita"; mkdir -p "$rd"
  ln -s "$out" "$rd/conn.tsv"; cp "$out.labels.tsv" "$rd/truth.tsv"
  python3 - "$out" "$rd" <<'PY'
import json, sys, datetime, os
out, rd = sys.argv[1:]
t0 = None
for l in open(out):
    if l.startswith("#open"):
        t0 = datetime.datetime.strptime(l.split("\t")[1].strip(), "%Y-%m-%d-%H-%M-%S").replace(tzinfo=datetime.timezone.utc).timestamp()
        break
json.dump({"t0": int(t0), "days": 30}, open(os.path.join(rd, "meta.json"), "w"))
with open(os.path.join(rd, "checkouts.tsv"), "w") as f:
    f.write("ts\n")
    for l in open(out + ".orders.jsonl"):
        f.write("%s\n" % json.loads(l)["ts"])
PY
  t=$(now); run_mamori "$out" > "$WORK/s$s/findings.jsonl" 2>"$WORK/s$s/mamori.err"; t_m=$(echo "$(now) - $t" | bc)
  t=$(now); python3 "$RITA" "$rd" > "$WORK/s$s/rita.txt"; t_r=$(echo "$(now) - $t" | bc)
  python3 - "$out" "$WORK/s$s" "$t_m" "$t_r" "$s" <<'PY'
import json, sys, datetime
out, d, tm, tr, seed = sys.argv[1:]
P = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
truth = [json.loads(l) for l in open(out + ".truth.jsonl")]
fs = [json.loads(l) for l in open(d + "/findings.jsonl")]
err = open(d + "/mamori.err").read()
inner = [l for l in err.splitlines() if "analysis_seconds=" in l]
ta = inner[0].split()[0].split("=")[1] if inner else "-"
first = min(P(f["time"]) for f in fs) if fs else 0
stats = json.loads(err.split("stats=", 1)[1]) if "stats=" in err else {}
lend = P(stats["detect"]["learning_end"]) if stats else 0
last_t = max(P(t["last_seen"]) for t in truth)
days = (last_t - lend) / 86400
exf = {t["dest"]: t for t in truth if t["label"] == "exfil"}
print(f"\n## seed {seed}: mamori {float(tm):.2f} s wall (analysis {ta} s), RITA reference {float(tr):.2f} s")
print("| class | mamori: new_destination at first contact | mamori: class finding (after first_seen) | RITA days >= .50 / .70 / .90 of active |")
print("|---|---|---|---|")
rita = {}
for l in open(d + "/rita.txt"):
    p = l.split()
    m = {"exfil_a": "beacon", "exfil_b": "sparse_checkout_tied", "exfil_c": "burst"}
    if len(p) >= 8 and p[0] in m:
        rita[m[p[0]]] = f"{p[4]} / {p[5]} / {p[6]} of {p[2]}"
    if l.startswith("benign"):
        rita_benign = l.strip()
want = {"beacon": "egress.beacon", "sparse_checkout_tied": "egress.checkout_correlated", "burst": "egress.volume"}
for dest, t in exf.items():
    fsd = [f for f in fs if f.get("dest") == dest]
    nd = [P(f["time"]) - P(t["first_seen"]) for f in fsd if f["kind"] == "egress.new_destination"]
    k = want[t["class"]]
    ck = [P(f["time"]) - P(t["first_seen"]) for f in fsd if f["kind"] == k]
    print(f"| {t['class']} | {'%.1f s' % abs(nd[0]) if nd else 'MISSED'} | {k} {'%+.1f h' % (min(ck)/3600) if ck else 'MISSED'} | {rita.get(t['class'], '-')} |")
cls = {t["dest"]: t.get("service") or t["class"] for t in truth}
ben = {}
for f in fs:
    if f.get("dest") not in exf and P(f["time"]) >= lend:
        k = cls.get(f.get("dest"), "other") + ":" + f["kind"].split(".", 1)[1]
        ben[k] = ben.get(k, 0) + 1
n = sum(ben.values())
gw = sum(1 for f in fs if f.get("dest") == "api.pay-gateway.example")
print(f"\nmamori benign findings after learning: {n} in {days:.1f} days = {n/days:.2f}/day {ben}; gateway findings: {gw}")
print(f"RITA: {rita_benign}")
PY
done
