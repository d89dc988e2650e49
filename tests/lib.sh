# lib.sh - what the shell tests share: counting checks and the closing
# "N passed, N failed" line that tests/run.sh reads.  Source it after
# setting BIN; it moves to the repository root.
#
#   ok / no "why"            count a pass / a failure (printed)
#   check "name" 'condition' evaluate the condition, count the result
#   finish                   print the closing line; exit 1 on failure
cd "$(dirname "$0")/../.." || exit 1
BIN=${BIN:-bin}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else no "$1"; fi; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
