#!/bin/sh
# e2e.sh - the end-to-end sections of tools/bench.sh: burst and steady
# overload against gemroute-mock, and the overhead of gr_generate over a
# plain libcurl POST.  Called by tools/bench.sh with MODE, BIN and WORK
# set; writes its raw results under $WORK/e2e/.
#
# Every contender gets its own mock (3 projects of L requests per window,
# true limits equal to the configured ones) and, for gemroute, its own
# router.  The four contenders and both latency settings run at the same
# time, so each sees the same machine; the steady run is 3 windows.
# bench-quick scales time by 20 (3 s windows) and counts by 20, which
# keeps every rate of the full run, runs the steady overload for 2
# windows instead of 3, and the overhead loop 3 times instead of 5.
set -eu
: "${MODE:?}" "${BIN:?}" "${WORK:?}"
cd "$(dirname "$0")/../.."
if [ "$MODE" = full ]; then
    W=60000 L=1000 BURST_CALLS=2000 BURST_S=10 STEADY_S=180
    LOOP_CALLS=2000 REPS=${REPS:-5}
else
    W=3000 L=50 BURST_CALLS=100 BURST_S=0.5 STEADY_S=6
    LOOP_CALLS=200 REPS=${REPS:-3}
fi
LATS="0-0 50-200"
CONTENDERS="gemroute direct roundrobin bucket"
PROCS=16
out=$WORK/e2e
mkdir -p "$out"
pids=""
cleanup_e2e() {
    for p in $pids; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
}
trap cleanup_e2e EXIT

t_start=$(date +%s)
say() { echo "bench: [e2e $(( $(date +%s) - t_start ))s] $*" >&2; }

keys_of() {  # NAME -> the mock keys of that instance, comma-separated
    echo "bench-$1-key-1,bench-$1-key-2,bench-$1-key-3"
}

# start_mock NAME LO-HI [unlimited]: sets mock_pid and mock_url.
start_mock() {
    lo=${2%-*} hi=${2#*-}
    if [ "${3:-}" = unlimited ]; then
        lim='{ model = "gemini-2.5-flash"; }'
    else
        lim="{ model = \"gemini-2.5-flash\"; rpm = $L; tpm = 100000000;"
        lim="$lim rpd = 10000000; }"
    fi
    {
        echo "window_ms = $W;"
        echo "projects = ("
        for i in 1 2 3; do
            sep=","; [ "$i" -eq 3 ] && sep=""
            echo "  { name = \"p$i\"; keys = [\"bench-$1-key-$i\"];"
            echo "    tier = \"PaidTier1\"; limits = ( $lim ); }$sep"
        done
        echo ");"
        echo "faults = { p503 = 0.0; p500 = 0.0; latency_ms = [$lo, $hi]; };"
    } >"$out/$1.mock.conf"
    chmod 600 "$out/$1.mock.conf"
    "$BIN/gemroute-mock" -c "$out/$1.mock.conf" --listen 127.0.0.1:0 \
        >"$out/$1.mock.out" 2>>"$out/mock.log" &
    mock_pid=$!
    pids="$pids $mock_pid"
    i=0
    until grep -q '^listening on ' "$out/$1.mock.out" 2>/dev/null; do
        i=$((i + 1))
        if [ "$i" -gt 200 ] || ! kill -0 "$mock_pid" 2>/dev/null; then
            say "gemroute-mock did not start ($1)"
            tail -n 5 "$out/mock.log" >&2
            exit 1
        fi
        sleep 0.05
    done
    mock_url="http://$(sed -n 's/^listening on //p' "$out/$1.mock.out")"
}

# start_gr NAME URL RPM: a router for NAME's mock; sets gr_pid, gr_shm.
start_gr() {
    gr_shm="/grbench-$$-$1"
    {
        echo "router = { shm = \"$gr_shm\"; window_ms = $W; headroom = 1.0;"
        echo "  base_url = \"$2\"; state_file = \"$1.state\";"
        echo "  max_projects = 3; max_models = 1; max_leases = 4096; };"
        echo "models = ( { name = \"gemini-2.5-flash\"; rpm = $3;"
        echo "  tpm = 100000000; rpd = 10000000; } );"
        echo "projects = ("
        for i in 1 2 3; do
            sep=","; [ "$i" -eq 3 ] && sep=""
            echo "  { name = \"p$i\"; key = \"bench-$1-key-$i\"; }$sep"
        done
        echo ");"
    } >"$out/$1.conf"
    chmod 600 "$out/$1.conf"
    "$BIN/gemrouted" -c "$out/$1.conf" --foreground --unlink-on-exit \
        2>>"$out/router.log" &
    gr_pid=$!
    pids="$pids $gr_pid"
    i=0
    until "$BIN/gemroute" status --shm "$gr_shm" 2>/dev/null |
          grep -q 'projects: 3 healthy'; do
        i=$((i + 1))
        if [ "$i" -gt 200 ] || ! kill -0 "$gr_pid" 2>/dev/null; then
            say "gemrouted did not start ($1)"
            tail -n 5 "$out/router.log" >&2
            exit 1
        fi
        sleep 0.05
    done
}

stop_all() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=""
}

