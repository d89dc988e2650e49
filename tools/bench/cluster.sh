#!/bin/sh
# cluster.sh - the benchmarks' cluster section (docs/CLUSTER.md): what a
# clustered router asks of Redis, against the design that asks Redis on
# every call, and what the cluster costs a reservation.
#
#   tools/bench/cluster.sh           make bench-cluster (part of make
#                                    bench): docs/BENCHMARKS.md
#   tools/bench/cluster.sh --quick   make bench-cluster-quick (part of
#                                    make bench-quick): shorter runs,
#                                    written under bench/quick/ only
#
# 1. Redis commands per second per router: two clustered gemrouted (10
#    one-model projects each, the default sync_ms and lease_ms, the
#    production 60 s window) on one redis-server, each offered R calls
#    per second (gr-bench-reserve --rate R) for RATE_S seconds, R in
#    {10, 1000, 10000}, and idle; counted by Redis itself (INFO
#    commandstats: every command but INFO), with the CPU Redis used
#    (INFO cpu).  The same rates through the sliding window in Lua
#    (tools/bench/redis_window.c, one EVALSHA per call) on a second
#    redis-server give the ratio.
# 2. The reserve cost on a clustered router against a standalone one
#    (the same config without the cluster section): REPS interleaved
#    runs of one process pinned to CPU 1 (taskset; routers and Redis on
#    CPU 0): wall and CPU time per reservation (the median of the reps),
#    `perf stat` task-clock, and instructions per reservation from
#    callgrind (two runs of N1 and N2 ops; perf's hardware counters may
#    be missing in a VM).
#
# Raw lines go to a temporary folder; the table goes between the page's
# <!-- bench:cluster:begin/end --> markers (tools/bench/cluster_report.py)
# and the figures to bench/cluster.json (bench/quick/cluster.json).
set -eu
cd "$(dirname "$0")/../.."
BIN=${BIN:-bin}
MODE=full
[ "${1:-}" = "--quick" ] && MODE=quick

if [ "$MODE" = full ]; then
    RATE_S=${RATE_S:-10}
    REPS=${REPS:-7}
    COST_S=0.5
    LEASE_MS=10000      # the default
    page=docs/BENCHMARKS.md
    results=bench/cluster.json
else
    RATE_S=${RATE_S:-2}
    REPS=${REPS:-3}
    COST_S=0.2
    LEASE_MS=2000       # a shorter first grace (settled cells: 500 ms)
    page=bench/quick/BENCHMARKS.md
    results=bench/quick/cluster.json
    mkdir -p bench/quick
    [ -f "$page" ] || cp docs/BENCHMARKS.md "$page"
fi
RATES="10 1000 10000"
NP=10                   # projects (one model each): the cells
W=60000                 # ms: the production window
LIMIT=2000000000        # rpm and tpm: out of reach, so nothing is refused

tools/deps.sh libhiredis-dev redis-server valgrind >/dev/null
make -s all "$BIN/gr-bench-reserve" >/dev/null

work=$(mktemp -d /tmp/grbench-cl.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t_start=$(date +%s)
say() { echo "bench-cluster: [$(( $(date +%s) - t_start ))s] $*" >&2; }
cut -d' ' -f1-3 /proc/loadavg >"$work/loadavg.start"

# On two CPUs: routers and Redis on CPU 0, the measured process on CPU 1.
PIN_SRV="taskset -c 0"
PIN_BENCH="taskset -c 1"
if [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null 2>&1; then
    PIN_SRV="" PIN_BENCH=""
fi

start_redis() {     # SOCKET: sets $redis_pid
    $PIN_SRV redis-server --port 0 --unixsocket "$1" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize no --loglevel warning \
        --dir "$work" >>"$work/redis.log" 2>&1 &
    redis_pid=$!
    pids="$pids $redis_pid"
    i=0
    until redis-cli -s "$1" ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -gt 400 ] && { say "redis-server did not start"; exit 1; }
        sleep 0.05
    done
}

# conf NAME [cluster]: a router of NP projects, one model, limits out of
# reach; with "cluster", the cluster section (node NAME, defaults).
conf() {
    {
        echo "router = { shm = \"/grbench-cl-$$-$1\"; window_ms = $W;"
        echo "  headroom = 1.0; state_file = \"$work/$1.state\";"
        echo "  max_projects = $NP; max_models = 1; };"
        echo "models = ( { name = \"gemini-2.5-flash\"; rpm = $LIMIT;"
        echo "             tpm = $LIMIT; } );"
        echo "projects = ("
        awk -v n="$NP" 'BEGIN { for (i = 1; i <= n; i++)
            printf "  { name = \"p%d\"; key = \"bench-key-%06d\"; }%s\n",
                   i, i, i < n ? "," : "" }'
        echo ");"
        [ "${2:-}" = cluster ] &&
            echo "cluster = { redis = \"unix:$work/redis.sock\";" \
                 "node = \"$1\"; prefix = \"b$$\"; lease_ms = $LEASE_MS; };"
    } >"$work/$1.conf"
    chmod 600 "$work/$1.conf"
}

