#!/usr/bin/env bash
# bench/entrance.sh [SEED] — throughput and memory of mamori's entrance layer vs fail2ban.
#
# Generates the 1M-line / 30-day shop log with the shared kit (shopsim.py access-log),
# then times, with /usr/bin/time -v:
#   * `target/release/mamori logs --json LOG` when that release binary is built (MAMORI_BIN=1
#     builds it: all crates, many minutes on 2 cores), else the `analyze` example of
#     crates/mamori-entrance, which makes the same library call (`analyze`) and prints
#     the same JSON Lines; the table names which one ran;
#   * `fail2ban-regex LOG <filter>` for the stock nginx/apache access-log filters
#     (Debian package fail2ban; installed with apt-get if missing and we are root).
#   * CrowdSec (Debian package, 40 stock scenarios; set up by bench/crowdsec-setup.sh,
#     which installs it offline-safe if we are root) replaying a slice of the same log,
#     the first CROWDSEC_LINES lines (default 10,000; 0 skips), and mamori on that slice.
#     CrowdSec 1.4.6 needs ~4 ms of CPU per line, hence the slice.
# Prints Markdown tables: CPU seconds, lines/s per core (CPU time), wall, peak RSS, and
# the ratio mamori / fail2ban (and / crowdsec). Not a test: numbers depend on the machine
# and its load. Honours CARGO_TARGET_DIR.
set -euo pipefail
seed=${1:-1}
root=$(cd "$(dirname "$0")/.." && pwd)
kit=${SHOPSIM:-$root/../shared/scenarios/shopsim.py}
runs=${RUNS:-3}
work=$(mktemp -d /tmp/mamori-bench-entrance.XXXXXX)
trap 'rm -rf "$work"' EXIT

[ -f "$kit" ] || { echo "shopsim.py not found at $kit (set SHOPSIM=)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }

echo "generating 1M-line log (seed $seed) in $work" >&2
python3 "$kit" access-log "$work/access.log" --days 30 --lines 1000000 --seed "$seed" 2>/dev/null
lines=$(wc -l < "$work/access.log")

cd "$root"
cargo build --release -q -p mamori-entrance --example analyze >&2
if [ "${MAMORI_BIN:-0}" = 1 ]; then
  cargo build --release -q -p mamori >&2
fi
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
mamori=("$target/release/examples/analyze")
label="mamori-entrance (analyze example)"
if [ -x "$target/release/mamori" ] && "$target/release/mamori" logs --help >/dev/null 2>&1; then
  mamori=("$target/release/mamori" logs --json)
  label="mamori logs --json"
fi
cmd=("${mamori[@]}" "$work/access.log")

# measure_to OUTFILE CMD… → "cpu_s wall_s rss_kib"; CMD's stdout goes to OUTFILE, its
# stderr to OUTFILE.err (time -v writes its own file, so a chatty CMD cannot garble it).
measure_to() {
  local out=$1 tf="$work/time.txt"; shift
  /usr/bin/time -v -o "$tf" "$@" > "$out" 2> "$out.err" || true
  awk -F': ' '
    /User time/ {u=$2} /System time/ {s=$2}
    /Elapsed \(wall clock\)/ {n=split($2,a,":"); w=0; for(i=1;i<=n;i++) w=w*60+a[i]}
    /Maximum resident set size/ {r=$2}
    END {printf "%.3f %.3f %d\n", u+s, w, r}' "$tf"
}
measure() { measure_to "$work/last.out" "$@"; }

median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# awk function: integer with thousands separators, whatever the locale.
grp='function grp(x,  s) { s = sprintf("%d", x); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); return s }'

row() { # name cpu wall rss
  awk -v n="$1" -v c="$2" -v w="$3" -v r="$4" -v l="$lines" "$grp"'
    BEGIN {printf "| %s | %.2f | %s | %.2f | %.1f |\n", n, c, grp(l/c), w, r/1024}'
}

declare -a mcpu mwall mrss
for i in $(seq "$runs"); do
  read -r c w r < <(measure "${cmd[@]}")
  mcpu+=("$c"); mwall+=("$w"); mrss+=("$r")
done
m_cpu=$(printf '%s\n' "${mcpu[@]}" | median)
m_wall=$(printf '%s\n' "${mwall[@]}" | median)
m_rss=$(printf '%s\n' "${mrss[@]}" | sort -n | tail -1)

if ! command -v fail2ban-regex >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing fail2ban" >&2
    apt-get install -y fail2ban >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y fail2ban >/dev/null 2>&1; } || true
  fi
