#!/bin/sh
# run_python.sh - the Python binding (bindings/python/gemroute) end to end:
# the real bin/gemroute-mock on a free loopback port, a real bin/gemrouted
# with 2-second windows in front of it, and tests/python/test_gemroute.py
# (python3's unittest, nothing else) through libgemroute.so.1 against
# both.  The layout of every public struct is compared with what a C
# program built against include/gemroute.h reports ($BUILD/tests/py_layout).
# Ends with "N passed, N failed" for tests/run.sh: the unit tests' counts
# plus this script's own checks.
#
#   BUILD=build/default BIN=bin tests/python/run_python.sh
set -u
. "$(dirname "$0")/../lib.sh"
root=$(pwd)
BUILD=${BUILD:-build/default}
LIB=${LIB:-$(dirname "$BIN")/lib}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-python.XXXXXX")
shm="/gr-python-$$"
mock_pid=
passed=0
failed=0
KEY1=gr-python-SECRET-one-9d1c2b
KEY2=gr-python-SECRET-two-5e8a07

cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
    [ -n "$mock_pid" ] && wait "$mock_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

# A sanitized libgemroute.so cannot be loaded into python3 without its
# runtime preloaded; these runs test the default build's.
case "$BUILD" in
build/default) ;;
*)
    echo "note: $BUILD is a sanitizer build: the binding is tested" \
        "against the default build (make test)"
    echo "0 passed, 0 failed"
    exit 0
    ;;
esac
[ -f "$LIB/libgemroute.so.1" ] || { bad "$LIB/libgemroute.so.1 not built"; finish; }
[ -x "$BUILD/tests/py_layout" ] || { bad "$BUILD/tests/py_layout not built"; finish; }

umask 077
cat >"$tmp/mock.conf" <<EOF2
listen = "127.0.0.1:0";
window_ms = 2000;
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "gemini-2.5-flash"; rpm = 1000; tpm = 1000000; },
               { model = "gemini-embedding-001"; rpm = 1000; } ); },
  { name = "two"; keys = ["$KEY2"];
    limits = ( { model = "gemini-2.5-flash"; rpm = 1000; tpm = 1000000; },
               { model = "gemini-embedding-001"; rpm = 1000; } ); }
);
EOF2
start_mock "$tmp/mock.conf" "$tmp"
port=$mock_port
[ -n "$port" ] || { bad "gemroute-mock did not start"; finish; }
ok

cat >"$tmp/router.conf" <<EOF2
router = { shm = "$shm"; base_url = "http://127.0.0.1:$port";
           window_ms = 2000; headroom = 0.9; max_models = 2; };
models = ( { name = "gemini-2.5-flash"; rpm = 1000; tpm = 1000000; },
           { name = "gemini-embedding-001"; rpm = 1000; } );
projects = ( { name = "one"; key = "$KEY1"; },
             { name = "two"; key = "$KEY2"; } );
EOF2
start_router "$tmp/router.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { bad "gemrouted did not start"; finish; }
ok

GEMROUTE_SHM=$shm GEMROUTE_LIB="$LIB/libgemroute.so.1" \
GR_LAYOUT="$BUILD/tests/py_layout" GR_CLI="$BIN/gemroute" \
GR_BASE_URL="http://127.0.0.1:$port" PYTHONPATH="$root/bindings/python" \
PYTHONDONTWRITEBYTECODE=1 \
    python3 tests/python/test_gemroute.py >"$tmp/py.out" 2>"$tmp/py.err"
rc=$?
cat "$tmp/py.err" "$tmp/py.out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/py.out" | tail -n 1)
p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0}))
if [ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
    bad "python3 exited with status $rc"
fi
[ -n "$line" ] || bad "the unit tests printed no count"

# No key in anything the run printed or logged.
for k in "$KEY1" "$KEY2"; do
    if grep -l -- "$k" "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log; then
        bad "key ${k%??????}... printed in the files above"
    else
        ok
    fi
done
finish
