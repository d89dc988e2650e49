#!/bin/sh
# lint.sh - the mechanical rules of STYLE.md, checked over the tree.
# Prints each violation as FILE:LINE: rule, and exits 1 if there is any.
set -u
cd "$(dirname "$0")/.."
bad=0
say() { echo "$*"; bad=1; }

src=$(git ls-files '*.c' '*.h' 2>/dev/null)
[ -n "$src" ] || src=$(find config shm client router tools tests -name '*.[ch]')

# Rule 8: every atomic operation names its memory order.
grep -nE '\batomic_(load|store|fetch_[a-z]+|compare_exchange_(weak|strong)|exchange)\(' \
    $(echo "$src" | grep -E '^(shm|client|router)/') /dev/null |
    while IFS= read -r l; do echo "$l: atomic without _explicit (rule 8)"; done |
    grep . && bad=1

# Rule 3: third-party headers only in .c files.
for h in $(echo "$src" | grep '\.h$' | grep -v '^tests/'); do
    grep -nE '#include <(curl/|json-c/|json\.h|libconfig\.h|microhttpd\.h|CUnit/)' "$h" |
        sed "s|^|$h:|; s|\$|: third-party header in a .h (rule 3)|" | grep . && bad=1
done

# Rule 1: folders are the architecture.
check_includes() {  # folder, forbidden-regex, rule text
    for f in $(echo "$src" | grep "^$1/"); do
        grep -nE "$2" "$f" | sed "s|^|$f:|; s|\$|: $3|" | grep . && bad=1
    done
}
check_includes shm '#include "(config|router|client|gemroute|client_priv)\.h"|#include <(curl|json|libconfig)' \
    'shm/ uses libc only (rule 1)'
check_includes config '#include "(layout|table|gemroute|router)\.h"' \
    'config/ uses libc and libconfig only (rule 1)'
check_includes client '#include "(config|router)\.h"' \
    'client/ never reads the config (rule 1)'

# Rule 3: a module's _priv.h is its own; no path climbs out of a folder.
# Unit tests are the exception: tests/unit/test_MODULE.c tests MODULE's
# private parts.
for f in $(echo "$src" | grep -v '^tests/'); do
    d=$(dirname "$f")
    grep -nE '#include "[^"]*_priv\.h"' "$f" | while IFS=: read -r ln inc; do
        h=$(echo "$inc" | sed -E 's/.*"([^"]*)".*/\1/')
        [ -f "$d/$h" ] ||
            echo "$f:$ln: $h is private to another folder (rule 3)"
    done
    grep -nE '#include "\.\./' "$f" |
        sed "s|^|$f:|; s|\$|: include climbs out of its folder (rule 3)|"
done | grep . && bad=1

# Rule 2: no bare shm_ prefix on our own functions.
grep -nE '^shm_[a-z_]+\(' $(echo "$src" | grep '\.c$') /dev/null |
    sed 's|$|: bare shm_ prefix (rule 2)|' | grep . && bad=1

# Rule 13: each .c opens with a comment saying what it does.
for f in $(echo "$src" | grep '\.c$'); do
    head -n 1 "$f" | grep -q '^/\*' || say "$f:1: does not open with a comment (rule 13)"
done

# Rule 15: 80 columns.
for f in $src; do
    awk -v f="$f" 'length > 80 { print f ":" FNR ": longer than 80 columns (rule 15)" }' "$f"
done | grep . && bad=1

[ "$bad" -eq 0 ] && echo "lint: clean"
exit "$bad"