# scenario NAME CALLS OFFER_S RUN_S: every contender at every latency at
# once, each on fresh servers.
scenario() {
    runs=""
    for lat in $LATS; do
        for c in $CONTENDERS; do
            name=$1-$lat-$c
            start_mock "$name" "$lat"
            extra=""
            if [ "$c" = gemroute ]; then
                start_gr "$name" "$mock_url" "$L"
                extra="--shm $gr_shm"
            fi
            # shellcheck disable=SC2086
            "$BIN/gr-bench-e2e" --contender "$c" --url "$mock_url" $extra \
                --keys "$(keys_of "$name")" --procs "$PROCS" \
                --calls "$2" --offer-s "$3" --run-s "$4" --window-ms "$W" \
                --limit "$L" --out "$out/$name" >"$out/$name.json" \
                2>>"$out/e2e.log" &
            runs="$runs $!"
        done
    done
    for p in $runs; do
        wait "$p" || say "a $1 run failed (see $out/e2e.log)"
    done
    stop_all
}

say "3. end to end: burst of $BURST_CALLS calls in $BURST_S s, 16 processes"
scenario burst "$BURST_CALLS" "$BURST_S" \
    "$(awk -v b="$BURST_S" -v w="$W" 'BEGIN { print b + 2 * w / 1000 + 2 }')"
steady_calls=$(awk -v s="$STEADY_S" -v l="$L" -v w="$W" \
    'BEGIN { printf "%d", 2 * 3 * l * s / (w / 1000) }')
say "3. end to end: steady overload, $steady_calls calls in $STEADY_S s"
scenario steady "$steady_calls" "$STEADY_S" \
    "$(awk -v s="$STEADY_S" -v w="$W" 'BEGIN { print s + w / 30000 }')"

say "3. end to end: overhead of gr_generate over a libcurl POST"
start_mock overhead 0-0 unlimited
start_gr overhead "$mock_url" 2000000000
: >"$out/overhead.jsonl"
for rep in $(seq "$REPS"); do
    for procs in 1 8; do
        for c in curl gemroute; do
            "$BIN/gr-bench-e2e" --contender "$c" --url "$mock_url" \
                --shm "$gr_shm" --keys "$(keys_of overhead)" \
                --procs "$procs" --loop-calls "$LOOP_CALLS" \
                --window-ms "$W" --limit 2000000000 2>>"$out/e2e.log" |
                sed "s/^{/{\"rep\": $rep, /" >>"$out/overhead.jsonl"
        done
    done
done
# Instructions per call (callgrind, one process): stable where the times
# above drift with the machine's load.  The child made the calls; its
# profile is the larger of the two files.
child_instr() {
    awk '/^(summary|totals):/ { print $2; exit }' \
        "$(ls -S "$out"/cgo.* | head -n 1)"
}
: >"$out/overhead_instr.jsonl"
if [ "$MODE" = full ]; then
    for c in curl gemroute; do
        for n in 200 1200; do
            rm -f "$out"/cgo.*
            valgrind --tool=callgrind --callgrind-out-file="$out/cgo.%p" \
                "$BIN/gr-bench-e2e" --contender "$c" --url "$mock_url" \
                --shm "$gr_shm" --keys "$(keys_of overhead)" --procs 1 \
                --loop-calls "$n" --window-ms "$W" --limit 2000000000 \
                >/dev/null 2>>"$out/e2e.log"
            if [ "$n" = 200 ]; then
                i1=$(child_instr)
            else
                i2=$(child_instr)
            fi
        done
        echo "{\"contender\": \"$c\", \"instructions_per_call\":" \
             "$(( (i2 - i1) / 1000 ))}" >>"$out/overhead_instr.jsonl"
    done
fi
stop_all
