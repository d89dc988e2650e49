#!/bin/sh
# run_gateway.sh - bin/gemroute-gateway end to end: the real mock on a free
# loopback port, a real router in front of it with a private table, and
# the gateway attached to that table.  curl drives the error paths (bad
# token, malformed JSON, unknown route, oversized body, the 429 when the
# pool is full) and the real SDKs (@google/genai, openai; tests/sdk.sh
# installs them) drive generateContent, a stream, countTokens, embeddings
# and chat completions.  No key or token may show in anything printed or
# logged.  Counts and values only, never durations.  Ends with "N passed,
# N failed" for tests/run.sh.
#
#   BIN=bin tests/gateway/run_gateway.sh
set -u
. "$(dirname "$0")/../lib.sh"
root=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-gw.XXXXXX")
shm="/gr-gw-$$"
mock_pid=
gw_pid=
gw2_pid=
sgw_pid=
slow_pid=
passed=0
failed=0
KEY1=gr-gw-SECRET-one-5a1b2c
KEY2=gr-gw-SECRET-two-9d8e7f
export GR_GW_TOKEN=gw-token-SECRET-c0ffee11
export GR_GW_ADMIN=gw-admin-SECRET-5eed5eed
MODEL=gemini-2.5-flash
EMB=gemini-embedding-001
IMG=imagen-4.0-generate-001

cleanup() {
    for p in $sgw_pid $slow_pid $gw2_pid $gw_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap 'exit 1' INT TERM

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }
check() {
    name=$1
    shift
    if "$@"; then ok; else bad "$name"; fi
}
has() { grep -q -- "$2" "$tmp/$1"; }
# admitted SHM: requests admitted in the whole table so far.
admitted() {
    "$BIN/gemroute" status --shm "$1" --json | python3 -c "
import json, sys
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == 'admitted' and isinstance(v, int): yield v
            else: yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
print(sum(walk(json.load(sys.stdin))))"
}
has_status() { "$BIN/gemroute" status --shm "$1" --json | grep -q -- "$2"; }