# limit NAME: the least RPM local limit over the router's cells (its
# share, on a clustered router; -1 before it answers)
limit() {
    "$BIN/gemroute" status --json --shm "/grbench-cl-$$-$1" 2>/dev/null |
        python3 -c '
import json, sys
try:
    print(min(c["limit"]["rpm"] or 0 for c in json.load(sys.stdin)["cells"]))
except Exception:
    print(-1)'
}

start_router() {    # NAME: wait until every cell has a limit above 0
    $PIN_SRV "$BIN/gemrouted" -c "$work/$1.conf" --foreground \
        --unlink-on-exit 2>>"$work/router.log" &
    pids="$pids $!"
}

wait_limits() {     # NAME...: every cell of each has a limit above 0
    for n in "$@"; do
        i=0
        until [ "$(limit "$n")" -gt 0 ] 2>/dev/null; do
            i=$((i + 1))
            if [ "$i" -gt 600 ]; then
                say "router $n has no limit after 60 s; its log:"
                tail -n 5 "$work/router.log" >&2
                exit 1
            fi
            sleep 0.1
        done
    done
}

# stats SOCKET: "sent executed usec cpu_s" so far: the commands clients
# sent (EVALSHA, EVAL, SCRIPT, AUTH, PING: what crosses the network),
# every command Redis executed (those, plus the ones the scripts call
# inside: commandstats counts both), Redis' time in them (usec) and its
# user+system CPU seconds.  The snapshots' own INFO is left out.
stats() {
    redis-cli -s "$1" info all 2>/dev/null | tr -d '\r' | awk -F'[:,=]' '
        /^cmdstat_(evalsha|eval|evalsha_ro|eval_ro|script|auth|ping):/ {
            s += $3; u += $5 }
        /^cmdstat_/ && $1 != "cmdstat_info" { n += $3 }
        /^used_cpu_(user|sys):/ { c += $2 }
        END { printf "%d %d %d %.3f\n", s, n, u, c }'
}

now() { date +%s.%N; }

# ---- 1. Redis commands per router ----------------------------------------

start_redis "$work/redis.sock"
main_redis=$work/redis.sock
start_redis "$work/lua.sock"
conf ca cluster
conf cb cluster
conf st
start_router ca
start_router cb
start_router st
say "routers up; waiting for the first grants (Redis' grace: a lease)"
wait_limits st ca cb

