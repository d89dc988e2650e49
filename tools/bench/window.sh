# window.sh - sourced by tools/bench.sh and tools/bench/e2e.sh.
#
# pick_window MS...: the first of these window lengths whose tick count
# (CLOCK_MONOTONIC / (window / 64)) stays in the lower half of the 20-bit
# tick space for the next 15 minutes.  A new table starts its windows at
# tick 0, and while the clock's tick is in the upper half a new router's
# windows never drain (a bug, see docs/BENCHMARKS.md); each gemroute
# window of this run is therefore chosen, and recorded.
pick_window() {
    python3 - "$@" <<'PY'
import sys, time
t = time.clock_gettime(time.CLOCK_MONOTONIC)
safe = [w for w in map(int, sys.argv[1:])
        if int(t * 64000 / w) % (1 << 20) + int(900 * 64000 / w) < 1 << 19]
print(safe[0] if safe else "unsafe")
PY
}