umask 077
cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
window_ms = 3000;
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 100; tpm = 1000000; },
               { model = "$EMB"; rpm = 100; tpm = 1000000; },
               { model = "gemini-tiny"; rpm = 100; tpm = 1000000; },
               { model = "gemini-2.0-flash"; rpm = 1; tpm = 1000000; },
               { model = "$IMG"; rpm = 100; ipm = 100; } ); },
  { name = "two"; keys = ["$KEY2"];
    limits = ( { model = "$MODEL"; rpm = 100; tpm = 1000000; },
               { model = "$EMB"; rpm = 100; tpm = 1000000; },
               { model = "gemini-tiny"; rpm = 100; tpm = 1000000; },
               { model = "gemini-2.0-flash"; rpm = 100; tpm = 1000000; },
               { model = "$IMG"; rpm = 100; ipm = 100; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { bad "gemroute-mock did not start"; finish; }

# One model with room for 4 requests a window: the pool fills on demand.
write_conf() {
    cat >"${4:-$tmp/gw.conf}" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           window_ms = 20000; headroom = 1.0; max_models = 8;
           batch_calls = 1; };
models = ( { name = "$MODEL"; rpm = 40; tpm = 1000000; },
           { name = "$EMB"; rpm = 40; tpm = 1000000; },
           { name = "gemini-tiny"; rpm = 1; tpm = 1000000; },
           { name = "gemini-2.0-flash"; rpm = 40; tpm = 1000000; },
           { name = "$IMG"; rpm = 40; ipm = 4; } );
projects = ( { name = "one"; key = "$KEY1"; },
             { name = "two"; key = "$KEY2"; } );
gateway = {
  listen = "127.0.0.1:${3:-0}";
  tokens = [ "env:GR_GW_TOKEN"${2:-} ];
  admin_tokens = [ "env:GR_GW_ADMIN" ];
  queue_s = $1;
  max_body = 65536;
  workers = 16;${5:-}
};
CONF
}
write_conf 5.0
"$BIN/gemrouted" --check -c "$tmp/gw.conf" >"$tmp/check.out" 2>&1
check "gemrouted --check accepts the gateway section" test $? -eq 0
start_router "$tmp/gw.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { bad "gemrouted did not start"; finish; }
${GW_WRAP:-} "$BIN/gemroute-gateway" -c "$tmp/gw.conf" --foreground >"$tmp/gw.out" \
    2>"$tmp/gw.log" &
gw_pid=$!
port=$(port_of "$tmp/gw.out")
[ -n "$port" ] || { bad "gemroute-gateway did not start"; finish; }
base="http://127.0.0.1:$port"
gen="$base/v1beta/models/$MODEL:generateContent"
hello='{"contents":[{"parts":[{"text":"hello gateway"}]}]}'

# c NAME [curl args]: status in $tmp/NAME.code, body in NAME.body,
# headers in NAME.hdr.
c() {
    name=$1
    shift
    curl -s -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code}' \
        "$@" >"$tmp/$name.code" 2>"$tmp/$name.err"
}
code() { cat "$tmp/$1.code"; }

# Health needs no token; everything else does.
c health "$base/healthz"
check "healthz 200" test "$(code health)" = 200
c notoken -H 'Content-Type: application/json' -d "$hello" "$gen"
check "no token: 403" test "$(code notoken)" = 403
check "no token: Google's shape" has notoken.body '"status": "PERMISSION_DENIED"'
c badtoken -H "x-goog-api-key: not-the-token" -d "$hello" "$gen"
check "unknown token: 400" test "$(code badtoken)" = 400
check "unknown token: API_KEY_INVALID" has badtoken.body '"reason": "API_KEY_INVALID"'
c badbearer -H "Authorization: Bearer not-the-token" \
    -d "{\"model\":\"$MODEL\",\"messages\":[]}" \
    "$base/v1beta/openai/chat/completions"
check "unknown bearer on OpenAI route: 401" test "$(code badbearer)" = 401

# The token in each place an SDK puts it.
c ok1 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" "$gen"
check "x-goog-api-key: 200" test "$(code ok1)" = 200
check "answer from the mock" has ok1.body '"candidates"'
check "x-gemroute-project header" grep -qi '^x-gemroute-project: \(one\|two\)' "$tmp/ok1.hdr"
check "x-gemroute-queued-ms header" grep -qi '^x-gemroute-queued-ms: [0-9]' "$tmp/ok1.hdr"
c ok2 -d "$hello" "$gen?key=$GR_GW_TOKEN"
check "?key=: 200" test "$(code ok2)" = 200
c ok3 -H "Authorization: Bearer $GR_GW_TOKEN" -d "$hello" "$gen"
check "Bearer: 200" test "$(code ok3)" = 200

# Refused before any reservation: no quota spent.
before=$(admitted "$shm")
check "the table counted the three calls so far ($before)" test "$before" -ge 3
c badjson -H "x-goog-api-key: $GR_GW_TOKEN" -d '{"contents": [' "$gen"
check "malformed JSON: 400" test "$(code badjson)" = 400
check "malformed JSON: INVALID_ARGUMENT" has badjson.body '"status": "INVALID_ARGUMENT"'
check "malformed JSON: says so" has badjson.body 'Invalid JSON payload'
# Deeper than libgemroute's one limit (GR_JSON_MAX_DEPTH, 64): the
# gateway parses with the library's wrapper, not a limit of its own.
deep=$(python3 -c 'print("{\"contents\": " + "[" * 70 + "]" * 70 + "}")')
c deep -H "x-goog-api-key: $GR_GW_TOKEN" -d "$deep" "$gen"
check "nested 71 deep: 400" test "$(code deep)" = 400
check "nested 71 deep: says so" has deep.body 'The body is nested too deep'
c trail -H "x-goog-api-key: $GR_GW_TOKEN" -d '{"contents": []} x' "$gen"
check "text after the object: 400" test "$(code trail)" = 400
c noroute -H "x-goog-api-key: $GR_GW_TOKEN" "$base/v1beta/nothing/here"
check "unknown route: 404" test "$(code noroute)" = 404
check "unknown route: NOT_FOUND" has noroute.body '"status": "NOT_FOUND"'
head -c 70000 /dev/zero | tr '\0' 'a' >"$tmp/big.txt"
c big -H "x-goog-api-key: $GR_GW_TOKEN" --data-binary @"$tmp/big.txt" "$gen"
check "oversized body: 400" test "$(code big)" = 400
check "oversized body: says the limit" has big.body 'exceeds the limit: 65536 bytes'
# A head of 6.5 KiB (the gateway takes 6 KiB: GW_HEAD_MAX): Google's
# error shape, not a dropped connection (5 KiB is served, below).
longh=$(head -c 6500 /dev/zero | tr '\0' 'h')
c longhead -H "x-goog-api-key: $GR_GW_TOKEN" -H "x-long: $longh" \
    -d "$hello" "$gen"
check "long head: 431" test "$(code longhead)" = 431
check "long head: Google's shape, the limit" has longhead.body \
    'take more than 6144 bytes'
c nomodel -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "$base/v1beta/models/gemini-9-nothing:generateContent"
check "model no project serves: 404" test "$(code nomodel)" = 404
check "refusals admitted nothing in the table" test "$(admitted "$shm")" = "$before"
longh=$(head -c 5000 /dev/zero | tr '\0' 'h')
c okhead -H "x-goog-api-key: $GR_GW_TOKEN" -H "x-long: $longh" \
    -d "$hello" "$gen"
check "a 5 KiB head: 200" test "$(code okhead)" = 200

# embedContent as such (the SDK's embedContent calls batchEmbedContents),
# and countTokens on /v1.
c emb1 -H "x-goog-api-key: $GR_GW_TOKEN" \
    -d '{"content":{"parts":[{"text":"embed me"}]}}' \
    "$base/v1beta/models/$EMB:embedContent"
check "embedContent: 200" test "$(code emb1)" = 200
check "embedContent: an embedding" has emb1.body '"embedding"'
c count1 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "$base/v1/models/$MODEL:countTokens"
check "countTokens on /v1: totalTokens" has count1.body '"totalTokens"'

# Models the table serves.
c models -H "x-goog-api-key: $GR_GW_TOKEN" "$base/v1beta/models"
check "GET models lists the table's" has models.body "\"models/$EMB\""
c model1 -H "x-goog-api-key: $GR_GW_TOKEN" "$base/v1beta/models/$MODEL"
check "GET models/{m}" has model1.body "\"name\": \"models/$MODEL\""
c oaimodels -H "Authorization: Bearer $GR_GW_TOKEN" "$base/v1beta/openai/models"
check "GET openai/models" has oaimodels.body "\"id\": \"$MODEL\""

# A stream without alt=sse: the JSON array form.
c arr -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "$base/v1beta/models/$MODEL:streamGenerateContent"
check "stream without alt=sse: 200" test "$(code arr)" = 200
python3 -c "
import json,sys
a=json.load(open('$tmp/arr.body'))
assert isinstance(a,list) and len(a)>=2 and all('candidates' in e for e in a)
" 2>"$tmp/arr.check"
check "stream without alt=sse: a JSON array of events" test ! -s "$tmp/arr.check"
c sse -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "$base/v1beta/models/$MODEL:streamGenerateContent?alt=sse"
check "alt=sse: events" test "$(grep -c '^data: {' "$tmp/sse.body")" -ge 2

# Many at once: 40 calls, 20 in parallel, within the pool (2 x 40 a
# window): every one answered 200 by the mock, none refused.
seq 40 | xargs -P 20 -I N curl -s -o /dev/null -w '%{http_code}\n' \
    -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" "$gen" >"$tmp/par.codes"
check "40 parallel calls: 40 answers" test "$(wc -l <"$tmp/par.codes")" -eq 40
check "40 parallel calls: all 200 ($(sort "$tmp/par.codes" | uniq -c |
    tr '\n' ' '))" test "$(grep -c '^200$' "$tmp/par.codes")" -eq 40

