#!/bin/sh
# run_upstream_tls.sh - the gateway's upstream calls over TLS: the mock
# serves HTTPS (--tls-cert, --tls-key) with a throwaway self-signed
# certificate for 127.0.0.1 made here with `openssl req`, and the
# router's base_url is https://127.0.0.1:PORT.  With the certificate
# trusted through SSL_CERT_FILE (OpenSSL's variable, which the gateway
# honours on the event loops and on the thread-per-call path alike),
# gateway.loops = 1 and loops = 0 each answer generateContent with the
# mock's text, deliver a stream's events and answer 20 calls in a row
# (on the loops over fewer connections than calls: the mock counts the
# connections it accepted).  Without SSL_CERT_FILE (the system's CAs
# only) the call fails, the answer and the log say the certificate was
# not verified, and neither holds the key.  A trusted certificate for
# another name (DNS:example.invalid) is refused too.  First, the mock
# itself refuses TLS files it cannot serve, at start, showing nothing of
# the key.  Outcomes only, never durations.
#
#   BIN=bin tests/gateway/run_upstream_tls.sh
set -u
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-uptls.XXXXXX")
# A table per case: failed attempts (b, c) make a project wait, and
# the next case must not see that.
shm="/gr-uptls-$$"
mock_pid=
mock2_pid=
gw_pid=
KEY1=gr-uptls-SECRET-one-41c7
export GR_UPTLS_TOKEN=uptls-token-SECRET-5150
MODEL=gemini-2.5-flash
# The mock's answer to generateContent (tools/mock/responses.c).
MOCK_TEXT="This is gemroute-mock, answering in place of Gemini"
# Whatever the caller's environment trusts, each program here gets only
# what it is given below.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE

cleanup() {
    for p in $gw_pid $mock2_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for c in a b1 b0 c1 c0; do remove_table "$shm-$c"; done
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM

command -v openssl >/dev/null 2>&1 || { no "openssl is not installed"; finish; }
umask 077

# cert NAME SUBJECT SAN: a self-signed certificate NAME.pem and its key
# NAME.key, no CA.
cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -days 1 -subj "$2" -addext "subjectAltName=$3" \
        -keyout "$tmp/$1.key" -out "$tmp/$1.pem" >/dev/null 2>&1
}
cert good "/CN=127.0.0.1" "IP:127.0.0.1"
cert wrong "/CN=example.invalid" "DNS:example.invalid"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
    -out "$tmp/other.key" >/dev/null 2>&1
check "openssl made two certificates and three keys" \
    '[ -s "$tmp/good.pem" ] && [ -s "$tmp/good.key" ] &&
     [ -s "$tmp/wrong.pem" ] && [ -s "$tmp/wrong.key" ] &&
     [ -s "$tmp/other.key" ]'
junk_key "$tmp/junk.key"

cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); }
);
MOCK

# The mock refuses what it cannot serve: exit 2 before "listening on",
# with a sentence naming the option, nothing of the key (nor its path).
# mock_bad NAME WANT OPTION...
mock_bad() {
    mb_name=$1 mb_want=$2
    shift 2
    "$BIN/gemroute-mock" -c "$tmp/mock.conf" "$@" >"$tmp/bad.out" \
        2>"$tmp/bad.log" </dev/null &
    mb_pid=$!
    if ! exited "$mb_pid"; then
        no "mock, $mb_name: it started"
        return
    fi
    mb_rc=$exit_rc
    check "mock, $mb_name: exit status 2 (got $mb_rc)" '[ "$mb_rc" -eq 2 ]'
    check "mock, $mb_name: said why ($(tail -n 1 "$tmp/bad.log"))" \
        'grep -qF -- "$mb_want" "$tmp/bad.log"'
    check "mock, $mb_name: did not listen" \
        '! grep -q "^listening" "$tmp/bad.out"'
    check "mock, $mb_name: nothing of the key nor its path shown" \
        '! grep -q "SECRET\|\.key" "$tmp/bad.out" "$tmp/bad.log"'
    cat "$tmp/bad.log" >>"$tmp/mockbad.log"
}
mock_bad "a missing key file" \
    "gemroute-mock: --tls-key: cannot read the file: No such file" \
    --tls-cert "$tmp/good.pem" --tls-key "$tmp/nothere.key"
