#!/usr/bin/env bash
# bench/debcorpus.sh — fetch real PHP applications and libraries that Debian packages
# (apt-get download + dpkg-deb -x, nothing is installed) into a cache directory, as the
# false-positive corpus of `mamori scan` (crates/mamori/tests/scan.rs) and bench/scan.sh.
#
#   bench/debcorpus.sh [DIR]      (default: $MAMORI_DEB_CORPUS, else /var/cache/mamori/debcorpus)
#
# Idempotent: a package already extracted (DIR/<package>/.done) is not fetched again;
# DIR/.complete marks a finished corpus (the test in crates/mamori/tests/scan.rs needs it).
# The named packages plus their Depends, two levels down, that carry PHP or JavaScript
# code (php-*, libjs-*, the applications); the PHP interpreter, its C extensions, -dev and
# -doc packages are skipped. Prints the corpus directory and its file count on stdout.
set -euo pipefail
DIR=${1:-${MAMORI_DEB_CORPUS:-/var/cache/mamori/debcorpus}}
TOP=(wordpress phpmyadmin roundcube roundcube-core roundcube-plugins mediawiki dokuwiki
     php-symfony php-twig php-doctrine-orm php-guzzlehttp-guzzle)
# Package names worth following: PHP libraries, bundled JS, the applications themselves.
KEEP='^(php-[a-z0-9][a-z0-9.+-]*|libjs-[a-z0-9.+-]+|roundcube(-[a-z]+)?|mediawiki(-[a-z]+)?|wordpress(-[a-z]+)?|dokuwiki)$'
# Not code: the interpreter, its compiled extensions and their metapackages, -dev, -doc.
SKIP='^(php-(common|cli|fpm|cgi|json|gd|mysql|mysqlnd|pgsql|sqlite3|intl|mbstring|xml|curl|zip|bz2|gmp|ldap|imagick|apcu|redis|memcached|igbinary|msgpack|bcmath|soap|tidy|xsl|readline|opcache|pear|net-ldap2|auth-sasl|mail-mime|net-smtp|net-socket|dev|all-dev)|.*-(dev|doc))$'

mkdir -p "$DIR/.debs"
if ! apt-cache show wordpress >/dev/null 2>&1; then
    apt-get update -qq
fi

deps() { # the Depends of the given packages that pass KEEP and not SKIP
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$@" 2>/dev/null |
        awk '/^ *\|?(Pre)?Depends:/ {print $2}' | tr -d '<>' |
        grep -E "$KEEP" | grep -vE "$SKIP" || true
}
l1=$(deps "${TOP[@]}")
l2=$(deps $l1)
pkgs=$(printf '%s\n' "${TOP[@]}" $l1 $l2 | sort -u)

fetched=0
for p in $pkgs; do
    [ -e "$DIR/$p/.done" ] && continue
    apt-cache show "$p" >/dev/null 2>&1 || continue   # virtual package
    (cd "$DIR/.debs" && apt-get download -qq "$p" >/dev/null 2>&1) || {
        echo "debcorpus: cannot download $p (skipped)" >&2
        continue
    }
    deb=$(ls -t "$DIR/.debs/${p}_"*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || continue
    rm -rf "$DIR/$p"
    mkdir -p "$DIR/$p"
    dpkg-deb -x "$deb" "$DIR/$p"
    touch "$DIR/$p/.done"
    fetched=$((fetched + 1))
done
rm -rf "$DIR/.debs"
touch "$DIR/.complete"
n=$(find "$DIR" -type f ! -name .done | wc -l)
echo "debcorpus: $fetched package(s) fetched, $(printf '%s\n' $pkgs | wc -l) in the list" >&2
echo "$DIR $n"