# The pool is full: gemini-tiny has room for 1 request per 3 s on each of
# two projects.  With queue budget 0 the third call gets Google's 429.
for n in 1 2 3; do
    c full$n -H "x-goog-api-key: $GR_GW_TOKEN" -H 'x-gemroute-queue-s: 0' \
        -d "$hello" "$base/v1beta/models/gemini-tiny:generateContent"
done
c full4 -H "x-goog-api-key: $GR_GW_TOKEN" -H 'x-gemroute-queue-s: 0' \
    -d "$hello" "$base/v1beta/models/gemini-tiny:generateContent"
check "pool full: 429" test "$(code full4)" = 429
check "pool full: RESOURCE_EXHAUSTED" has full4.body '"status": "RESOURCE_EXHAUSTED"'
check "pool full: QuotaFailure names the pool" has full4.body '"quotaId": "GemroutePoolPerModel"'
check "pool full: RetryInfo.retryDelay" has full4.body '"retryDelay": "[0-9.]*s"'
mock429=$(python3 -c "
import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:$mport/mock/stats').read().decode())" |
    python3 -c "
import json,sys
j=json.load(sys.stdin)
def walk(o):
    if isinstance(o,dict):
        for k,v in o.items():
            if k=='quota_429' and isinstance(v,dict): yield v.get('total',0)
            else: yield from walk(v)
    elif isinstance(o,list):
        for v in o: yield from walk(v)
print(sum(walk(j)))")
check "the mock answered no 429 (got $mock429)" test "$mock429" = 0

# Imagen :predict costs its images: 4 a window per project, 4 asked for
# by default, so two calls fit (one per project) and a third does not.
pred='{"instances":[{"prompt":"a red bicycle"}]}'
for n in 1 2 3; do
    c pred$n -H "x-goog-api-key: $GR_GW_TOKEN" -H 'x-gemroute-queue-s: 0' \
        -d "$pred" "$base/v1beta/models/$IMG:predict"
done
check ":predict: 200" test "$(code pred1)$(code pred2)" = 200200
check ":predict: predictions" has pred1.body '"predictions"'
check ":predict: the third finds no images left: 429" test "$(code pred3)" = 429
check ":predict: 429 names the pool" has pred3.body '"quotaId": "GemroutePoolPerModel"'

# An upstream 429 is retried on the other project: the mock gives project
# one 1 request a window of gemini-2.0-flash while the router counts 40, so
# some call gets Google's 429 from it; every caller still gets a 200.
# Calls go on until the mock has answered a 429 (at most 30: a slow,
# sanitized run may spread the first few over several mock windows).
mock_429s() {
    python3 -c "
import json, urllib.request
j = json.load(urllib.request.urlopen('http://127.0.0.1:$mport/mock/stats'))
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == 'quota_429' and isinstance(v, dict): yield v.get('total', 0)
            else: yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
print(sum(walk(j)))"
}
n=0
mock429=0
while [ $n -lt 30 ]; do
    n=$((n + 1))
    c r429_$n -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
        "$base/v1beta/models/gemini-2.0-flash:generateContent"
    if [ $n -ge 6 ]; then
        mock429=$(mock_429s)
        [ "$mock429" -ge 1 ] && break
    fi
done
not200=$(cat "$tmp"/r429_*.code | tr -d '\n' | sed 's/200//g')
check "upstream 429 retried: every caller got 200 ($n calls; not 200: '$not200')" \
    test -z "$not200"
check "the mock did answer a 429 (got $mock429)" test "$mock429" -ge 1

# Metrics (admin token) and their counts.
c metrics -H "Authorization: Bearer $GR_GW_ADMIN" "$base/metrics"
check "metrics 200" test "$(code metrics)" = 200
check "metrics: requests by route" has metrics.body \
    "gemroute_gateway_requests_total{route=\"generateContent\",model=\"$MODEL\""
check "metrics: queue histogram" has metrics.body 'gemroute_gateway_queue_seconds_count'
c metrics_nt -H "Authorization: Bearer $GR_GW_TOKEN" "$base/metrics"
check "metrics needs the admin token" test "$(code metrics_nt)" = 400
check "metrics: upstream 429s as the mock counted them" has metrics.body \
    "^gemroute_gateway_upstream_429_total $mock429\$"

# A second gateway on the same port (SO_REUSEPORT): it starts and serves.
write_conf 5.0 "" "$port" "$tmp/gw2.conf"
"$BIN/gemroute-gateway" -c "$tmp/gw2.conf" --foreground >"$tmp/gw2.out" \
    2>"$tmp/gw2.log" &
gw2_pid=$!
check "a second gateway binds the same port" \
    test "$(port_of "$tmp/gw2.out")" = "$port"
c second -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" "$gen"
check "the port still answers with two gateways" test "$(code second)" = 200
kill "$gw2_pid" 2>/dev/null
wait "$gw2_pid" 2>/dev/null

# No tokens: loopback only, with a warning; off loopback it will not start
# (insecure = true lets the file pass the check, not the gateway run).
sed -e '/tokens = /d' "$tmp/gw2.conf" | sed -e 's/"127.0.0.1:[0-9]*"/"127.0.0.1:0"/' \
    >"$tmp/open.conf"
"$BIN/gemroute-gateway" -c "$tmp/open.conf" --foreground >"$tmp/open.out" \
    2>"$tmp/open.log" &
gw2_pid=$!
oport=$(port_of "$tmp/open.out")
c open1 -d "$hello" "http://127.0.0.1:$oport/v1beta/models/$MODEL:generateContent"
check "no tokens: a call without a token is served" test "$(code open1)" = 200
check "no tokens: warned at start" has open.log "warning: no gateway.tokens"
kill "$gw2_pid" 2>/dev/null
wait "$gw2_pid" 2>/dev/null
gw2_pid=
sed -e 's/"127.0.0.1:0"/"0.0.0.0:0"/' -e 's/^gateway = {/gateway = { insecure = true;/' \
    "$tmp/open.conf" >"$tmp/wide.conf"
"$BIN/gemroute-gateway" -c "$tmp/wide.conf" --foreground >"$tmp/wide.out" \
    2>"$tmp/wide.log"
check "no tokens off loopback: refuses to start (exit 2)" test $? -eq 2
check "no tokens off loopback: says why" has wide.log "no gateway.tokens are set"

# A change of the file is seen without a signal: a new token is accepted.
GR_GW_TOKEN2=gw-token2-SECRET-feedf00d
printf '%s\n' "$GR_GW_TOKEN2" >"$tmp/token2"
c newtok0 -H "x-goog-api-key: $GR_GW_TOKEN2" -d "$hello" "$gen"
check "a token not configured yet: 400" test "$(code newtok0)" = 400
sleep 1.1       # a new modification time, whatever the file system's grain
write_conf 5.0 ", \"file:$tmp/token2\"" 0 "$tmp/gw.conf" \
    " project_header = false;"
i=0
until grep -q "reloaded" "$tmp/gw.log" || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "file change: reloaded" has gw.log "reloaded"
c newtok1 -H "x-goog-api-key: $GR_GW_TOKEN2" -d "$hello" "$gen"
check "file change: the new token is accepted" test "$(code newtok1)" = 200
check "project_header = false: no x-gemroute-project" \
    test "$(grep -ci '^x-gemroute-project' "$tmp/newtok1.hdr")" -eq 0
check "project_header = false: x-gemroute-queued-ms stays" \
    grep -qi '^x-gemroute-queued-ms' "$tmp/newtok1.hdr"

# The SDKs (installed by tests/sdk_deps.sh, which `make test` runs).
[ -d tests/node_modules/openai ] || tests/sdk_deps.sh >&2
if [ -d tests/node_modules/@google/genai ] && [ -d tests/node_modules/openai ]; then
    GW_BASE=$base GW_TOKEN=$GR_GW_TOKEN GW_MODEL=$MODEL GW_EMB=$EMB \
        node tests/gateway/sdk.mjs >"$tmp/sdk.out" 2>"$tmp/sdk.err"
    rc=$?
    check "SDK run exit 0 ($(tail -n 3 "$tmp/sdk.err" | tr '\n' ' '))" \
        test $rc -eq 0
    for t in genai.generate genai.stream genai.count genai.embed \
             openai.chat openai.chat.stream openai.chat.stream.usage \
             openai.embed genai.badkey; do
        check "SDK: $t" grep -qx "ok $t" "$tmp/sdk.out"
    done
else
    bad "tests/node_modules is missing: run tests/sdk.sh first"
fi

# A reload (SIGHUP) with a bad file keeps the running settings.
echo 'gateway = { queue_s = "x"; };' >>"$tmp/gw.conf"
kill -HUP "$gw_pid"
i=0
until grep -q "reload of" "$tmp/gw.log" || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "bad reload refused" has gw.log "reload of .* refused"
c after -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" "$gen"
check "still serving after a bad reload" test "$(code after)" = 200

# A caller that goes away mid-stream stops the upstream call, and the
# lease is settled (nothing stays in flight).  A slow stand-in upstream
# (100 events, 0.1 s apart) behind a second router and gateway.
SLOW_KEY=$KEY1 SLOW_TOKEN=$GR_GW_TOKEN \
    python3 tests/gateway/slow_upstream.py "$tmp/slow.state" \
    >"$tmp/slow.out" 2>"$tmp/slow.err" &
slow_pid=$!
sport=$(port_of "$tmp/slow.out")
cat >"$tmp/slow.conf" <<CONF
router = { shm = "$shm-slow"; base_url = "http://127.0.0.1:$sport";
           window_ms = 3000; };
models = ( { name = "$MODEL"; rpm = 40; tpm = 1000000; } );
projects = ( { name = "slow"; key = "$KEY1"; } );
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_GW_TOKEN" ];
            workers = 1; timeout_s = 2; };
