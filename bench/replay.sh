#!/usr/bin/env bash
# bench/replay.sh — the founding incident replayed against `mamori watch`, many times.
# Not a test (the CI test in crates/mamori/tests/watch.rs runs one replay per mode).
#
#   bench/replay.sh [SEEDS] [MODES]      (defaults: 8 seeds, "restore deny")
#
# For each seed and mode: `shopsim.py replay --duration 6 --tamper-at 2` (a PHP checkout
# under `php -S`, 20 checkouts/s, the payment module edited in place with its mtime put
# back) with `mamori watch --response MODE` started as the guard. Prints per mode the
# cards skimmed of those sent after the tamper, and checkout errors (deny mode fails
# closed: every checkout after the tamper errors until the file is restored).
# BIN=path/to/mamori to use another binary (e.g. the debug one the tests run).
# Needs: python3, php-cli, ../shared/scenarios; root for fanotify (and for deny mode).
set -euo pipefail
SEEDS=${1:-8}
MODES=${2:-restore deny}
HERE=$(cd "$(dirname "$0")/.." && pwd)
KIT="$HERE/../shared/scenarios/shopsim.py"
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
if [ -z "${BIN:-}" ]; then
    (cd "$HERE" && cargo build --release -q -p mamori)
    BIN="$TARGET/release/mamori"
fi
WORK=$(mktemp -d /tmp/mamori-bench-replay.XXXXXX)
trap 'pkill -f "$WORK/" 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "### replay: $SEEDS seeds, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg) ($(date +%F))"
echo
echo "| mode | cards skimmed per seed (of those after the tamper) | checkout errors per seed |"
echo "| --- | --- | --- |"
for mode in $MODES; do
    skimmed=() errors=()
    for seed in $(seq 1 "$SEEDS"); do
        d="$WORK/$mode-$seed"
        mkdir -p "$d"
        guard="sh -c '$BIN --config $d/m.toml init --root \"\$SHOP_ROOT\" --force >/dev/null 2>&1 && exec $BIN --config $d/m.toml --json watch --response $mode > $d/out.jsonl 2>$d/err.txt'"
        r=$(python3 "$KIT" replay --duration 6 --tamper-at 2 --guard-warmup 2 --seed "$seed" \
            --guard-start "$guard" 2>/dev/null)
        pkill -f "$d/m.toml" 2>/dev/null || true
        read -r after skim err < <(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["cards_after_tamper"], r["cards_skimmed"], r["checkout_errors"])' "$r")
        skimmed+=("$skim/$after")
        errors+=("$err")
        sleep 0.5
    done
    echo "| $mode | ${skimmed[*]} | ${errors[*]} |"
done
