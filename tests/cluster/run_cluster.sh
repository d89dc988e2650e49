#!/bin/sh
# run_cluster.sh - three hosts, one quota: a real redis-server on a unix
# socket in a temporary folder, three gemrouted with three segments
# standing for three hosts, each with a cluster section, `gemroute load`
# on each, and gemroute-mock enforcing the true limit (one project, RPM
# L per 2-second window; the routers' headroom is 1, so their global
# limit is the mock's).  Asserts counts only: 429s at the mock (0), the
# mock's fullest window against L (sampled by a poller of /mock/stats),
# never durations.  Scenarios: even and 80/20 demand at twice the pool,
# demand moving from host a to host b, kill -9 of a router, SIGSTOP of
# redis-server, redis-server restarted empty.  Ends with "N passed, N
# failed" for tests/run.sh.
#
#   BIN=bin tests/cluster/run_cluster.sh
set -u
. "$(dirname "$0")/../lib.sh"
gr="$BIN/gemroute"
KEY=gr-cluster-SECRET-pool-5d1c0e
L=60                    # requests per window, the pool's whole limit
W=2000                  # ms, the window (a minute scaled by 1/30)
MODEL=gemini-2.5-flash

if ! command -v redis-server >/dev/null 2>&1; then
    echo "run_cluster: redis-server is not installed (tools/deps.sh)"
    no "redis-server missing"
    finish
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-cluster.XXXXXX")
redis_pid= mock_pid= poll_pid=
pids_a= pids_b= pids_c= pids_d= pids_e= fake_pid=

# lib.sh stops the routers it started at exit, then calls this (redis is
# woken first, in case a router's exit waits on it).
cleanup() {
    for p in $redis_pid $fake_pid $poll_pid $mock_pid; do
        kill -CONT "$p" 2>/dev/null
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM
umask 077

start_redis() {
    redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' \
        --appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 200); do
        redis-cli -s "$tmp/redis.sock" ping 2>/dev/null | grep -q PONG &&
            return 0
        sleep 0.05
    done
    return 1
}

start_redis || { no "redis-server did not start"; finish; }

cat >"$tmp/mock.conf" <<EOF
listen = "127.0.0.1:0";
window_ms = $W;
projects = ( { name = "pool"; keys = ["$KEY"];
    limits = ( { model = "$MODEL"; rpm = $L; tpm = 100000000; } ); } );
faults = { latency_ms = [1, 5]; };
EOF
start_mock "$tmp/mock.conf" "$tmp"
port=$mock_port
[ -n "$port" ] || { no "gemroute-mock did not start"; finish; }

# router NODE [NAME]: write its config (cluster.node NAME, default
# host-NODE), start it (lib.sh's start_router: it returns once the router
# serves its table) and keep its pid in pids_NODE; 1 when it did not start
router() {
    cat >"$tmp/$1.conf" <<EOF
router = { shm = "/gr-cl-$$-$1"; base_url = "http://127.0.0.1:$port";
           window_ms = $W; headroom = 1.0; max_models = 1;
           max_projects = 4; state_file = "$tmp/$1.state";
           control = "$tmp/$1.sock"; };
models = ( { name = "$MODEL"; rpm = $L; } );
projects = ( { name = "pool"; key = "$KEY"; } );
cluster = { redis = "unix:$tmp/redis.sock"; node = "${2:-host-$1}";
            lease_ms = 3000; sync_ms = 50; timeout_ms = 200;
            prefix = "t$$"; };
EOF
    start_router "$tmp/$1.conf" "/gr-cl-$$-$1" "$tmp/$1.log" \
        --unlink-on-exit
    rc=$?
    eval "pids_$1=$router_pid"
    return $rc
}

for n in a b c; do
    router $n || { no "router $n did not start"; finish; }
done
check "gemrouted --check accepts the cluster section" \
    '"$BIN/gemrouted" --check -c "$tmp/a.conf" >/dev/null 2>&1'

# The poller: every 40 ms, wall time, the mock's window and its 429s.
python3 tests/cluster/poll_mock.py "$port" "$tmp/samples" "$tmp/stop" &
poll_pid=$!

now() { date +%s.%N; }
plus() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a + b }'; }

# fullest FROM TO: the most requests the mock's window held in [FROM, TO]
fullest() {
    awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b && $2 > m { m = $2 }
        END { print m + 0 }' "$tmp/samples"
}
# the 429s the mock answered so far
mock429_total() { tail -n 1 "$tmp/samples" | awk '{ print $3 + 0 }'; }
base429=0
mock429() { echo $(( $(mock429_total) - base429 )); }
mark429() { sleep 0.1; base429=$(mock429_total); }

