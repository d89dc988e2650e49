#!/bin/sh
# run_fifo.sh - issue 13, item 14: a FIFO given as the config, or as a
# file it @includes, is refused at once with "FILE: not a regular file",
# by `gemrouted --check` and by a running router's reload; the router
# goes on reaping dead clients and applies the next good file.  Before,
# the loader waited for a writer forever and the reload stopped the
# router's reaping and sweeping with it.
#
# Nothing is timed: waits poll, bounded by a watchdog that kills the
# script (and fails it) after WATCHDOG seconds.
set -u
. "$(dirname "$0")/../lib.sh"
WATCHDOG=${WATCHDOG:-120}
[ "${GR_SANITIZED:-0}" = 1 ] && WATCHDOG=$((WATCHDOG * 4))

dir=$(mktemp -d /tmp/grfifo.XXXXXX)
shm="/grtest-fifo-$$"
dog=""
holder=""
cleanup() {
    [ -n "$holder" ] && kill -9 "$holder" 2>/dev/null
    [ -n "$dog" ] && kill "$dog" 2>/dev/null
    rm -rf "$dir"
    remove_table "$shm"
}
trap 'exit 1' TERM INT
( sleep "$WATCHDOG"; echo "FAIL: watchdog after $WATCHDOG s"
  echo "0 passed, 1 failed"; kill -TERM $$ ) </dev/null >&2 &
dog=$!

G() { "$BIN/gemroute" "$@" --shm "$shm"; }
json() {    # python3 expression over the status JSON, as j
    G status --json | python3 -c "import json,sys; j=json.load(sys.stdin)
print($1)"
}

mkdir "$dir/inc"
mkfifo "$dir/fifo.conf" "$dir/inc/fifo.conf"
printf 'models = ( { name = "m1"; rpm = 100; tpm = 10000; rpd = 1000; } );\n' \
    >"$dir/inc/models.conf"
conf() {    # the file to @include
    cat >"$dir/r.tmp" <<CONF
router = { shm = "$shm"; window_ms = 2000; };
@include "$1"
projects = ( { name = "pa"; key = "fifo-test-SECRET-aaaa1111"; } );
CONF
    mv "$dir/r.tmp" "$dir/r.conf"
}

# --- gemrouted --check -------------------------------------------------------
# (timeout: a loader that waits on the FIFO must fail here, not hang)
out=$(timeout 20 "$BIN/gemrouted" --check -c "$dir/fifo.conf" 2>&1); rc=$?
check "--check of a FIFO: exit 2 ($rc)" '[ $rc -eq 2 ]'
check "--check of a FIFO: $out" \
    '[ "$out" = "$dir/fifo.conf: not a regular file" ]'
conf "inc/fifo.conf"
out=$(timeout 20 "$BIN/gemrouted" --check -c "$dir/r.conf" 2>&1); rc=$?
check "--check of an @included FIFO: exit 2 ($rc)" '[ $rc -eq 2 ]'
check "--check of an @included FIFO: $out" \
    'echo "$out" | grep -qxF "$dir/inc/fifo.conf: not a regular file"'

# --- a running router --------------------------------------------------------
conf "inc/models.conf"
start_router "$dir/r.conf" "$shm" "$dir/router.log" --unlink-on-exit
gen0=$(json 'j["router"]["config_generation"]')

conf "inc/fifo.conf"
out=$(G reload --timeout 30 2>&1); rc=$?
check "reload onto an @included FIFO: exit 2 ($rc: $out)" '[ $rc -eq 2 ]'
check "reload names the FIFO" \
    'echo "$out" | grep -qF "$dir/inc/fifo.conf: not a regular file"'
check "status keeps the error" \
    '[ "$(json "\"not a regular file\" in j[\"last_reload\"][\"error\"]")" = True ]'

# The router still reaps: a client killed while it holds a lease.
reaped0=$(json 'j["router"]["reaped"]')
"$BIN/gemroute" reserve --shm "$shm" --model m1 --hold-ms 600000 \
    >"$dir/lease.json" 2>&1 &
holder=$!
for _ in $(seq 600); do
    grep -q '"ok": true' "$dir/lease.json" 2>/dev/null && break
    sleep 0.05
done
kill -9 "$holder"; wait "$holder" 2>/dev/null; holder=""
reaped=$reaped0
for _ in $(seq 600); do
    reaped=$(json 'j["router"]["reaped"]')
    [ "$reaped" -gt "$reaped0" ] && break
    sleep 0.05
done
check "the dead client's lease is reaped ($reaped0 -> $reaped)" \
    '[ "$reaped" -gt "$reaped0" ]'


# And the next good file is applied.
conf "inc/models.conf"
out=$(G reload --timeout 30 2>&1); rc=$?
check "a good file after it applies: exit 0 ($rc: $out)" '[ $rc -eq 0 ]'
check "generation moved on" \
    '[ "$(json "j[\"router\"][\"config_generation\"]")" -gt "$gen0" ]'
check "router log holds no key" '! grep -q SECRET "$dir/router.log"'

finish
