#!/bin/bash
# demo.sh - `make demo`: gemroute in front of the bundled mock Gemini.
#
# Starts bin/gemroute-mock with three projects whose true limits are 60,
# 120 and 180 requests per minute (examples/demo-mock.conf), a router told
# the same numbers with 5% headroom (examples/demo-router.conf) and
# `gemroute load` offering twice what the pool may admit, for DEMO_SECONDS
# (default 96), while `gemroute status` refreshes every 2 s.  Then it
# prints the load summary and the mock's own counters, and checks:
#
#   1. every call that was made succeeded;
#   2. the mock answered no 429 at all;
#   3. the requests the mock counted in its last window are at least 97%
#      of what the headroom allows (the pool was kept full);
#   4. one call through bin/gemroute-gateway (started after the load on a
#      free loopback port, with a local token made for the run): curl's
#      generateContent gets a 200 with the answer's text and the
#      x-gemroute-project header, both printed.
#
# The run covers 1.6 windows.  At twice the capacity the pool fills in the
# first half window; those admissions come back one window (plus the
# table's release tick and the answer's latency) after their first byte,
# between 1 and 1.5 windows, and are used again at once; the last tenth
# of a window makes sure all of them have come back when the mock's last
# window is read.  So the windows are real minutes from DEMO_SECONDS=96 up
# (the default); a shorter run shortens the windows of the mock and the
# router together to DEMO_SECONDS / 1.6 (the limits then count per
# window), which keeps the same picture: DEMO_SECONDS=20 runs 12.5 s
# windows.
#
# Loopback only, a shm name and a temporary folder unique to the run;
# everything it started is stopped on exit, Ctrl-C or TERM.  Exit 0 when
# the three checks pass, 1 when one fails, 2 when the demo could not run.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/bin}
SECONDS_RUN=${DEMO_SECONDS:-96}
MODEL=gemini-2.5-flash
PROCS=${DEMO_PROCS:-8}
TOKENS=100

case $SECONDS_RUN in
'' | *[!0-9]*) echo "demo: DEMO_SECONDS must be whole seconds" >&2; exit 2 ;;
esac
if [ "$SECONDS_RUN" -lt 6 ]; then
    echo "demo: DEMO_SECONDS must be at least 6" >&2
    exit 2
fi
window_ms=$((SECONDS_RUN * 1000 * 5 / 8))
[ "$window_ms" -gt 60000 ] && window_ms=60000

umask 077        # the router's config copy holds (demo) keys
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gemroute-demo.XXXXXX") || exit 2
shm="/gemroute-demo-$$"
mock_pid=
router_pid=
load_pid=
gw_pid=
# Loopback calls never go through a proxy from the environment.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

cleanup() {
    trap - EXIT INT TERM
    for pid in $gw_pid $load_pid $router_pid $mock_pid; do
        kill "$pid" 2>/dev/null
    done
    for pid in $gw_pid $load_pid $router_pid $mock_pid; do
        wait "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

die() {
    echo "demo: $*" >&2
    for f in mock.log router.log load.err gw.log; do
        [ -s "$tmp/$f" ] && { echo "--- $f" >&2; tail -n 20 "$tmp/$f" >&2; }
    done
    exit 2
}

# GET a path of the mock with bash's /dev/tcp (no curl binary needed).
mock_get() {
    local body
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
    body=$(cat <&3)
    exec 3<&-
    printf '%s\n' "$body" | sed '1,/^\r*$/d'
}

# "served 429s in_window" summed over the projects of /mock/stats.
mock_counts() {     # stats text
    printf '%s\n' "$1" | awk '
        /"served"/ { v = $2; gsub(/[^0-9]/, "", v); served += v }
        /"quota_429"/ { q = 1; next }
        q && /"total"/ { v = $2; gsub(/[^0-9]/, "", v); n429 += v; q = 0 }
        /"window"/ { w = 1; next }
        w && /"requests"/ { v = $2; gsub(/[^0-9]/, "", v); win += v; w = 0 }
        END { print served + 0, n429 + 0, win + 0 }'
}

for p in gemroute-mock gemrouted gemroute gemroute-gateway; do
    [ -x "$BIN/$p" ] || die "$BIN/$p is missing: run make first"
done
command -v curl >/dev/null 2>&1 ||
    die "curl is missing (the last step calls the gateway with it):" \
        "apt-get install curl"

# 1. The mock, on a free loopback port.
"$BIN/gemroute-mock" -c "$here/examples/demo-mock.conf" \
    --listen 127.0.0.1:0 --window-ms "$window_ms" \
    >"$tmp/mock.out" 2>"$tmp/mock.log" &
mock_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
        "$tmp/mock.out")
    [ -n "$port" ] && break
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || die "gemroute-mock did not start"

