#!/bin/sh
# gateway.sh - section 4 of tools/bench.sh: what bin/gemroute-gateway adds
# to a call, side by side with nginx as a plain reverse-proxy hop.  Called
# by tools/bench.sh with MODE, BIN and WORK set; writes its raw results to
# $WORK/gateway/runs.jsonl (one line per wrk run).
#
# One gemroute-mock (tests/mock/bench.conf: no quota, no faults, no
# latency), and three ways to call it with the same generateContent POST
# (tools/bench/gateway_wrk.lua):
#
#   direct    wrk -> mock
#   nginx     wrk -> nginx (proxy_pass, keepalive to the upstream) -> mock
#   gateway   wrk -> gemroute-gateway (reserve, call, settle) -> mock
#
# at 1, 16 and 64 connections (bench-quick: 1 and 64, streams at 1),
# unary (:generateContent) and streamed
# (:streamGenerateContent?alt=sse), every combination once per
# repetition, interleaved.  With two CPUs or more wrk and the mock run on
# CPU 0, and the proxy (nginx's one worker, or the gateway) on CPU 0 too
# at 1 connection, on CPU 1 at 16 and 64 (see place() below).  CPU time
# of the mock and of the proxy is read from /proc around each run.
#
# GW_BEFORE_BIN=PATH adds a fourth target, "before": that gemroute-
# gateway binary (an older build) in front of the same table, with the
# same settings, for a before/after in one invocation (tools/bench/
# aggregate.py reports the three targets; the fourth is in runs.jsonl).
set -eu
: "${MODE:?}" "${BIN:?}" "${WORK:?}"
cd "$(dirname "$0")/../.."
if [ "$MODE" = full ]; then
    D=${GW_SECONDS:-2} REPS=${GW_REPS:-3}
    CONNS="1 16 64" STREAM_CONNS="1 16 64"
else
    # bench-quick: the two connection counts its targets name, streams
    # at 1 only.
    D=${GW_SECONDS:-1} REPS=${GW_REPS:-1} CONNS="1 64" STREAM_CONNS=1
fi
MODEL=gemini-2.5-flash
out=$WORK/gateway
mkdir -p "$out/nginx/tmp"
pids=""
cleanup_gw() {
    for p in $pids; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
trap cleanup_gw EXIT

t_start=$(date +%s)
say() { echo "bench: [gateway $(( $(date +%s) - t_start ))s] $*" >&2; }

PIN_LOAD="" PIN_PROXY=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_LOAD="taskset -c 0" PIN_PROXY="taskset -c 1"
fi

# port_of FILE: the port of a "listening on 127.0.0.1:PORT" line.
port_of() {
    i=0
    p=
    while [ -z "$p" ] && [ $i -lt 400 ]; do
        p=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$1" \
            2>/dev/null)
        [ -z "$p" ] && sleep 0.02
        i=$((i + 1))
    done
    echo "$p"
}

# cpu_ticks PID...: user + system clock ticks of the processes (every
# thread, living or ended).
cpu_ticks() {
    for p in "$@"; do
        sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null
    done | awk '{ t += $12 + $13 } END { print t + 0 }'
}
HZ=$(getconf CLK_TCK)
secs() { awk -v a="$1" -v b="$2" -v h="$HZ" 'BEGIN { print (b - a) / h }'; }

# 1. The mock, at full speed.
# shellcheck disable=SC2086 # the pinning words, split on purpose
$PIN_LOAD "$BIN/gemroute-mock" -c tests/mock/bench.conf \
    --listen 127.0.0.1:0 >"$out/mock.out" 2>"$out/mock.log" &
mock_pid=$!
pids="$pids $mock_pid"
mport=$(port_of "$out/mock.out")
[ -n "$mport" ] || { say "gemroute-mock did not start"; exit 1; }

# 2. A router and the gateway, limits out of reach.
shm="/grbench-$$-gw"
cat >"$out/gw.conf" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = 60000; headroom = 1.0; state_file = "gw.state";
           max_projects = 1; max_models = 1; max_leases = 1024; };
models = ( { name = "$MODEL"; rpm = 2000000000; tpm = 2000000000;
             rpd = 2000000000; } );
projects = ( { name = "bench"; key = "bench-key"; } );
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_BENCH_GW_TOKEN" ];
            workers = 256; queue_s = 5.0; };
CONF
chmod 600 "$out/gw.conf"
GR_BENCH_GW_TOKEN=bench-gw-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export GR_BENCH_GW_TOKEN
"$BIN/gemrouted" -c "$out/gw.conf" --foreground --unlink-on-exit \
    2>"$out/router.log" &
