#!/bin/sh
# run_tls.sh - gemroute-gateway over HTTPS: a throwaway certificate made
# here with `openssl req`, the gateway serving it on 127.0.0.1 (loopback
# may use TLS too), curl --cacert calling generateContent and a stream
# through it; plain HTTP on that port gets no answer; a certificate and
# key that do not belong together, and a key that is not one, are
# refused at start with a sentence that shows nothing of the key; and
# `gemrouted --check` accepts an address off loopback once TLS is set.
# Outcomes only, never durations.
#
#   BIN=bin tests/gateway/run_tls.sh
set -u
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-gwtls.XXXXXX")
shm="/gr-gwtls-$$"
mock_pid=
gw_pid=
rtr_pid=
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost
KEY1=gr-gwtls-SECRET-one-77aa
export GR_GWTLS_TOKEN=gwtls-token-SECRET-1234
MODEL=gemini-2.5-flash

cleanup() {
    for p in $gw_pid $rtr_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

command -v openssl >/dev/null 2>&1 || { no "openssl is not installed"; finish; }
umask 077

# A certificate for 127.0.0.1, its key, and a second key of nobody's.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 \
    -out "$tmp/other.pem" >/dev/null 2>&1
check "openssl made a certificate and two keys" \
    '[ -s "$tmp/cert.pem" ] && [ -s "$tmp/key.pem" ] && [ -s "$tmp/other.pem" ]'
junk_key "$tmp/junk.pem"

cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 100; tpm = 1000000; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { no "gemroute-mock did not start"; finish; }

# write_conf FILE LISTEN CERT KEY
write_conf() {
    cat >"$1" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = 20000; headroom = 1.0; };
models = ( { name = "$MODEL"; rpm = 40; tpm = 1000000; } );
projects = ( { name = "one"; key = "$KEY1"; } );
gateway = { listen = "$2"; tokens = [ "env:GR_GWTLS_TOKEN" ];
            tls_cert = "file:$3"; tls_key = "file:$4"; };
CONF
}
write_conf "$tmp/gw.conf" 127.0.0.1:0 cert.pem key.pem
"$BIN/gemrouted" --check -c "$tmp/gw.conf" >"$tmp/check.out" 2>&1
check "--check accepts a gateway with TLS ($(cat "$tmp/check.out"))" \
    '[ $? -eq 0 ]'
write_conf "$tmp/off.conf" 0.0.0.0:8787 cert.pem key.pem
"$BIN/gemrouted" --check -c "$tmp/off.conf" >"$tmp/check2.out" 2>&1
check "--check accepts off loopback with TLS and no insecure" '[ $? -eq 0 ]'

"$BIN/gemrouted" -c "$tmp/gw.conf" --foreground --unlink-on-exit \
    2>"$tmp/router.log" &
rtr_pid=$!
wait_ready "$shm" || { no "the router did not start"; finish; }
"$BIN/gemroute-gateway" -c "$tmp/gw.conf" --foreground >"$tmp/gw.out" \
    2>"$tmp/gw.log" &
gw_pid=$!
gport=$(port_of "$tmp/gw.out")
[ -n "$gport" ] || { no "the gateway did not start: $(cat "$tmp/gw.log")"; finish; }
base=https://127.0.0.1:$gport

code=$(curl -sS --cacert "$tmp/cert.pem" -o "$tmp/gen.json" \
    -w '%{http_code}' -H "x-goog-api-key: $GR_GWTLS_TOKEN" \
    -H 'Content-Type: application/json' \
    -d '{"contents":[{"parts":[{"text":"hello over TLS"}]}]}' \
    "$base/v1beta/models/$MODEL:generateContent" 2>"$tmp/curl.err")
check "generateContent over HTTPS: 200 ($code $(cat "$tmp/curl.err"))" \
    '[ "$code" = 200 ]'
check "the answer has candidates" 'grep -q "candidates" "$tmp/gen.json"'