fi

echo
echo "log: $lines lines (shopsim seed $seed), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "| tool | CPU s | lines/s per core (CPU) | wall s | peak RSS MiB |"
echo "| --- | --- | --- | --- | --- |"
row "$label (median of $runs)" "$m_cpu" "$m_wall" "$m_rss"
f2b_total=0
if command -v fail2ban-regex >/dev/null 2>&1; then
  for f in nginx-botsearch nginx-bad-request apache-badbots php-url-fopen; do
    conf=/etc/fail2ban/filter.d/$f.conf
    [ -f "$conf" ] || continue
    read -r c w r < <(measure fail2ban-regex "$work/access.log" "$conf")
    row "fail2ban-regex $f" "$c" "$w" "$r"
    f2b_total=$(awk -v a="$f2b_total" -v b="$c" 'BEGIN {print a+b}')
  done
  echo
  awk -v m="$m_cpu" -v f="$f2b_total" -v l="$lines" "$grp"'
    BEGIN {printf "fail2ban, the 4 filters together: %.2f CPU s = %s lines/s per core; mamori is %.1fx faster (CPU time), with all detectors.\n", f, grp(l/f), f/m}'
else
  echo
  echo "fail2ban-regex not available: no comparison"
fi

# --- CrowdSec on a slice -------------------------------------------------------------
# crowdsec 1.4.6 replays ~250 lines/s per core, so it gets the first CROWDSEC_LINES lines
# of the same log, and mamori is measured again on exactly that slice.
cs_lines=${CROWDSEC_LINES:-10000}
[ "$cs_lines" -gt 0 ] 2>/dev/null || exit 0
echo
if ! cs_cfg=$(bash "$root/bench/crowdsec-setup.sh" "$work/crowdsec" 2> "$work/crowdsec-setup.err"); then
  echo "CrowdSec skipped: not installable/configurable here ($(tail -1 "$work/crowdsec-setup.err"))."
  exit 0
fi
cs_ver=$(crowdsec -version 2>&1 | sed -n 's/.*version: *v\{0,1\}//p' | head -1)
slice=$work/slice.log
head -n "$cs_lines" "$work/access.log" > "$slice"
slines=$(wc -l < "$slice")

srow() { # name cpu wall rss lines found
  awk -v n="$1" -v c="$2" -v w="$3" -v r="$4" -v l="$5" -v f="$6" "$grp"'
    BEGIN {printf "| %s | %.3f | %s | %.3f | %.1f | %s |\n", n, c, (c > 0 ? grp(l/c) : "n/a"), w, r/1024, f}'
}
range() { sort -n | awk 'NR==1 {lo=$0} {hi=$0} END {print (lo==hi ? lo : lo "–" hi)}'; }

# mamori: one run over 10k lines is below /usr/bin/time's 10 ms resolution, so each
# measurement is `reps` back-to-back runs (process start-up included, as for crowdsec),
# divided by reps. Peak RSS is that of the largest run.
reps=${MAMORI_SLICE_REPS:-100}
declare -a scpu swall srss
for i in $(seq "$runs"); do
  # shellcheck disable=SC2016  # $1 and $@ belong to the inner bash
  read -r c w r < <(measure bash -c 'for ((k = 0; k < $1; k++)); do "${@:2}" > /dev/null; done' _ "$reps" "${mamori[@]}" "$slice")
  scpu+=("$(awk -v c="$c" -v n="$reps" 'BEGIN {print c/n}')")
  swall+=("$(awk -v w="$w" -v n="$reps" 'BEGIN {print w/n}')")
  srss+=("$r")