: >"$work/rates.jsonl"
# measure LABEL RATE: RATE_S seconds of load (or idle) on both clustered
# routers, or on the Lua window; one JSON line
measure() {
    sock=$main_redis
    [ "$1" = lua ] && sock=$work/lua.sock
    set -- "$1" "$2" $(stats "$sock") "$(now)"
    lp=""
    if [ "$2" -gt 0 ]; then
        if [ "$1" = lua ]; then
            # a round trip per call: one process paces ~5,000 calls/s
            lprocs=$(( $2 / 2000 + 1 ))
            $PIN_BENCH "$BIN/gr-bench-reserve" --impl redis-lua \
                --redis "$work/lua.sock" --projects "$NP" --window-ms "$W" \
                --procs "$lprocs" --rate "$2" --seconds "$RATE_S" \
                --warmup-ms 0 >"$work/load-lua.json" &
            lp="$lp $!"
        else
            for n in ca cb; do
                $PIN_BENCH "$BIN/gr-bench-reserve" --impl gemroute \
                    --shm "/grbench-cl-$$-$n" --projects "$NP" \
                    --window-ms "$W" --rate "$2" --seconds "$RATE_S" \
                    --warmup-ms 0 >"$work/load-$n.json" &
                lp="$lp $!"
            done
        fi
        for p in $lp; do wait "$p"; done
    else
        sleep "$RATE_S"
    fi
    set -- "$@" $(stats "$sock") "$(now)"
    # $1 label $2 rate $3-$6 before $7 t0 $8-$11 after $12 t1
    python3 - "$work" "$@" <<'PY' >>"$work/rates.jsonl"
import json, os, sys
work, label, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = [float(x) for x in sys.argv[4:8]]
t0 = float(sys.argv[8])
a = [float(x) for x in sys.argv[9:13]]
t1 = float(sys.argv[13])
dt = t1 - t0
routers = 1 if label == "lua" else 2
calls, refused = 0, 0
for f in (["load-lua.json"] if label == "lua" else
          ["load-ca.json", "load-cb.json"]):
    p = os.path.join(work, f)
    if rate > 0 and os.path.exists(p):
        j = json.loads(open(p).read().splitlines()[-1])
        calls += j["ops"]
        refused += j["refused"] + j["failed"]
print(json.dumps({
    "design": label, "rate": rate, "seconds": round(dt, 3),
    "routers": routers,
    "calls_per_s_per_router": round(calls / dt / routers, 1),
    "refused": refused,
    "commands_per_s_per_router": round((a[0] - b[0]) / dt / routers, 1),
    "executed_per_s_per_router": round((a[1] - b[1]) / dt / routers, 1),
    "redis_usec_per_command": round((a[2] - b[2]) / max(a[0] - b[0], 1), 1),
    "redis_cpu_percent": round(100 * (a[3] - b[3]) / dt, 1),
}))
PY
}

say "1. idle, then R in {$RATES} calls/s per router, $RATE_S s each"
measure cluster 0
for r in $RATES; do
    measure cluster "$r"
    measure lua "$r"
done

# ---- 2. the reserve cost: clustered against standalone -------------------

say "2. reserve cost, clustered (ca) vs standalone (st), $REPS reps"
: >"$work/cost.jsonl"
for rep in $(seq "$REPS"); do
    for n in st ca; do
        perf stat -x, -e task-clock -o "$work/perf.$n.$rep" \
            $PIN_BENCH "$BIN/gr-bench-reserve" --impl gemroute \
            --shm "/grbench-cl-$$-$n" --projects "$NP" --window-ms "$W" \
            --tokens 1 --seconds "$COST_S" --warmup-ms 30 \
            >"$work/cost.$n.$rep" 2>/dev/null ||
            $PIN_BENCH "$BIN/gr-bench-reserve" --impl gemroute \
                --shm "/grbench-cl-$$-$n" --projects "$NP" \
                --window-ms "$W" --tokens 1 --seconds "$COST_S" \
                --warmup-ms 30 \
                >"$work/cost.$n.$rep"
        tc=$(awk -F, '/task-clock/ { print $1 }' "$work/perf.$n.$rep" \
             2>/dev/null || true)
        pre="\"router\": \"$n\", \"rep\": $rep, \"task_clock_ms\": ${tc:-null}"
        sed "s/^{/{$pre, /" "$work/cost.$n.$rep" >>"$work/cost.jsonl"
    done
done
: >"$work/instr.jsonl"
if command -v valgrind >/dev/null 2>&1; then
    n1=5000 n2=45000
    [ "$MODE" = quick ] && n1=2000 n2=12000
    for n in st ca; do
        for k in $n1 $n2; do
            valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n.$k" \
                "$BIN/gr-bench-reserve" --impl gemroute \
                --shm "/grbench-cl-$$-$n" --projects "$NP" --window-ms "$W" \
                --tokens 1 --inline --ops "$k" >/dev/null 2>"$work/cg.log"
        done
        i1=$(awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.$n.$n1")
        i2=$(awk '/^(summary|totals):/ { print $2; exit }' "$work/cg.$n.$n2")
        echo "{\"router\": \"$n\", \"instructions_per_op\":" \
             "$(( (i2 - i1) / (n2 - n1) ))}" >>"$work/instr.jsonl"
    done
fi
cut -d' ' -f1-3 /proc/loadavg >"$work/loadavg.end"

mkdir -p "$(dirname "$results")"
python3 tools/bench/cluster_report.py "$work" "$MODE" "$RATE_S" "$REPS" \
    "$NP" "$results" "$page"
say "done: $page"
