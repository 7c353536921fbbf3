#!/usr/bin/env bash
# bench/entrance.sh [SEED] — throughput and memory of mamori's entrance layer vs fail2ban.
#
# Generates the 1M-line / 30-day shop log with the shared kit (shopsim.py access-log),
# then times, with /usr/bin/time -v:
#   * `target/release/mamori logs --json LOG` (or, until the binary has `logs`, the
#     `analyze` example of crates/mamori-entrance, which runs the same library call);
#   * `fail2ban-regex LOG <filter>` for the stock nginx/apache access-log filters
#     (Debian package fail2ban; installed with apt-get if missing and we are root).
# Prints a Markdown table: CPU seconds, lines/s per core (CPU time), wall, peak RSS, and
# the ratio mamori / fail2ban. Not a test: numbers depend on the machine and its load.
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
cmd=("$root/target/release/examples/analyze" "$work/access.log")
label="mamori-entrance (analyze example)"
if [ -x "$root/target/release/mamori" ] && "$root/target/release/mamori" logs --help >/dev/null 2>&1; then
  cmd=("$root/target/release/mamori" logs --json "$work/access.log")
  label="mamori logs --json"
fi

# measure OUTFILE CMD… → "cpu_s wall_s rss_kib"
measure() {
  local tf="$work/time.txt"
  /usr/bin/time -v "$@" > /dev/null 2> "$tf" || true
  awk -F': ' '
    /User time/ {u=$2} /System time/ {s=$2}
    /Elapsed \(wall clock\)/ {n=split($2,a,":"); w=0; for(i=1;i<=n;i++) w=w*60+a[i]}
    /Maximum resident set size/ {r=$2}
    END {printf "%.3f %.3f %d\n", u+s, w, r}' "$tf"
}

median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

row() { # name cpu wall rss
  awk -v n="$1" -v c="$2" -v w="$3" -v r="$4" -v l="$lines" \
    'BEGIN {printf "| %s | %.2f | %s | %.2f | %.1f |\n", n, c, sprintf("%\047d", l/c), w, r/1024}'
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
echo "log: $lines lines (shopsim seed $seed), $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)"
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
  awk -v m="$m_cpu" -v f="$f2b_total" -v l="$lines" 'BEGIN {
    printf "fail2ban, the 4 filters together: %.2f CPU s = %d lines/s per core; mamori is %.1fx faster (CPU time), with all detectors.\n", f, l/f, f/m }'
else
  echo
  echo "fail2ban-regex not available: no comparison"
fi
