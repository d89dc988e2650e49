#!/bin/sh
# run_check.sh - `gemrouted --check`: every bad config is refused with its
# FILE:LINE: messages and exit status 2; a good one passes with 0.  The
# messages themselves are compared line by line in test_config.
set -u
. "$(dirname "$0")/../lib.sh"

# The environment the golden files expect (as test_config sets it).
unset GR_TEST_UNSET_VARIABLE
export GR_TEST_EMPTY_VARIABLE=""
export GR_TEST_SPACE_VARIABLE="SECRET-env with-space"
export GR_TEST_SHARED_VARIABLE="SECRET-shared-1"
l=0123456789012345678901234567890123456789012345678901234567890123
export GR_TEST_LONG_VARIABLE="SECRET-long-$l$l"

for conf in tests/config/bad-*.conf; do
    out=$("$BIN/gemrouted" --check -c "$conf" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" -eq 2 ] && ok || no "$conf: exit $rc, wanted 2"
    first=$(head -n 1 "${conf%.conf}.expected")
    echo "$out" | grep -qxF "$first" && ok || no "$conf: '$first' not printed"
    echo "$out" | grep -q "SECRET" && no "$conf: a key was printed" || ok
done

export GEMINI_KEY_1=test-key-aaaa0001
out=$("$BIN/gemrouted" --check -c tests/config/good-include.conf 2>&1)
rc=$?
[ "$rc" -eq 0 ] && ok || no "good-include.conf: exit $rc: $out"
echo "$out" | grep -q "test-key" && no "a key was printed" || ok

"$BIN/gemrouted" --check -c /nonexistent.conf >/dev/null 2>&1
[ $? -eq 2 ] && ok || no "missing file: wanted exit 2"
"$BIN/gemrouted" --bogus >/dev/null 2>&1
[ $? -eq 2 ] && ok || no "bad option: wanted exit 2"

finish
