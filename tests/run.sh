#!/bin/sh
# run.sh - run every test binary of a build and every script test, then
# print one closing line "N passed, N failed" summed over all of them.
#
#   BUILD=build/default BIN=bin tests/run.sh [--threads-only]
#
# CUnit binaries end with a "Run Summary" whose "tests" row gives the
# counts; script tests print their own "N passed, N failed" line.
set -u
BUILD=${BUILD:-build/default}
BIN=${BIN:-bin}
export BUILD BIN
here=$(cd "$(dirname "$0")" && pwd)
only_threads=0
[ "${1:-}" = "--threads-only" ] && only_threads=1

passed=0
failed=0
log=$(mktemp)
all=$(mktemp)
trap 'rm -f "$log" "$all"' EXIT

count() {   # name, exit status, log file
    p=$(awk '$1 == "tests" && NF >= 5 { print $4 }' "$3" | tail -n 1)
    f=$(awk '$1 == "tests" && NF >= 5 { print $5 }' "$3" | tail -n 1)
    if [ -z "$p" ]; then
        line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$3" | tail -n 1)
        p=$(echo "$line" | sed -E 's/^([A-Za-z-]+: )?([0-9]+) passed.*/\2/')
        f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    fi
    p=${p:-0}
    f=${f:-0}
    if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1     # crashed, timed out or failed outside an assertion
        echo "FAIL: $1 exited with status $2" >&2
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    echo "== $1: $p passed, $f failed"
}

run() {     # name, command...
    name=$1
    shift
    echo "== $name"
    "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    cat "$log" >>"$all"
    count "$name" "$rc" "$log"
}

if [ "$only_threads" = 1 ]; then
    for t in "$BUILD"/tests/stress_*; do
        [ -x "$t" ] && run "$(basename "$t") --threads" "$t" --threads
    done
    # The gateway is the other program with threads that share state
    # (its event loops, the kept threads, the stream records): its own
    # script, which fails on any sanitizer report in its logs.
    run "run_gateway.sh" "$here/gateway/run_gateway.sh"
else
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] && run "$(basename "$t")" "$t"
    done
    for s in "$here"/*/run_*.sh; do
        [ -x "$s" ] && run "$(basename "$s")" "$s"
    done
    for t in "$BUILD"/tests/stress_*; do
        [ -x "$t" ] && run "$(basename "$t")" "$t"
    done
fi

# Secrets: every key the tests use contains the word SECRET; none may
# appear in anything the suite printed (logs, status, errors).
echo "== secrets scan"
if grep -n "SECRET" "$all" >"$log"; then
    echo "FAIL: a test key appeared in the output:" >&2
    head -n 5 "$log" >&2
    failed=$((failed + 1))
else
    passed=$((passed + 1))
    echo "no test key in $(wc -l <"$all") lines of output"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
