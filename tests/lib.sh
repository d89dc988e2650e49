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
# The mock and the gateway are reached directly, whatever proxy is set.
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
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

# wait_ready SHM [PID]: poll (bounded by a count) until the router serving
# SHM has applied its config (until then clients get "no room yet") and,
# given PID, until that router is PID (a router restarted on a table
# adopts it: the old generation is still there).  1 if PID exited first.
wait_ready() {
    for _ in $(seq 600); do
        wr_st=$("$BIN/gemroute" status --shm "$1" --json 2>/dev/null)
        if echo "$wr_st" | grep -q '"config_generation": [1-9]' &&
           { [ -z "${2:-}" ] || echo "$wr_st" | grep -q "\"pid\": $2,"; }; then
            return 0
        fi
        [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}

# port_of FILE: the port of the line "listening on 127.0.0.1:PORT" that
# the mock and the gateway print once bound, polled (bounded by a count)
# until FILE has it; empty (and 1) when it never came.
port_of() {
    for _ in $(seq 400); do
        po_port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
            "$1" 2>/dev/null)
        [ -n "$po_port" ] && { echo "$po_port"; return 0; }
        sleep 0.02
    done
    return 1
}

# start_mock CONF DIR [OPTION...]: start $BIN/gemroute-mock -c CONF
# OPTION... in the background (stdout to DIR/mock.out, stderr to
# DIR/mock.log), remember its pid in $mock_pid and the port it listens on
# in $mock_port.  1 when it never said where it listens.  The script's
# cleanup() stops it.
mock_pid=""
mock_port=""
start_mock() {
    sm_conf=$1 sm_dir=$2
    shift 2
    "$BIN/gemroute-mock" -c "$sm_conf" "$@" >"$sm_dir/mock.out" \
        2>"$sm_dir/mock.log" &
    mock_pid=$!
    mock_port=$(port_of "$sm_dir/mock.out")
}

# remove_table SHM: the table SHM and its companions (.res, .bj, .hist,
# .cluster) removed, for a script's cleanup().
remove_table() {
    for rt_s in "" .res .bj .hist .cluster; do
        rm -f "/dev/shm$1$rt_s"
    done
}

# The one way a shell test runs gemrouted:
#
#   start_router CONF SHM LOG [OPTION...]
#       start $BIN/gemrouted -c CONF --foreground OPTION... in the
#       background (stdout to /dev/null, stderr appended to LOG; with
#       $router_wrap, e.g. a setpriv command line that execs, in front),
#       remember its pid in $router_pid, and wait until it serves SHM with
#       its config applied and has logged its control socket (opened after
#       the config watch).  1 when it exited or never got ready.
#   stop_router [SIGNAL]
#       send SIGNAL (TERM) to $router_pid, reap it and forget it; returns
#       the router's exit status.
#
# Every router started so and not stopped is stopped at exit (TERM, then
# KILL if it is stuck), before the script's own cleanup() if it has one:
# scripts define cleanup() and leave the EXIT trap to this file.
router_pid=""
lib_routers=""
start_router() {
    sr_conf=$1 sr_shm=$2 sr_log=$3
    shift 3
    sr_n=$(grep -c "gemrouted: control socket .* (mode" "$sr_log" 2>/dev/null)
    # shellcheck disable=SC2086
    ${router_wrap:-} "$BIN/gemrouted" -c "$sr_conf" --foreground "$@" \
        >/dev/null 2>>"$sr_log" &
    router_pid=$!
    lib_routers="$lib_routers $router_pid"
    wait_ready "$sr_shm" "$router_pid" || return 1
    # and until it has logged its control socket: its last step before it
    # serves, after the config watch (a test may change the file now)
    for _ in $(seq 600); do
        [ "$(grep -c "gemrouted: control socket .* (mode" "$sr_log" \
             2>/dev/null)" -gt "${sr_n:-0}" ] && return 0
        kill -0 "$router_pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
stop_router() {
    kill -"${1:-TERM}" "$router_pid" 2>/dev/null
    wait "$router_pid"
    sr_rc=$?
    router_pid=""
    return $sr_rc
}
# exited PID: wait up to 10 s for PID (a child of this shell) to end by
# itself.  True when it did, its exit status then in $exit_rc; false
# when it still ran, and it is killed.
exited() {
    ex_i=0
    while kill -0 "$1" 2>/dev/null && [ $ex_i -lt 500 ]; do
        sleep 0.02
        ex_i=$((ex_i + 1))
    done
    if kill -0 "$1" 2>/dev/null; then
        kill "$1"
        wait "$1" 2>/dev/null
        return 1
    fi
    wait "$1"
    exit_rc=$?
    return 0
}

# junk_key FILE: a "private key" that is not one (the PEM marker
# lines around SECRET text), for the refusals of TLS set-ups.
junk_key() {
    {
        echo "-----BEGIN PRIVATE KEY-----"
        echo "SECRETSECRETSECRETnotbase64atall"
        echo "-----END PRIVATE KEY-----"
    } >"$1"
}

lib_exit() {
    mine=""
    for p in $lib_routers; do   # still running, still our child
        [ "$(cut -d' ' -f4 "/proc/$p/stat" 2>/dev/null)" = "$$" ] &&
            mine="$mine $p"
    done
    for p in $mine; do kill -TERM "$p" 2>/dev/null; done
    for p in $mine; do
        for _ in $(seq 40); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if command -v cleanup >/dev/null 2>&1; then cleanup; fi
}
trap lib_exit EXIT