mock_bad "a key for a certificate" \
    "gemroute-mock: --tls-cert: not a PEM certificate" \
    --tls-cert "$tmp/good.key" --tls-key "$tmp/good.key"
mock_bad "a certificate for a key" \
    "gemroute-mock: --tls-key: not a PEM private key" \
    --tls-cert "$tmp/good.pem" --tls-key "$tmp/good.pem"
mock_bad "the key of another certificate" \
    "--tls-cert and --tls-key were refused" \
    --tls-cert "$tmp/good.pem" --tls-key "$tmp/other.key"
mock_bad "a key that is not one" \
    "--tls-cert and --tls-key were refused" \
    --tls-cert "$tmp/good.pem" --tls-key "$tmp/junk.key"
mock_bad "a certificate without its key" \
    "gemroute-mock: --tls-cert without --tls-key: HTTPS needs both" \
    --tls-cert "$tmp/good.pem"

start_mock "$tmp/mock.conf" "$tmp" --tls-cert "$tmp/good.pem" \
    --tls-key "$tmp/good.key"
mport=$mock_port
[ -n "$mport" ] || { no "gemroute-mock did not start: $(cat "$tmp/mock.log")"; finish; }
up=https://127.0.0.1:$mport

# mock_stat WHAT: from the mock's /mock/stats (over HTTPS, trusting good.pem),
# "conns" = connections accepted (this query's own included), "calls" =
# requests to a model route.
mock_stat() {
    curl -sS --cacert "$tmp/good.pem" "$up/mock/stats" 2>/dev/null |
        python3 -c "
import json, sys
s = json.load(sys.stdin)
print(s['connections']['accepted'] if '$1' == 'conns' else s['requests']['total'])"
}
code=$(curl -sS -o "$tmp/direct.json" -w '%{http_code}' \
    --cacert "$tmp/good.pem" "$up/mock/stats" 2>"$tmp/curl.err")
check "the mock serves HTTPS: /mock/stats 200 ($code $(cat "$tmp/curl.err"))" \
    '[ "$code" = 200 ]'
check "/mock/stats counts connections accepted" \
    'grep -q "\"accepted\": [1-9]" "$tmp/direct.json"'
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    "http://127.0.0.1:$mport/mock/stats" 2>/dev/null)
check "plain HTTP on the mock's HTTPS port gets no HTTP answer ($code)" \
    '[ "$code" = 000 ]'

# write_conf FILE SHM MOCKPORT LOOPS
write_conf() {
    cat >"$1" <<CONF
router = { shm = "$2"; base_url = "https://127.0.0.1:$3";
           window_ms = 20000; headroom = 1.0; };
models = ( { name = "$MODEL"; rpm = 400; tpm = 10000000; } );
projects = ( { name = "one"; key = "$KEY1"; } );
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_UPTLS_TOKEN" ];
            loops = $4; };
CONF
}

# gw_start NAME CONF [CA]: a gateway on CONF (SSL_CERT_FILE=CA when
# given), its stdout in NAME.out and log in NAME.log; $gport its port.
gw_start() {
    if [ -n "${3:-}" ]; then
        SSL_CERT_FILE=$3 "$BIN/gemroute-gateway" -c "$2" --foreground \
            >"$tmp/$1.out" 2>"$tmp/$1.log" &
    else
        "$BIN/gemroute-gateway" -c "$2" --foreground \
            >"$tmp/$1.out" 2>"$tmp/$1.log" &
    fi
    gw_pid=$!
    gport=$(port_of "$tmp/$1.out")
}
gw_stop() {
    kill "$gw_pid" 2>/dev/null
    wait "$gw_pid"
    gw_rc=$?
    gw_pid=
}

