#!/usr/bin/env bash
# bench/fim.sh — the baseline and check of mamori side by side with AIDE and a plain
# stat walk, on the same generated shop tree, in the same run. Not a test.
#
#   bench/fim.sh [FILES] [RUNS]        (defaults: 100000 files, 3 runs; medians reported)
#
# Needs: python3 + ../shared/scenarios/shopsim.py, aide (Debian package), GNU time.
# AIDE config as the issue asks: p+i+n+u+g+s+m+c+sha256, num_workers 2, no gzip.
# All runs warm-cache (the tree is read once first). Prints a Markdown table.
set -euo pipefail
FILES=${1:-100000}
RUNS=${2:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
KIT="$HERE/../shared/scenarios/shopsim.py"
WORK=${BENCH_DIR:-/var/tmp/mamori-bench-fim}
TARGET=${CARGO_TARGET_DIR:-$HERE/target}
BIN="$TARGET/release/mamori"

command -v aide >/dev/null || { apt-get update -qq && apt-get install -y -qq aide >/dev/null; }
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
(cd "$HERE" && cargo build --release -q -p mamori)

mkdir -p "$WORK"
TREE="$WORK/t$FILES/shop"
if [ ! -d "$TREE" ]; then
    python3 "$KIT" tree "$TREE" --files "$FILES" --flavor magento --seed 1 >&2
fi
cat > "$WORK/aide.conf" <<CONF
database_in=file:$WORK/aide.db
database_out=file:$WORK/aide.db.new
gzip_dbout=no
num_workers=2
report_url=stdout
FIM = p+i+n+u+g+s+m+c+sha256
$TREE FIM
CONF
find "$TREE" -type f -print0 | xargs -0 cat > /dev/null   # warm the cache

# meas NAME CMD… : runs CMD RUNS times, prints "NAME wall_s maxrss_kib" (medians)
meas() {
    local name=$1; shift
    local walls=() rss=()
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e %M' -o "$WORK/t" bash -c "$*" >/dev/null 2>"$WORK/err" || true
        read -r w m < <(tail -1 "$WORK/t")
        walls+=("$w"); rss+=("$m")
    done
    local mw mr
    mw=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
    mr=$(printf '%s\n' "${rss[@]}" | sort -g | sed -n "$(( (RUNS + 1) / 2 ))p")
    echo "$name $mw $mr"
}

CFG="$WORK/mamori.toml"
rm -rf "$WORK/.mamori" "$CFG"
"$BIN" --config "$CFG" -q init --root "$TREE" >/dev/null

results=$(
    meas find_stat "find '$TREE' -printf '%p %s %T@ %C@ %m %U %G %i %n\n'"
    meas aide_init "aide -c '$WORK/aide.conf' --init"
    cp "$WORK/aide.db.new" "$WORK/aide.db"
    meas aide_check "aide -c '$WORK/aide.conf' --check"
    meas mamori_baseline "'$BIN' --config '$CFG' -q baseline --approve"
    meas mamori_check "'$BIN' --config '$CFG' -q check --json"
    meas mamori_check_full "'$BIN' --config '$CFG' -q check --full --json"
)
echo "$results" > "$WORK/results.txt"
get() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$WORK/results.txt"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

files=$(find "$TREE" -type f | wc -l)
mib=$(du -sm "$TREE" | cut -f1)
echo "### FIM: $files files, $mib MiB, $(nproc) cores, warm cache, median of $RUNS ($(date -u +%F))"
echo
echo "| what | wall s | peak RSS MiB | ratio | goal |"
echo "| --- | ---: | ---: | ---: | --- |"
row() { printf '| %s | %s | %s | %s | %s |\n' "$1" "$(get "$2" 2)" "$(( $(get "$2" 3) / 1024 ))" "$3" "$4"; }
row "find -printf (stat walk)" find_stat "1.00" ""
row "aide --init" aide_init "" ""
row "aide --check (no change)" aide_check "" ""
row "mamori baseline" mamori_baseline "$(ratio "$(get mamori_baseline 2)" "$(get aide_init 2)") × aide --init" "≤ 0.3"
row "mamori check (no change)" mamori_check "$(ratio "$(get mamori_check 2)" "$(get aide_check 2)") × aide --check; $(ratio "$(get mamori_check 2)" "$(get find_stat 2)") × find" "≤ 0.1; ≤ 1.2"
row "mamori check --full" mamori_check_full "$(ratio "$(get mamori_check_full 2)" "$(get aide_check 2)") × aide --check" ""