pids="$pids $!"
i=0
until "$BIN/gemroute" status --shm "$shm" --json 2>/dev/null |
      grep -q '"config_generation": [1-9]'; do
    i=$((i + 1))
    [ $i -gt 400 ] && { say "gemrouted did not start"; exit 1; }
    sleep 0.02
done
# One line per request on standard error, as in production; to /dev/null.
# shellcheck disable=SC2086
$PIN_PROXY "$BIN/gemroute-gateway" -c "$out/gw.conf" --foreground \
    >"$out/gw.out" 2>/dev/null &
gw_pid=$!
pids="$pids $gw_pid"
gport=$(port_of "$out/gw.out")
[ -n "$gport" ] || { say "gemroute-gateway did not start"; exit 1; }
TARGETS="direct nginx gateway"
bport="" before_pid=""
if [ -n "${GW_BEFORE_BIN:-}" ]; then
    # shellcheck disable=SC2086
    $PIN_PROXY "$GW_BEFORE_BIN" -c "$out/gw.conf" --foreground \
        >"$out/before.out" 2>/dev/null &
    before_pid=$!
    pids="$pids $before_pid"
    bport=$(port_of "$out/before.out")
    [ -n "$bport" ] || { say "$GW_BEFORE_BIN did not start"; exit 1; }
    TARGETS="$TARGETS before"
fi

# 3. nginx: one worker, a plain proxy_pass with keepalive to the mock,
# streams unbuffered; an access log line per request to /dev/null (as
# the gateway logs one to standard error).
nport=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nd=$out/nginx
cat >"$nd/nginx.conf" <<CONF
worker_processes 1;
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections 1024; }
http {
    access_log /dev/null;
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    upstream mock {
        server 127.0.0.1:$mport;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$nport;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location ~ :streamGenerateContent {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
CONF
# shellcheck disable=SC2086
$PIN_PROXY nginx -p "$nd" -e "$nd/error.log" -c "$nd/nginx.conf" \
    -g 'daemon off;' 2>>"$nd/error.log" &
nginx_pid=$!
pids="$pids $nginx_pid"
i=0
until python3 -c 'import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()' \
      "http://127.0.0.1:$nport/mock/stats" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 200 ] || ! kill -0 "$nginx_pid" 2>/dev/null; then
        say "nginx did not start:"
        tail -n 5 "$nd/error.log" >&2
        exit 1
    fi
    sleep 0.05
done
# nginx's master and its worker, read again before each use: a child
# the master had for a moment at start (seen once: "taskset: failed to
# get pid N's affinity: No such process") is gone by then.
nginx_all() {
    echo "$nginx_pid $(cat "/proc/$nginx_pid/task/$nginx_pid/children" \
        2>/dev/null)"
}

url_of() {      # TARGET MODE
    case $1 in
    direct) u=http://127.0.0.1:$mport ;;
    nginx) u=http://127.0.0.1:$nport ;;
    gateway) u=http://127.0.0.1:$gport ;;
    before) u=http://127.0.0.1:$bport ;;
    esac
    case $2 in
    unary) echo "$u/v1beta/models/$MODEL:generateContent" ;;
    stream) echo "$u/v1beta/models/$MODEL:streamGenerateContent?alt=sse" ;;
    esac
}

# run REP TARGET MODE CONNS SECONDS: one wrk run; a JSON line on stdout.
run() {
    key=bench-key proxy=""
    case $2 in
    nginx) proxy=$(nginx_all) ;;
    gateway) proxy=$gw_pid key=$GR_BENCH_GW_TOKEN ;;
    before) proxy=$before_pid key=$GR_BENCH_GW_TOKEN ;;
    esac
    m0=$(cpu_ticks "$mock_pid")
    p0=0
    [ -n "$proxy" ] && p0=$(cpu_ticks $proxy)
    # shellcheck disable=SC2086
    line=$(GW_WRK_KEY=$key $PIN_LOAD wrk -t1 -c"$4" -d"${5}s" \
        -s tools/bench/gateway_wrk.lua "$(url_of "$2" "$3")" |
        sed -n 's/^WRKJSON //p')
    m1=$(cpu_ticks "$mock_pid")
    p1=0
    [ -n "$proxy" ] && p1=$(cpu_ticks $proxy)
    [ -n "$line" ] || { say "wrk printed no result ($2 $3 $4)"; return 1; }
    mcpu=$(secs "$m0" "$m1")
    pcpu=$(secs "$p0" "$p1")
    echo "$line" | sed "s/^{/{\"rep\": $1, \"target\": \"$2\", \"mode\": \
\"$3\", \"conns\": $4, \"mock_cpu_s\": $mcpu, \"proxy_cpu_s\": $pcpu, /"
}