CONF
start_router "$tmp/slow.conf" "$shm-slow" "$tmp/slowrouter.log" \
    --unlink-on-exit
srouter_pid=$router_pid
"$BIN/gemroute-gateway" -c "$tmp/slow.conf" --foreground \
    >"$tmp/slowgw.out" 2>"$tmp/slowgw.log" &
sgw_pid=$!
sgport=$(port_of "$tmp/slowgw.out")
curl -s -N --max-time 1 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    -A "gr-test-agent/1" -H "x-goog-api-client: gr-test-client/2" \
    -H "Connection: keep-alive, x-hop" -H "x-hop: must-not-pass" \
    "http://127.0.0.1:$sgport/v1beta/models/$MODEL:streamGenerateContent?alt=sse" \
    >"$tmp/cut.body" 2>"$tmp/cut.err" &
cut_pid=$!
# While that stream is open, workers = 1 is all taken: a second call gets
# Google's 503 at once (health and metrics are still answered).
i=0
until curl -s "http://127.0.0.1:$sgport/metrics" |
      grep -q '^gemroute_gateway_streams_open 1$' || [ $i -gt 200 ]; do
    sleep 0.02; i=$((i + 1)); done
c busy -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "http://127.0.0.1:$sgport/v1beta/models/$MODEL:generateContent"
check "more calls than workers: 503" test "$(code busy)" = 503
check "more calls than workers: UNAVAILABLE" has busy.body '"status": "UNAVAILABLE"'
wait "$cut_pid"
check "the caller saw events before it left" \
    test "$(grep -c '^data: {' "$tmp/cut.body")" -ge 1
