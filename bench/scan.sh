#!/usr/bin/env bash
# bench/scan.sh — `mamori scan` side by side with classic YARA (`yara -r`, Debian package
# `yara`, libyara 4.2) running the SAME rules/*.yar, on (a) a generated shop tree and
# (b) the Debian PHP corpus (bench/debcorpus.sh), in the same run. Not a test.
#
#   bench/scan.sh [FILES] [RUNS]        (defaults: 100000 files, 3 runs; medians reported)
#
# Both tools get the same thread count (THREADS, default: the number of cores) and a warm
# cache. mamori is measured twice: rules only ([scan] card_stash = false, magic = false,
# the same work as yara) and as shipped (rules + card-stash finder + magic check).
# Rule compile time: `yarac` for YARA; mamori reports its own (yara-x) on stderr.
# Needs: python3 + ../shared/scenarios/shopsim.py, yara, GNU time. Prints Markdown.
set -euo pipefail
FILES=${1:-100000}
RUNS=${2:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
KIT="$HERE/../shared/scenarios/shopsim.py"
WORK=${BENCH_DIR:-/var/tmp/mamori-bench-scan}
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
# BIN=path/to/mamori measures that binary instead of building the release one.
BIN=${BIN:-$TARGET/release/mamori}
THREADS=${THREADS:-$(nproc)}
CORPUS=${MAMORI_DEB_CORPUS:-/var/cache/mamori/debcorpus}

command -v yara >/dev/null || { apt-get update -qq && apt-get install -y -qq yara >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
[ "$BIN" != "$TARGET/release/mamori" ] || (cd "$HERE" && cargo build --release -q -p mamori)
[ -d "$CORPUS" ] || bash "$HERE/bench/debcorpus.sh" "$CORPUS" >/dev/null

mkdir -p "$WORK"
TREE="$WORK/t$FILES/shop"
if [ ! -d "$TREE" ]; then
    python3 "$KIT" tree "$TREE" --files "$FILES" --flavor eccube --seed 1 >&2
fi
RULES=("$HERE"/rules/*.yar)

cat > "$WORK/rules-only.toml" <<CONF
[scan]
card_stash = false
magic = false
CONF
cat > "$WORK/shipped.toml" <<CONF
[scan]
CONF

# meas NAME CMD… : runs CMD RUNS times, prints "NAME wall_s maxrss_kib" (medians)
meas() {
    local name=$1; shift
    local walls=() rss=()
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e %M' -o "$WORK/t" bash -c "$*" >"$WORK/out.$name" 2>"$WORK/err.$name" || true
        read -r w m < <(tail -1 "$WORK/t")
        walls+=("$w"); rss+=("$m")
    done
    local mw mr
    mw=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
    mr=$(printf '%s\n' "${rss[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
    echo "$name $mw $mr"
}

# Rule compile time: yarac (libyara) vs the note mamori prints.
t0=$(date +%s.%N); yarac "${RULES[@]}" "$WORK/rules.yarc" 2>/dev/null; t1=$(date +%s.%N)
yarac_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
mkdir -p "$WORK/empty"
"$BIN" --lang en scan "$WORK/empty" 2>"$WORK/compile.err" >/dev/null || true
mamori_ms=$(grep -o 'compiled in [0-9]* ms' "$WORK/compile.err" | grep -o '[0-9]*' || echo "?")

bench_tree() { # LABEL DIR
    local label=$1 dir=$2
    find "$dir" -type f -print0 | xargs -0 cat > /dev/null   # warm the cache
    local files bytes
    files=$(find "$dir" -type f | wc -l)
    bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
    local r
    r=$(
        meas yara "yara -w -p $THREADS ${RULES[*]} -r '$dir'"
        meas mamori_rules "'$BIN' --config '$WORK/rules-only.toml' -q --json scan -j $THREADS '$dir'"
        meas mamori "'$BIN' --config '$WORK/shipped.toml' -q --json scan -j $THREADS '$dir'"
    )
    local yara_hits mamori_hits
    yara_hits=$(awk '{print $2}' "$WORK/out.yara" | sort -u | wc -l)
    mamori_hits=$(wc -l < "$WORK/out.mamori")
    echo "$r" > "$WORK/results.txt"
    get() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$WORK/results.txt"; }
    echo "#### $label: $files files, $(( bytes / 1048576 )) MiB, $THREADS threads, warm cache, median of $RUNS"
    echo
    echo "| tool | wall s | files/s | MB/s | MB/s per core | peak RSS MiB | speed vs yara |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    local yw
    yw=$(get yara 2)
    for n in yara mamori_rules mamori; do
        local w m
        w=$(get "$n" 2); m=$(get "$n" 3)
        awk -v n="$n" -v w="$w" -v m="$m" -v f="$files" -v b="$bytes" -v t="$THREADS" -v yw="$yw" 'BEGIN {
            name = (n == "yara") ? "yara -r (libyara 4.2)" : (n == "mamori_rules") ? "mamori scan, rules only" : "mamori scan (rules + stash + magic)";
            if (w <= 0) w = 0.001;
            printf "| %s | %.2f | %.0f | %.1f | %.1f | %d | %.2fx |\n", name, w, f / w, b / w / 1e6, b / w / 1e6 / t, m / 1024, yw / w
        }'
    done
    echo
    echo "Files matched: yara $yara_hits, mamori $mamori_hits findings."
    echo
}

echo "### Content scan vs YARA ($(date -u +%F), $(nproc) cores)"
echo
echo "Rules: ${#RULES[@]} files in rules/, compiled by yarac in ${yarac_ms} ms, by mamori (yara-x) in ${mamori_ms} ms."
echo
bench_tree "Generated shop tree (shopsim tree --files $FILES)" "$TREE"
bench_tree "Debian PHP corpus (bench/debcorpus.sh)" "$CORPUS"
