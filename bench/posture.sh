#!/usr/bin/env bash
# bench/posture.sh — `mamori audit` side by side with Lynis (Debian package `lynis`,
# `lynis audit system --quick`), on this machine, in the same run. Not a test.
#
#   bench/posture.sh [RUNS]        (default 3 runs of mamori; Lynis runs once: minutes)
#
# The issue's goal is CPU time: mamori audit ≤ 0.1 × Lynis (user + sys, children
# included, from GNU time). Wall time and peak RSS are reported too. Both run as root on
# the same host with no URL probe (Lynis has none either). Prints a Markdown table.
set -euo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
WORK=${BENCH_DIR:-/var/tmp/mamori-bench-posture}
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
BIN="$TARGET/release/mamori"

command -v lynis >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
(cd "$HERE" && cargo build --release -q -p mamori)
mkdir -p "$WORK"
# A config with a state dir of its own, so the audit's attestation lookups do not touch
# anything real; no roots are needed for `audit`.
printf 'state_dir = "%s/state"\n' "$WORK" > "$WORK/mamori.toml"

# meas NAME RUNS CMD… : prints "NAME wall cpu rss" (medians; cpu = user + sys)
meas() {
    local name=$1 runs=$2; shift 2
    local walls=() cpus=() rss=()
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/t" bash -c "$*" >"$WORK/out.$name" 2>"$WORK/err.$name" || true
        read -r w u s m < <(tail -1 "$WORK/t")
        walls+=("$w"); cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')"); rss+=("$m")
    done
    local mid=$(( (runs + 1) / 2 ))
    echo "$name $(printf '%s\n' "${walls[@]}" | sort -g | sed -n "${mid}p") $(printf '%s\n' "${cpus[@]}" | sort -g | sed -n "${mid}p") $(printf '%s\n' "${rss[@]}" | sort -g | sed -n "${mid}p")"
}

results=$(
    meas mamori "$RUNS" "'$BIN' --config '$WORK/mamori.toml' --json audit"
    meas lynis 1 "lynis audit system --quick --no-colors --no-log --report-file '$WORK/lynis-report.dat'"
)
# A config or build problem must not be timed as an audit.
grep -q '"kind":"posture\.' "$WORK/out.mamori" || { echo "mamori audit produced no findings: $(head -3 "$WORK/err.mamori")" >&2; exit 1; }
checks=$(grep -c '"kind"' "$WORK/out.mamori" || true)
tests=$(grep -o 'lynis_tests_done=[0-9]*' "$WORK/lynis-report.dat" 2>/dev/null | cut -d= -f2 || echo "?")
echo "$results" | awk -v host="$(hostname)" -v date="$(date +%F)" -v ld="$(cut -d' ' -f1-3 /proc/loadavg)" \
    -v checks="$checks" -v tests="$tests" -v lv="$(lynis --version 2>/dev/null | head -1)" '
{ wall[$1] = $2; cpu[$1] = $3; rss[$1] = $4 }
END {
    printf "### audit vs Lynis %s on %s, %s (load %s)\n\n", lv, host, date, ld
    print "| what | wall s | CPU s (user+sys) | peak RSS MiB | results | CPU ratio | goal |"
    print "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
    printf "| lynis audit system --quick | %.2f | %.2f | %.0f | %s tests | 1.00 | |\n", wall["lynis"], cpu["lynis"], rss["lynis"] / 1024, tests
    r = cpu["lynis"] > 0 ? cpu["mamori"] / cpu["lynis"] : 0
    printf "| mamori audit | %.2f | %.2f | %.0f | %s findings | %.3f | ≤ 0.1 |\n", wall["mamori"], cpu["mamori"], rss["mamori"] / 1024, checks, r
}'