i=0
until [ -s "$tmp/slow.state" ] || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "upstream call stopped early ($(cat "$tmp/slow.state" 2>/dev/null))" \
    grep -q '^gone [0-9]' "$tmp/slow.state"
i=0
until grep -q "ended early" "$tmp/slowgw.log" || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "gateway: stream ended early" has slowgw.log "ended early"
check "upstream got the caller's user-agent and x-goog-api-client" \
    grep -q '^ua=gr-test-agent/1 client=gr-test-client/2 key=project ' \
    "$tmp/slow.state.headers"
check "the local token never went upstream" \
    test "$(grep -c LEAKED "$tmp/slow.state.headers")" -eq 0
check "a header the caller named in Connection did not pass" \
    grep -q ' x-hop=absent$' "$tmp/slow.state.headers"
check "no header of the caller's beyond those two passed" \
    test "$(grep -c 'x-hop=present' "$tmp/slow.state.headers")" -eq 0
check "the lease was settled: nothing in flight" \
    test "$("$BIN/gemroute" status --shm "$shm-slow" --json |
            grep -c '"in_flight": [1-9]')" -eq 0
check "the lease was settled: one admitted" \
    has_status "$shm-slow" '"admitted": 1,'
# Headers that never end: the connection is closed (timeout_s = 2), no
# call is made.  The bound on the wait (30 s) is only a watchdog.
python3 - "$sgport" >"$tmp/slowhdr.out" 2>&1 <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1beta/models/m:generateContent HTTP/1.1\r\nHost: a\r\n")
s.settimeout(30)
try:
    print("closed" if s.recv(4096) == b"" else "answered")
