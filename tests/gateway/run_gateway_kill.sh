#!/bin/sh
# run_gateway_kill.sh - kill -9 of a gateway process mid-stream (issue
# 15).  Two gemroute-gateway processes serve one port (SO_REUSEPORT) in
# front of one router; the upstream is tests/gateway/slow_upstream.py,
# which streams an event every 0.1 s for 10 s.  A caller's stream is
# opened on the shared port; once events have reached the caller, the
# gateway process holding that connection (found with ss) is killed with
# SIGKILL.  Then: the router reaps its lease (in flight back to 0, the
# reap counted), the upstream sees the call end, the other gateway
# process answers the next call on the same port, and once a window has
# passed nothing is still charged (no leaked hold).  Polls are bounded
# by counts, never judged by how long they took.  Ends with "N passed,
# N failed" for tests/run.sh.
#
#   BIN=bin tests/gateway/run_gateway_kill.sh
set -u
. "$(dirname "$0")/../lib.sh"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
KEY=gr-gwkill-SECRET-proj-41c2
export GR_KILL_TOKEN=gwkill-token-SECRET-9f9f9f
MODEL=gemini-2.5-flash
W=2000

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-gwkill.XXXXXX")
shm="/gr-gwkill-$$"
slow_pid='' gw1_pid='' gw2_pid='' cut_pid=''
cleanup() {
    for p in $cut_pid $gw1_pid $gw2_pid $slow_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM
umask 077

# cell EXPR: a python expression over the one cell c and the status d
cell() {
    "$BIN/gemroute" status --shm "$shm" --json 2>/dev/null | python3 -c "
import json, sys
d = json.load(sys.stdin); c = d['cells'][0]; print($1)" 2>/dev/null
}
# until_cell EXPR: poll (bounded by a count) until EXPR prints True
until_cell() {
    for _ in $(seq 400); do
        [ "$(cell "$1")" = True ] && return 0
        sleep 0.05
    done
    return 1
}

SLOW_KEY=$KEY SLOW_TOKEN=$GR_KILL_TOKEN SLOW_UNARY_S=0 \
    python3 tests/gateway/slow_upstream.py "$tmp/slow.state" \
    >"$tmp/slow.out" 2>"$tmp/slow.err" &
slow_pid=$!
sport=$(port_of "$tmp/slow.out")
[ -n "$sport" ] || { no "slow_upstream.py did not start"; finish; }

# gw_conf PORT FILE
gw_conf() {
    cat >"$2" <<EOF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$sport";
           window_ms = $W; headroom = 1.0; max_models = 1; };
models = ( { name = "$MODEL"; rpm = 40; tpm = 1000000; } );
projects = ( { name = "slow"; key = "$KEY"; } );
gateway = { listen = "127.0.0.1:$1"; tokens = [ "env:GR_KILL_TOKEN" ];
            workers = 4; queue_s = 5.0; };
EOF
}
gw_conf 0 "$tmp/gw1.conf"
start_router "$tmp/gw1.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { no "gemrouted did not start"; finish; }
"$BIN/gemroute-gateway" -c "$tmp/gw1.conf" --foreground >"$tmp/gw1.out" \
    2>"$tmp/gw1.log" &
gw1_pid=$!
port=$(port_of "$tmp/gw1.out")
[ -n "$port" ] || { no "the first gateway did not start"; finish; }
gw_conf "$port" "$tmp/gw2.conf"
"$BIN/gemroute-gateway" -c "$tmp/gw2.conf" --foreground >"$tmp/gw2.out" \
    2>"$tmp/gw2.log" &
gw2_pid=$!
check "the second gateway binds the same port" \
    '[ "$(port_of "$tmp/gw2.out")" = "$port" ]'
base="http://127.0.0.1:$port"
hello='{"contents":[{"parts":[{"text":"hello stream"}]}]}'

