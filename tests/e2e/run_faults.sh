#!/bin/bash
# run_faults.sh - clients killed at every step of a call: right after the
# reservation, during the HTTP call, before the settle, and while holding
# a stream.  Each time: the dead client's lease is reaped by the router,
# its capacity comes back once its window has passed (nothing leaks), and
# another client calling meanwhile is never blocked.  Polls are bounded by
# counts, never judged by how long they took.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d /tmp/grfaults.XXXXXX)
shm="/grtest-faults-$$"
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
projects = ( { name = "solo"; keys = ["faults-SECRET-0001"];
  limits = ( { model = "m"; rpm = 30; tpm = 100000; } ); } );
faults = { latency_ms = [1, 5]; };
CONF
start_mock "$dir/mock.conf" "$dir" --listen 127.0.0.1:0
port=$mock_port
cat >"$dir/router.conf" <<CONF
router = { shm = "$shm"; window_ms = 2000; headroom = 1.0;
           base_url = "http://127.0.0.1:$port"; state_file = "state"; };
models = ( { name = "m"; rpm = 30; tpm = 100000; } );
projects = ( { name = "solo"; key = "faults-SECRET-0001"; } );
CONF
start_router "$dir/router.conf" "$shm" "$dir/router.log"


field() {   # python expression over the cell c and the status d
    "$BIN/gemroute" status --shm "$shm" --json | python3 -c "
import json, sys
d = json.load(sys.stdin); c = d['cells'][0]; print($1)"
}
mock_post() {   # path, JSON body
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'POST %s HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "$1" "${#2}" "$2" >&3
    cat <&3 >/dev/null
    exec 3<&-
}
# Poll (bounded by a count) until the expression prints 1.
until_true() {
    for _ in $(seq 600); do
        [ "$(field "$1")" = 1 ] && return 0
        sleep 0.05
    done
    return 1
}

after_each() {  # step name
    check "$1: the lease is reaped" \
        'until_true "int(c[\"in_flight\"] == 0)"'
    "$BIN/gemroute" call --shm "$shm" --model m "are you there" \
        >"$dir/other.out" 2>&1
    rc=$?
    check "$1: another client is not blocked (exit $rc)" '[ $rc -eq 0 ]'
    check "$1: capacity comes back after the window" \
        'until_true "int(c[\"used\"][\"rpm\"] == 0 and c[\"used\"][\"tpm\"] == 0)"'
}

for step in after_reserve before_commit in_stream; do
    stream=""
    [ "$step" = in_stream ] && stream="--stream"
    # (the subshell keeps bash's own "Killed" notice out of the output)
    GEMROUTE_FAULT=$step bash -c '"$@" 2>&1; exit $?' _ "$BIN/gemroute" \
        call --shm "$shm" --model m $stream "count to three" \
        >"$dir/$step.out" 2>/dev/null
    rc=$?
    check "$step: the client died there (exit $rc)" '[ $rc -eq 137 ]'
    after_each "$step"
done

# During the call: the answer takes 3 s; the client dies after 0.3 s.
mock_post /mock/faults '{"latency_ms": [3000, 3000]}'
"$BIN/gemroute" call --shm "$shm" --model m "slow one" >"$dir/during.out" 2>&1 &
victim=$!
sleep 0.3
kill -9 "$victim"
wait "$victim" 2>/dev/null
mock_post /mock/faults '{"latency_ms": [1, 5]}'
after_each during_call

reaped=$(field 'd["router"]["reaped"]')
check "the router reaped the four dead leases ($reaped)" '[ "$reaped" -ge 4 ]'
check "no key in any output" '! grep -rq SECRET "$dir"/*.out "$dir"/*.log'

finish
