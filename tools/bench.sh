#!/bin/sh
# bench.sh - gemroute's benchmarks, side by side with what users would
# pick instead, measured in one invocation on this machine.
#
#   tools/bench.sh           the full run (make bench, under 10 minutes)
#   tools/bench.sh --quick   fewer configurations, a shorter steady run
#                            (make bench-quick, under 60 seconds); its
#                            page and charts go under bench/quick/ only
#
# Sections (docs/BENCHMARKS.md explains each):
#   1. the reservation: gemroute, a robust-mutex table, Redis (tutorial
#      pipeline and Lua), timed and under callgrind, plus the exact
#      over-admission check;
#   2. memory: segment size and router RSS;
#   3. end to end against gemroute-mock: burst, steady overload, and the
#      overhead of gr_generate over a plain libcurl POST;
#   4. gemroute-gateway in front of the mock, side by side with a direct
#      call and nginx's proxy_pass (tools/bench/gateway.sh, wrk);
#   5. a call answered by the shared response cache against the same
#      call sent upstream (tools/bench/cache.sh, gr-bench-cache).
# Every comparison is a ratio of runs interleaved in this invocation
# (median of REPS repetitions).  Raw lines go to a temporary folder;
# tools/bench/aggregate.py writes bench/results.json, bench_report.sh the
# tables and charts.  The last line printed is the one-line summary.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
MODE=full
[ "${1:-}" = "--quick" ] && MODE=quick

tools/deps.sh libhiredis-dev redis-server gnuplot-nox valgrind wrk nginx
make -s all "$BIN/gr-bench-reserve" >/dev/null
E2E=1
make -s "$BIN/gr-bench-e2e" >/dev/null 2>&1 || E2E=0
make -s "$BIN/gr-bench-cache" >/dev/null 2>&1 || true

if [ "$MODE" = full ]; then
    REPS=${REPS:-5}
    SECONDS_PER_RUN=${SECONDS_PER_RUN:-0.25}
    PROJECTS="10 1000 10000"
    PROCS="1 2 4 8 32"
    CHECK_PROCS="8 32"
    CHECK_S=3
    WARMUP_MS=30
    MEM_PROJECTS="10 1000 10000"
else
    # Under 60 s: 2 repetitions (about 3.5 s each), and 1,000 projects
    # for the large table (a table of 10,000 takes its two routers about
    # 7 s to start and warm, before anything is measured).
    REPS=${REPS:-2}
    SECONDS_PER_RUN=${SECONDS_PER_RUN:-0.05}
    PROJECTS="10 1000"
    PROCS="1 8 32"
    CHECK_PROCS="32"
    CHECK_S=0.5
    WARMUP_MS=15
    MEM_PROJECTS="1000"     # a size, not a time: one table is enough
fi
# gemroute-exact: gemroute with router.batch_calls = 1, a lease of the
# table for every call (docs/ADMISSION.md, "Batch leases").
IMPLS="gemroute gemroute-exact mutex redis-zset redis-lua"
TOKENS=1000

# Operations per project that warm a table: 20 admissions a cell, on the
# default table in batches of up to 128 calls (20 a cell for a table of a
# lease per call).
WARM_OPS=2560

# Timed runs: short windows keep the counts of a tight loop in range.
WINDOW_MS=500
CHECK_W=1000
CG_W=60000      # callgrind: the production window (see section 1b)

work=$(mktemp -d /tmp/grbench.XXXXXX)
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cut -d' ' -f1-3 /proc/loadavg >"$work/loadavg.start"
# Whatever else keeps the CPUs busy as the run starts (a shared machine).
ps -eo pcpu=,comm= | awk '$1 >= 20' >"$work/busy.start" || true
t_start=$(date +%s)
say() { echo "bench: [$(( $(date +%s) - t_start ))s] $*" >&2; }

# ---- helpers -------------------------------------------------------------

# router_conf NAME PROJECTS MODELS WINDOW_MS RPM TPM RPD [HEADROOM [BATCH]]
router_conf() {
    f=$work/$1.conf
    {
        echo "router = { shm = \"/grbench-$$-$1\"; window_ms = $4;"
        echo "  headroom = ${8:-0.95}; state_file = \"$1.state\";"
        echo "  batch_calls = ${9:-128};"
        echo "  max_projects = $2; max_models = $3; max_leases = 1024; };"
        echo "models = ("
        m=1
        while [ "$m" -le "$3" ]; do
            name=gemini-2.5-flash
            [ "$m" -gt 1 ] && name=gemini-bench-$m
            sep=","; [ "$m" -eq "$3" ] && sep=""
            echo "  { name = \"$name\"; rpm = $5; tpm = $6; rpd = $7; }$sep"
            m=$((m + 1))
        done
        echo ");"
        echo "projects = ("
        awk -v n="$2" 'BEGIN {
            for (i = 1; i <= n; i++)
                printf "  { name = \"p%d\"; key = \"bench-key-%06d\"; }%s\n",
                       i, i, i < n ? "," : ""
        }'
        echo ");"
    } >"$f"
}