curl -sS -N --cacert "$tmp/cert.pem" -o "$tmp/sse.txt" \
    -H "x-goog-api-key: $GR_GWTLS_TOKEN" -H 'Content-Type: application/json' \
    -d '{"contents":[{"parts":[{"text":"stream over TLS"}]}]}' \
    "$base/v1beta/models/$MODEL:streamGenerateContent?alt=sse" 2>/dev/null
check "a stream over HTTPS has events" \
    '[ "$(grep -c "^data: " "$tmp/sse.txt")" -ge 1 ]'

code=$(curl -sS -o /dev/null -w '%{http_code}' "$base/healthz" 2>/dev/null)
check "without --cacert the certificate is not trusted (code $code)" \
    '[ "$code" = 000 ]'
code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
    "http://127.0.0.1:$gport/healthz" 2>/dev/null)
check "plain HTTP on the HTTPS port gets no HTTP answer (code $code)" \
    '[ "$code" = 000 ]'
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$tmp/cert.pem" \
    "$base/healthz" 2>/dev/null)
check "the gateway still serves after that (code $code)" '[ "$code" = 200 ]'
check "the gateway's log says HTTPS" 'grep -q "over HTTPS" "$tmp/gw.log"'
kill "$gw_pid"
wait "$gw_pid" 2>/dev/null
gw_pid=

# bad_start NAME CERT KEY: the gateway refuses to start, saying why.
bad_start() {
    write_conf "$tmp/bad.conf" 127.0.0.1:0 "$2" "$3"
    "$BIN/gemroute-gateway" -c "$tmp/bad.conf" --foreground \
        >"$tmp/bad.out" 2>"$tmp/bad.log" &
    bp=$!
    if ! exited "$bp"; then
        no "$1: the gateway started"
        return
    fi
    rc=$exit_rc
    check "$1: exit status $rc is not 0" '[ "$rc" -ne 0 ]'
    check "$1: said why ($(tail -n 1 "$tmp/bad.log"))" \
        'grep -q "cannot serve HTTPS on 127.0.0.1:0: gateway.tls_cert and tls_key were refused" "$tmp/bad.log"'
    check "$1: did not listen" '! grep -q "^listening" "$tmp/bad.out"'
}
bad_start "a key of another certificate" cert.pem other.pem
bad_start "a key that is not one" cert.pem junk.pem

write_conf "$tmp/half.conf" 127.0.0.1:0 cert.pem nothere.pem
"$BIN/gemrouted" --check -c "$tmp/half.conf" >"$tmp/half.out" 2>&1
rc=$?
check "--check: a missing key file is refused (exit $rc)" '[ "$rc" -eq 2 ]'
check "--check: FILE:LINE names tls_key ($(cat "$tmp/half.out"))" \
    'grep -q "^$tmp/half.conf:6: gateway.tls_key: cannot read the file: No such file or directory$" "$tmp/half.out"'
write_conf "$tmp/swap.conf" 127.0.0.1:0 key.pem cert.pem
"$BIN/gemrouted" --check -c "$tmp/swap.conf" >"$tmp/swap.out" 2>&1
check "--check: key and certificate swapped are both named" \
    'grep -q "gateway.tls_cert: not a PEM certificate" "$tmp/swap.out" &&
     grep -q "gateway.tls_key: not a PEM private key" "$tmp/swap.out"'

# Nothing printed or logged holds a key, a token or the junk key's text.
check "no secret in any output or log" \
    '! cat "$tmp"/*.out "$tmp"/*.log | grep -q SECRET'
check "no sanitizer report in the gateways' logs" \
    '[ "$(cat "$tmp"/gw.log "$tmp"/bad.log | grep -c "Sanitizer\|runtime error")" -eq 0 ]'
key_line=$(sed -n 2p "$tmp/key.pem")
check "no line of the private key in any output or log" \
    '! cat "$tmp"/*.out "$tmp"/*.log | grep -qF "$key_line"'
finish
