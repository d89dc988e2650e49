#!/bin/sh
# run_fallback_cache.sh - model fallback chains and the shared response
# cache end to end: the real mock, a real gemrouted (2 projects, a pro
# model with one request a day on each, a flash model with room, an
# embedding model), the library (tests/e2e/fb_cache_driver.c) and the
# gateway (curl).  Counts at the mock (/mock/stats) and in the table
# (gemroute status --prometheus, gemroute cache stats); never durations.
# Ends with "N passed, N failed" for tests/run.sh.
#
#   BUILD=build/default BIN=bin tests/e2e/run_fallback_cache.sh
set -u
. "$(dirname "$0")/../lib.sh"
BUILD=${BUILD:-build/default}
drv="$BUILD/tests/fb_cache_driver"
gr="$BIN/gemroute"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-fbc.XXXXXX")
shm="/gr-fbc-$$"
mock_pid=
gw_pid=
KEY1=gr-fbc-SECRET-one-3e1f0a
KEY2=gr-fbc-SECRET-two-b7c2d9
export GR_GW_TOKEN=gw-token-SECRET-fbc0ffee
PRO=gemini-2.5-pro
FLASH=gemini-2.5-flash
EMB=gemini-embedding-001

# lib.sh stops the router at exit, then calls this.
cleanup() {
    for p in $gw_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    chmod -R u+rwx "$tmp" 2>/dev/null
    rm -rf "$tmp"
}
trap 'exit 1' INT TERM

# This script's checks are commands with arguments, not lib.sh's strings
# to eval: check NAME COMMAND [ARG...].
check() {
    name=$1
    shift
    if "$@"; then ok; else no "$name"; fi
}
has() { grep -q -- "$2" "$tmp/$1"; }
count_of() { grep -c -- "$2" "$tmp/$1"; }

# mock_total: requests.total at the mock; mock_served PROJECT MODEL
mock_stats() {
    python3 -c "
import urllib.request, sys
sys.stdout.write(urllib.request.urlopen(
    'http://127.0.0.1:$mport/mock/stats').read().decode())" >"$tmp/stats.json"
}
mock_total() {
    mock_stats
    python3 -c "import json; print(json.load(open('$tmp/stats.json'))['requests']['total'])"
}
mock_served() {
    mock_stats
    python3 -c "
import json
j = json.load(open('$tmp/stats.json'))
print(sum(p['models'].get('$1', {}).get('served', 0)
          for p in j['projects'].values()))"
}
mock_reset() {
    python3 -c "
import urllib.request
urllib.request.urlopen(urllib.request.Request(
    'http://127.0.0.1:$mport/mock/reset', data=b'', method='POST')).read()"
}

