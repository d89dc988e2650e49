#!/bin/sh
# run_state.sh - nothing is forgotten across a stop: a router stopped
# (SIGTERM) and started on a new segment restores today's requests, the
# minute windows, cooldowns, learned limits and operator state from its
# state file; the file is 0600 and holds no key; a damaged or foreign
# file is reported and ignored.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d /tmp/grstate.XXXXXX)
shm="/grtest-state-$$"
pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"; rm -f /dev/shm${shm}' EXIT
cat >"$dir/r.conf" <<CONF
router = { shm = "$shm"; window_ms = 60000; state_file = "saved.state"; };
models = ( { name = "m1"; rpm = 100; tpm = 10000; rpd = 1000; } );
projects = ( { name = "pa"; key = "state-test-SECRET-aaaa"; } );
CONF

start() {
    "$BIN/gemrouted" -c "$dir/r.conf" --foreground --unlink-on-exit \
        2>>"$dir/router.log" &
    pid=$!
    wait_ready "$shm"
}
stop() { kill -TERM "$pid"; wait "$pid"; pid=""; }
field() {   # python expression over the first cell of status --json
    "$BIN/gemroute" status --shm "$shm" --json |
        python3 -c "import json,sys; c=json.load(sys.stdin)['cells'][0]; print($1)"
}

start
for i in 1 2 3 4 5 6 7; do
    "$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 100 >/dev/null
done
check "seven requests counted" '[ "$(field "c[\"used\"][\"rpd\"]")" = 7 ]'
stop
check "state file written" '[ -f "$dir/saved.state" ]'
mode=$(stat -c %a "$dir/saved.state")
check "state file is 0600 ($mode)" '[ "$mode" = 600 ]'
check "no key in the state file" '! grep -q SECRET "$dir/saved.state"'
check "segment removed on exit" '[ ! -e /dev/shm${shm} ]'

start
check "restored on a new segment" 'grep -q "restored 1 cells" "$dir/router.log"'
check "day count kept" '[ "$(field "c[\"used\"][\"rpd\"]")" = 7 ]'
check "minute window kept" '[ "$(field "c[\"used\"][\"rpm\"]")" = 7 ]'
check "tokens kept" '[ "$(field "c[\"used\"][\"tpm\"]")" = 700 ]'
stop

cp "$dir/saved.state" "$dir/good.state"
sed -i 's/^end .*/end 9/' "$dir/saved.state"
start
check "damaged file reported" 'grep -q "saved.state: line .* is damaged; ignored" "$dir/router.log"'
check "damaged file not trusted" '[ "$(field "c[\"used\"][\"rpd\"]")" = 0 ]'
stop

printf 'something else\n' >"$dir/saved.state"
start
check "foreign file reported" 'grep -q "not a gemroute state file; ignored" "$dir/router.log"'
stop

head -n 3 "$dir/good.state" >"$dir/saved.state"
start
check "truncated file reported" 'grep -q "truncated (no end line); ignored" "$dir/router.log"'
stop
check "router log holds no key" '! grep -q SECRET "$dir/router.log"'

finish