# ready SHM PROJECTS: every project is in the table and a reservation
# passes (the router publishes the table before it has applied the
# config, which takes a second for 10,000 projects).
ready() {
    n=$("$BIN/gemroute" status --json --shm "$1" 2>/dev/null | python3 -c '
import json, sys
try:
    print(json.load(sys.stdin)["summary"]["projects"]["healthy"])
except Exception:
    print(-1)')
    [ "$n" = "$2" ] &&
        "$BIN/gemroute" reserve --shm "$1" --model gemini-2.5-flash \
            >/dev/null 2>&1
}

# start_router NAME PROJECTS: start gemrouted on $work/NAME.conf and wait
# until it is ready; sets $rpid.
start_router() {
    chmod 600 "$work/$1.conf"
    "$BIN/gemrouted" -c "$work/$1.conf" --foreground --unlink-on-exit \
        2>>"$work/router.log" &
    rpid=$!
    pids="$pids $rpid"
    i=0
    until ready "/grbench-$$-$1" "$2"; do
        i=$((i + 1))
        if [ "$i" -gt 600 ] || ! kill -0 "$rpid" 2>/dev/null; then
            say "gemrouted did not start ($1); see its log:"
            tail -n 5 "$work/router.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
}

# start_redis SOCKET [valgrind args...]: sets $redis_pid.
start_redis() {
    sock=$1
    shift
    "$@" redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
        --save '' --appendonly no --daemonize no --loglevel warning \
        --dir "$work" >>"$work/redis.log" 2>&1 &
    redis_pid=$!
    pids="$pids $redis_pid"
    i=0
    until redis-cli -s "$sock" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 600 ]; then
            say "redis-server did not start"
            exit 1
        fi
        sleep 0.05
    done
}

stop_redis() {
    redis-cli -s "$1" shutdown nosave >/dev/null 2>&1 || true
    wait "$redis_pid" 2>/dev/null || true
    pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$redis_pid" | tr '\n' ' ')
}

# start_tables PREFIX NP WINDOW_MS: the routers of gemroute (PREFIXNP) and
# of gemroute-exact (PREFIXeNP), limits out of reach, each table warmed:
# the first admission on a cell of a new table starts its Pacific day, a
# scan of the lease table, once per cell and day; left to a timed or
# counted run, that one-time cost would be taken for the per-operation
# one.  Sets $table_pids.
start_tables() {
    table_pids=""
    for t in "$1$2" "$1e$2"; do
        batch=128 warm=$WARM_OPS
        [ "$t" = "$1e$2" ] && batch=1 warm=20
        router_conf "$t" "$2" 1 "$3" 2000000000 2000000000 2000000000 \
            0.95 "$batch"
        start_router "$t" "$2"
        table_pids="$table_pids $rpid"
        "$BIN/gr-bench-reserve" --impl gemroute --shm "/grbench-$$-$t" \
            --projects "$2" --window-ms "$3" --tokens "$TOKENS" --inline \
            --ops $(($2 * warm)) >/dev/null
    done
}

# contender IMPL PREFIX NP: the arguments that name a contender, and its
# table (gemroute-exact is gemroute on the table PREFIXeNP).
contender() {
    case $1 in
    gemroute) echo "--impl gemroute --shm /grbench-$$-$2$3" ;;
    gemroute-exact)
        echo "--impl gemroute --label $1 --shm /grbench-$$-$2e$3" ;;
    redis-*) echo "--impl $1 --redis $work/redis.sock" ;;
    *) echo "--impl $1" ;;
    esac
}

# reserve IMPL PROJECTS ARGS...: run gr-bench-reserve for a contender.
reserve() {
    impl=$1 np=$2
    shift 2
    # shellcheck disable=SC2046 # the contender's words, split on purpose
    "$BIN/gr-bench-reserve" $(contender "$impl" r "$np") --projects "$np" \
        --window-ms "$WINDOW_MS" --tokens "$TOKENS" \
        --warmup-ms "$WARMUP_MS" "$@"
}

# cg_total FILE: instructions callgrind collected.
cg_total() {
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

# cg_fn FILE FUNCTION: inclusive instructions and calls of FUNCTION.
cg_fn() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk -v f="$2" '
        $0 ~ "[/.]" f "\\.c:" f "|:" f " \\[" && $0 !~ "=>" && !ir {
            gsub(",", "", $1); ir = $1 }
        $0 ~ "=> .*:" f " \\(" {
            s = $NF; gsub("[(),x]", "", s); calls += s }
        END { printf "%d %d\n", ir, calls }'
}

