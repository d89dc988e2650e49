#!/bin/sh
# run_batch.sh - batch mode as a quota of its own, end to end: the real
# mock (three projects, batch_tokens 1000 and batch_jobs 2 each), a real
# router with the same limits, and `gemroute batch`.  A 60-request input
# (2400 tokens) is refused whole with the split message; --split spreads
# it over the three pools, one job each, with no 429 at the mock; while
# the jobs run the gauges hold their tokens (status, Prometheus) and a
# further job that fits no pool is refused by gemroute, not sent; the mock
# clock moved past the jobs' end, the router notices (it polls) and every
# hold goes back to 0, a project that left the config included; results
# come back as JSONL.  Also the mock itself: 403 for another project's
# job, the 429 shape of a batch limit, an input file and its result file.
# Counts and outcomes, never durations.  Ends with "N passed, N failed".
#
#   BIN=bin tests/batch/run_batch.sh
set -u
BIN=${BIN:-bin}
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-batch.XXXXXX")
shm="/gr-batch-$$"
mock_pid=
KEY1=gr-batch-SECRET-one-1a2b3c
KEY2=gr-batch-SECRET-two-4d5e6f
KEY3=gr-batch-SECRET-three-7a8b9c
MODEL=gemini-2.5-flash
export GR_BATCH_TOKEN=batch-token-SECRET-beef0002
gw_pid=

cleanup() {
    if [ -n "$gw_pid" ]; then
        kill "$gw_pid" 2>/dev/null
        wait "$gw_pid" 2>/dev/null
    fi
    if [ -n "$mock_pid" ]; then
        kill "$mock_pid" 2>/dev/null
        wait "$mock_pid" 2>/dev/null
    fi
    remove_table "$shm"
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}

