#!/bin/sh
# bench.sh - the reservation micro-benchmark: ns per reserve + commit of
# one request and 1,000 tokens through libgemroute, 1 and 8 processes,
# 10 and 1,000 projects, each against a real gemrouted.  Runs are
# interleaved and repeated (median of REPS); the instruction count per
# operation comes from callgrind (stable on a shared machine).  Writes
# bench/results.json and the tables of docs/BENCHMARKS.md.
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
REPS=${REPS:-5}
OPS=${OPS:-400000}
work=$(mktemp -d /tmp/grbench.XXXXXX)
router=""
cleanup() {
    [ -n "$router" ] && kill "$router" 2>/dev/null && wait "$router" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

config() {  # projects -> config file
    f=$work/p$1.conf
    {
        echo "router = { shm = \"/grbench-$$-$1\"; window_ms = 500;"
        echo "  state_file = \"p$1.state\";"
        echo "  max_projects = $1; max_models = 1; max_leases = 1024; };"
        echo 'models = ( { name = "gemini-2.5-flash"; rpm = 2000000000;'
        echo '  tpm = 2000000000; rpd = 2000000000; } );'
        echo 'projects = ('
        i=1
        while [ "$i" -le "$1" ]; do
            sep=","; [ "$i" -eq "$1" ] && sep=""
            echo "  { name = \"p$i\"; key = \"bench-key-$i\"; }$sep"
            i=$((i + 1))
        done
        echo ');'
    } >"$f"
    echo "$f"
}

start_router() {
    "$BIN/gemrouted" -c "$1" --foreground --unlink-on-exit 2>>"$work/router.log" &
    router=$!
    i=0
    until "$BIN/gemroute" status --shm "/grbench-$$-$2" >/dev/null 2>&1; do
        i=$((i + 1)); [ "$i" -gt 400 ] && { echo "router did not start" >&2; exit 1; }
        sleep 0.05
    done
}

stop_router() {
    kill "$router"; wait "$router" 2>/dev/null || true; router=""
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "machine: $(nproc) cores, $(awk '/model name/ { $1=$2=$3=""; print; exit }' /proc/cpuinfo)" >&2
: >"$work/rows"
for rep in $(seq "$REPS"); do
    for projects in 10 1000; do
        conf=$(config "$projects")
        start_router "$conf" "$projects"
        for procs in 1 8; do
            line=$("$BIN/gr-bench-reserve" --shm "/grbench-$$-$projects" \
                   --procs "$procs" --ops "$OPS" --tokens 1000)
            ns=$(echo "$line" | sed -E 's/.*"ns_per_op_median": ([0-9.]+).*/\1/')
            rate=$(echo "$line" | sed -E 's/.*"ops_per_s": ([0-9.]+).*/\1/')
            echo "$projects $procs $ns $rate" >>"$work/rows"
            echo "rep $rep: $projects projects, $procs procs: $ns ns/op, $rate ops/s" >&2
        done
        stop_router
    done
done

# Instructions per operation: two callgrind runs, the difference.
conf=$(config 1000)
start_router "$conf" 1000
instr() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "$BIN/gr-bench-reserve" --shm "/grbench-$$-1000" --procs 1 \
        --ops "$1" --tokens 1000 2>&1 >/dev/null |
        awk '/Collected/ { print $NF }' | sort -n | tail -n 1
}
i1=$(instr 20000)
i2=$(instr 120000)
stop_router
ipo=$(( (i2 - i1) * 10 / 11 / 100000 ))   # warm-up adds ops/10 to each run

mkdir -p bench
{
    echo "{\"reserve_commit\": ["
    first=1
    for projects in 10 1000; do
        for procs in 1 8; do
            ns=$(awk -v p="$projects" -v q="$procs" '$1 == p && $2 == q { print $3 }' "$work/rows" | median)
            rate=$(awk -v p="$projects" -v q="$procs" '$1 == p && $2 == q { print $4 }' "$work/rows" | median)
            [ $first -eq 1 ] || echo ","
            first=0
            printf '  {"projects": %s, "procs": %s, "ns_per_op": %s, "ops_per_s": %s}' \
                "$projects" "$procs" "$ns" "$rate"
        done
    done
    echo ""
    echo "], \"instructions_per_op_1proc_1000projects\": $ipo, \"reps\": $REPS, \"ops\": $OPS}"
} >bench/results.json
cat bench/results.json
tools/bench_report.sh bench/results.json
ns1=$(awk '$1 == 1000 && $2 == 1 { print $3 }' "$work/rows" | median)
echo "summary: reserve+commit ${ns1} ns and ${ipo} instructions per op (1 process, 1000 projects); see docs/BENCHMARKS.md"
