#!/usr/bin/env bash
# Sealing throughput: mamori vs age (and rage when installed), same machine, same run.
# 1 GiB random file (SIZE_MB to change), file -> file, wall seconds and peak RSS via
# /usr/bin/time -f '%e %M'. Not a test: prints a Markdown table for docs/posture.md.
#
# Uses `target/release/mamori seal/unseal` when the binary has those subcommands, else
# the stand-in example `target/release/examples/seal_bench` (built here).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-1}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/mamori-seal-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

command -v age >/dev/null || { echo "age is not installed (apt-get install -y age)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install -y time)" >&2; exit 2; }

# The shared target directory when CARGO_TARGET_DIR is set (the house rule), else ./target.
TARGET=${CARGO_TARGET_DIR:-target}
if [ -x "$TARGET/release/mamori" ] && "$TARGET/release/mamori" seal --help >/dev/null 2>&1; then
  MAMORI=("$TARGET/release/mamori")
else
  cargo build --release -q -p mamori-posture --example seal_bench
  MAMORI=("$TARGET/release/examples/seal_bench")
fi

echo "generating ${SIZE_MB} MiB of random data in $WORK" >&2
head -c "${SIZE_MB}M" /dev/urandom > "$WORK/in.bin"
age-keygen -o "$WORK/key.txt" 2>/dev/null
R=$(age-keygen -y "$WORK/key.txt")

# run LABEL OUTFILE CMD...  -> appends "LABEL wall rss cpu" (the run with the best wall
# of RUNS; cpu = user + sys, which the shared machine's load disturbs less than wall)
results=()
run() {
  local label=$1 out=$2; shift 2
  local best_e="" best_m="" best_c=""
  for _ in $(seq "$RUNS"); do
    rm -f "$out"
    sync
    /usr/bin/time -f '%e %M %U %S' -o "$WORK/t" "$@"
    read -r e m u s < "$WORK/t"
    if [ -z "$best_e" ] || awk "BEGIN{exit !($e < $best_e)}"; then
      best_e=$e; best_m=$m; best_c=$(awk "BEGIN{printf \"%.2f\", $u + $s}")
    fi
  done
  results+=("$label|$best_e|$best_m|$best_c")
}

# rage: the Rust age tool, built on the same `age` crate mamori uses (not packaged in
# Debian; built once from crates.io into a cache outside the clone, RAGE=0 to skip).
RAGE_BIN=$(command -v rage || true)
if [ -z "$RAGE_BIN" ] && [ "${RAGE:-1}" = 1 ]; then
  RAGE_ROOT=${RAGE_ROOT:-/var/cache/mamori/rage}
  [ -x "$RAGE_ROOT/bin/rage" ] || cargo install -q --locked rage --root "$RAGE_ROOT" >&2
  RAGE_BIN="$RAGE_ROOT/bin/rage"
fi

# Neither tool fsyncs a file it leaves beside its input (mamori fsyncs only in seal.watch,
# before it deletes the plaintext), so these are like for like.
run "mamori seal"   "$WORK/m.age" "${MAMORI[@]}" seal -r "$R" -o "$WORK/m.age" "$WORK/in.bin"
run "age -e"        "$WORK/a.age" age -r "$R" -o "$WORK/a.age" "$WORK/in.bin"
[ -n "$RAGE_BIN" ] && run "rage -e" "$WORK/r.age" "$RAGE_BIN" -e -r "$R" -o "$WORK/r.age" "$WORK/in.bin"
rm -f "$WORK/r.age"
run "mamori unseal" "$WORK/m.out" "${MAMORI[@]}" unseal -i "$WORK/key.txt" -o "$WORK/m.out" "$WORK/a.age"
cmp -s "$WORK/in.bin" "$WORK/m.out" || { echo "mamori unseal output differs" >&2; exit 1; }
rm -f "$WORK/m.out"
run "age -d"        "$WORK/a.out" age -d -i "$WORK/key.txt" -o "$WORK/a.out" "$WORK/m.age"
cmp -s "$WORK/in.bin" "$WORK/a.out" || { echo "age -d output differs" >&2; exit 1; }
rm -f "$WORK/a.out"
if [ -n "$RAGE_BIN" ]; then
  run "rage -d" "$WORK/r.out" "$RAGE_BIN" -d -i "$WORK/key.txt" -o "$WORK/r.out" "$WORK/m.age"
  cmp -s "$WORK/in.bin" "$WORK/r.out" || { echo "rage -d output differs" >&2; exit 1; }
  rm -f "$WORK/r.out"
else
  echo "rage not available: skipped" >&2
fi

# throughput ratio = other tool's wall / mamori's wall for the same direction
wall() { for r in "${results[@]}"; do IFS='|' read -r l e _ _ <<<"$r"; [ "$l" = "$1" ] && echo "$e"; done; }
ratio() { local a b; a=$(wall "$1"); b=$(wall "$2"); [ -n "$a" ] && [ -n "$b" ] && awk "BEGIN{printf \"%.2f\", $b / $a}"; }
echo "| operation | wall s | MiB/s | CPU s (user+sys) | peak RSS KiB | mamori throughput ÷ this |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in "${results[@]}"; do
  IFS='|' read -r label e m c <<<"$r"
  rate=$(awk "BEGIN{ if ($e > 0) printf \"%.0f\", $SIZE_MB / $e; else print \"-\" }")
  case $label in
    "age -e"|"rage -e") rel=$(ratio "mamori seal" "$label") ;;
    "age -d"|"rage -d") rel=$(ratio "mamori unseal" "$label") ;;
    *) rel="" ;;
  esac
  echo "| $label | $e | $rate | $c | $m | $rel |"
done
echo "(${SIZE_MB} MiB, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%F))"