# 2. The router, pointed at it.
sed -e "s|^\( *shm = \).*|\1\"$shm\";|" \
    -e "s|^\( *base_url = \).*|\1\"http://127.0.0.1:$port\";|" \
    -e "s|^\( *window_ms = \).*|\1$window_ms;|" \
    "$here/examples/demo-router.conf" >"$tmp/router.conf"
# The gateway's section (read by the gateway only): a free loopback port
# and a token made for this run, passed in the environment.
cat >>"$tmp/router.conf" <<'GW'

gateway = {
  listen = "127.0.0.1:0";
  tokens = [ "env:GEMROUTE_DEMO_TOKEN" ];
  queue_s = 30.0;
};
GW
GEMROUTE_DEMO_TOKEN=demo-token-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
export GEMROUTE_DEMO_TOKEN
"$BIN/gemrouted" -c "$tmp/router.conf" --foreground --unlink-on-exit \
    2>"$tmp/router.log" &
router_pid=$!
# Ready once the three projects show (the config is applied a moment
# after the table can be attached).
limit=0
for _ in $(seq 200); do
    status=$("$BIN/gemroute" status --shm "$shm" --json 2>/dev/null)
    if [ "$(printf '%s\n' "$status" | grep -c '"project": ')" -eq 3 ]; then
        limit=$(printf '%s\n' "$status" | grep -o '"limit": {"rpm": [0-9]*' |
            awk '{s += $NF} END {print s + 0}')
        break
    fi
    kill -0 "$router_pid" 2>/dev/null || break
    sleep 0.05
done
[ "$limit" -gt 0 ] || die "gemrouted did not start"

# 3. Twice the pool's capacity, for the whole run.
window_s=$(awk -v w="$window_ms" 'BEGIN {printf "%.3g", w / 1000}')
capacity=$(awk -v l="$limit" -v w="$window_ms" \
    'BEGIN {printf "%.2f", l / (w / 1000)}')
rate=$(awk -v c="$capacity" 'BEGIN {printf "%.2f", 2 * c}')
"$BIN/gemroute" load --shm "$shm" --procs "$PROCS" --rate "$rate" \
    --duration "$SECONDS_RUN" --model "$MODEL" --tokens "$TOKENS" \
    --deadline $((SECONDS_RUN + 60)) >"$tmp/load.json" 2>"$tmp/load.err" &
load_pid=$!

# 4. Watch.
tty=0
[ -t 1 ] && tty=1
start=$(date +%s)
while kill -0 "$load_pid" 2>/dev/null; do
    now=$(date +%s)
    stats=$(mock_get /mock/stats 2>/dev/null)
    [ "$tty" = 1 ] && printf '\033[H\033[2J'
    echo "gemroute demo: $((now - start)) s of $SECONDS_RUN s;" \
        "$PROCS processes offer $rate calls/s," \
        "twice the $capacity/s the pool may admit" \
        "($limit per ${window_s} s window, 95% of 60+120+180)"
    "$BIN/gemroute" status --shm "$shm"
    set -- $(mock_counts "$stats")
    echo "mock: ${1:-?} served, ${2:-?} answered 429," \
        "${3:-?} requests in its last window"
    [ "$tty" = 1 ] || echo
    sleep 2
done
wait "$load_pid"
load_rc=$?
load_pid=
stats=$(mock_get /mock/stats) || die "could not read the mock's /mock/stats"
summary=$(cat "$tmp/load.json")

echo
echo "== gemroute status at the end"
"$BIN/gemroute" status --shm "$shm"
echo
echo "== load summary (gemroute load)"
echo "$summary"
[ -s "$tmp/load.err" ] && { echo "-- its stderr:"; head -n 20 "$tmp/load.err"; }
echo
echo "== the mock's counters (GET /mock/stats)"
printf '%s\n' "$stats"
echo

