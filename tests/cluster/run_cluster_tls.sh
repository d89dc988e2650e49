#!/bin/sh
# run_cluster_tls.sh - the cluster over TLS: a throwaway CA, a server and
# a client certificate made with openssl in a temporary folder; a real
# redis-server listening on 127.0.0.1 with TLS only (no plain port, a
# client certificate required, a password); two gemrouted sharing one
# cell through it (tls = true forces TLS on the loopback), `gemroute
# load` on each at twice the pool, and gemroute-mock enforcing the true
# limit.  Then routers that must be refused: one trusting another CA, one
# expecting another server name, one without a client certificate.
# Asserts outcomes only (429s, shares, log sentences, limits), never
# durations.  Ends with "N passed, N failed" for tests/run.sh.
#
#   BIN=bin tests/cluster/run_cluster_tls.sh
set -u
. "$(dirname "$0")/../lib.sh"
gr="$BIN/gemroute"
KEY=gr-cltls-SECRET-pool-81f2a4
PW=gr-cltls-SECRET-redis-pw-3e9d
L=40                    # requests per window, the pool's whole limit
W=2000                  # ms, the window (a minute scaled by 1/30)
MODEL=gemini-2.5-flash

for p in redis-server redis-cli openssl python3; do
    if ! command -v "$p" >/dev/null 2>&1; then
        no "$p is not installed (tools/deps.sh)"
        finish
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-cltls.XXXXXX")
redis_pid= mock_pid= poll_pid=
cleanup() {
    for p in $poll_pid $mock_pid $redis_pid; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM
umask 077

# ---- a throwaway CA, and a second one nobody should trust -------------
mkcert() {  # NAME CA SUBJECT-ALT-NAMES: a key and a certificate signed by CA
    openssl req -newkey rsa:2048 -nodes -keyout "$tmp/$1.key" \
        -out "$tmp/$1.csr" -subj "/CN=$1" 2>>"$tmp/openssl.log" &&
    printf 'subjectAltName=%s\n' "$3" >"$tmp/$1.ext" &&
    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.crt" \
        -CAkey "$tmp/$2.key" -CAcreateserial -out "$tmp/$1.crt" -days 1 \
        -extfile "$tmp/$1.ext" 2>>"$tmp/openssl.log"
}
for ca in ca otherca; do
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/$ca.key" \
        -out "$tmp/$ca.crt" -days 1 -subj "/CN=gemroute test $ca" \
        2>>"$tmp/openssl.log" || { no "openssl: no CA"; finish; }
done
mkcert server ca "IP:127.0.0.1,DNS:redis.test" &&
    mkcert client ca "DNS:gemroute-client" ||
    { no "openssl: no certificates"; finish; }

# ---- redis-server, TLS only -------------------------------------------
# Redis takes no "tls-port 0": pick a free port, and try again should
# another process take it first.
start_redis() {
    for _ in 1 2 3 4 5; do
        tport=$(python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        printf 'requirepass %s\n' "$PW" >"$tmp/redis.conf"
        redis-server "$tmp/redis.conf" --port 0 --bind 127.0.0.1 \
            --tls-port "$tport" --tls-cert-file "$tmp/server.crt" \
            --tls-key-file "$tmp/server.key" \
            --tls-ca-cert-file "$tmp/ca.crt" --tls-auth-clients yes \
            --save '' --appendonly no --daemonize no --dir "$tmp" \
            >"$tmp/redis.log" 2>&1 &
        redis_pid=$!
        for _ in $(seq 100); do
            rcli ping 2>/dev/null | grep -q PONG && return 0
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.05
        done
        kill "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
    done
    return 1
}
# rcli ARGS: redis-cli over TLS with the client certificate; the password
# goes through the environment, never argv
rcli() {
    REDISCLI_AUTH=$PW redis-cli --tls --cacert "$tmp/ca.crt" \
        --cert "$tmp/client.crt" --key "$tmp/client.key" -h 127.0.0.1 \
        -p "$tport" "$@"
}
start_redis || { no "redis-server with TLS did not start"; finish; }
check "redis-server refuses a client without a certificate" \
    '! REDISCLI_AUTH=$PW redis-cli --tls --cacert "$tmp/ca.crt" \
        -h 127.0.0.1 -p "$tport" ping 2>/dev/null | grep -q PONG'

# ---- the mock ---------------------------------------------------------
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

# router NAME NODE [EXTRA]: write its config (TLS to the Redis above, the
# client certificate, the CA; EXTRA replaces the TLS lines) and start it
export GR_TEST_REDIS_PW="$PW"
router() {
    tls=${3:-"tls_ca = \"$tmp/ca.crt\"; tls_cert = \"$tmp/client.crt\";
            tls_key = \"$tmp/client.key\";"}
    cat >"$tmp/$1.conf" <<EOF
router = { shm = "/gr-cltls-$$-$1"; base_url = "http://127.0.0.1:$port";
           window_ms = $W; headroom = 1.0; max_models = 1;
           max_projects = 4; state_file = "$tmp/$1.state";
           control = "$tmp/$1.sock"; };
models = ( { name = "$MODEL"; rpm = $L; } );
projects = ( { name = "pool"; key = "$KEY"; } );
cluster = { redis = "127.0.0.1:$tport"; node = "$2"; tls = true;
            $tls
            password = "env:GR_TEST_REDIS_PW";
            lease_ms = 3000; sync_ms = 50; timeout_ms = 500;
            prefix = "t$$"; };
EOF
    start_router "$tmp/$1.conf" "/gr-cltls-$$-$1" "$tmp/$1.log" \
        --unlink-on-exit
}

# limit NAME: the cell's local limit (RPM) NAME's status shows
limit() {
    "$gr" status --shm "/gr-cltls-$$-$1" --json 2>/dev/null | python3 -c '
import json, sys
print(json.load(sys.stdin)["cells"][0]["limit"]["rpm"])' 2>/dev/null
}
# said NAME TEXT: NAME's log says TEXT (polled at most 200 x 50 ms)
said() {
    for _ in $(seq 200); do
        grep -q -- "$2" "$tmp/$1.log" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

check "gemrouted --check accepts tls = true on the loopback" \
    'router a host-a && "$BIN/gemrouted" --check -c "$tmp/a.conf" \
        >/dev/null 2>&1'
pid_a=$router_pid
router b host-b || no "router b did not start"
pid_b=$router_pid

# Both get a share through Redis: the cell's hash holds both nodes'
# leases (read over TLS with redis-cli), and both local limits rise
# above 0 (only Redis grants them).  The first grants wait for Redis'
# grace (a lease): poll, at most 200 x 50 ms.
shares=no
for _ in $(seq 200); do
    a=$(limit a) b=$(limit b)
    if [ "${a:-0}" -gt 0 ] 2>/dev/null && [ "${b:-0}" -gt 0 ] 2>/dev/null
    then
        shares=yes
        break
    fi
    sleep 0.05
done
check "over TLS: both routers hold a share (a $a, b $b)" '[ $shares = yes ]'
check "over TLS: the shares sum to at most $L" '[ $((a + b)) -le $L ]'
rcli --scan --pattern "t$$:*" >"$tmp/keys" 2>>"$tmp/rcli.log"
check "over TLS: the cell's hash is in Redis" '[ -s "$tmp/keys" ]'
rcli hgetall "$(head -n 1 "$tmp/keys")" >"$tmp/hash" 2>>"$tmp/rcli.log"
check "over TLS: both nodes' leases are in it" \
    'grep -qx "e:host-a" "$tmp/hash" && grep -qx "e:host-b" "$tmp/hash"'

# The poller: every 40 ms, the mock's window and its 429s.
python3 tests/cluster/poll_mock.py "$port" "$tmp/samples" "$tmp/stop" &
poll_pid=$!

# Two hosts at twice the pool (2 L per window) for three windows.
loads=
for n in a b; do
    "$gr" load --shm "/gr-cltls-$$-$n" --procs 2 --threads 2 --rate 20 \
        --duration 6 --model "$MODEL" --tokens 10 >"$tmp/load-$n.out" \
        2>"$tmp/load-$n.err" &
    loads="$loads $!"
done
for p in $loads; do wait "$p"; done
sleep 0.2
touch "$tmp/stop"
wait "$poll_pid" 2>/dev/null
poll_pid=
for n in a b; do
    python3 - "$tmp/load-$n.out" <<'PY' >"$tmp/load-$n.check" 2>&1
import json, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert j["failed"] == 0, j
assert j["server_429"] == 0, j
assert j["ok"] > 0, j
PY
    check "load on $n: calls admitted, none failed, no 429: \
$(cat "$tmp/load-$n.check")" '[ ! -s "$tmp/load-$n.check" ]'
done
f=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$tmp/samples")
q=$(tail -n 1 "$tmp/samples" | awk '{ print $3 + 0 }')
check "the mock's fullest window $f is within $L and above 0" \
    '[ "$f" -gt 0 ] && [ "$f" -le "$L" ]'
check "the mock answered no 429 ($q)" '[ "$q" -eq 0 ]'
check "the routers logged no Redis error" \
    '! grep -q "cluster: redis" "$tmp/a.log" "$tmp/b.log"'

# A router trusting another CA: the handshake fails, it says why, and it
# admits nothing (its local limit stays 0).
router c host-c "tls_ca = \"$tmp/otherca.crt\";
    tls_cert = \"$tmp/client.crt\"; tls_key = \"$tmp/client.key\";" ||
    no "router c did not start"
check "a wrong CA is refused with a clear error" \
    'said c "TLS: the server.s certificate is refused: "'
check "a wrong CA: the router admits nothing (limit $(limit c))" \
    '[ "$(limit c)" = 0 ]'
stop_router

# A router expecting another name: refused (hostname mismatch).
router d host-d "tls_ca = \"$tmp/ca.crt\"; tls_server_name = \"other.test\";
    tls_cert = \"$tmp/client.crt\"; tls_key = \"$tmp/client.key\";" ||
    no "router d did not start"
check "a server name that does not match is refused" \
    'said d "certificate is refused: hostname mismatch"'
check "a wrong name: the router admits nothing" '[ "$(limit d)" = 0 ]'
stop_router

# The right name (the certificate's DNS entry) is accepted.
router e host-e "tls_ca = \"$tmp/ca.crt\"; tls_server_name = \"redis.test\";
    tls_cert = \"$tmp/client.crt\"; tls_key = \"$tmp/client.key\";" ||
    no "router e did not start"
ok_e=no
for _ in $(seq 200); do
    [ "$(limit e)" -gt 0 ] 2>/dev/null && { ok_e=yes; break; }
    sleep 0.05
done
check "tls_server_name redis.test matches the certificate: a share" \
    '[ $ok_e = yes ]'
stop_router

# No client certificate: the server refuses the handshake; the router
# says so and admits nothing.
router f host-f "tls_ca = \"$tmp/ca.crt\";" || no "router f did not start"
check "no client certificate: refused, and the router says so" \
    'said f "alert certificate required"'
check "no client certificate: the router admits nothing" \
    '[ "$(limit f)" = 0 ]'
stop_router

# A wrong password over a good TLS connection: AUTH refused, said
# without the password, nothing admitted.
GR_TEST_REDIS_PW=gr-cltls-SECRET-wrong-pw-77c1
router g host-g || no "router g did not start"
GR_TEST_REDIS_PW=$PW
check "a wrong password: AUTH refused, and the router says so" \
    'said g "redis 127.0.0.1:$tport: AUTH refused"'
check "a wrong password: the router admits nothing" '[ "$(limit g)" = 0 ]'
stop_router

kill "$pid_a" "$pid_b" 2>/dev/null
wait "$pid_a" "$pid_b" 2>/dev/null

# No key and no password anywhere: outputs, errors, logs.
if grep -l -e "$KEY" -e "$PW" -e SECRET "$tmp"/*.out "$tmp"/*.err \
    "$tmp"/*.log \
    >/dev/null 2>&1; then
    no "a key or the Redis password was printed"
else
    ok
fi
finish
