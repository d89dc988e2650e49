#!/bin/bash
# run_spend_gateway.sh - spend caps through gemroute-gateway (client/
# forward.c): each call reserves its worst case from the request's own
# maxOutputTokens (the model's max_output alone would not fit the cap),
# settles at the cost its usageMetadata gives, and once the cap cannot
# hold another call the gateway answers 429 RESOURCE_EXHAUSTED naming the
# cap, without calling Google.  Bounded by counts, not by time.
set -u
. "$(dirname "$0")/../lib.sh"
export GR_GW_TOKEN=spend-gw-SECRET-token-77
KEY=spend-gw-SECRET-key-0001

dir=$(mktemp -d /tmp/grspendgw.XXXXXX)
shm="/grtest-spendgw-$$"
mock_pid=""
gw_pid=""
cleanup() {
    kill $gw_pid $mock_pid 2>/dev/null
    wait 2>/dev/null
    rm -rf "$dir"
    remove_table "$shm"
}
umask 077

cat >"$dir/mock.conf" <<CONF
projects = ( { name = "solo"; keys = ["$KEY"];
  limits = ( { model = "m"; rpm = 100; tpm = 1000000; } ); } );
CONF
start_mock "$dir/mock.conf" "$dir" --listen 127.0.0.1:0
mport=$mock_port
# 100 and 200 micro-USD an input and an output token; a cap of $0.05.
# Without the request's maxOutputTokens a call would reserve 65,536
# output tokens ($13.11): none would ever fit.
cat >"$dir/r.conf" <<CONF
router = { shm = "$shm"; base_url = "http://127.0.0.1:$mport";
           state_file = "state"; };
models = ( { name = "m"; rpm = 100; tpm = 1000000; } );
projects = ( { name = "solo"; key = "$KEY"; } );
pricing = { models = ( { name = "m"; input = 100; output = 200; } ); };
spend = { project_day = 0.05; };
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_GW_TOKEN" ]; };
CONF
start_router "$dir/r.conf" "$shm" "$dir/router.log" --unlink-on-exit
"$BIN/gemroute-gateway" -c "$dir/r.conf" --foreground >"$dir/gw.out" \
    2>"$dir/gw.log" &
gw_pid=$!
port=$(port_of "$dir/gw.out")
check "the gateway started" '[ -n "$port" ]'
url="http://127.0.0.1:$port/v1beta/models/m:generateContent"
body='{"contents":[{"parts":[{"text":"hello spend cap"}]}],"generationConfig":{"maxOutputTokens":50}}'

cost_of() {     # micro-USD of an answer's usageMetadata
    python3 -c "
import json, sys
u = json.load(open(sys.argv[1])).get('usageMetadata', {})
print(u.get('promptTokenCount', 0) * 100 +
      (u.get('candidatesTokenCount', 0) + u.get('thoughtsTokenCount', 0)) * 200)" "$1"
}

spent=0
ok_calls=0
last=""
for i in $(seq 40); do
    last=$(curl -s -o "$dir/a$i.json" -w '%{http_code}' \
        -H "x-goog-api-key: $GR_GW_TOKEN" -d "$body" "$url")
    [ "$last" = 200 ] || break
    spent=$((spent + $(cost_of "$dir/a$i.json")))
    ok_calls=$((ok_calls + 1))
done
check "calls went through before the cap ($ok_calls)" \
    '[ "$ok_calls" -ge 1 ] && [ "$ok_calls" -lt 40 ]'
check "then 429 ($last)" '[ "$last" = 429 ]'
check "RESOURCE_EXHAUSTED" 'grep -q RESOURCE_EXHAUSTED "$dir/a$i.json"'
check "the answer names the cap and the project" \
    "grep -q \"spend cap reached: project 'solo'\" \"$dir/a$i.json\""
counted=$("$BIN/gemroute" status --shm "$shm" --json | python3 -c "
import json, sys
print(round(json.load(sys.stdin)['spend']['projects']['solo']['today_usd'] * 1e6))")
check "the day counted the real costs ($counted = $spent)" \
    '[ "$counted" = "$spent" ]'
requests=$(curl -s "http://127.0.0.1:$mport/mock/stats" | python3 -c "
import json, sys
print(json.load(sys.stdin)['projects']['solo']['models']['m']['window']['requests'])")
check "the refused call never reached Google ($requests = $ok_calls)" \
    '[ "$requests" = "$ok_calls" ]'
check "no key in any output" '! grep -rq SECRET "$dir"/*.out "$dir"/*.log'

finish
