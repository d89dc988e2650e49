#!/bin/sh
# run_router.sh - the router as a process: it serves a table, refuses to
# start beside a live router, stops cleanly on SIGTERM, and a router
# started after one was killed adopts the table with its counts; the CLI
# prints leases and status without ever showing a key.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d /tmp/grrouter.XXXXXX)
shm="/grtest-router-$$"
pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"; rm -f /dev/shm${shm} /dev/shm${shm}-nb' EXIT
export GR_KEY_A="test-SECRET-key-aaaa1111"
umask 022
cat >"$dir/r.conf" <<CONF
router = { shm = "$shm"; window_ms = 2000; state_file = "state"; };
models = ( { name = "m1"; rpm = 100; tpm = 10000; rpd = 1000; } );
projects = ( { name = "pa"; key = "env:GR_KEY_A"; },
             { name = "pb"; key = "test-SECRET-key-bbbb2222"; } );
CONF

start() {
    "$BIN/gemrouted" -c "$dir/r.conf" --foreground 2>>"$dir/router.log" &
    pid=$!
    wait_ready "$shm"
}

start
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "reserve prints a lease" 'echo "$out" | grep -q "\"ok\": true"'
check "reserve masks the key" 'echo "$out" | grep -Eq "\"key\": \"\.\.\.(1111|2222)\""'
check "no key in reserve output" '! echo "$out" | grep -q "test-SECRET-key"'
for i in 1 2 3 4; do
    "$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 >/dev/null
done
json=$("$BIN/gemroute" status --shm "$shm" --json)
check "status --json parses" 'echo "$json" | python3 -c "import json,sys; json.load(sys.stdin)"'
admitted=$(echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["counts"]["admitted"] for c in d["cells"]))')
check "5 admissions counted" '[ "$admitted" = 5 ]'
check "limits after headroom" 'echo "$json" | grep -q "\"rpm\": 95, \"tpm\": 9500, \"rpd\": 950, \"ipm\": null"'
check "no key in status" '! echo "$json" | grep -q "test-SECRET-key"'
check "status table has both projects" '"$BIN/gemroute" status --shm "$shm" | grep -q "^pb "'

# Another user cannot attach, and is told why (needs root and setpriv).
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   as_nobody "$BIN/gemroute" help >/dev/null 2>&1; then
    out=$(as_nobody "$BIN/gemroute" status --shm "$shm" 2>&1)
    rc=$?
    check "another user is refused (exit $rc)" '[ $rc -eq 1 ]'
    check "and told why: $out" 'echo "$out" | grep -q "Permission denied (the table is mode 600, uid 0"'
fi

"$BIN/gemrouted" -c "$dir/r.conf" --foreground 2>"$dir/second.log"
rc=$?
check "second router refused (exit $rc)" '[ $rc -eq 1 ]'
check "refusal names the live router" 'grep -q "a live router (pid $pid) owns $shm" "$dir/second.log"'

kill -9 "$pid"; wait "$pid" 2>/dev/null
dead=$("$BIN/gemroute" status --shm "$shm" --json)
check "status shows a dead router" 'echo "$dead" | grep -q "\"alive\": false"'
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "clients reserve without a router" 'echo "$out" | grep -q "\"ok\": true"'
start
check "literal key in a readable file: warned" 'grep -q "r.conf is readable by others (mode 644) and the config holds 1 literal keys" "$dir/router.log"'
check "restarted router adopts the table" 'grep -q "adopted $shm" "$dir/router.log"'
admitted=$("$BIN/gemroute" status --shm "$shm" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["counts"]["admitted"] for c in d["cells"]), d["router"]["alive"])')
check "counts kept across the restart ($admitted)" '[ "$admitted" = "6 True" ]'

# Item 16: the env: key has left the router's environment, and a reload
# (which reads env: keys again) still works and leaves it clean.
environ_clean() { ! tr '\0' '\n' <"/proc/$pid/environ" | grep -q "test-SECRET-key"; }
check "item 16: env: key scrubbed from /proc/PID/environ" environ_clean
kill -HUP "$pid"
for _ in $(seq 200); do
    [ "$(grep -c "config .* applied" "$dir/router.log")" -ge 1 ] && break
    sleep 0.05
done
check "item 16: a reload after the scrub reads the env: key again" 'grep -q "config .* applied" "$dir/router.log" && ! grep -q "reload refused" "$dir/router.log"'
check "item 16: env: key still scrubbed after the reload" environ_clean

# Item 9: the table truncated under the router: it survives, says so and
# serves a new table.
truncate -s 4096 "/dev/shm$shm"
for _ in $(seq 200); do
    grep -q "serving $shm again" "$dir/router.log" && break
    sleep 0.05
done
check "item 9: router survives a truncated table" 'kill -0 "$pid" 2>/dev/null'
check "item 9: and says so in one line" 'grep -q "$shm was truncated under the router (SIGBUS at byte" "$dir/router.log"'
check "item 9: and serves a new table" 'grep -q "serving $shm again" "$dir/router.log" && wait_ready "$shm"'
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "item 9: clients reserve from the new table" 'echo "$out" | grep -q "\"ok\": true"'

kill -TERM "$pid"; wait "$pid"
rc=$?
pid=""
check "SIGTERM exits 0 ($rc)" '[ $rc -eq 0 ]'

# Item 16: a router is not dumpable: its /proc/PID files belong to root even
# when it runs as another user (and no core file can be written).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   as_nobody "$BIN/gemroute" help >/dev/null 2>&1; then
    nb="$dir/nb"
    mkdir "$nb" && chown nobody "$nb" && chmod 711 "$dir"
    sed -e "s|$shm|$shm-nb|" -e 's|"state"|"nb/state"|' "$dir/r.conf" >"$nb/r.conf"
    chmod 644 "$nb/r.conf"
    # setpriv itself, not the function: $! must be the router
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$BIN/gemrouted" -c "$nb/r.conf" --foreground --unlink-on-exit \
        2>>"$dir/nobody.log" &
    pid=$!
    wait_ready "$shm-nb"
    owner=$(stat -c %u "/proc/$pid/environ" 2>/dev/null)
    check "item 16: router not dumpable (/proc/PID/environ owned by uid $owner)" '[ "$owner" = 0 ]'
    kill -TERM "$pid"; wait "$pid"
    pid=""
    rm -f "/dev/shm$shm-nb"
else
    echo "item 16 (not dumpable): skipped: needs root, setpriv and the user nobody"
fi
check "router log has no key" '! grep -q "test-SECRET-key" "$dir/router.log"'

finish
