#!/bin/sh
# run_sdk_load.sh - twice the pool's capacity through the official
# @google/genai SDK and gemroute-gateway, against gemroute-mock enforcing
# the true limits (issue 15).  Two projects of L requests per W-ms window
# at the mock; the router's headroom H lets A = 2 * floor(L * H) through
# per window.  The SDK (tests/gateway/sdk_load.mjs, its retries off, every
# HTTP status it received counted) offers 2 A calls per window for 2
# windows, then waits for every call.  A poller samples the mock's
# windows (GET /mock/stats) while the load runs.  Asserts counts only,
# never durations: every call answered 200 (no 429 or any other error
# reached the SDK), the mock answered no 429 and served each call once,
# the gateway queued calls instead of refusing them, and the mock's
# fullest window holds at least 97% of A and never more than A.  Ends
# with "N passed, N failed" for tests/run.sh.
#
#   BIN=bin tests/gateway/run_sdk_load.sh
set -u
. "$(dirname "$0")/../lib.sh"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
KEY1=gr-sdkload-SECRET-one-3c1d
KEY2=gr-sdkload-SECRET-two-8e2f
export GR_LOAD_TOKEN=sdkload-token-SECRET-7a7a7a
export GR_LOAD_ADMIN=sdkload-admin-SECRET-5b5b5b
MODEL=gemini-2.5-flash
W=2000                  # ms: the "minute" window, scaled by 1/30
L=30                    # requests per window per project, at the mock
H=0.9                   # the router's headroom
A=$(awk -v l="$L" -v h="$H" 'BEGIN { printf "%d", 2 * int(l * h) }')
RATE=$(awk -v a="$A" -v w="$W" 'BEGIN { printf "%d", 2 * a * 1000 / w }')
CALLS=$((2 * 2 * A))     # 2 A a window for 2 windows (at least 1.5)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-sdkload.XXXXXX")
shm="/gr-sdkload-$$"
mock_pid='' gw_pid='' poll_pid=''
cleanup() {
    for p in $poll_pid $gw_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM
umask 077

[ -d tests/node_modules/@google/genai ] || tests/sdk_deps.sh >&2
if [ ! -d tests/node_modules/@google/genai ]; then
    no "tests/node_modules/@google/genai is missing: run tests/sdk_deps.sh"
    finish
fi

cat >"$tmp/mock.conf" <<EOF
listen = "127.0.0.1:0";
window_ms = $W;
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = $L; tpm = 100000000; } ); },
  { name = "two"; keys = ["$KEY2"];
    limits = ( { model = "$MODEL"; rpm = $L; tpm = 100000000; } ); }
);
faults = { latency_ms = [1, 5]; };
EOF
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { no "gemroute-mock did not start"; finish; }

cat >"$tmp/gw.conf" <<EOF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = $W; headroom = $H; max_models = 1; };
models = ( { name = "$MODEL"; rpm = $L; tpm = 100000000; } );
projects = ( { name = "one"; key = "$KEY1"; },
             { name = "two"; key = "$KEY2"; } );
gateway = {
  listen = "127.0.0.1:0";
  tokens = [ "env:GR_LOAD_TOKEN" ];
  admin_tokens = [ "env:GR_LOAD_ADMIN" ];
  queue_s = 60.0;
  workers = 512;
};
EOF
start_router "$tmp/gw.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { no "gemrouted did not start"; finish; }
"$BIN/gemroute-gateway" -c "$tmp/gw.conf" --foreground >"$tmp/gw.out" \
    2>"$tmp/gw.log" &
gw_pid=$!
port=$(port_of "$tmp/gw.out")
[ -n "$port" ] || { no "gemroute-gateway did not start"; finish; }
base="http://127.0.0.1:$port"

# The poller: every 40 ms, the mock's windows (both projects, summed) and
# its 429s, until $tmp/stop exists.
python3 - "$mport" "$tmp/samples" "$tmp/stop" "$MODEL" <<'PY' &
import json, os, sys, time, urllib.request
port, out, stop, model = sys.argv[1:5]
with open(out, "w") as f:
    while not os.path.exists(stop):
        try:
            j = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%s/mock/stats" % port, timeout=2).read())
            w = q = s = 0
            for p in j["projects"].values():
                m = p["models"].get(model)
                if m:
                    w += m["window"]["requests"]
                    q += m["quota_429"]["total"]
                    s += m["served"]
            f.write("%d %d %d\n" % (w, q, s))
            f.flush()
        except Exception:
            pass
        time.sleep(0.04)