# call NAME stream|unary TEXT: one call through the gateway, the answer
# in NAME.body; prints the status ("000" when there was no answer).
call() {
    if [ "$2" = stream ]; then
        ca_path="$MODEL:streamGenerateContent?alt=sse"
    else
        ca_path="$MODEL:generateContent"
    fi
    curl -sS -N -o "$tmp/$1.body" -w '%{http_code}' \
        -H "x-goog-api-key: $GR_UPTLS_TOKEN" \
        -H 'Content-Type: application/json' \
        -d "{\"contents\":[{\"parts\":[{\"text\":\"$3\"}]}]}" \
        "http://127.0.0.1:$gport/v1beta/models/$ca_path" 2>>"$tmp/curl.err"
}

# router CASE CONF CA: the router of one case (the previous one
# stopped), on table $shm-CASE, trusting CA (its probes go upstream).
router() {
    [ -z "$router_pid" ] || stop_router
    router_wrap="env SSL_CERT_FILE=$3"
    start_router "$2" "$shm-$1" "$tmp/router-$1.log" --unlink-on-exit
}

write_conf "$tmp/a1.conf" "$shm-a" "$mport" 1
write_conf "$tmp/a0.conf" "$shm-a" "$mport" 0
"$BIN/gemrouted" --check -c "$tmp/a1.conf" >"$tmp/check.out" 2>&1
check "--check accepts an https base_url ($(cat "$tmp/check.out"))" \
    '[ $? -eq 0 ]'
router a "$tmp/a1.conf" "$tmp/good.pem" ||
    { no "the router did not start: $(cat "$tmp/router-a.log")"; finish; }

# a. Trusted through SSL_CERT_FILE, on the loops and a thread per call.
for loops in 1 0; do
    n="loops = $loops"
    gw_start "gw$loops" "$tmp/a$loops.conf" "$tmp/good.pem"
    [ -n "$gport" ] || { no "$n: the gateway did not start"; continue; }
    if [ "$loops" = 1 ]; then
        check "$n: the gateway runs one event loop" \
            'grep -q "calls run on 1 event loops" "$tmp/gw$loops.log"'
    else
        check "$n: the gateway runs a thread per call" \
            'grep -q "a thread per call" "$tmp/gw$loops.log"'
    fi
    code=$(call "gen$loops" unary "hello over upstream TLS")
    check "$n: generateContent over upstream TLS: 200 ($code)" \
        '[ "$code" = 200 ]'
    check "$n: ... with the mock's text" \
        'grep -qF "$MOCK_TEXT" "$tmp/gen$loops.body"'
    code=$(call "sse$loops" stream "a stream over upstream TLS")
    check "$n: a stream over upstream TLS: 200 ($code)" '[ "$code" = 200 ]'
    check "$n: ... delivers its events ($(grep -c "^data: {" \
        "$tmp/sse$loops.body"))" \
        '[ "$(grep -c "^data: {" "$tmp/sse$loops.body")" -ge 2 ] &&
         grep -q "finishReason" "$tmp/sse$loops.body"'
    c0=$(mock_stat conns)
    r0=$(mock_stat calls)
    ok20=0
    for i in $(seq 20); do
        code=$(call "row$loops" unary "call $i of 20")
        [ "$code" = 200 ] && grep -qF "$MOCK_TEXT" "$tmp/row$loops.body" &&
            ok20=$((ok20 + 1))
    done
    c1=$(mock_stat conns)
    r1=$(mock_stat calls)
    check "$n: 20 calls in a row answered 200 with the mock's text ($ok20)" \
        '[ "$ok20" -eq 20 ]'
    check "$n: ... and all 20 reached the mock ($r0 -> $r1)" \
        '[ "$((r1 - r0))" -ge 20 ]'
    # c1 counts its own query's connection.
    conns=$((c1 - c0 - 1))
    echo "$n: the mock accepted $conns connections for 20 calls"
    if [ "$loops" = 1 ]; then
        check "$n: fewer connections than calls: kept ($conns for 20)" \
            '[ "$conns" -lt 20 ]'
    fi
    gw_stop
    check "$n: SIGTERM: exit 0 ($gw_rc)" '[ "$gw_rc" -eq 0 ]'
done

# refused CASE LOOPS CONF CA WHY WHAT: one call through a gateway on
# CONF (SSL_CERT_FILE=CA, none when empty) is answered an error, not
# 200 and not the mock's text, whose answer matches WHY (grep -i); no
# answer or log holds the key.  WHAT names the case.
refused() {
    n="$6, loops = $2"
    rf=$1$2 rf_why=$5   # check() evals with its own $1, $2
    gw_start "$rf" "$3" "$4"
    [ -n "$gport" ] || { no "$n: the gateway did not start"; return; }
    code=$(call "$rf" unary "refused, I hope")
    check "$n: the gateway answers an error ($code)" \
        '[ "$code" != 200 ] && [ "$code" != 000 ]'
    check "$n: ... without the mock's text" \
        '! grep -qF "$MOCK_TEXT" "$tmp/$rf.body"'
    check "$n: ... that says why ($(head -c 400 "$tmp/$rf.body" |
        tr '\n' ' '))" 'grep -qi "$rf_why" "$tmp/$rf.body"'
    gw_stop
    check "$n: the log says why ($(tail -n 2 "$tmp/$rf.log"))" \
        'grep -qi "$rf_why" "$tmp/$rf.log"'
    check "$n: neither the answer nor the log holds the key" \
        '! grep -q "SECRET" "$tmp/$rf.body" "$tmp/$rf.log"'
}