umask 077
# Jobs stay PENDING for 10 minutes of the mock's clock: they end only
# when the test moves that clock (POST /mock/clock), never by timing.
cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
batch_pending_ms = 600000;
batch_running_ms = 600000;
projects = (
  { name = "p1"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 1000; batch_tokens = 1000;
                 batch_jobs = 2; } ); },
  { name = "p2"; keys = ["$KEY2"];
    limits = ( { model = "$MODEL"; rpm = 1000; batch_tokens = 1000;
                 batch_jobs = 2; } ); },
  { name = "p3"; keys = ["$KEY3"];
    limits = ( { model = "$MODEL"; rpm = 1000; batch_tokens = 1000;
                 batch_jobs = 2; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { no "gemroute-mock did not start"; finish; }
mbase="http://127.0.0.1:$mport"

conf() {
    cat >"$tmp/r.conf" <<CONF
router = { shm = "$shm"; base_url = "$mbase"; window_ms = 1200;
           headroom = 1.0; state_file = "$tmp/state"; };
models = ( { name = "$MODEL"; rpm = 500; batch_tokens = 1000;
             batch_jobs = 2; } );
projects = ( { name = "p1"; key = "$KEY1"; },
             { name = "p2"; key = "$KEY2"; }$1 );
gateway = { listen = "127.0.0.1:0"; tokens = [ "env:GR_BATCH_TOKEN" ];
            queue_s = 5.0; };
CONF
}
conf ", { name = \"p3\"; key = \"$KEY3\"; }"
start_router "$tmp/r.conf" "$shm" "$tmp/router.log" ||
    { no "gemrouted did not start"; finish; }

# mstat PROJECT FIELD: the mock's batch counter of a project (0 if none).
mstat() {
    curl -s "$mbase/mock/stats" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(s['projects'][sys.argv[1]].get('batches', {}).get(sys.argv[2], 0))" \
        "$1" "$2"
}
# pools FIELD: the sum of a pool field over the model's pools.
pools() {
    "$BIN/gemroute" batch pools --json --shm "$shm" | python3 -c "
import json, sys
s = json.load(sys.stdin)
print(sum(p[sys.argv[1]] for p in s['pools'] if p['model'] == '$MODEL'))" \
        "$1"
}

# 60 requests of 160 text bytes: 40 tokens each, 2400 in all.
python3 - "$tmp/in.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(60):
        t = ("request %03d " % i).ljust(160, "x")
        line = {"contents": [{"parts": [{"text": t}]}]}
        if i % 2:
            line = {"key": "k%d" % i, "request": line}
        f.write(json.dumps(line) + "\n")
PY

# 1. Too big for any one pool: refused whole, with the split.
"$BIN/gemroute" batch submit --shm "$shm" --model "$MODEL" "$tmp/in.jsonl" \
    >"$tmp/big.out" 2>"$tmp/big.err"
check "a batch bigger than every pool is refused" '[ $? -eq 1 ]'
check "the refusal says by how much" \
    'grep -q "1400 tokens too many" "$tmp/big.err"'
check "the refusal suggests the split" \
    'grep -q "Split it into at least 3 jobs of at most 1000 tokens" "$tmp/big.err"'
check "nothing was sent for it" '[ "$(mstat p1 submitted)" = 0 ]'

# 2. --split: one job per project, no 429 at the mock.
"$BIN/gemroute" batch submit --shm "$shm" --model "$MODEL" --split \
    "$tmp/in.jsonl" >"$tmp/jobs.jsonl" 2>"$tmp/split.err"
check "--split submits" '[ $? -eq 0 ]'
check "three jobs" '[ "$(wc -l <"$tmp/jobs.jsonl")" -eq 3 ]'
check "one per project" \
    '[ "$(grep -o "\"project\": \"p[123]\"" "$tmp/jobs.jsonl" | sort -u | wc -l)" -eq 3 ]'
check "every request in a job" \
    '[ "$(python3 -c "import json,sys; print(sum(json.loads(l)[\"requests\"] for l in open(sys.argv[1])))" "$tmp/jobs.jsonl")" = 60 ]'
for p in p1 p2 p3; do
    check "no batch 429 at the mock for $p" '[ "$(mstat $p quota_429)" = 0 ]'
    check "the mock has $p's job" '[ "$(mstat $p unfinished)" = 1 ]'
done
check "the gauges hold the 2400 tokens" '[ "$(pools tokens_used)" = 2400 ]'
check "the gauges hold three jobs" '[ "$(pools jobs_used)" = 3 ]'
"$BIN/gemroute" status --shm "$shm" >"$tmp/status.txt"
check "status shows the batch pools" \
    'grep -q "^batch: 3 jobs unfinished" "$tmp/status.txt"'
check "status shows a full pool" \
    'grep -Eq "p[12] +$MODEL +1000/1000 +1/2" "$tmp/status.txt"'
"$BIN/gemroute" status --shm "$shm" --prometheus >"$tmp/prom.txt"
check "Prometheus has the batch gauges" \
    '[ "$(grep -c "^gemroute_batch_tokens{" "$tmp/prom.txt")" -eq 3 ]'

# 2b. A router restart keeps the holds and the jobs (the segment stays).
stop_router
start_router "$tmp/r.conf" "$shm" "$tmp/router.log" ||
    { no "gemrouted did not start again"; finish; }
check "after a restart the gauges still hold 2400 tokens" \
    '[ "$(pools tokens_used)" = 2400 ] && [ "$(pools jobs_used)" = 3 ]'
check "the restarted router adopted the batch record" \
    'grep -q "\.bj: adopted, holds and jobs kept" "$tmp/router.log"'
# ... and a reboot (the segment gone) finds them in STATE_FILE.bj.
stop_router
rm -f "/dev/shm$shm.bj"
start_router "$tmp/r.conf" "$shm" "$tmp/router.log" ||
    { no "gemrouted did not start after the reboot"; finish; }
check "after a reboot the jobs come back from the file" \
    'grep -q "batch file .*state.bj: restored 3 jobs of 3" "$tmp/router.log"'
check "after a reboot the gauges hold 2400 tokens" \
    '[ "$(pools tokens_used)" = 2400 ] && [ "$(pools jobs_used)" = 3 ]'

# 3. No pool has room for 800 more tokens: gemroute refuses, sends nothing.
head -n 20 "$tmp/in.jsonl" >"$tmp/twenty.jsonl"
"$BIN/gemroute" batch submit --shm "$shm" --model "$MODEL" \
    "$tmp/twenty.jsonl" >/dev/null 2>"$tmp/full.err"
check "a job with no room now is refused" '[ $? -eq 1 ]'
check "the refusal says no pool has room" 'grep -q "has room" "$tmp/full.err"'
check "it never reached the mock" \
    '[ "$(($(mstat p1 submitted) + $(mstat p2 submitted) + $(mstat p3 submitted)))" = 3 ]'

"$BIN/gemroute" batch status --shm "$shm" <"$tmp/jobs.jsonl" \
    >"$tmp/state1.jsonl" 2>"$tmp/state1.err"
check "batch status reads every job" '[ "$(grep -c PENDING "$tmp/state1.jsonl")" -eq 3 ]'

# 4. p3 leaves the config; its job is still tracked.
conf ""
kill -HUP "$router_pid"
for _ in $(seq 200); do
    "$BIN/gemroute" batch pools --json --shm "$shm" |
        grep -q '"project": "p3", "model": "[^"]*", "configured": false' && break
    sleep 0.05
done
check "p3's pool is no longer configured" \
    '"$BIN/gemroute" batch pools --json --shm "$shm" | grep -q "\"project\": \"p3\", \"model\": \"$MODEL\", \"configured\": false, \"tokens_used\": 400"'

# 5. The jobs end (the mock's clock moves an hour): the router notices.
curl -s -X POST -d '{"offset_s": 3600}' "$mbase/mock/clock" >/dev/null
for _ in $(seq 400); do
    [ "$(pools tokens_used)" = 0 ] && [ "$(pools jobs_used)" = 0 ] && break
    sleep 0.05
done
check "every hold is given back" '[ "$(pools tokens_used)" = 0 ]'
check "no job is held" '[ "$(pools jobs_used)" = 0 ]'
check "three jobs finished" '[ "$(pools finished)" = 3 ]'
check "the router polled" 'grep -q "is given back" "$tmp/router.log"'
check "status says no job is unfinished" \
    '"$BIN/gemroute" status --shm "$shm" | grep -q "^batch: 0 jobs unfinished"'
# p3 comes back (its job's results are read through the table).
conf ", { name = \"p3\"; key = \"$KEY3\"; }"
kill -HUP "$router_pid"
for _ in $(seq 200); do
    "$BIN/gemroute" batch pools --json --shm "$shm" |
        grep -q '"project": "p3", "model": "[^"]*", "configured": true' && break
    sleep 0.05
done
check "p3 finds its pool again" \
    '"$BIN/gemroute" batch pools --json --shm "$shm" | grep -q "\"project\": \"p3\", \"model\": \"$MODEL\", \"configured\": true, \"tokens_used\": 0"'
for _ in $(seq 200); do
    "$BIN/gemroute" status --shm "$shm" --json | grep -q '"name": "p3"' && break
    sleep 0.05
done
"$BIN/gemroute" batch results --shm "$shm" <"$tmp/jobs.jsonl" \
    >"$tmp/results.jsonl" 2>"$tmp/results.err"
check "results: one line per request" \
    '[ "$(grep -c "\"response\"" "$tmp/results.jsonl")" -eq 60 ]'
check "results keep the input keys" \
    'grep -q "\"key\": *\"k59\"" "$tmp/results.jsonl" && grep -q "\"key\": *\"1\"" "$tmp/results.jsonl"'

# 5b. A disabled project's pool is passed over: the job goes elsewhere.
"$BIN/gemroute" disable --shm "$shm" p1 >/dev/null 2>&1
head -n 5 "$tmp/in.jsonl" >"$tmp/five.jsonl"
"$BIN/gemroute" batch submit --shm "$shm" --model "$MODEL" \
    "$tmp/five.jsonl" >"$tmp/five.out" 2>"$tmp/five.err"
check "a job with p1 disabled is submitted" '[ $? -eq 0 ]'
check "not on the disabled project" \
    'grep -q "\"project\": \"p[23]\"" "$tmp/five.out"'
"$BIN/gemroute" enable --shm "$shm" p1 >/dev/null 2>&1
curl -s -X POST -d '{"offset_s": 5000}' "$mbase/mock/clock" >/dev/null
for _ in $(seq 400); do
    [ "$(pools tokens_used)" = 0 ] && break
    sleep 0.05
done
check "its hold is given back too" '[ "$(pools tokens_used)" = 0 ]'

# 6. The mock alone: ownership, the 429 shape, an input file.
B='{"batch":{"inputConfig":{"requests":{"requests":[{"request":{"contents":[{"parts":[{"text":"abcdabcd"}]}]}}]}}}}'
sub() {
    curl -s -o "$tmp/$2.json" -w '%{http_code}' -H "x-goog-api-key: $1" \
        -d "$B" "$mbase/v1beta/models/$MODEL:batchGenerateContent"
}
check "the mock takes a job" '[ "$(sub "$KEY1" j1)" = 200 ]'
id=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$tmp/j1.json")
check "another project gets 403" \
    '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "x-goog-api-key: $KEY2" "$mbase/v1beta/$id")" = 403 ]'
check "a second job fits batch_jobs = 2" '[ "$(sub "$KEY1" j2)" = 200 ]'
check "a third is 429" '[ "$(sub "$KEY1" j3)" = 429 ]'
check "the 429 is Google's QuotaFailure" \
    'grep -q "BatchConcurrentJobsPerProjectPerModel" "$tmp/j3.json" && grep -q "RESOURCE_EXHAUSTED" "$tmp/j3.json"'
printf '{"key":"a","request":{"contents":[{"parts":[{"text":"abcd"}]}]}}\n{"key":"b","request":{"contents":[{"parts":[{"text":"abcd"}]}]}}\n' >"$tmp/f.jsonl"
size=$(wc -c <"$tmp/f.jsonl")
url=$(curl -s -D - -o /dev/null -H "x-goog-api-key: $KEY2" \
    -H 'X-Goog-Upload-Protocol: resumable' -H 'X-Goog-Upload-Command: start' \
    -H "X-Goog-Upload-Header-Content-Length: $size" \
    -H 'Content-Type: application/json' -d '{"file":{"display_name":"in"}}' \
    "$mbase/upload/v1beta/files" | sed -n 's/^x-goog-upload-url: *//Ip' | tr -d '\r')
curl -s -H "x-goog-api-key: $KEY2" -H 'X-Goog-Upload-Command: upload, finalize' \
    -H 'X-Goog-Upload-Offset: 0' --data-binary @"$tmp/f.jsonl" "$url" >"$tmp/f.json"
fname=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['file']['name'])" "$tmp/f.json")
B="{\"batch\":{\"inputConfig\":{\"fileName\":\"$fname\"}}}"
check "another project's input file is 403" '[ "$(sub "$KEY3" f3)" = 403 ]'
check "the owner's input file makes a job" '[ "$(sub "$KEY2" f2)" = 200 ]'
fid=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$tmp/f2.json")
curl -s -X POST -d '{"offset_s": 7200}' "$mbase/mock/clock" >/dev/null
curl -s -H "x-goog-api-key: $KEY2" "$mbase/v1beta/$fid" >"$tmp/f2done.json"
rf=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['response']['responsesFile'])" "$tmp/f2done.json")
check "a file job's results are a file" '[ -n "$rf" ]'
curl -s -H "x-goog-api-key: $KEY2" "$mbase/download/v1beta/$rf:download?alt=media" >"$tmp/rf.jsonl"
check "the result file has a line per input line" \
    '[ "$(grep -c "\"response\"" "$tmp/rf.jsonl")" -eq 2 ] && grep -q "\"key\": \"b\"" "$tmp/rf.jsonl"'
check "another project cannot download it" \
    '[ "$(curl -s -o /dev/null -w "%{http_code}" -H "x-goog-api-key: $KEY1" "$mbase/download/v1beta/$rf:download?alt=media")" = 403 ]'

# 7. Through the gateway with the official SDK: six jobs of 400 tokens
# fill the three pools (two each), a seventh gets the gateway's 429 (and
# never reaches the mock); the jobs end, the holds come back, the SDK
# reads every job SUCCEEDED with its inline results.
[ -d tests/node_modules/@google/genai ] || tests/sdk_deps.sh >&2
if [ -d tests/node_modules/@google/genai ]; then
    "$BIN/gemroute-gateway" -c "$tmp/r.conf" --foreground >"$tmp/gw.out" \
        2>>"$tmp/gw.log" &
    gw_pid=$!
    gport=$(port_of "$tmp/gw.out")
    [ -n "$gport" ] || { no "gemroute-gateway did not start"; finish; }
    gbase="http://127.0.0.1:$gport"
    sub0=$(($(mstat p1 submitted) + $(mstat p2 submitted) + $(mstat p3 submitted)))
    q0=$(($(mstat p1 quota_429) + $(mstat p2 quota_429) + $(mstat p3 quota_429)))
    s0="$(mstat p1 submitted) $(mstat p2 submitted) $(mstat p3 submitted)"
    GW_BASE=$gbase GW_TOKEN=$GR_BATCH_TOKEN GW_MODEL=$MODEL N=6 R=10 \
        PHASE=create node tests/batch/sdk_batch.mjs >"$tmp/sdk1.out" \
        2>"$tmp/sdk1.err"
    check "SDK create run ($(tail -n 2 "$tmp/sdk1.err" | tr '\n' ' '))" \
        '[ $? -eq 0 ]'
    check "SDK: six jobs created" 'grep -qx "ok create x6" "$tmp/sdk1.out"'
    check "SDK: the seventh is the gateway's 429" \
        'grep -qx "ok no room: 429" "$tmp/sdk1.out"'
    sub1=$(($(mstat p1 submitted) + $(mstat p2 submitted) + $(mstat p3 submitted)))
    check "SDK: the mock saw six jobs, not seven" '[ $((sub1 - sub0)) -eq 6 ]'
    check "SDK: two on each project" '[ "$(mstat p1 submitted) $(mstat p2 submitted) $(mstat p3 submitted)" = "$(echo $s0 | awk "{print \$1+2, \$2+2, \$3+2}")" ]'
    check "SDK: no 429 at the mock" \
        '[ $(($(mstat p1 quota_429) + $(mstat p2 quota_429) + $(mstat p3 quota_429))) -eq $q0 ]'
    check "SDK: the gauges hold 2400 tokens" '[ "$(pools tokens_used)" = 2400 ]'
    curl -s -X POST -d '{"offset_s": 10800}' "$mbase/mock/clock" >/dev/null
    for _ in $(seq 400); do
        [ "$(pools tokens_used)" = 0 ] && [ "$(pools jobs_used)" = 0 ] && break
        sleep 0.05
    done
    check "SDK: every hold is given back" \
        '[ "$(pools tokens_used)" = 0 ] && [ "$(pools jobs_used)" = 0 ]'
    GW_BASE=$gbase GW_TOKEN=$GR_BATCH_TOKEN GW_MODEL=$MODEL N=6 R=10 \
        JOBS="$(sed -n 's/^job //p' "$tmp/sdk1.out" | tr '\n' ' ')" \
        PHASE=get node tests/batch/sdk_batch.mjs >"$tmp/sdk2.out" \
        2>"$tmp/sdk2.err"
    check "SDK get run ($(tail -n 2 "$tmp/sdk2.err" | tr '\n' ' '))" \
        '[ $? -eq 0 ]'
    check "SDK: every job SUCCEEDED with its results" \
        'grep -qx "ok get x6" "$tmp/sdk2.out"'
    # An input file uploaded through the gateway: the job goes to the
    # file's project, holding the file's size / 4 tokens.
    printf '{"key":"x","request":{"contents":[{"parts":[{"text":"gateway file job"}]}]}}\n' >"$tmp/gf.jsonl"
    gsize=$(wc -c <"$tmp/gf.jsonl" | tr -d ' ')
    gurl=$(curl -s -D - -o /dev/null -H "x-goog-api-key: $GR_BATCH_TOKEN" \
        -H 'X-Goog-Upload-Protocol: resumable' \
        -H 'X-Goog-Upload-Command: start' \
        -H "X-Goog-Upload-Header-Content-Length: $gsize" \
        -H 'Content-Type: application/json' -d '{"file":{"display_name":"in"}}' \
        "$gbase/upload/v1beta/files" | sed -n 's/^x-goog-upload-url: *//Ip' |
        tr -d '\r')
    curl -s -H "x-goog-api-key: $GR_BATCH_TOKEN" \
        -H 'X-Goog-Upload-Command: upload, finalize' \
        -H 'X-Goog-Upload-Offset: 0' --data-binary @"$tmp/gf.jsonl" \
        "$gurl" >"$tmp/gf.json"
    gfile=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['file']['name'])" "$tmp/gf.json" 2>/dev/null)
    gowner=$("$BIN/gemroute" resources --shm "$shm" |
        awk -v n="$gfile" '$1 == n { print $2 }')
    check "gateway: the input file is recorded ($gfile on $gowner)" \
        '[ -n "$gowner" ]'
    curl -s -D "$tmp/gb.hdr" -o "$tmp/gb.json" -w '%{http_code}' \
        -H "x-goog-api-key: $GR_BATCH_TOKEN" \
        -d "{\"batch\":{\"inputConfig\":{\"fileName\":\"$gfile\"}}}" \
        "$gbase/v1beta/models/$MODEL:batchGenerateContent" >"$tmp/gb.code"
    check "gateway: a file job is submitted" '[ "$(cat "$tmp/gb.code")" = 200 ]'
    check "gateway: on the file's project" \
        'grep -qi "^x-gemroute-project: $gowner" "$tmp/gb.hdr"'
    check "gateway: holding the file's size / 4 tokens" \
        '[ "$(pools tokens_used)" = $(((gsize + 3) / 4)) ]'
    curl -s -X POST -d '{"offset_s": 14400}' "$mbase/mock/clock" >/dev/null
    for _ in $(seq 400); do
        [ "$(pools tokens_used)" = 0 ] && break
        sleep 0.05
    done
    check "gateway: the file job's hold is given back" \
        '[ "$(pools tokens_used)" = 0 ]'
else
    no "tests/node_modules is missing: run tests/sdk_deps.sh"
fi

check "no key or token in the logs" \
    '! grep -q SECRET "$tmp/router.log" "$tmp/gw.log" "$tmp/sdk1.out" "$tmp/sdk1.err" 2>/dev/null'

stop_router
finish
