#!/bin/bash
# run_spend_faults.sh - spend caps across processes and crashes: clients
# killed with SIGKILL right after their reservation and in the middle of
# their HTTP call.  Each time the router reaps the lease, the spend it
# reserved stays counted at its worst case (the call may have been
# billed: no refund), the counters are the same for every process that
# reads them, and another client is neither blocked nor overcharged: its
# call settles at its real cost.  Polls are bounded by counts.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d /tmp/grspend.XXXXXX)
shm="/grtest-spend-$$"
mock_pid=""
cleanup() {
    kill $mock_pid 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
    remove_table "$shm"
}
umask 077

cat >"$dir/mock.conf" <<CONF
window_ms = 2000;
projects = ( { name = "solo"; keys = ["spend-SECRET-0001"];
  limits = ( { model = "m"; rpm = 30; tpm = 100000; } ); } );
faults = { latency_ms = [1, 5]; };
CONF
start_mock "$dir/mock.conf" "$dir" --listen 127.0.0.1:0
port=$mock_port
# $100 / $200 per 1M input / output tokens: 100 and 200 micro-USD a
# token; a call that sets no maxOutputTokens reserves 100 output tokens,
# so its worst case is at least 20,000 micro-USD.
cat >"$dir/router.conf" <<CONF
router = { shm = "$shm"; window_ms = 2000; headroom = 1.0;
           base_url = "http://127.0.0.1:$port"; state_file = "state"; };
models = ( { name = "m"; rpm = 30; tpm = 100000; } );
projects = ( { name = "solo"; key = "spend-SECRET-0001"; } );
pricing = { models = ( { name = "m"; input = 100; output = 200;
                         max_output = 100; } ); };
spend = { project_day = 10.0; };
CONF
start_router "$dir/router.conf" "$shm" "$dir/router.log"

field() {   # python expression over the status d (spend in micro-USD)
    "$BIN/gemroute" status --shm "$shm" --json | python3 -c "
import json, sys
d = json.load(sys.stdin); c = d['cells'][0]
s = round(d['spend']['projects']['solo']['today_usd'] * 1e6)
p = round(d['spend']['pool']['today_usd'] * 1e6)
print($1)"
}
mock_post() {   # path, JSON body
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'POST %s HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "$1" "${#2}" "$2" >&3
    cat <&3 >/dev/null
    exec 3<&-
}
until_true() {
    for _ in $(seq 600); do
        [ "$(field "$1")" = 1 ] && return 0
        sleep 0.05
    done
    return 1
}

# A call that settles: its real cost is far below the worst case.
"$BIN/gemroute" call --shm "$shm" --model m "warm up" >"$dir/warm.out" 2>&1
rc=$?
check "a call goes through (exit $rc)" '[ $rc -eq 0 ]'
one=$(field s)
check "a settled call counts its real cost ($one < 20000)" \
    '[ "$one" -gt 0 ] && [ "$one" -lt 20000 ]'

# Killed right after its reservation: the lease is reaped, its worst case
# stays counted.
GEMROUTE_FAULT=after_reserve bash -c '"$@" 2>&1; exit $?' _ "$BIN/gemroute" \
    call --shm "$shm" --model m "count to three" >"$dir/after.out" 2>/dev/null
rc=$?
check "after_reserve: the client died there (exit $rc)" '[ $rc -eq 137 ]'
check "after_reserve: the lease is reaped" \
    'until_true "int(c[\"in_flight\"] == 0)"'
two=$(field s)
check "after_reserve: its worst case stays counted ($two - $one >= 20000)" \
    '[ $((two - one)) -ge 20000 ]'
check "after_reserve: the pool counts the same ($(field p))" \
    '[ "$(field p)" = "$two" ]'

# Killed during its call (the answer takes 3 s).
mock_post /mock/faults '{"latency_ms": [3000, 3000]}'
"$BIN/gemroute" call --shm "$shm" --model m "slow one" >"$dir/during.out" 2>&1 &
victim=$!
check "during_call: the call is in flight" \
    'until_true "int(c[\"in_flight\"] == 1)"'
{ kill -9 "$victim"; wait "$victim"; } 2>/dev/null
mock_post /mock/faults '{"latency_ms": [1, 5]}'
check "during_call: the lease is reaped" \
    'until_true "int(c[\"in_flight\"] == 0)"'
three=$(field s)
check "during_call: its worst case stays counted ($three - $two >= 20000)" \
    '[ $((three - two)) -ge 20000 ]'

# Another client is not blocked and pays its real cost only.
"$BIN/gemroute" call --shm "$shm" --model m "are you there" \
    >"$dir/other.out" 2>&1
rc=$?
check "another client is not blocked (exit $rc)" '[ $rc -eq 0 ]'
four=$(field s)
check "its call settles at its real cost ($four - $three < 20000)" \
    '[ $((four - three)) -gt 0 ] && [ $((four - three)) -lt 20000 ]'
check "no key in any output" '! grep -rq SECRET "$dir"/*.out "$dir"/*.log'

finish
