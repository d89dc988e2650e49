#!/bin/sh
# run_e2e.sh - `gemroute call` and `gemroute load` end to end: the real
# bin/gemroute-mock on a free loopback port, a real bin/gemrouted with
# 2-second windows in front of it, and the CLI through both.  Checks exit
# codes, what is printed, that a load at twice the pool's capacity ends
# with no failure and no 429, and that no key appears in anything the
# run printed or logged.  Counts and values only, never durations.
# Ends with "N passed, N failed" for tests/run.sh.
#
#   BIN=bin tests/e2e/run_e2e.sh
set -u
. "$(dirname "$0")/../lib.sh"
root=$(pwd)
gr="$BIN/gemroute"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-e2e.XXXXXX")
shm="/gr-e2e-$$"
mock_pid=
passed=0
failed=0
KEY1=gr-e2e-SECRET-one-4f6e1a
KEY2=gr-e2e-SECRET-two-77c0de

cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
    [ -n "$mock_pid" ] && wait "$mock_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

# check NAME CONDITION-COMMAND...
check() {
    name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}

# run NAME WANT_RC args...: gemroute ARGS, output in $tmp/NAME.{out,err}
run() {
    name=$1 want=$2
    shift 2
    "$gr" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok
    else
        bad "$name: exit $rc, want $want: $(head -c 400 "$tmp/$name.err")"
    fi
}

has() { grep -q -- "$2" "$tmp/$1"; }

umask 077
cat >"$tmp/mock.conf" <<EOF
listen = "127.0.0.1:0";
window_ms = 2000;
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "gemini-2.5-flash"; rpm = 10; tpm = 100000; } ); },
  { name = "two"; keys = ["$KEY2"];
    limits = ( { model = "gemini-2.5-flash"; rpm = 20; tpm = 100000; } ); }
);
faults = { latency_ms = [1, 5]; };
EOF
start_mock "$tmp/mock.conf" "$tmp"
port=$mock_port
[ -n "$port" ] || { bad "gemroute-mock did not start"; finish; }

cat >"$tmp/router.conf" <<EOF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$port";
           window_ms = 2000; headroom = 0.9; max_models = 2; };
models = ( { name = "gemini-2.5-flash"; rpm = 10; tpm = 100000; } );
projects = ( { name = "one"; key = "$KEY1"; },
             { name = "two"; key = "$KEY2";
               limits = ( { model = "gemini-2.5-flash"; rpm = 20; } ); } );
EOF
start_router "$tmp/router.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { bad "gemrouted did not start"; finish; }

# One call: the text, exit 0; -v names the project, attempts and usage.
run call 0 call --shm "$shm" --model gemini-2.5-flash -v "hello from e2e"
check "call prints the answer" has call.out "answering in place of Gemini"
check "call -v: project" has call.err "^project \(one\|two\), attempts 1 "
check "call -v: usage" has call.err "usage: prompt 4 candidates 20"

# GEMROUTE_SHM instead of --shm; --raw prints the JSON as received.
GEMROUTE_SHM=$shm "$gr" call --model gemini-2.5-flash --raw hi \
    >"$tmp/raw.out" 2>"$tmp/raw.err"
check "call --raw via GEMROUTE_SHM" has raw.out '"promptTokenCount": 1'

# Streams: text as it comes; --raw: one event per line.
run stream 0 call --shm "$shm" --model gemini-2.5-flash --stream hi there
check "stream prints the text" has stream.out "your request was counted"
run sraw 0 call --shm "$shm" --model gemini-2.5-flash --stream --raw hi
check "stream --raw: 3 events" \
    test "$(grep -c '^{"candidates"' "$tmp/sraw.out")" -eq 3

# --json FILE and stdin.
printf '{"contents":[{"parts":[{"text":"%s"}]}]}' 0123456789abcdef \
    >"$tmp/req.json"
run json 0 call --shm "$shm" --model gemini-2.5-flash -v --json "$tmp/req.json"
check "call --json: usage" has json.err "prompt 4 "
"$gr" call --shm "$shm" --model gemini-2.5-flash --raw --json - \
    <"$tmp/req.json" >"$tmp/stdin.out" 2>"$tmp/stdin.err"
check "call --json -" has stdin.out '"promptTokenCount": 4'

# Failures: a request at fault (exit 1, Google's message), no such model,
# bad usage (exit 2).
printf '{}' >"$tmp/empty.json"
run fault 1 call --shm "$shm" --model gemini-2.5-flash -v \
    --json "$tmp/empty.json"
check "request at fault: said why" has fault.err \
    "call failed: 400 INVALID_ARGUMENT: the request is at fault"
check "request at fault: one attempt" has fault.err "attempts 1 "
run nomodel 1 call --shm "$shm" --model gemini-9-nothing hi
check "no such model: said so" has nomodel.err "no project serves model"
run usage 2 call --shm "$shm" hi
run usage2 2 load --shm "$shm" --model gemini-2.5-flash --rate 0 --duration 1

# Load at twice the capacity (27 requests per 2 s window, headroom 0.9):
# nothing fails, no 429, every call made is accounted for.
run load 0 load --shm "$shm" --procs 3 --rate 27 --duration 4 \
    --model gemini-2.5-flash --tokens 10
python3 - "$tmp/load.out" <<'PY' >"$tmp/load.check" 2>&1
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, "one line"
j = json.loads(lines[0])
assert j["failed"] == 0, j
assert j["server_429"] == 0, j
assert j["ok"] > 0 and j["ok"] + j["unserved"] == j["calls"], j
assert j["attempts"] == j["ok"], j
assert j["calls"] <= j["offered"], j
assert set(j["projects"]) <= {"one", "two"}, j
assert abs(sum(p["share"] for p in j["projects"].values()) - 1) < 0.01, j
assert sorted(j["failed_by"]) == sorted(["deadline", "quota", "overload",
    "server", "auth", "request", "model", "other"]), j
PY
check "load summary: $(cat "$tmp/load.check")" test ! -s "$tmp/load.check"

# The mock agrees: no 429 answered, ever.
python3 -c "
import urllib.request, sys
sys.stdout.write(urllib.request.urlopen(
    'http://127.0.0.1:$port/mock/stats').read().decode())" \
    >"$tmp/stats.out" 2>"$tmp/stats.err"
zero429=$(grep -A1 '"quota_429"' "$tmp/stats.out" | grep -c '"total": 0')
check "the mock answered no 429" test "$zero429" -eq 2

# No key anywhere: outputs, errors, the router's and the mock's logs.
for k in "$KEY1" "$KEY2"; do
    if grep -l -- "$k" "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log; then
        bad "key ${k%??????}... printed in the files above"
    else
        ok
    fi
done
finish