# b. Without SSL_CERT_FILE the mock's certificate chains to no system
# CA: the call fails, and says so, on both paths.
for loops in 1 0; do
    write_conf "$tmp/b$loops.conf" "$shm-b$loops" "$mport" "$loops"
    router "b$loops" "$tmp/b$loops.conf" "$tmp/good.pem" ||
        { no "the router of b$loops did not start"; continue; }
    refused nca "$loops" "$tmp/b$loops.conf" "" "certificate\|verif" \
        "no SSL_CERT_FILE"
done

# c. A certificate for another name, trusted: still refused, since
# 127.0.0.1 is not example.invalid.
mkdir -p "$tmp/m2"
mock1_pid=$mock_pid
start_mock "$tmp/mock.conf" "$tmp/m2" --tls-cert "$tmp/wrong.pem" \
    --tls-key "$tmp/wrong.key"
mock2_pid=$mock_pid
mock_pid=$mock1_pid
m2port=$mock_port
[ -n "$m2port" ] || { no "the second mock did not start"; finish; }
for loops in 1 0; do
    write_conf "$tmp/c$loops.conf" "$shm-c$loops" "$m2port" "$loops"
    router "c$loops" "$tmp/c$loops.conf" "$tmp/wrong.pem" ||
        { no "the router of c$loops did not start"; continue; }
    refused name "$loops" "$tmp/c$loops.conf" "$tmp/wrong.pem" \
        "name" "a certificate for example.invalid"
done
stop_router
code=$(curl -sS --cacert "$tmp/wrong.pem" --resolve \
    "example.invalid:$m2port:127.0.0.1" -o "$tmp/m2stats.json" \
    -w '%{http_code}' "https://example.invalid:$m2port/mock/stats" \
    2>/dev/null)
check "no request reached the mock under the wrong name ($code)" \
    '[ "$code" = 200 ] && grep -q "\"total\": 0," "$tmp/m2stats.json"'

# Nothing printed or logged holds a key, a token or the junk key's text.
check "no secret in any output or log" \
    '! cat "$tmp"/*.out "$tmp"/*.log "$tmp"/m2/*.log "$tmp"/*.body \
         2>/dev/null | grep -q SECRET'
check "no sanitizer report in the gateways' logs" \
    '[ "$(cat "$tmp"/gw?.log "$tmp"/nca?.log "$tmp"/name?.log |
          grep -c "Sanitizer\|runtime error")" -eq 0 ]'
key_line=$(sed -n 2p "$tmp/good.key")
check "no line of the mock's private key in any output or log" \
    '! cat "$tmp"/*.out "$tmp"/*.log | grep -qF "$key_line"'
finish