umask 077
cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
projects = (
  { name = "one"; keys = ["$KEY1"];
    limits = ( { model = "$PRO"; rpm = 100; tpm = 1000000; rpd = 1; },
               { model = "$FLASH"; rpm = 100; tpm = 1000000; },
               { model = "$EMB"; rpm = 3000; tpm = 10000000; } ); },
  { name = "two"; keys = ["$KEY2"];
    limits = ( { model = "$PRO"; rpm = 100; tpm = 1000000; rpd = 1; },
               { model = "$FLASH"; rpm = 100; tpm = 1000000; },
               { model = "$EMB"; rpm = 3000; tpm = 10000000; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { no "gemroute-mock did not start"; finish; }

# write_conf CACHE_DIR TTL_S
write_conf() {
    cat >"$tmp/router.conf.new" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           headroom = 1.0; max_models = 4; batch_calls = 1; };
models = ( { name = "$PRO"; rpm = 100; tpm = 1000000; rpd = 1;
             fallback = [ "$FLASH" ]; },
           { name = "$FLASH"; rpm = 100; tpm = 1000000; },
           { name = "$EMB"; rpm = 3000; tpm = 10000000; } );
projects = ( { name = "one"; key = "$KEY1"; },
             { name = "two"; key = "$KEY2"; } );
cache = { path = "$1"; ttl_s = $2; max_bytes = 16777216; };
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_GW_TOKEN" ];
            queue_s = 1.0; };
CONF
    mv "$tmp/router.conf.new" "$tmp/router.conf"
}
generation() {
    "$gr" status --shm "$shm" --json 2>/dev/null |
        sed -n 's/.*"config_generation": \([0-9]*\).*/\1/p' | head -1
}
# reload CACHE_DIR TTL_S: rewrite the config, wait for the router to take it
reload() {
    g0=$(generation)
    write_conf "$1" "$2"
    kill -HUP "$router_pid"
    i=0
    while [ "$(generation)" = "$g0" ] && [ $i -lt 400 ]; do
        sleep 0.02
        i=$((i + 1))
    done
    [ "$(generation)" != "$g0" ]
}

write_conf "$tmp/cache" 3600
"$BIN/gemrouted" --check -c "$tmp/router.conf" >"$tmp/check.out" 2>&1
check "gemrouted --check accepts fallback and cache" test $? -eq 0

# A chain naming an unknown model is refused as FILE:LINE.
sed 's/fallback = \[ "'"$FLASH"'" \]/fallback = [ "gemini-9" ]/' \
    "$tmp/router.conf" >"$tmp/bad.conf"
"$BIN/gemrouted" --check -c "$tmp/bad.conf" >"$tmp/bad.out" 2>&1
check "a chain naming an unknown model is refused" \
    has bad.out "bad.conf:4: model '$PRO' falls back to 'gemini-9', which is not in 'models'"

start_router "$tmp/router.conf" "$shm" "$tmp/router.log" --unlink-on-exit ||
    { no "gemrouted did not start"; finish; }
"$BIN/gemroute-gateway" -c "$tmp/router.conf" --foreground \
    >"$tmp/gw.out" 2>"$tmp/gw.log" &
gw_pid=$!
gport=$(port_of "$tmp/gw.out")
[ -n "$gport" ] || { no "gemroute-gateway did not start"; finish; }
gbase="http://127.0.0.1:$gport/v1beta/models"
c() {
    name=$1
    shift
    curl -s -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code}' \
        -H "x-goog-api-key: $GR_GW_TOKEN" -H 'Content-Type: application/json' \
        "$@" >"$tmp/$name.code" 2>"$tmp/$name.err"
}
code() { cat "$tmp/$1.code"; }

# ---- fallback ------------------------------------------------------------

# The pro model's day: one request on each project, then it is spent.
"$drv" gen "$shm" "$PRO" never 1 5 2 >"$tmp/pro.out" 2>"$tmp/pro.err"
check "two calls on pro while its day lasts" \
    test "$(count_of pro.out "^rc ok model $PRO cached 0 attempts 1")" -eq 2

# Allowed: answered by flash at once, nothing asked of pro.
"$drv" gen "$shm" "$PRO" allow 1 10 3 >"$tmp/allow.out" 2>"$tmp/allow.err"
check "fallback allowed: 3 calls answered by flash" \
    test "$(count_of allow.out "^rc ok model $FLASH cached 0 attempts 1")" -eq 3

# Not allowed (never, and the model's default, which is off): each waits
# to its queue deadline and fails saying why.
"$drv" gen "$shm" "$PRO" never 0.5 1.5 1 >"$tmp/never.out" 2>&1
"$drv" gen "$shm" "$PRO" default 0.5 1.5 1 >>"$tmp/never.out" 2>&1
check "fallback not allowed: deadline, nothing sent" \
    test "$(count_of never.out "^rc deadline model $PRO cached 0 attempts 0")" -eq 2
check "fallback not allowed: the error says so" \
    test "$(count_of never.out "no room for $PRO on any project before the queue deadline.*falling back to $FLASH was not allowed")" -eq 2

# Through the gateway: the header allows it; the answer names the model.
hello='{"contents":[{"parts":[{"text":"hello fallback"}]}]}'
c gw_allow -H 'x-gemroute-fallback: allow' -d "$hello" \
    "$gbase/$PRO:generateContent"
check "gateway, fallback allowed: 200" test "$(code gw_allow)" = 200
check "gateway: x-gemroute-model names flash" \
    has gw_allow.hdr "^x-gemroute-model: $FLASH"
c gw_never -H 'x-gemroute-queue-s: 0.5' -d "$hello" \
    "$gbase/$PRO:generateContent"
check "gateway, no fallback header: 429 when pro is spent" \
    test "$(code gw_never)" = 429

# The counters match: 4 calls pro -> flash, 3 denied; the mock agrees.
"$gr" status --shm "$shm" --prometheus >"$tmp/prom.out" 2>&1
check "prometheus: 4 fallbacks pro -> flash" \
    has prom.out "^gemroute_fallbacks_total{from=\"$PRO\",to=\"$FLASH\"} 4$"
check "prometheus: 3 calls not allowed to fall back" \
    has prom.out "^gemroute_fallback_denied_total 3$"
check "the mock served pro twice" test "$(mock_served "$PRO")" -eq 2
check "the mock served flash 4 times" test "$(mock_served "$FLASH")" -eq 4
"$gr" status --shm "$shm" >"$tmp/table.out" 2>&1
check "status: the fallback pair" has table.out "$PRO -> $FLASH 4"

# ---- the cache -------------------------------------------------------------

mock_reset
body='{"content":{"parts":[{"text":"the same words, a thousand times"}]}}'
"$drv" embed "$shm" "$EMB" 8 1000 "$body" >"$tmp/emb.out" 2>"$tmp/emb.err"
check "1000 embeddings from 8 processes: all ok" \
    has emb.out "^ok 1000 hits 999 failed 0$"
check "... and the mock saw one" test "$(mock_total)" -eq 1
check "the cache directory was made 0700" \
    test "$(stat -c %a "$tmp/cache")" = 700

# Key order and whitespace do not matter; a changed body misses.
same='{ "content" : { "parts" : [ { "text" : "the same words, a thousand times" } ] } }'
"$drv" embed "$shm" "$EMB" 1 1 "$same" >"$tmp/same.out" 2>&1
check "canonical form: a hit" has same.out "^ok 1 hits 1 failed 0$"
"$drv" embed "$shm" "$EMB" 1 1 \
    '{"content":{"parts":[{"text":"other words"}]}}' >"$tmp/other.out" 2>&1
check "a changed body misses" has other.out "^ok 1 hits 0 failed 0$"
check "... and reaches the mock" test "$(mock_total)" -eq 2

# countTokens: the second is a hit with the same count.
cbody='{"contents":[{"parts":[{"text":"count these words"}]}]}'
"$drv" count "$shm" "$FLASH" "$cbody" >"$tmp/count.out" 2>&1
"$drv" count "$shm" "$FLASH" "$cbody" >>"$tmp/count.out" 2>&1
check "countTokens cached, same count" \
    test "$(sed -n 's/^rc ok cached 1 tokens \([0-9]*\)$/\1/p' "$tmp/count.out")" = \
         "$(sed -n 's/^rc ok cached 0 tokens \([0-9]*\)$/\1/p' "$tmp/count.out")"
t0=$(mock_total)

# The gateway shares the cache: a hit, marked, nothing upstream.
c gw_emb -d "$body" "$gbase/$EMB:embedContent"
check "gateway embed: 200" test "$(code gw_emb)" = 200
check "gateway embed: x-gemroute-cache: hit" has gw_emb.hdr "^x-gemroute-cache: hit"
check "gateway embed: nothing upstream" test "$(mock_total)" -eq "$t0"
# generateContent at temperature 0 is cached; at another temperature not.
g0='{"contents":[{"parts":[{"text":"deterministic"}]}],"generationConfig":{"temperature":0}}'
c gw_t0a -d "$g0" "$gbase/$FLASH:generateContent"
c gw_t0b -d "$g0" "$gbase/$FLASH:generateContent"
check "temperature 0: the second is a hit" \
    has gw_t0b.hdr "^x-gemroute-cache: hit"
g1='{"contents":[{"parts":[{"text":"creative"}]}],"generationConfig":{"temperature":1}}'
c gw_t1a -d "$g1" "$gbase/$FLASH:generateContent"
c gw_t1b -d "$g1" "$gbase/$FLASH:generateContent"
check "temperature 1: not cached" has gw_t1b.hdr "^x-gemroute-cache: miss"

# stats and clear.
"$gr" cache stats --shm "$shm" >"$tmp/cstats.out" 2>&1
check "cache stats: entries" has cstats.out "^entries: [1-9]"
check "cache stats: hit rate" has cstats.out "^hit rate: "
"$gr" status --shm "$shm" --prometheus >"$tmp/prom2.out" 2>&1
check "prometheus: cache hits" \
    has prom2.out '^gemroute_cache_lookups_total{result="hit"} 100[0-9]$'
check "prometheus: hit ratio" has prom2.out "^gemroute_cache_hit_ratio 0\.9"
"$gr" cache clear --shm "$shm" >"$tmp/clear.out" 2>&1
check "cache clear" has clear.out "^removed [1-9][0-9]* entries$"
t0=$(mock_total)
"$drv" embed "$shm" "$EMB" 1 1 "$body" >"$tmp/cleared.out" 2>&1
check "after clear: a miss" has cleared.out "^ok 1 hits 0 failed 0$"
check "... that reaches the mock" test "$(mock_total)" -eq $((t0 + 1))

# Expiry: one second to live.
check "reload with ttl_s = 1" reload "$tmp/cache" 1
exp='{"content":{"parts":[{"text":"short-lived"}]}}'
"$drv" embed "$shm" "$EMB" 1 1 "$exp" >"$tmp/exp1.out" 2>&1
"$drv" embed "$shm" "$EMB" 1 1 "$exp" >>"$tmp/exp1.out" 2>&1
check "fresh: a hit" test "$(count_of exp1.out "^ok 1 hits 1 failed 0$")" -eq 1
sleep 2.2
"$drv" embed "$shm" "$EMB" 1 1 "$exp" >"$tmp/exp2.out" 2>&1
check "expired: a miss" has exp2.out "^ok 1 hits 0 failed 0$"

# A foreign-owned directory: refused, calls go through.
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
    mkdir -m 700 "$tmp/foreign" && chown nobody "$tmp/foreign"
    check "reload with a foreign cache directory" reload "$tmp/foreign" 3600
    t0=$(mock_total)
    "$drv" embed "$shm" "$EMB" 2 4 "$body" >"$tmp/foreign.out" \
        2>"$tmp/foreign.err"
    check "foreign: calls go through" has foreign.out "^ok 4 hits 0 failed 0$"
    check "foreign: all 4 upstream" test "$(mock_total)" -eq $((t0 + 4))
    check "foreign: refused with a sentence" \
        has foreign.err "cache directory $tmp/foreign belongs to uid [0-9]*, not to this user: refused"
    "$gr" cache stats --shm "$shm" >"$tmp/fstats.out" 2>&1
    check "foreign: cache stats says refused (exit 1)" test $? -eq 1
    check "foreign: cache stats prints why" has fstats.out "^refused: .*belongs to uid"
else
    echo "skip: foreign-owned directory (needs root and user nobody)" >&2
fi

# A corrupted store: refused, calls go through.
mkdir -m 700 "$tmp/corrupt"
head -c 65536 /dev/urandom >"$tmp/corrupt/data.mdb"
check "reload with a corrupted cache" reload "$tmp/corrupt" 3600
t0=$(mock_total)
"$drv" embed "$shm" "$EMB" 2 4 "$body" >"$tmp/corrupt.out" 2>"$tmp/corrupt.err"
check "corrupted: calls go through" has corrupt.out "^ok 4 hits 0 failed 0$"
check "corrupted: all 4 upstream" test "$(mock_total)" -eq $((t0 + 4))
check "corrupted: refused with a sentence" \
    has corrupt.err "cache $tmp/corrupt cannot be used (.*): damaged or not an LMDB cache"

# No key or token anywhere.
for k in "$KEY1" "$KEY2" "$GR_GW_TOKEN"; do
    if grep -l -- "$k" "$tmp"/*.out "$tmp"/*.err "$tmp"/*.log \
        "$tmp"/*.hdr "$tmp"/*.body 2>/dev/null; then
        no "a secret printed in the files above"
    else
        ok
    fi
done
finish