done
"${mamori[@]}" "$slice" > "$work/slice.findings.jsonl" 2>/dev/null || true

# crowdsec: fresh DB (a copy of the setup's base.db with the replay machine) per run.
# Alerts are read from that sqlite DB: `cscli alerts list` asks the local API, which
# exits with the replay.
csdir=$(dirname "$cs_cfg")
declare -a ccpu cwall crss calerts
cs_fail=0
for i in $(seq "$runs"); do
  rm -f "$csdir/crowdsec.db" "$csdir/crowdsec.db-wal" "$csdir/crowdsec.db-shm"
  cp "$csdir/base.db" "$csdir/crowdsec.db"
  read -r c w r < <(measure_to "$csdir/run$i.log" crowdsec -c "$cs_cfg" -dsn "file://$slice" -type nginx -no-capi)
  grep -q 'Exit status: 0' "$work/time.txt" || cs_fail=1
  ccpu+=("$c"); cwall+=("$w"); crss+=("$r")
  calerts+=("$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from alerts").fetchone()[0])' "$csdir/crowdsec.db")")
done

s_cpu=$(printf '%s\n' "${scpu[@]}" | median)
c_cpu=$(printf '%s\n' "${ccpu[@]}" | median)
echo "CrowdSec on a slice: the first $slines lines of the same log; median of $runs, crowdsec with a fresh DB each run, load average $(cut -d' ' -f1-3 /proc/loadavg):"
echo
echo "| tool | CPU s | lines/s per core (CPU) | wall s | peak RSS MiB | alerts / findings |"
echo "| --- | --- | --- | --- | --- | --- |"
srow "$label (per run: mean of $reps back-to-back runs)" "$s_cpu" "$(printf '%s\n' "${swall[@]}" | median)" \
  "$(printf '%s\n' "${srss[@]}" | sort -n | tail -1)" "$slines" "$(wc -l < "$work/slice.findings.jsonl") finding(s)"
srow "crowdsec ${cs_ver:-?} replay (Debian, stock scenarios)" "$c_cpu" "$(printf '%s\n' "${cwall[@]}" | median)" \
  "$(printf '%s\n' "${crss[@]}" | sort -n | tail -1)" "$slines" "$(printf '%s\n' "${calerts[@]}" | range) alert(s)"
echo
[ "$cs_fail" = 0 ] || echo "WARNING: a crowdsec run exited non-zero; see its log (kept only while the bench runs)."
awk -v s="$s_cpu" -v c="$c_cpu" 'BEGIN { if (s > 0) printf "On the slice mamori is %.0fx faster than crowdsec (CPU time).\n", c/s }'

# Who was caught: attacker IPs of the slice (shopsim's labels) vs IPs in findings / alerts.
python3 - "$work/access.log.labels.csv" "$slines" "$work/slice.findings.jsonl" "$csdir/crowdsec.db" <<'PY'
import collections, csv, json, sqlite3, sys
labels, n, findings, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cls, lines = {}, 0
with open(labels) as f:
    for row in csv.DictReader(f):
        if int(row["line"]) <= n and row["technique"] not in ("asset", "page_view"):
            cls[row["ip"]] = row["class"]
            lines += 1
def caught(ips):
    hit = [ip for ip in ips if ip in cls]
    return f"{len(hit)}/{len(cls)} attacker IPs, {len(ips) - len(hit)} other IPs"
m_ips = {json.loads(l).get("ip") for l in open(findings) if l.strip()} - {None}
rows = sqlite3.connect(db).execute("select scenario, source_ip from alerts").fetchall()
c_ips = {ip for _, ip in rows}
scen = collections.Counter(s.split("/")[-1] for s, _ in rows)
by_cls = collections.Counter(cls.values())
print(f"Slice ground truth: {lines} attack lines from {len(cls)} IPs "
      f"({', '.join(f'{k} {v}' for k, v in sorted(by_cls.items())) or 'none'}). "
      f"Flagged: mamori {caught(m_ips)}; crowdsec {caught(c_ips)}"
      + (f" ({', '.join(f'{k} {v}' for k, v in scen.most_common())})." if scen else "."))
PY