# ---- 1. the reservation, timed -------------------------------------------

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
say "machine: $(nproc) cores, $cpu"
say "1. reservation: $IMPLS x procs {$PROCS} x projects {$PROJECTS}, $REPS reps"
start_redis "$work/redis.sock"
timed_routers=""
for np in $PROJECTS; do
    start_tables r "$np" "$WINDOW_MS"
    timed_routers="$timed_routers $table_pids"
done
: >"$work/reserve.jsonl"
for rep in $(seq "$REPS"); do
    for np in $PROJECTS; do
        for impl in $IMPLS; do
            for procs in $PROCS; do
                line=$(reserve "$impl" "$np" --procs "$procs" \
                       --seconds "$SECONDS_PER_RUN") || {
                    say "run failed: $impl $np projects $procs procs"
                    exit 1
                }
                echo "$line" | sed "s/^{/{\"rep\": $rep, /" \
                    >>"$work/reserve.jsonl"
            done
        done
    done
    say "  rep $rep/$REPS done"
done
for p in $timed_routers; do
    stop_pid "$p"
done

# ---- 1b. instructions per operation (callgrind) ---------------------------
#
# Two runs of N1 and N2 operations in one process; the difference divided
# by N2 - N1 removes start-up.  gemroute and the mutex table run with the
# production window (60 s) here: under valgrind a loop is ~50x slower, and
# with a short window most admissions would find a new tick and drain it,
# which is not what the timed runs do.  The ring drains are reported
# apart.  Redis: the client here; the server below.

say "1b. instructions per operation (callgrind)"
: >"$work/instr.jsonl"
if [ "$MODE" = full ]; then
    CG_PROJECTS=$PROJECTS
else
    CG_PROJECTS=1000
fi
for np in $CG_PROJECTS; do
    start_tables c "$np" "$CG_W"
    cpids=$table_pids
    for impl in $IMPLS; do
        case $impl in
        gemroute*|mutex) n1=5000 n2=45000 ;;
        *) n1=1000 n2=6000 ;;
        esac
        # quick: valgrind's start-up is most of a run; fewer operations
        [ "$MODE" = quick ] && n1=2000 n2=12000
        [ "$MODE" = quick ] && case $impl in redis-*) continue ;; esac
        for n in $n1 $n2; do
            # shellcheck disable=SC2046 # the contender's words, split
            valgrind --tool=callgrind --callgrind-out-file="$work/cg.$n" \
                "$BIN/gr-bench-reserve" $(contender "$impl" c "$np") \
                --projects "$np" --window-ms "$CG_W" --tokens "$TOKENS" \
                --inline --ops "$n" >/dev/null 2>"$work/cg.log" || {
                say "callgrind run failed ($impl):"
                grep -v '^==' "$work/cg.log" | tail -n 3 >&2
                exit 1
            }
        done
        t1=$(cg_total "$work/cg.$n1")
        t2=$(cg_total "$work/cg.$n2")
        # Drains depend on time, not on the count of operations: taken
        # from the longer run alone (start-up drains nothing).
        set -- 0 0
        case $impl in
        gemroute*) set -- $(cg_fn "$work/cg.$n2" drain_to) ;;
        esac
        d2=$1 c2=$2
        per_drain=0
        [ "$c2" -gt 0 ] && per_drain=$(( d2 / c2 ))
        echo "{\"impl\": \"$impl\", \"projects\": $np, \"side\": \"client\"," \
             "\"instructions\": $(( (t2 - t1) / (n2 - n1) ))," \
             "\"drain_instructions\": $(( d2 / n2 ))," \
             "\"drains_per_1000_ops\": $(( c2 * 1000 / n2 ))," \
             "\"instructions_per_drain\": $per_drain," \
             "\"window_ms\": $CG_W}" \
             >>"$work/instr.jsonl"
    done
    for p in $cpids; do
        stop_pid "$p"
    done
done
if [ "$MODE" = full ]; then
    # The Redis server's share: a second server under callgrind, one run
    # of N1 and one of N2 operations, each to its shutdown.
    for impl in redis-zset redis-lua; do
        for n in 1000 6000; do
            start_redis "$work/cg.sock" valgrind --tool=callgrind \
                --callgrind-out-file="$work/cgs.$n"
            "$BIN/gr-bench-reserve" --impl "$impl" --projects 1000 \
                --redis "$work/cg.sock" --window-ms "$CG_W" --inline \
                --ops "$n" >/dev/null
            stop_redis "$work/cg.sock"
        done
        t1=$(cg_total "$work/cgs.1000")
        t2=$(cg_total "$work/cgs.6000")
        echo "{\"impl\": \"$impl\", \"projects\": 1000, \"side\": \"server\"," \
             "\"instructions\": $(( (t2 - t1) / 5000 ))}" >>"$work/instr.jsonl"
    done