# 5. The checks.
num() {         # key of the load summary
    printf '%s\n' "$summary" | grep -o "\"$1\": [0-9.]*" | head -n 1 |
        awk '{print $NF}'
}
calls=$(num calls)
ok=$(num ok)
failed=$(num failed)
unserved=$(num unserved)
seen429=$(num server_429)
set -- $(mock_counts "$stats")
served=$1
mock429=$2
inwin=$3
fails=0
check() {       # condition (awk expression), what, the numbers
    if awk "BEGIN { exit !($1) }"; then
        echo "PASS  $2"
    else
        echo "FAIL  $2"
        fails=$((fails + 1))
    fi
    echo "      $3"
}
echo "== checks"
[ -n "$calls" ] || die "the load printed no summary"
check "$load_rc == 0 && $failed == 0 && $ok > 0 &&
       $ok + $unserved == $calls" \
    "every call succeeded" \
    "$ok ok and $failed failed of $calls calls made; $unserved were still
      queued for room when the run ended, and were never sent"
check "$mock429 == 0 && $seen429 == 0" \
    "the mock served zero 429s" \
    "$mock429 by its own count, $seen429 seen by the callers; it served
      $served requests"
util=$(awk -v a="$inwin" -v l="$limit" \
    'BEGIN {printf "%.1f", 100 * a / l}')
check "$inwin >= 0.97 * $limit" \
    "capacity used >= 97% of the configured headroom: $util%" \
    "the mock counted $inwin requests in its last ${window_s} s window;
      the headroom allows $limit (95% of 60 + 120 + 180)"

# 6. One call through the gateway, as any SDK would make it.  The pool
# was just full: the call may wait for room (up to queue_s).
echo
echo "== one call through bin/gemroute-gateway"
"$BIN/gemroute-gateway" -c "$tmp/router.conf" --foreground \
    >"$tmp/gw.out" 2>"$tmp/gw.log" &
gw_pid=$!
gw_port=
for _ in $(seq 200); do
    gw_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
        "$tmp/gw.out")
    [ -n "$gw_port" ] && break
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.05
done
gw_code=000
gw_text=
gw_project=
if [ -n "$gw_port" ]; then
    gw_url="http://127.0.0.1:$gw_port/v1beta/models/$MODEL:generateContent"
    # The token goes in a header file, never on a command line.
    printf 'x-goog-api-key: %s\n' "$GEMROUTE_DEMO_TOKEN" >"$tmp/gw.hdr"
    echo "POST $gw_url"
    gw_code=$(curl -s --max-time 60 -H @"$tmp/gw.hdr" \
        -H 'Content-Type: application/json' \
        -d '{"contents":[{"parts":[{"text":"Say hello through gemroute."}]}]}' \
        -D "$tmp/gw.resp.hdr" -o "$tmp/gw.resp" -w '%{http_code}' \
        "$gw_url" 2>"$tmp/gw.curl.err") || gw_code=000
    gw_project=$(tr -d '\r' <"$tmp/gw.resp.hdr" 2>/dev/null |
        sed -n 's/^[Xx]-[Gg]emroute-[Pp]roject: *//p' | head -n 1)
    gw_text=$(python3 -c '
import json, sys
try:
    a = json.load(open(sys.argv[1]))
    print(" ".join(p.get("text", "") for p in
                   a["candidates"][0]["content"]["parts"]).strip())
except Exception:
    pass' "$tmp/gw.resp")
    echo "status: $gw_code"
    echo "x-gemroute-project: ${gw_project:-(none)}"
    echo "text: ${gw_text:-(none)}"
else
    echo "gemroute-gateway did not start:"
    tail -n 5 "$tmp/gw.log"
fi
check "$gw_code == 200 && ${#gw_text} > 0 && ${#gw_project} > 0" \
    "one call through gemroute-gateway answered, and named its project" \
    "curl's generateContent through the gateway on 127.0.0.1:${gw_port:-?}:
      status $gw_code, project ${gw_project:-none},
      ${#gw_text} characters of text"
[ "$fails" -eq 0 ] && exit 0
exit 1