except socket.timeout:
    print("still open")
PY
check "slow headers: the connection is closed ($(cat "$tmp/slowhdr.out"))" \
    grep -qx closed "$tmp/slowhdr.out"

# A unary caller that hangs up stops its upstream call too (the upstream
# answers only after 10 s; the caller leaves after 1).
: >"$tmp/slow.state"
curl -s --max-time 1 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "http://127.0.0.1:$sgport/v1beta/models/$MODEL:generateContent" \
    >"$tmp/ucut.body" 2>"$tmp/ucut.err"
i=0
until [ -s "$tmp/slow.state" ] || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "unary: upstream call stopped ($(cat "$tmp/slow.state"))" \
    grep -qx 'unary-gone' "$tmp/slow.state"
i=0
until [ "$("$BIN/gemroute" status --shm "$shm-slow" --json |
           grep -c '"in_flight": [1-9]')" -eq 0 ] || [ $i -gt 200 ]; do
    sleep 0.05; i=$((i + 1)); done
check "unary: the lease was settled: two admitted, none in flight" \
    has_status "$shm-slow" '"admitted": 2,'
kill "$sgw_pid" 2>/dev/null
wait "$sgw_pid" 2>/dev/null
# A route that blocks (a file upload's start, sent upstream, where the
# stand-in keeps it 10 s) runs on a kept thread: with one loop, which
# serves every connection, /healthz is answered while the upload still
# waits for upstream.  The order is what is checked; --max-time is only
# a watchdog.
sed 's/workers = 1;/workers = 1; loops = 1;/' "$tmp/slow.conf" \
    >"$tmp/slow1.conf"