# load NAME NODE RATE SECONDS: gemroute load on that host, in background
load() {
    "$gr" load --shm "/gr-cl-$$-$2" --procs 2 --threads 2 --rate "$3" \
        --duration "$4" --model "$MODEL" --tokens 10 \
        >"$tmp/$1.out" 2>"$tmp/$1.err" &
    loads="$loads $!"
}
# loaded NAME: its load ran, no call failed, the server answered no 429
loaded() {
    python3 - "$tmp/$1.out" <<'PY' >"$tmp/$1.check" 2>&1
import json, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert j["failed"] == 0, j
assert j["server_429"] == 0, j
PY
    check "$1: load ran, no failure, no 429: $(cat "$tmp/$1.check")" \
        '[ ! -s "$tmp/$1.check" ]'
}
# ratio N PCT: N >= PCT% of L (and say what was measured)
ratio() {
    echo "measured: $1 of $L (want >= $2%)"
    [ $(( $1 * 100 )) -ge $(( $2 * L )) ]
}

# waitload: wait for the load jobs started since the last call
loads=
waitload() {
    for p in $loads; do wait "$p"; done
    loads=
}

# The first grants wait for Redis' grace (a lease); let it pass.
sleep 3.5

# 1. Even demand at twice the pool (2 L per window over three hosts).
t0=$(now)
load even-a a 20 6; load even-b b 20 6; load even-c c 20 6
waitload
t1=$(now)
for n in even-a even-b even-c; do loaded $n; done
f=$(fullest "$t0" "$t1")
check "even: the mock's fullest window $f >= 97% of $L" 'ratio "$f" 97'
check "even: the mock's window never over $L ($f)" '[ "$f" -le "$L" ]'
check "even: the mock answered no 429 ($(mock429))" '[ "$(mock429)" -eq 0 ]'

# Status shows every node's share and use of the cell, from any host;
# the shares sum to at most the limit.  Prometheus gets the same.
"$gr" status --shm "/gr-cl-$$-b" --json >"$tmp/status-b.json" 2>&1
python3 - "$tmp/status-b.json" "$L" <<'PY' >"$tmp/status.check" 2>&1
import json, sys
j = json.load(open(sys.argv[1]))
nodes = j["cells"][0]["cluster"]
assert sorted(n["node"] for n in nodes) == ["host-a", "host-b", "host-c"], nodes
assert [n["node"] for n in nodes if n["self"]] == ["host-b"], nodes
assert sum(n["share"]["rpm"] for n in nodes) <= int(sys.argv[2]), nodes
assert all(n["share"]["tpm"] is None for n in nodes), nodes
assert sum(n["used"]["rpm"] for n in nodes) <= int(sys.argv[2]), nodes
PY
check "status --json: every node's share: $(cat "$tmp/status.check")" \
    '[ ! -s "$tmp/status.check" ]'
"$gr" status --shm "/gr-cl-$$-c" --prometheus >"$tmp/status-c.prom" 2>&1
check "status --prometheus: a share per node" \
    '[ "$(grep -c "^gemroute_cluster_share{.*dim=\"rpm\"}" \
        "$tmp/status-c.prom")" -eq 3 ]'
check "status --prometheus: a use per node" \
    '[ "$(grep -c "^gemroute_cluster_used{.*dim=\"rpm\"}" \
        "$tmp/status-c.prom")" -eq 3 ]'
"$gr" status --shm "/gr-cl-$$-a" >"$tmp/status-a.txt" 2>&1
check "status: a line per node" \
    '[ "$(grep -c "^  node host-" "$tmp/status-a.txt")" -eq 3 ]'

mark429
# 2. 80/20 demand at twice the pool: a 48/s, b 12/s, c idle.
t0=$(now)
load skew-a a 48 6; load skew-b b 12 6
waitload
t1=$(now)
loaded skew-a; loaded skew-b
f=$(fullest "$t0" "$t1")
check "80/20: the mock's fullest window $f >= 95% of $L" 'ratio "$f" 95'
check "80/20: the mock answered no 429" '[ "$(mock429)" -eq 0 ]'

mark429
# 3. Demand moves from a to b: b alone from t=2 s; in its third window
# the pool is b's alone (a's calls left the mock's window a window ago).
load move-a a 60 2
sleep 2
tb=$(now)
load move-b b 60 6
waitload
t1=$(now)
loaded move-a; loaded move-b
f=$(fullest "$(plus "$tb" 2)" "$(plus "$tb" 4.2)")
check "moving: b holds $f >= 90% of $L within two windows" 'ratio "$f" 90'
check "moving: the mock answered no 429" '[ "$(mock429)" -eq 0 ]'

