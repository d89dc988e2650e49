# lib.sh - what the shell tests share: counting checks and the closing
# "N passed, N failed" line that tests/run.sh reads.  Source it after
# setting BIN; it moves to the repository root.
#
#   ok / no "why"            count a pass / a failure (printed)
#   check "name" 'condition' evaluate the condition, count the result
#   finish                   print the closing line; exit 1 on failure
cd "$(dirname "$0")/../.." || exit 1
BIN=${BIN:-bin}
# A router a test starts probes only loopback (router/probe.c).
export GEMROUTE_TEST_LOOPBACK=1
pass=0
fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { if eval "$2"; then ok; else no "$1"; fi; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}

# wait_ready SHM: poll (bounded by a count) until the router serving SHM
# has applied its config; until then clients get "no room yet".
wait_ready() {
    for _ in $(seq 600); do
        "$BIN/gemroute" status --shm "$1" --json 2>/dev/null |
            grep -q '"config_generation": [1-9]' && return 0
        sleep 0.05
    done
    return 1
}