"$BIN/gemroute-gateway" -c "$tmp/slow1.conf" --foreground \
    >"$tmp/slow1gw.out" 2>"$tmp/slow1gw.log" &
sgw_pid=$!
s1port=$(port_of "$tmp/slow1gw.out")
seen=$(wc -l <"$tmp/slow.state.headers")
curl -s --max-time 30 -o "$tmp/up1.body" -H "x-goog-api-key: $GR_GW_TOKEN" \
    -H "X-Goog-Upload-Protocol: resumable" \
    -H "X-Goog-Upload-Command: start" \
    -H "X-Goog-Upload-Header-Content-Length: 5" \
    -H "Content-Type: application/json" -d '{"file": {}}' \
    "http://127.0.0.1:$s1port/upload/v1beta/files" &
up_pid=$!
i=0
until [ "$(wc -l <"$tmp/slow.state.headers")" -gt "$seen" ] ||
      [ $i -gt 400 ]; do
    sleep 0.05; i=$((i + 1)); done
check "one loop: the upload's start reached upstream" \
    test "$(wc -l <"$tmp/slow.state.headers")" -gt "$seen"
c hz1 --max-time 30 "http://127.0.0.1:$s1port/healthz"
check "one loop: /healthz answered (200)" test "$(code hz1)" = 200
check "one loop: ... while the upload still waited for upstream" \
    kill -0 "$up_pid"
