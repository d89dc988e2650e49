#!/bin/bash
# run_soak.sh - the soak (issue: reliability).  64 client processes call
# through libgemroute for SOAK_SECONDS (60 in `make test`, 600 in
# `make soak`) against gemroute-mock with 5% injected 503s and random
# latency, while client processes and the router are killed with SIGKILL
# and restarted at random.  Checks: no caller-visible failure within the
# deadlines, zero 429s from the mock, and no growth of the router's memory
# or file descriptors over the second half (the router is left alone
# then, so one process is measured from its middle to its end).
set -u
. "$(dirname "$0")/../lib.sh"
SECS=${SOAK_SECONDS:-60}
WIN_MS=5000
RPW=600                 # requests per window per project (true and told)
GROUPS_N=8              # load groups of 8 processes: 64 clients
check() { if eval "$2"; then ok; echo "ok: $1"; else no "$1"; fi; }

dir=$(mktemp -d /tmp/grsoak.XXXXXX)
shm="/grtest-soak-$$"
mock_pid=""
loads=""
cleanup() {
    # shellcheck disable=SC2086
    kill -9 $loads $mock_pid 2>/dev/null
    wait 2>/dev/null
    [ -n "${SOAK_KEEP:-}" ] || rm -rf "$dir"
    remove_table "$shm"
}

for p in a b c; do
    printf '  { name = "soak-%s"; keys = ["soak-SECRET-%s-0001"];\n' "$p" "$p"
    printf '    limits = ( { model = "m"; rpm = %d; tpm = 10000000; } ); }' "$RPW"
    [ "$p" = c ] && echo || echo ,
done >"$dir/projects.mock"
{
    echo "window_ms = $WIN_MS;"
    echo "projects = ("; cat "$dir/projects.mock"; echo ");"
    echo "faults = { p503 = 0.05; p500 = 0.0; latency_ms = [5, 60]; };"
} >"$dir/mock.conf"

start_mock "$dir/mock.conf" "$dir" --listen 127.0.0.1:0
port=$mock_port
[ -n "$port" ] || { echo "the mock did not start"; exit 1; }

cat >"$dir/router.conf" <<CONF
router = { shm = "$shm"; window_ms = $WIN_MS; headroom = 0.95;
           base_url = "http://127.0.0.1:$port"; state_file = "state";
           max_leases = 1024; };
models = ( { name = "m"; rpm = $RPW; tpm = 10000000; } );
projects = (
  { name = "soak-a"; key = "soak-SECRET-a-0001"; },
  { name = "soak-b"; key = "soak-SECRET-b-0001"; },
  { name = "soak-c"; key = "soak-SECRET-c-0001"; }
);
CONF

start() { start_router "$dir/router.conf" "$shm" "$dir/router.log"; }
start

# Offer about 60% of what the pool admits (3 x 600 x 0.95 per 5 s):
# enough to keep every project busy, little enough that retries after
# 503s and killed clients fit within the deadlines.
rate=$(awk -v g=$GROUPS_N -v r=$RPW -v w=$WIN_MS \
       'BEGIN { printf "%.2f", 3 * r * 0.95 / (w / 1000) * 0.6 / g }')
n=0
start_load() {  # processes, seconds
    n=$((n + 1))
    "$BIN/gemroute" load --shm "$shm" --procs "$1" --rate "$rate" \
        --duration "$2" --model m --tokens 50 --deadline 30 \
        >"$dir/load.$n.json" 2>"$dir/load.$n.err" &
    loads="$loads $!"
}
for _ in $(seq $GROUPS_N); do
    start_load 8 "$SECS"
done

t0=$(date +%s)
half=$((SECS / 2))
kills=0
router_kills=0
rss0=""
while :; do
    now=$(( $(date +%s) - t0 ))
    [ "$now" -ge "$SECS" ] && break
    sleep 1.$((RANDOM % 9))
    # A client process dies; a new one takes its place for the rest.
    # shellcheck disable=SC2086
    victim=$(for l in $loads; do pgrep -P "$l"; done 2>/dev/null | shuf -n 1)
    if [ -n "$victim" ] && [ $((SECS - now)) -gt 3 ]; then
        kill -9 "$victim" 2>/dev/null && kills=$((kills + 1))
        start_load 1 $((SECS - now))
    fi
    # The router dies now and then in the first half, and comes back.
    if [ "$now" -lt "$half" ] && [ $((RANDOM % 6)) -eq 0 ]; then
        stop_router KILL 2>/dev/null
        router_kills=$((router_kills + 1))
        sleep 0.$((RANDOM % 9))
        start
    fi
    # The router left alone from the middle on: measure it.
    if [ -z "$rss0" ] && [ "$now" -ge $((half + 2)) ]; then
        rss0=$(awk '/VmRSS/ { print $2 }' /proc/$router_pid/status)
        fd0=$(ls /proc/$router_pid/fd | wc -l)
    fi
done
rss1=$(awk '/VmRSS/ { print $2 }' /proc/$router_pid/status)
fd1=$(ls /proc/$router_pid/fd | wc -l)
# shellcheck disable=SC2086
for l in $loads; do wait "$l" 2>/dev/null; done
loads=""

sum() { cat "$dir"/load.*.json | python3 -c "
import json, sys
t = {'calls': 0, 'ok': 0, 'failed': 0, 'server_429': 0, 'unserved': 0}
for line in sys.stdin:
    if line.strip():
        d = json.loads(line)
        for k in t: t[k] += d[k]
print(t['$1'])"; }
calls=$(sum calls); okc=$(sum ok); failed=$(sum failed)
served429=$(sum server_429)
stats=$(exec 3<>"/dev/tcp/127.0.0.1/$port"
        printf 'GET /mock/stats HTTP/1.0\r\nHost: x\r\n\r\n' >&3
        sed '1,/^\r*$/d' <&3)
mock429=$(echo "$stats" | python3 -c "
import json, sys
d = json.load(sys.stdin)
def walk(o):
    if isinstance(o, dict):
        if 'quota_429' in o and isinstance(o['quota_429'], dict):
            yield o['quota_429'].get('total', 0)
        for v in o.values():
            yield from walk(v)
print(sum(walk(d)))")

echo "soak: ${SECS} s, 64 clients, $kills client kills, $router_kills router kills"
echo "soak: $calls calls, $okc ok, $failed failed, $served429 answers 429 seen"
echo "soak: router RSS ${rss0:-?} -> $rss1 kB, fds ${fd0:-?} -> $fd1 over the second half"
check "calls were made ($calls)" '[ "$calls" -gt 100 ]'
check "no caller-visible failure ($failed)" '[ "$failed" = 0 ]'
check "the mock answered no 429 ($mock429)" '[ "$mock429" = 0 ]'
check "callers saw no 429 ($served429)" '[ "$served429" = 0 ]'
check "clients were killed ($kills)" '[ "$kills" -gt 0 ]'
check "router RSS did not grow (${rss0:-?} -> $rss1 kB)" \
    '[ -n "$rss0" ] && [ "$rss1" -le $((rss0 + rss0 / 10 + 512)) ]'
check "router fds did not grow (${fd0:-?} -> $fd1)" \
    '[ -n "$fd0" ] && [ "$fd1" -le "$fd0" ]'
check "no key in any log" '! grep -rq SECRET "$dir"/*.log "$dir"/*.err "$dir"/*.json'

finish