# place N: at 1 connection ("one") the proxies join wrk and the mock on
# CPU 0: each hop is then a switch on one core, and the added latency is
# the hop's own work (split over two cores, each hop is a cross-core
# wake-up, which on this kind of virtual machine costs 30 to 40 us and
# buried the difference: nginx +155 us, the gateway +280 us).  At 16 and
# 64 ("split") the proxy has CPU 1 to itself.
place() {
    [ -n "$PIN_PROXY" ] || return 0
    cpu=1
    [ "$1" = one ] && cpu=0
    for p in $gw_pid $before_pid $(nginx_all); do
        taskset -a -p -c "$cpu" "$p" >/dev/null
    done
}
# floors REP: what the gateway's two libraries cost alone, at 64
# connections with CPU 1 to themselves, as a line each in floors.jsonl:
# libcurl driven as the gateway's loops drive it (gr-bench-curl-floor:
# the upstream half of a call and nothing else), the same half through
# the loops' own HTTP/1.1 client (gr-bench-h1-floor: client/h1.c, which
# the gateway sends with), and libmicrohttpd
# answering the gateway's /healthz (no token, no route work, no call).
# A gateway call cannot cost less CPU than the two together.
floors() {
    place split
    # shellcheck disable=SC2086
    line=$($PIN_PROXY "$BIN/gr-bench-curl-floor" \
        "$(url_of direct unary)" 64 "$D" | sed -n 's/^CURLFLOOR //p')
    [ -n "$line" ] && echo "$line" | sed "s/^{/{\"rep\": $1, \
\"what\": \"libcurl\", \"conns\": 64, /" >>"$out/floors.jsonl"
    # shellcheck disable=SC2086
    line=$($PIN_PROXY "$BIN/gr-bench-h1-floor" "127.0.0.1:$mport" \
        "/v1beta/models/$MODEL:generateContent" 64 "$D" |
        sed -n 's/^H1FLOOR //p')
    [ -n "$line" ] && echo "$line" | sed "s/^{/{\"rep\": $1, \
\"what\": \"h1\", \"conns\": 64, /" >>"$out/floors.jsonl"
    p0=$(cpu_ticks "$gw_pid")
    # shellcheck disable=SC2086
    line=$(GW_WRK_METHOD=GET $PIN_LOAD wrk -t1 -c64 -d"${D}s" \
        -s tools/bench/gateway_wrk.lua "http://127.0.0.1:$gport/healthz" |
        sed -n 's/^WRKJSON //p')
    p1=$(cpu_ticks "$gw_pid")
    [ -n "$line" ] && echo "$line" | sed "s/^{/{\"rep\": $1, \
\"what\": \"libmicrohttpd\", \"conns\": 64, \"cpu_s\": \
$(secs "$p0" "$p1"), /" >>"$out/floors.jsonl"
    return 0
}
say "4. gateway: direct, nginx, gemroute-gateway; connections {$CONNS};" \
    "unary and streamed; $REPS x ${D} s each${PIN_LOAD:+; pinned}"
# Warm every path (connections to the mock, the table's batch lease).
for t in $TARGETS; do
    run 0 "$t" unary 16 1 >/dev/null
done
: >"$out/runs.jsonl"
: >"$out/floors.jsonl"
for rep in $(seq "$REPS"); do
    for m in unary stream; do
        conns=$CONNS
        [ "$m" = stream ] && conns=$STREAM_CONNS
        for c in $conns; do
            if [ "$c" = 1 ]; then place one; else place split; fi
            for t in $TARGETS; do
                run "$rep" "$t" "$m" "$c" "$D" >>"$out/runs.jsonl"
            done
        done
    done
    floors "$rep"
    say "  rep $rep/$REPS done"
done
echo "{\"nginx\": \"$(nginx -v 2>&1 | sed 's/^nginx version: //')\"," \
     "\"wrk\": \"$(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)\"," \
     "\"seconds\": $D, \"reps\": $REPS," \
     "\"pinned\": $([ -n "$PIN_LOAD" ] && echo true || echo false)}" \
    >"$out/meta.json"