mark429
# 4. Host c dies (kill -9 of its router and of its callers) under load:
# no 429; after c's lease plus a window, a and b share what c held and
# fill the pool again.  (A router killed alone leaves its callers
# admitting within its last local limits: docs/CLUSTER.md.)
load kill-a a 30 10; load kill-b b 30 10
"$gr" load --shm "/gr-cl-$$-c" --procs 2 --threads 2 --rate 30 \
    --duration 10 --model "$MODEL" --tokens 10 >"$tmp/kill-c.out" \
    2>"$tmp/kill-c.err" &
kill_c_load=$!
sleep 1
kill -9 "$pids_c"
# the host's callers: the load and the processes it forked, by pid
kill -9 $(ps -o pid= --ppid "$kill_c_load") "$kill_c_load" 2>/dev/null
wait "$kill_c_load" 2>/dev/null
wait "$pids_c" 2>/dev/null
pids_c=
tk=$(now)
waitload
t1=$(now)
loaded kill-a; loaded kill-b
f=$(fullest "$(plus "$tk" 7)" "$t1")
check "kill -9: a and b fill $f >= 90% of $L after c's lease" \
    'ratio "$f" 90'
check "kill -9: the mock answered no 429" '[ "$(mock429)" -eq 0 ]'
# c comes back (its segment stays: the new router adopts it)
router c || no "router c did not come back"

mark429
# 4b. kill -9 of router c alone (its callers keep calling) under load,
# and a supervisor starting it again within its lease: the callers keep
# to the table's last local limits, the new router adopts the table and
# Redis still holds c's share: no 429.
load alone-a a 20 6; load alone-b b 20 6; load alone-c c 20 6
sleep 1.5
kill -9 "$pids_c"
wait "$pids_c" 2>/dev/null
sleep 0.5
router c || no "router c did not come back after kill -9"
waitload
loaded alone-a; loaded alone-b; loaded alone-c
check "router killed alone, restarted: the mock answered no 429" \
    '[ "$(mock429)" -eq 0 ]'

mark429
# 5. redis-server stopped (SIGSTOP) under load, first for 1 s (20 s
# scaled by the windows' 1/30, plus margin; under half a lease): every
# host keeps admitting within what it holds, the routers' loops keep
# serving their control sockets, no 429.  Then for 2.5 s (over half a
# lease): the hosts stop admitting on the shared limit, no 429, and once
# Redis answers again the pool fills again.
ping_all() {
    python3 - "$tmp" <<'PY'
import socket, sys
for n in "abc":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect("%s/%s.sock" % (sys.argv[1], n))
    s.sendall(b"ping\n")
    data = b""
    while not data.endswith(b"\n"):
        d = s.recv(256)
        if not d:
            break
        data += d
    print(n, data.decode().strip())
PY
}
load stop-a a 20 9; load stop-b b 20 9; load stop-c c 20 9
sleep 1.5
kill -STOP "$redis_pid"
ts=$(now)
ping_all >"$tmp/ping.out" 2>&1
sleep 1
te=$(now)
kill -CONT "$redis_pid"
f=$(fullest "$(plus "$ts" 0.2)" "$te")
check "stopped redis 1 s: the routers answered their sockets" \
    '[ "$(grep -c "ok gemrouted" "$tmp/ping.out")" -eq 3 ]'
check "stopped redis 1 s: hosts kept admitting ($f of $L)" 'ratio "$f" 80'
sleep 1
kill -STOP "$redis_pid"
sleep 2.5
kill -CONT "$redis_pid"
tc=$(now)
waitload
t1=$(now)
loaded stop-a; loaded stop-b; loaded stop-c
f=$(fullest "$(plus "$tc" 1)" "$t1")
check "stopped redis 2.5 s: the pool fills again after ($f of $L)" \
    'ratio "$f" 90'
check "stopped redis: the mock answered no 429" '[ "$(mock429)" -eq 0 ]'

mark429
# 6. redis-server restarted empty under load: hosts register what they
# hold before anyone grows; no 429.
load restart-a a 20 6; load restart-b b 20 6; load restart-c c 20 6
sleep 1.5
kill "$redis_pid"
wait "$redis_pid" 2>/dev/null
start_redis || no "redis-server did not restart"
waitload
loaded restart-a; loaded restart-b; loaded restart-c
check "restarted redis: the mock answered no 429" '[ "$(mock429)" -eq 0 ]'
f=$(awk 'END { print NR }' "$tmp/samples")
check "the poller sampled the mock ($f samples)" '[ "$f" -gt 100 ]'

