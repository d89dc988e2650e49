#!/bin/sh
# run_exports.sh - the shared library exports exactly the public API.
# Three lists must agree: the functions include/gemroute.h declares (each
# marked GR_API), the globals of the version script client/libgemroute.map,
# and what the built libgemroute.so.1 exports (nm -D --defined-only), all
# at version GEMROUTE_1; its soname is libgemroute.so.1 and
# lib/libgemroute.so links to it.  The checker is also shown a header with
# an unmarked declaration and with one function too many, and must notice.
# Ends with "N passed, N failed" for tests/run.sh.
#
#   BIN=bin tests/install/run_exports.sh
set -u
BIN=${BIN:-bin}
. "$(dirname "$0")/../lib.sh"
LIB=${LIB:-$(dirname "$BIN")/lib}
so="$LIB/libgemroute.so.1"
names="python3 tests/install/api_names.py"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# exported FILE: the defined dynamic symbols, without the version node.
exported() {
    nm -D --defined-only "$1" |
        awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' | sort
}

$names header include/gemroute.h include/gemroute_stat.h >"$tmp/header" 2>"$tmp/header.err"
check "every declaration in include/gemroute.h has GR_API: \
$(cat "$tmp/header.err")" '[ ! -s "$tmp/header.err" ]'
check "the header declares functions" '[ "$(wc -l <"$tmp/header")" -ge 10 ]'
$names map client/libgemroute.map >"$tmp/map" 2>"$tmp/map.err"
check "libgemroute.map: $(cat "$tmp/map.err")" '[ ! -s "$tmp/map.err" ]'
diff "$tmp/header" "$tmp/map" >"$tmp/d1"
check "header and libgemroute.map list the same functions \
(< header only, > map only): $(cat "$tmp/d1")" '[ ! -s "$tmp/d1" ]'

if [ -f "$so" ]; then
    ok
    exported "$so" >"$tmp/so"
    diff "$tmp/header" "$tmp/so" >"$tmp/d2"
    check "$so exports exactly the header's functions \
(< header only, > exported only): $(cat "$tmp/d2")" '[ ! -s "$tmp/d2" ]'
    nm -D --defined-only "$so" | awk '$2 != "A"' |
        grep -v '@@GEMROUTE_1$' >"$tmp/unversioned"
    check "every export is at version GEMROUTE_1: \
$(cat "$tmp/unversioned")" '[ ! -s "$tmp/unversioned" ]'
    soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
    check "soname is libgemroute.so.1 (got '$soname')" \
        '[ "$soname" = libgemroute.so.1 ]'
    check "$LIB/libgemroute.so -> libgemroute.so.1" \
        '[ "$(readlink "$LIB/libgemroute.so")" = libgemroute.so.1 ]'
else
    no "$so was not built"
fi

# The checker can fail: a declaration without GR_API, one function more
# than the map lists, one less.
sed '0,/^GR_API$/{/^GR_API$/d}' include/gemroute.h >"$tmp/unmarked.h"
check "the checker notices an unmarked declaration" \
    '! $names header "$tmp/unmarked.h" >/dev/null 2>&1'
sed 's/^#endif$/GR_API\nint gr_not_in_the_map(void);\n#endif/' \
    include/gemroute.h >"$tmp/extra.h"
$names header "$tmp/extra.h" >"$tmp/extra" 2>/dev/null
check "the checker notices a function the map lacks" \
    '! diff "$tmp/extra" "$tmp/map" >/dev/null && grep -qx gr_not_in_the_map "$tmp/extra"'
grep -v 'gr_open;' client/libgemroute.map >"$tmp/short.map"
$names map "$tmp/short.map" >"$tmp/short"
check "the checker notices a function the map lost" \
    '! diff "$tmp/header" "$tmp/short" >/dev/null'
finish