PY
poll_pid=$!

GW_BASE=$base GW_TOKEN=$GR_LOAD_TOKEN GW_MODEL=$MODEL LOAD_RATE=$RATE \
    LOAD_CALLS=$CALLS node tests/gateway/sdk_load.mjs >"$tmp/load.out" \
    2>"$tmp/load.err"
rc=$?
sleep 0.2                       # one more sample after the last call
: >"$tmp/stop"
wait "$poll_pid"
poll_pid=

check "the SDK run exited 0 (exit $rc: $(tail -n 2 "$tmp/load.err" |
    tr '\n' ' '))" '[ $rc -eq 0 ]'
# field NAME: a number from the SDK's result line
field() {
    python3 -c "import json, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print($1)" "$tmp/load.out" 2>/dev/null
}
echo "offered $CALLS calls at $RATE/s (2 x $A a ${W}-ms window) through" \
    "the SDK: $(tail -n 1 "$tmp/load.out")"
check "every call succeeded: $(field 'j["ok"]') of $CALLS" \
    '[ "$(field "j[\"ok\"]")" = "$CALLS" ]'
check "no call failed ($(field 'j["failed"]'); $(field '"; ".join(j["errors"])'))" \
    '[ "$(field "j[\"failed\"]")" = 0 ]'
check "no 429 reached the SDK ($(field 'j["status"].get("429", 0)'))" \
    '[ "$(field "j[\"status\"].get(\"429\", 0)")" = 0 ]'
check "the SDK received $CALLS answers, all 200 ($(field 'j["status"]'))" \
    '[ "$(field "j[\"status\"].get(\"200\", 0)")" = "$CALLS" ] &&
     [ "$(field "sum(j[\"status\"].values())")" = "$CALLS" ]'

f=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$tmp/samples")
q=$(tail -n 1 "$tmp/samples" | awk '{ print $2 + 0 }')
s=$(tail -n 1 "$tmp/samples" | awk '{ print $3 + 0 }')
n=$(wc -l <"$tmp/samples")
echo "the mock's fullest window: $f of $A allowed ($n samples)"
check "the poller sampled the mock ($n samples)" '[ "$n" -ge 10 ]'
check "the mock's fullest window $f >= 97% of $A" \
    '[ $((f * 100)) -ge $((97 * A)) ]'
check "the mock's window never held more than $A ($f)" '[ "$f" -le "$A" ]'
check "the mock answered no 429 ($q)" '[ "$q" -eq 0 ]'
check "the mock served each call once ($s of $CALLS)" '[ "$s" -eq "$CALLS" ]'

# The gateway held calls until there was room instead of refusing them:
# every call went through its queue, and with twice the capacity offered
# some had to wait more than a second (a count, not a timing: a call
# cannot be admitted before the window has room, however fast the host).
curl -s -H "Authorization: Bearer $GR_LOAD_ADMIN" "$base/metrics" \
    >"$tmp/metrics" 2>"$tmp/metrics.err"
qn=$(sed -n 's/^gemroute_gateway_queue_seconds_count \([0-9]*\)$/\1/p' \
    "$tmp/metrics")
q1=$(sed -n 's/^gemroute_gateway_queue_seconds_bucket{le="1"} \([0-9]*\)$/\1/p' \
    "$tmp/metrics")
check "the gateway queued every call (${qn:-none} of $CALLS)" \
    '[ "${qn:-0}" -eq "$CALLS" ]'
check "calls waited for room: $((${qn:-0} - ${q1:-0})) over 1 s" \
    '[ -n "$q1" ] && [ $((qn - q1)) -ge 1 ]'
check "the gateway counted no 429 answer" \
    '! grep -q "^gemroute_gateway_requests_total{.*status=\"429\"" "$tmp/metrics"'

kill "$gw_pid" 2>/dev/null
wait "$gw_pid" 2>/dev/null
gw_pid=
check "no key or token in any output" \
    '! grep -q SECRET "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log "$tmp/metrics"'
finish