# 7. Operator actions on one host reach the others (within a second;
# polled a bounded number of times, never timed): drain on a, seen on b
# and c; enable on b, seen on a; disable of the model on c, seen on a.
# op NODE: the project's and the cell's operator state on NODE
op() {
    "$gr" status --shm "/gr-cl-$$-$1" --json 2>/dev/null | python3 -c '
import json, sys
j = json.load(sys.stdin)
print(j["projects"][0]["operator"] + "/" + j["cells"][0]["operator"])' \
    2>/dev/null
}
# seen NODE WANT: poll until NODE shows WANT (at most 100 x 50 ms)
seen() {
    for _ in $(seq 100); do
        [ "$(op "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
"$gr" drain --shm "/gr-cl-$$-a" pool >/dev/null 2>&1
check "drain on a: a draining" 'seen a draining/none'
check "drain on a: b draining too" 'seen b draining/none'
check "drain on a: c draining too" 'seen c draining/none'
"$gr" enable --shm "/gr-cl-$$-b" pool >/dev/null 2>&1
check "enable on b: a enabled too" 'seen a none/none'
check "enable on b: c enabled too" 'seen c none/none'
"$gr" disable --shm "/gr-cl-$$-c" "pool/$MODEL" >/dev/null 2>&1
check "disable on c: a disabled too" 'seen a none/disabled'
"$gr" enable --shm "/gr-cl-$$-a" pool >/dev/null 2>&1
check "enable on a: c enabled again" 'seen c none/none'

# 8. Two routers under one node name: the second is refused by Redis,
# says so, and admits nothing (its local limit stays 0).
router d host-a || no "router d did not start"
said=no
for _ in $(seq 100); do
    grep -q "held by another router" "$tmp/d.log" && { said=yes; break; }
    sleep 0.05
done
check "a second router as host-a is refused and says so" '[ $said = yes ]'
lim=$("$gr" status --shm "/gr-cl-$$-d" --json 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["cells"][0]["limit"]["rpm"])' 2>/dev/null)
check "a second router as host-a admits nothing (limit $lim)" \
    '[ "$lim" = 0 ]'
stop_router     # d, the last one started
pids_d=

# 9. A cooldown and a learned limit one host got from a 429 reach the
# others, and a reset on another host clears them everywhere.  Host e's
# router points at a stand-in that answers every call with Google's 429
# (tests/fixtures/gemini/429-tpm-freetier-flash.json: TPM, retry in 26 s,
# quotaValue 250000).
python3 - "$tmp/fake.port" tests/fixtures/gemini/429-tpm-freetier-flash.json \
    <<'PY' >"$tmp/fake.log" 2>&1 &
import http.server, sys
body = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(429)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.05; done
port_mock=$port
port=$(cat "$tmp/fake.port")
router e host-e || no "router e did not start"
port=$port_mock
for _ in $(seq 100); do
    [ "$("$gr" status --shm "/gr-cl-$$-e" --json 2>/dev/null |
        python3 -c 'import json,sys
print(json.load(sys.stdin)["cells"][0]["limit"]["rpm"])' 2>/dev/null)" \
        -gt 0 ] 2>/dev/null && break
    sleep 0.05
done
"$gr" call --shm "/gr-cl-$$-e" --model "$MODEL" --deadline 2 --attempts 1 \
    hi >"$tmp/call-e.out" 2>"$tmp/call-e.err"
# cool NODE: "tpm cooldown > 0, learned tpm" as NODE's status shows them
cool() {
    "$gr" status --shm "/gr-cl-$$-$1" --json 2>/dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)["cells"][0]
print("%s %s" % ("cooling" if c["cooldown_s"]["tpm"] > 0 else "cool",
                 c["learned"].get("tpm", "none")))' 2>/dev/null
}
seen_cool() {
    for _ in $(seq 100); do
        [ "$(cool "$1")" = "$2" ] && return 0
        sleep 0.05
    done
    return 1
}
check "429 on e: e cools TPM and learns 250000 ($(cool e))" \
    'seen_cool e "cooling 250000"'
check "429 on e: a cools TPM and learns 250000 too ($(cool a))" \
    'seen_cool a "cooling 250000"'
check "429 on e: c cools TPM and learns 250000 too" \
    'seen_cool c "cooling 250000"'
"$gr" reset --shm "/gr-cl-$$-b" pool >/dev/null 2>&1
check "reset on b: a cool again, nothing learned ($(cool a))" \
    'seen_cool a "cool none"'
check "reset on b: e cool again, nothing learned" 'seen_cool e "cool none"'
stop_router     # e, the last one started
kill "$fake_pid"
wait "$fake_pid" 2>/dev/null
pids_e= fake_pid=

# No key anywhere: outputs, errors, logs.
if grep -l -- "$KEY" "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log \
    >/dev/null 2>&1; then
    no "the key was printed"
else
    ok
fi
touch "$tmp/stop"
finish
