#!/usr/bin/env bash
# bench/entrance-crs.sh [DIR] — fetch the OWASP Core Rule Set regression corpus for
# crates/mamori-entrance/tests/crs.rs into DIR (default /var/cache/mamori/crs).
#
# Debian's binary package modsecurity-crs ships the rules only; its *source* package
# (the upstream release tarball) also holds tests/regression/tests/**/*.yaml. This asks
# apt for that source package with a private apt state under DIR/apt: the deb-src
# entries are the machine's own Debian sources with `Types: deb-src`, so the system's
# apt configuration and lists are left alone. Idempotent: does nothing when DIR already
# holds an unpacked corpus. Prints the corpus directory. Needs apt-get and tar; the
# test itself needs python3 with PyYAML (Debian: python3-yaml).
set -euo pipefail
dir=${1:-/var/cache/mamori/crs}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

found() { find "$dir" -maxdepth 4 -type d -path '*/tests/regression/tests' 2>/dev/null | head -1; }
if [ -n "$(found)" ]; then
  dirname "$(dirname "$(dirname "$(found)")")"
  exit 0
fi

apt=$dir/apt
mkdir -p "$apt/parts" "$apt/lists/partial" "$apt/cache/archives/partial"
: > "$apt/empty.list"
src=$apt/parts/src.sources
: > "$src"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  grep -q '^Types:.*\bdeb\b' "$f" || continue
  grep -qi 'debian' "$f" || continue
  sed 's/^Types:.*/Types: deb-src/' "$f" >> "$src"
  echo >> "$src"
done
if [ -f /etc/apt/sources.list ]; then
  sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list > "$apt/parts/src.list"
fi
[ -s "$src" ] || [ -s "$apt/parts/src.list" ] || { echo "no Debian apt sources found to derive deb-src from" >&2; exit 2; }

opts=(-o "Dir::Etc::SourceList=$apt/empty.list" -o "Dir::Etc::SourceParts=$apt/parts"
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -q update >&2
(cd "$dir" && apt-get "${opts[@]}" -q source --download-only modsecurity-crs >&2)
tarball=$(ls "$dir"/modsecurity-crs_*.orig.tar.* | head -1)
tar -xf "$tarball" -C "$dir"
rm -rf "$apt"
[ -n "$(found)" ] || { echo "$tarball holds no tests/regression/tests" >&2; exit 1; }
dirname "$(dirname "$(dirname "$(found)")")"
