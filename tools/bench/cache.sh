#!/bin/sh
# cache.sh - section 7 of tools/bench.sh: what a call answered by the
# shared response cache (client/cache.c, LMDB) costs, against the same
# call sent upstream to gemroute-mock.  Called by tools/bench.sh with
# MODE, BIN and WORK set; writes its raw results under $WORK/cache/ and
# tools/bench/cache_report.py turns them into the page's table.
#
# One gemroute-mock (no quota, no faults, no latency) and one router with
# a cache section and limits out of reach.  gr-bench-cache makes the same
# gr_generate() call back to back: "hit" with GR_CACHE_USE after one call
# stored the answer (every timed call must be a hit), "upstream" with
# GR_CACHE_BYPASS (reserve, POST to the mock, settle, report).  In 1 and
# in 8 processes, both modes once per repetition, interleaved.  With two
# CPUs or more the mock and the router run on CPU 0 and the one calling
# process on CPU 1 (taskset), so the 1-process latencies compare the
# caller's own work plus one loopback hop; the 8 processes are not
# pinned.  Beside the wall times: CPU time per call (getrusage) and
# instructions per call (callgrind, the full run only; two runs of N1
# and N2 calls, the difference over N2 - N1 removes start-up).
set -eu
: "${MODE:?}" "${BIN:?}" "${WORK:?}"
cd "$(dirname "$0")/../.."
if [ "$MODE" = full ]; then
    REPS=${CACHE_REPS:-5} CALLS=${CACHE_CALLS:-5000} N1=200 N2=1200
else
    REPS=${CACHE_REPS:-1} CALLS=${CACHE_CALLS:-500} N1=0 N2=0
fi
PROCS="1 8"
MODEL=gemini-2.5-flash
out=$WORK/cache
mkdir -p "$out"
pids=""
cleanup_cache() {
    for p in $pids; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    return 0
}
trap cleanup_cache EXIT

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
say() { echo "bench: [cache $(( $(date +%s) - t_start ))s] $*" >&2; }

PIN_SRV="" PIN_CALLER=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
    PIN_SRV="taskset -c 0" PIN_CALLER="taskset -c 1"
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

cat >"$out/mock.conf" <<CONF
projects = ( { name = "bench"; keys = ["bench-cache-key"];
               tier = "PaidTier1"; limits = ( { model = "$MODEL"; } ); } );
CONF
chmod 600 "$out/mock.conf"
# shellcheck disable=SC2086 # the pinning words, split on purpose
$PIN_SRV "$BIN/gemroute-mock" -c "$out/mock.conf" --listen 127.0.0.1:0 \
    >"$out/mock.out" 2>"$out/mock.log" &
pids="$pids $!"
mport=$(port_of "$out/mock.out")
[ -n "$mport" ] || { say "gemroute-mock did not start"; exit 1; }

shm="/grbench-$$-cache"
cat >"$out/router.conf" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = 60000; headroom = 1.0; state_file = "cache.state";
           max_projects = 1; max_models = 1; max_leases = 1024; };
models = ( { name = "$MODEL"; rpm = 2000000000; tpm = 2000000000;
             rpd = 2000000000; } );
projects = ( { name = "bench"; key = "bench-cache-key"; } );
cache = { path = "$out/store"; ttl_s = 86400; max_bytes = 67108864; };
CONF
chmod 600 "$out/router.conf"
# shellcheck disable=SC2086
$PIN_SRV "$BIN/gemrouted" -c "$out/router.conf" --foreground \
    --unlink-on-exit 2>"$out/router.log" &
pids="$pids $!"
i=0
until "$BIN/gemroute" status --shm "$shm" 2>/dev/null |
      grep -q 'projects: 1 healthy'; do
    i=$((i + 1))
    [ $i -gt 400 ] && { say "gemrouted did not start"; exit 1; }
    sleep 0.05
done

# bench MODE PROCS CALLS: one gr-bench-cache run, its JSON line.
bench() {
    pin=""
    [ "$2" = 1 ] && pin=$PIN_CALLER
    # shellcheck disable=SC2086
    $pin "$BIN/gr-bench-cache" --shm "$shm" --mode "$1" --procs "$2" \
        --calls "$3" 2>>"$out/bench.log"
}

say "5. cache: hit against upstream, procs {$PROCS}, $REPS x $CALLS" \
    "calls${PIN_CALLER:+; pinned}"
bench upstream 1 100 >/dev/null         # warm: connections, batch lease
bench hit 1 100 >/dev/null
: >"$out/runs.jsonl"
for rep in $(seq "$REPS"); do
    for procs in $PROCS; do
        for m in upstream hit; do
            line=$(bench "$m" "$procs" "$CALLS") || {
                say "a run failed ($m, $procs processes): see $out/bench.log"
                exit 1
            }
            echo "$line" | sed "s/^{/{\"rep\": $rep, /" >>"$out/runs.jsonl"
        done
    done
    say "  rep $rep/$REPS done"
done

# Instructions per call, one process (the forked child that made the
# calls, not the parent that made the priming call), the full run only.  callgrind,
# as in sections 1b and 3: perf stat counts no instructions on this kind
# of virtual machine ("PMU not available due to virtualization").
: >"$out/instr.jsonl"
if [ "$MODE" = full ] && command -v valgrind >/dev/null 2>&1; then
    for m in upstream hit; do
        for n in $N1 $N2; do
            rm -f "$out"/cg.*
            valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" \
                "$BIN/gr-bench-cache" --shm "$shm" --mode "$m" \
                --calls "$n" >/dev/null 2>>"$out/callgrind.log" &
            parent=$!
            wait "$parent" || {
                say "callgrind run failed ($m)"
                exit 1
            }
            child=
            for f in "$out"/cg.*; do
                [ "$f" = "$out/cg.$parent" ] || child=$f
            done
            i=$(awk '/^(summary|totals):/ { print $2; exit }' "$child")
            if [ "$n" = "$N1" ]; then i1=$i; else i2=$i; fi
        done
        echo "{\"mode\": \"$m\", \"instructions_per_call\":" \
             "$(( (i2 - i1) / (N2 - N1) ))}" >>"$out/instr.jsonl"
    done
fi
"$BIN/gemroute" cache stats --shm "$shm" >"$out/stats.txt" 2>&1 || true
echo "{\"reps\": $REPS, \"calls\": $CALLS, \"n1\": $N1, \"n2\": $N2," \
     "\"loadavg_at_start\": \"$load0\"," \
     "\"pinned\": $([ -n "$PIN_CALLER" ] && echo true || echo false)," \
     "\"valgrind\": \"$(valgrind --version 2>/dev/null)\"}" \
    >"$out/meta.json"