fi

# ---- 1c. over-admission under concurrency ---------------------------------
#
# One project, 100 requests per 1 s window, every process hammering it;
# each admission is logged and replayed by the exact checker.

say "1c. over-admission check (exact checker), procs {$CHECK_PROCS}"
chk_pids=""
for t in chk1 chke1; do
    batch=128
    [ "$t" = chke1 ] && batch=1
    router_conf "$t" 1 1 "$CHECK_W" 100 2000000000 2000000000 1.0 "$batch"
    start_router "$t" 1
    chk_pids="$chk_pids $rpid"
done
sleep "$(awk -v w="$CHECK_W" 'BEGIN { print w / 1000 + 0.1 }')"  # the probe
: >"$work/check.jsonl"
for procs in $CHECK_PROCS; do
    for impl in $IMPLS; do
        # exit status 1 is the checker finding an over-admission: a result
        # shellcheck disable=SC2046 # the contender's words, split
        "$BIN/gr-bench-reserve" $(contender "$impl" chk 1) --projects 1 \
            --procs "$procs" --seconds "$CHECK_S" --window-ms "$CHECK_W" \
            --rpm 100 --tpm -1 --check 2>>"$work/check.log" \
            >>"$work/check.jsonl" || true
    done
done
for p in $chk_pids; do
    stop_pid "$p"
done
stop_redis "$work/redis.sock"

# ---- 2. memory ------------------------------------------------------------

say "2. memory: segment and router RSS, 8 models"
: >"$work/memory.jsonl"
for np in $MEM_PROJECTS; do
    router_conf "m$np" "$np" 8 "$CG_W" 1000 1000000 10000
    start_router "m$np" "$np"
    sleep 1.2   # one sweep of every cell
    seg=$(stat -c %s "/dev/shm/grbench-$$-m$np")
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$rpid/status")
    anon=$(awk '/^RssAnon/ { print $2 }' "/proc/$rpid/status")
    shmem=$(awk '/^RssShmem/ { print $2 }' "/proc/$rpid/status")
    echo "{\"projects\": $np, \"models\": 8, \"segment_bytes\": $seg," \
         "\"rss_kb\": $rss, \"rss_anon_kb\": $anon," \
         "\"rss_shmem_kb\": $shmem}" >>"$work/memory.jsonl"
    stop_pid "$rpid"
done

# ---- 3. end to end --------------------------------------------------------

if [ "$E2E" = 1 ] && [ -x tools/bench/e2e.sh ]; then
    MODE=$MODE BIN=$BIN WORK=$work tools/bench/e2e.sh
else
    say "3. end to end: skipped (gr-bench-e2e or the mock is not built)"
fi

# ---- 4. the gateway -------------------------------------------------------

if [ -x "$BIN/gemroute-gateway" ] && [ -x "$BIN/gemroute-mock" ] &&
   command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1; then
    MODE=$MODE BIN=$BIN WORK=$work tools/bench/gateway.sh
else
    say "4. gateway: skipped (the gateway, the mock, wrk or nginx is missing)"
fi

# ---- 5. the response cache ------------------------------------------------

if [ -x "$BIN/gr-bench-cache" ] && [ -x "$BIN/gemroute-mock" ]; then
    MODE=$MODE BIN=$BIN WORK=$work tools/bench/cache.sh
else
    say "5. cache: skipped (gr-bench-cache or the mock is not built)"
fi

# ---- results --------------------------------------------------------------

# A quick run never touches the published page: its scaled-down figures
# go to a copy of the page under bench/quick/, with its own charts.
if [ "$MODE" = full ]; then
    results=bench/results.json
    page=docs/BENCHMARKS.md
    charts=docs/bench
else
    results=bench/quick/results.json
    page=bench/quick/BENCHMARKS.md
    charts=bench/quick
    mkdir -p bench/quick
    cp docs/BENCHMARKS.md "$page"
fi
mkdir -p bench
python3 tools/bench/aggregate.py "$work" "$MODE" "$REPS" \
    "$SECONDS_PER_RUN" "$WINDOW_MS" "$TOKENS" >"$results"
tools/bench_report.sh "$results" "$page" "$charts"
python3 tools/bench/cache_report.py "$work" "$page" "$MODE"
python3 tools/bench/aggregate.py --summary "$results"
[ "$MODE" = full ] || say "quick run: $page (docs/BENCHMARKS.md untouched)"
