#!/usr/bin/env bash
# bench/entrance-detect.sh [SEED…] — the detection table of docs/entrance.md, reproduced.
#
# For each seed (default 1 2 3): generate the 30-day, 1M-line shop log with the shared
# kit (`shopsim.py access-log --days 30 --lines 1000000 --seed S`, default options),
# run the entrance layer on it with default options (`examples/eval.rs`, release build:
# the library call `mamori logs` makes, blocks decided in print-only mode, no DNS) and
# score the findings against the kit's ground truth. JSON=1 adds a row for the JSON
# format of seed 1. Prints a Markdown table; latencies are on the log's own clock.
# Not a test: a test (tests/shopsim.rs) asserts the thresholds on 200k-line logs.
# Honours CARGO_TARGET_DIR; logs go to a temporary directory, removed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kit=${SHOPSIM:-$root/../shared/scenarios/shopsim.py}
[ -f "$kit" ] || { echo "shopsim.py not found at $kit (set SHOPSIM=)" >&2; exit 2; }
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
work=$(mktemp -d /tmp/mamori-bench-detect.XXXXXX)
trap 'rm -rf "$work"' EXIT

cd "$root"
cargo build --release -q -p mamori-entrance --example eval >&2
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$root/$target ;; esac
eval_bin=$target/release/examples/eval

rows=()
run() { # label seed format
  local log=$work/access-$2-$3.log
  echo "seed $2 ($3): generating" >&2
  python3 "$kit" access-log "$log" --days 30 --lines 1000000 --seed "$2" --format "$3" 2>/dev/null
  echo "seed $2 ($3): scoring $(wc -l < "$log") lines" >&2
  rows+=("$("$eval_bin" --markdown "$1" "$log")")
  rm -f "$log" "$log".*
}
for s in "${seeds[@]}"; do
  run "$s" "$s" combined
  if [ "${JSON:-0}" = 1 ] && [ "$s" = "${seeds[0]}" ]; then
    run "$s (json)" "$s" json
  fi
done

echo
echo "shopsim access-log --days 30 --lines 1000000, default options; $(date -u +%Y-%m-%d); commit $(git -C "$root" describe --always --dirty)"
echo
echo "| seed | campaign IPs found | first campaign finding before admin-login success | scanner | stuffing IPs | spraying alert | card testing alert | benign flagged | office/bots/CGNAT/carriers flagged |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
