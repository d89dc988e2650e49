#!/bin/sh
# demo_cluster.sh - make demo-cluster: three hosts, one quota, on screen.
#
# A redis-server on a unix socket in a temporary folder, gemroute-mock
# enforcing one project's true limit (60 requests per window), and three
# gemrouted with three segments standing for three hosts a, b and c, each
# with a cluster section.  Demand moves: even over the three hosts, then
# 80/20 on a and b, then all on c, each at twice the pool's capacity.
# Every second it prints each host's local limit (its share of the pool,
# granted through Redis) and its count, and the mock's window and 429s.
#
# Windows are 3 s (a minute scaled by 1/20, as router.window_ms does for
# the tests); DEMO_PHASE_SECONDS sets each phase's length (default 9).
# Loopback only; everything it started is stopped on exit.  Exit 0 when
# the mock answered no 429 and its window never held more than the
# limit, 1 otherwise, 2 when the demo could not run.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/bin}
PHASE=${DEMO_PHASE_SECONDS:-9}
MODEL=gemini-2.5-flash
L=60
W=3000
KEY=gr-demo-SECRET-pool-0c4e1f

case $PHASE in
'' | *[!0-9]*) echo "demo: DEMO_PHASE_SECONDS must be whole seconds" >&2
               exit 2 ;;
esac
command -v redis-server >/dev/null 2>&1 ||
    { echo "demo: redis-server is not installed (make deps)" >&2; exit 2; }

umask 077
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gemroute-demo-cluster.XXXXXX") || exit 2
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
pids=

cleanup() {
    trap - EXIT INT TERM
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 2' INT TERM HUP PIPE

redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
    --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
cat >"$tmp/mock.conf" <<EOF
listen = "127.0.0.1:0";
window_ms = $W;
projects = ( { name = "pool"; keys = ["$KEY"];
    limits = ( { model = "$MODEL"; rpm = $L; tpm = 100000000; } ); } );
faults = { latency_ms = [5, 50]; };
EOF
"$BIN/gemroute-mock" -c "$tmp/mock.conf" >"$tmp/mock.out" \
    2>"$tmp/mock.log" &
pids="$pids $!"
port=
for _ in $(seq 400); do
    port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
        "$tmp/mock.out" 2>/dev/null)
    [ -n "$port" ] && break
    sleep 0.02
done
[ -n "$port" ] || { echo "demo: gemroute-mock did not start" >&2; exit 2; }

for n in a b c; do
    cat >"$tmp/$n.conf" <<EOF
router = { shm = "/gemroute-demo-cl-$$-$n"; base_url = "http://127.0.0.1:$port";
           window_ms = $W; headroom = 1.0; max_models = 1; max_projects = 4;
           state_file = "$tmp/$n.state"; control = "$tmp/$n.sock"; };
models = ( { name = "$MODEL"; rpm = $L; } );
projects = ( { name = "pool"; key = "$KEY"; } );
cluster = { redis = "unix:$tmp/redis.sock"; node = "host-$n";
            lease_ms = 3000; sync_ms = 50; };
EOF
    "$BIN/gemrouted" -c "$tmp/$n.conf" --foreground --unlink-on-exit \
        2>"$tmp/$n.log" &
    pids="$pids $!"
done
sleep 1

# show: one line: time since the start, each host's limit/count, the
# mock's window
show() {
    line=$(awk -v a="$start" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%5.1fs", b - a }')
    for n in a b c; do
        v=$("$BIN/gemroute" status --shm "/gemroute-demo-cl-$$-$n" --json \
            2>/dev/null | python3 -c '
import json, sys
try:
    j = json.load(sys.stdin)
    c = j["cells"][0]
    print("%s/%s" % (c["used"]["rpm"], c["limit"]["rpm"]))
except Exception:
    print("-")' 2>/dev/null)
        line="$line   host-$n $(printf '%7s' "$v")"
    done
    m=$(python3 -c "
import json, urllib.request
j = json.loads(urllib.request.urlopen(
    'http://127.0.0.1:$port/mock/stats').read())
m = j['projects']['pool']['models'].get('$MODEL')
print('%d %d' % (m['window']['requests'], m['quota_429']['total'])
      if m else '0 0')" 2>/dev/null)
    set -- $m
    echo "$line   mock window ${1:-?}/$L  429s ${2:-?}"
    echo "${1:-0} ${2:-0}" >>"$tmp/mock.samples"
}

load() {
    "$BIN/gemroute" load --shm "/gemroute-demo-cl-$$-$1" --procs 2 \
        --threads 4 --rate "$2" --duration "$PHASE" --model "$MODEL" \
        --tokens 10 >/dev/null 2>&1 &
    pids="$pids $!"
}

echo "three hosts share one project's $L requests per $((W / 1000)) s window"
echo "(used/limit per host: the limit is the host's share, from Redis)"
rate=$((2 * L * 1000 / W))
start=$(date +%s.%N)
for phase in even skew move; do
    case $phase in
    even) echo "-- even demand on a, b, c (twice the pool)"
          load a $((rate / 3)); load b $((rate / 3)); load c $((rate / 3)) ;;
    skew) echo "-- 80/20 demand on a and b"
          load a $((rate * 8 / 10)); load b $((rate * 2 / 10)) ;;
    move) echo "-- all the demand moves to c"
          load c "$rate" ;;
    esac
    i=0
    while [ $i -lt "$PHASE" ]; do
        sleep 1
        i=$((i + 1))
        show
    done
done
sleep 1
echo
echo "gemroute status on host-a (every node's share and use, from Redis):"
NO_COLOR=1 "$BIN/gemroute" status --shm "/gemroute-demo-cl-$$-a" |
    sed -n '/^PROJECT/,$p'
max=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$tmp/mock.samples")
n429=$(tail -n 1 "$tmp/mock.samples" | awk '{ print $2 + 0 }')
echo "mock: fullest window seen $max of $L, 429s $n429"
[ "$n429" -eq 0 ] && [ "$max" -le "$L" ]