# The stream, held open by the caller.
: >"$tmp/stream.body"
curl -s -N --max-time 60 -H "x-goog-api-key: $GR_KILL_TOKEN" -d "$hello" \
    "$base/v1beta/models/$MODEL:streamGenerateContent?alt=sse" \
    >"$tmp/stream.body" 2>"$tmp/stream.err" &
cut_pid=$!
i=0
until [ "$(grep -c '^data: {' "$tmp/stream.body")" -ge 2 ] ||
      [ $i -gt 400 ]; do
    sleep 0.02; i=$((i + 1)); done
check "events reached the caller before the kill" \
    '[ "$(grep -c "^data: {" "$tmp/stream.body")" -ge 2 ]'

# Which gateway process holds the caller's connection.
holder=$(ss -Htnp state established "( sport = :$port )" 2>/dev/null |
    sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | sort -u)
check "one gateway process holds the stream (${holder:-none})" \
    '[ "$holder" = "$gw1_pid" ] || [ "$holder" = "$gw2_pid" ]'
if [ "$holder" = "$gw1_pid" ]; then
    other=$gw2_pid
else
    other=$gw1_pid
fi
check "the stream holds a lease: in flight 1 ($(cell 'c["in_flight"]'))" \
    '[ "$(cell "c[\"in_flight\"]")" = 1 ]'
reaped0=$(cell 'd["router"]["reaped"]')

kill -9 "$holder"
wait "$holder" 2>/dev/null
if [ "$holder" = "$gw1_pid" ]; then gw1_pid=; else gw2_pid=; fi

# The caller's stream ends short, without the last event.
wait "$cut_pid"
cut_pid=
check "the caller's stream was cut (no finishReason STOP)" \
    '! grep -q "\"finishReason\": *\"STOP\"" "$tmp/stream.body"'
i=0
until grep -q '^gone [0-9]' "$tmp/slow.state" 2>/dev/null || [ $i -gt 400 ]; do
    sleep 0.05; i=$((i + 1)); done
check "the upstream saw the call end ($(cat "$tmp/slow.state" 2>/dev/null))" \
    'grep -q "^gone [0-9]" "$tmp/slow.state"'

check "the router reaped the dead gateway's lease: in flight back to 0" \
    'until_cell "c[\"in_flight\"] == 0"'
check "the reap was counted ($reaped0 -> $(cell 'd["router"]["reaped"]'))" \
    '[ "$(cell "d[\"router\"][\"reaped\"]")" -gt "$reaped0" ]'
check "the router is still alive" '[ "$(cell "d[\"router\"][\"alive\"]")" = True ]'

# The other process keeps serving the port.
curl -s -o "$tmp/after.body" -w '%{http_code}' \
    -H "x-goog-api-key: $GR_KILL_TOKEN" -d "$hello" \
    "$base/v1beta/models/$MODEL:generateContent" >"$tmp/after.code" \
    2>"$tmp/after.err"
check "a call after the kill: 200 ($(cat "$tmp/after.code"))" \
    '[ "$(cat "$tmp/after.code")" = 200 ]'
check "a call after the kill: the upstream's answer" \
    'grep -q "\"candidates\"" "$tmp/after.body"'
check "the surviving gateway ($other) is still running" 'kill -0 "$other"'
check "after the call: nothing in flight" 'until_cell "c[\"in_flight\"] == 0"'
# No leaked hold: once the window has passed, nothing is charged.
check "after a window nothing is held (used rpm and tpm back to 0)" \
    'until_cell "c[\"used\"][\"rpm\"] == 0 and c[\"used\"][\"tpm\"] == 0"'
check "the cell is usable: admitted 2 ($(cell 'c["counts"]["admitted"]'))" \
    '[ "$(cell "c[\"counts\"][\"admitted\"]")" = 2 ]'

kill "$other" 2>/dev/null
wait "$other" 2>/dev/null
rc=$?
check "the surviving gateway stops cleanly on SIGTERM (exit $rc)" '[ $rc -eq 0 ]'
gw1_pid='' gw2_pid=''
check "no key or token in any output" \
    '! grep -q SECRET "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log "$tmp"/*.body'
finish