check "one loop: the gateway says it runs one loop" \
    grep -q "calls run on 1 event loops" "$tmp/slow1gw.log"
kill "$up_pid" 2>/dev/null
wait "$up_pid" 2>/dev/null
for p in $sgw_pid $srouter_pid $slow_pid; do kill "$p" 2>/dev/null; done
for p in $sgw_pid $srouter_pid $slow_pid; do wait "$p" 2>/dev/null; done

# SIGTERM stops the gateway cleanly; no sanitizer report in any gateway's
# log (in a SANITIZE= build, leaks and races show at exit).
# The calls above ran on event loops (gateway.loops, 2 by default);
# loops = 0 is a thread per call, as before: a unary call and a stream.
check "calls run on the event loops by default" \
    grep -q "calls run on 2 event loops" "$tmp/gw.log"
write_conf 5.0 "" 0 "$tmp/thr.conf" "
  loops = 0;"
"$BIN/gemroute-gateway" -c "$tmp/thr.conf" --foreground >"$tmp/thr.out" \
    2>"$tmp/thr.log" &
thr_pid=$!
tport=$(port_of "$tmp/thr.out")
check "loops = 0: a thread per call" grep -q "a thread per call" \
    "$tmp/thr.log"
c thr1 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "http://127.0.0.1:$tport/v1beta/models/gemini-2.0-flash:generateContent"
check "loops = 0: a unary call: 200" test "$(code thr1)" = 200
c thr2 -H "x-goog-api-key: $GR_GW_TOKEN" -d "$hello" \
    "http://127.0.0.1:$tport/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
check "loops = 0: a stream: events" \
    test "$(grep -c '^data: {' "$tmp/thr2.body")" -ge 2
kill "$thr_pid"
wait "$thr_pid"
check "loops = 0: SIGTERM: exit 0" test $? -eq 0

kill "$gw_pid"
wait "$gw_pid"
check "SIGTERM: exit 0" test $? -eq 0
gw_pid=
check "gateway logs are free of sanitizer reports" \
    test "$(cat "$tmp"/gw.log "$tmp"/gw2.log "$tmp"/slowgw.log "$tmp"/slow1gw.log |
            grep -c 'Sanitizer\|runtime error')" -eq 0

# No key and no token anywhere.
n=0
for k in "$KEY1" "$KEY2" "$GR_GW_TOKEN" "$GR_GW_TOKEN2" "$GR_GW_ADMIN"; do
    n=$((n + 1))
    if grep -l -- "$k" "$tmp"/*.body "$tmp"/*.hdr "$tmp"/*.out "$tmp"/*.err \
           "$tmp"/*.log 2>/dev/null; then
        bad "secret #$n (keys 1-2, tokens 3-5) shows in the files above"
    else
        ok
    fi
done
finish
