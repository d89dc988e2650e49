#!/bin/sh
# run_affinity.sh - things that live in one project, end to end: the real
# mock (three projects), a real router and the gateway.  A file uploaded
# through the gateway (the resumable protocol) is recorded with the
# project that holds it; every generateContent naming it goes there and
# nowhere else (zero 403s at the mock); a request naming files of two
# projects is a 400 before anything is sent; the record survives a
# router restart that keeps the table and one that recreates it (from
# the state file); GET/DELETE go to the owner and a delete forgets it; the
# @google/genai SDK uploads and uses a file 50 times over 3 projects.
# Counts, never durations.  Ends with "N passed, N failed".
#
#   BIN=bin tests/affinity/run_affinity.sh
set -u
# port_of and start_mock (its own check and finish are defined below)
. "$(dirname "$0")/../lib.sh"
root=$(pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gr-aff.XXXXXX")
shm="/gr-aff-$$"
mock_pid=
router_pid=
gw_pid=
passed=0
failed=0
KEY1=gr-aff-SECRET-one-1a2b3c
KEY2=gr-aff-SECRET-two-4d5e6f
KEY3=gr-aff-SECRET-three-7a8b9c
export GR_AFF_TOKEN=aff-token-SECRET-beef0001
MODEL=gemini-2.5-flash

cleanup() {
    for p in $gw_pid $router_pid $mock_pid; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    remove_table "$shm"
    [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
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

umask 077
cat >"$tmp/mock.conf" <<MOCK
listen = "127.0.0.1:0";
window_ms = 60000;
projects = (
  { name = "p1"; keys = ["$KEY1"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); },
  { name = "p2"; keys = ["$KEY2"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); },
  { name = "p3"; keys = ["$KEY3"];
    limits = ( { model = "$MODEL"; rpm = 1000; tpm = 10000000; } ); }
);
MOCK
start_mock "$tmp/mock.conf" "$tmp"
mport=$mock_port
[ -n "$mport" ] || { bad "gemroute-mock did not start"; finish; }
mbase="http://127.0.0.1:$mport"

cat >"$tmp/r.conf" <<CONF
router = { shm = "$shm"; base_url = "$mbase"; window_ms = 60000;
           headroom = 1.0; state_file = "$tmp/state"; batch_calls = 1; };
models = ( { name = "$MODEL"; rpm = 500; tpm = 10000000; } );
projects = ( { name = "p1"; key = "$KEY1"; },
             { name = "p2"; key = "$KEY2"; },
             { name = "p3"; key = "$KEY3"; } );
gateway = {
  listen = "127.0.0.1:0";
  tokens = [ "env:GR_AFF_TOKEN" ];
  queue_s = 5.0;
  max_body = 1048576;
  workers = 16;
};
CONF

start_router() {
    "$BIN/gemrouted" -c "$tmp/r.conf" --foreground $1 \
        2>>"$tmp/router.log" &
    router_pid=$!
    i=0
    until "$BIN/gemroute" status --shm "$shm" --json 2>/dev/null |
          grep -q '"config_generation": [1-9]'; do
        i=$((i + 1))
        [ $i -gt 400 ] && { bad "gemrouted did not start"; finish; }
        sleep 0.02
    done
}
stop_router() {
    kill "$router_pid"
    wait "$router_pid"
    router_pid=
}
start_gw() {
    : >"$tmp/gw.out"
    "$BIN/gemroute-gateway" -c "$tmp/r.conf" --foreground >"$tmp/gw.out" \
        2>>"$tmp/gw.log" &
    gw_pid=$!
    port=$(port_of "$tmp/gw.out")
    [ -n "$port" ] || { bad "gemroute-gateway did not start"; finish; }
    base="http://127.0.0.1:$port"
}
stop_gw() {
    kill "$gw_pid"
    wait "$gw_pid"
    gw_pid=
}

start_router ""
start_gw

# c NAME [curl args]: status in NAME.code, body NAME.body, headers NAME.hdr
c() {
    name=$1
    shift
    curl -sS -o "$tmp/$name.body" -D "$tmp/$name.hdr" -w '%{http_code}' \
        -H "x-goog-api-key: $GR_AFF_TOKEN" "$@" >"$tmp/$name.code" \
        2>"$tmp/$name.err"
}
code() { cat "$tmp/$1.code"; }
hdr() { sed -n "s/^$2: *\([^[:space:]]*\).*/\1/Ip" "$tmp/$1.hdr" | head -n 1; }
# stat PROJECT FIELD: the mock's count for our model ("served"), or the
# request total (PROJECT "-").
stat() {
    curl -s "$mbase/mock/stats" | python3 -c "
import json, sys
s = json.load(sys.stdin)
if sys.argv[1] == '-':
    print(s['requests']['total'])
else:
    m = s['projects'][sys.argv[1]].get('models', {}).get('$MODEL', {})
    print(m.get(sys.argv[2], 0))" "$1" "$2"
}
owner() {
    "$BIN/gemroute" resources --shm "$shm" | awk -v n="$1" '$1 == n { print $2 }'
}

# used_rpm: requests held in the table's minute windows, all cells.
used_rpm() {
    "$BIN/gemroute" status --shm "$shm" --json | python3 -c "
import json, sys
print(sum(c['used']['rpm'] for c in json.load(sys.stdin)['cells']))"
}

# upload NAME TEXT: the resumable upload through the gateway; the file's
# name in $tmp/NAME.file, the project that holds it in NAME.project.
upload() {
    n=$1
    printf '%s' "$2" >"$tmp/$n.bytes"
    len=$(wc -c <"$tmp/$n.bytes" | tr -d ' ')
    c "$n.start" -H 'X-Goog-Upload-Protocol: resumable' \
        -H 'X-Goog-Upload-Command: start' \
        -H "X-Goog-Upload-Header-Content-Length: $len" \
        -H 'X-Goog-Upload-Header-Content-Type: text/plain' \
        -H 'Content-Type: application/json' \
        -d '{"file": {"display_name": "affinity"}}' \
        "$base/upload/v1beta/files"
    url=$(hdr "$n.start" X-Goog-Upload-URL)
    echo "$url" >"$tmp/$n.url"
    hdr "$n.start" x-gemroute-project >"$tmp/$n.project"
    c "$n.fin" -H 'X-Goog-Upload-Command: upload, finalize' \
        -H 'X-Goog-Upload-Offset: 0' --data-binary @"$tmp/$n.bytes" "$url"
    python3 -c "
import json, sys
print(json.load(open(sys.argv[1]))['file']['name'])" "$tmp/$n.fin.body" \
        >"$tmp/$n.file" 2>/dev/null
}

rpm0=$(used_rpm)
upload up1 "the first file"
rpm1=$(used_rpm)
check "an upload costs no generate quota ($rpm0 -> $rpm1)" \
    sh -c "[ -n '$rpm0' ] && [ '$rpm1' = '$rpm0' ]"
check "upload start: 200" test "$(code up1.start)" = 200
check "upload URL points back to the gateway ($(cat "$tmp/up1.url"))" \
    grep -q "^$base/upload/v1beta/files?upload_id=" "$tmp/up1.url"
check "upload finalize: 200" test "$(code up1.fin)" = 200
check "upload finalize: X-Goog-Upload-Status final" \
    test "$(hdr up1.fin X-Goog-Upload-Status)" = final
f1=$(cat "$tmp/up1.file")
p1=$(cat "$tmp/up1.project")
check "the upload made a file ($f1)" test -n "$f1"
check "the chunk went to the project that started it" \
    test "$(hdr up1.fin x-gemroute-project)" = "$p1"
check "gemroute resources: $f1 held by $p1" test "$(owner "$f1")" = "$p1"
"$BIN/gemroute" resources --shm "$shm" >"$tmp/res1.txt"
check "gemroute resources: one line per resource, kind file" \
    grep -q "^$f1 *$p1 *file *20[0-9][0-9]-" "$tmp/res1.txt"
check "the finished upload session is forgotten" \
    test "$(grep -c '^uploads/' "$tmp/res1.txt")" = 0
"$BIN/gemroute" status --shm "$shm" >"$tmp/status1.txt"
check "gemroute status counts it" grep -q "^resources: 1 files" \
    "$tmp/status1.txt"
"$BIN/gemroute" resources --shm "$shm" --json >"$tmp/res1.json"
check "gemroute resources --json" python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))
assert r['files'] == 1 and r['resources'][0]['project'] == sys.argv[2]
" "$tmp/res1.json" "$p1"

# Using it: every call on its project, none elsewhere.
gen="$base/v1beta/models/$MODEL:generateContent"
uri="$mbase/v1beta/$f1"
body="{\"contents\":[{\"parts\":[{\"text\":\"about this\"},{\"fileData\":{\"mimeType\":\"text/plain\",\"fileUri\":\"$uri\"}}]}]}"
total0=$(stat - x)
served0=$(stat "$p1" served)
i=0
on_owner=0
while [ $i -lt 20 ]; do
    c g1 -d "$body" "$gen"
    [ "$(code g1)" = 200 ] && [ "$(hdr g1 x-gemroute-project)" = "$p1" ] &&
        on_owner=$((on_owner + 1))
    i=$((i + 1))
done
check "20 calls naming $f1: 200 from $p1 ($on_owner)" test "$on_owner" = 20
check "the mock served all 20 on $p1" \
    test $(($(stat "$p1" served) - served0)) = 20
check "and nothing else: no 403 anywhere" \
    test $(($(stat - x) - total0)) = 20

# A second file on another project: a request naming both is refused.
i=0
p2=$p1
while [ "$p2" = "$p1" ] && [ $i -lt 30 ]; do
    upload up2 "file number $i"
    p2=$(cat "$tmp/up2.project")
    i=$((i + 1))
done
f2=$(cat "$tmp/up2.file")
check "a file on another project ($f2 on $p2)" test "$p2" != "$p1"
both="{\"contents\":[{\"parts\":[{\"fileData\":{\"fileUri\":\"$uri\"}},{\"fileData\":{\"fileUri\":\"$f2\"}}]}]}"
total0=$(stat - x)
c two -d "$both" "$gen"
check "files of two projects: 400" test "$(code two)" = 400
check "files of two projects: INVALID_ARGUMENT" has two.body INVALID_ARGUMENT
check "files of two projects: says so" has two.body "two projects"
check "files of two projects: nothing sent" test "$(stat - x)" = "$total0"

# gr_generate pins too (gemroute call is gr_generate and gr_stream).
printf '%s' "$body" >"$tmp/call.json"
i=0
on_owner=0
while [ $i -lt 10 ]; do
    "$BIN/gemroute" call --shm "$shm" --model "$MODEL" -v \
        --json "$tmp/call.json" >"$tmp/call.out" 2>"$tmp/call.err" &&
        grep -q "^project $p1," "$tmp/call.err" && on_owner=$((on_owner + 1))
    i=$((i + 1))
done
check "gr_generate: 10 calls naming $f1 on $p1 ($on_owner)" \
    test "$on_owner" = 10
"$BIN/gemroute" call --shm "$shm" --model "$MODEL" --stream -v \
    --json "$tmp/call.json" >"$tmp/calls.out" 2>"$tmp/calls.err"
check "gr_stream: pinned to $p1" grep -q "^project $p1," "$tmp/calls.err"
printf '%s' "$both" >"$tmp/both.json"
total0=$(stat - x)
"$BIN/gemroute" call --shm "$shm" --model "$MODEL" \
    --json "$tmp/both.json" >"$tmp/callb.out" 2>"$tmp/callb.err"
check "gr_generate: two projects refused ($(head -c 120 "$tmp/callb.err"))" \
    grep -q "two projects" "$tmp/callb.err"
check "gr_generate: two projects: nothing sent" test "$(stat - x)" = "$total0"

# A router restart that keeps the table: the record is adopted.
stop_router
start_router ""
check "router restart: $f1 still held by $p1" test "$(owner "$f1")" = "$p1"
c g2 -d "$body" "$gen"
check "router restart: still pinned" test "$(hdr g2 x-gemroute-project)" = "$p1"

# A damaged record file is ignored whole, never half-applied.
stop_gw
stop_router
cp "$tmp/state.res" "$tmp/state.res.good"
printf 'gemroute-resources 1\nres 1 files/x p1 0\nres 9 junk\n' \
    >"$tmp/state.res"
rm -f "/dev/shm$shm" "/dev/shm$shm.res"
start_router ""
check "a damaged record file: ignored, said so" grep -q \
    "resource file .*line 3 is damaged; ignored" "$tmp/router.log"
check "a damaged record file: nothing of it applied" test -z "$(owner files/x)"
stop_router
rm -f "/dev/shm$shm" "/dev/shm$shm.res"
cp "$tmp/state.res.good" "$tmp/state.res"
start_router ""
start_gw
gen="$base/v1beta/models/$MODEL:generateContent"

# One that recreates the table: the record comes back from the state file.
stop_gw
stop_router
rm -f "/dev/shm$shm" "/dev/shm$shm.res"
start_router ""
check "table recreated: the record is restored" grep -q \
    "resource file .*restored [1-9]" "$tmp/router.log"
check "table recreated: $f1 still held by $p1" test "$(owner "$f1")" = "$p1"
check "table recreated: $f2 still held by $p2" test "$(owner "$f2")" = "$p2"
start_gw
gen="$base/v1beta/models/$MODEL:generateContent"
c g3 -d "$body" "$gen"
check "table recreated: still pinned" test "$(hdr g3 x-gemroute-project)" = "$p1"

# GET and list go to the owner(s); DELETE forgets it.
c get1 "$base/v1beta/$f1"
check "GET $f1: 200 from $p1" test "$(code get1):$(hdr get1 x-gemroute-project)" = "200:$p1"
c list "$base/v1beta/files"
check "GET files: both files, merged" python3 -c "
import json, sys
names = {f['name'] for f in json.load(open(sys.argv[1])).get('files', [])}
assert set(sys.argv[2:]) <= names, names
" "$tmp/list.body" "$f1" "$f2"
c del2 -X DELETE "$base/v1beta/$f2"
check "DELETE $f2: 200 from $p2" test "$(code del2):$(hdr del2 x-gemroute-project)" = "200:$p2"
check "DELETE forgets it" test -z "$(owner "$f2")"

# A file gone behind gemroute's back (deleted at the mock directly): the
# owner's 403 is the request's fault: one attempt, nothing reported
# against the project, and the record drops it.
key_of() { case $1 in p1) echo "$KEY1" ;; p2) echo "$KEY2" ;; *) echo "$KEY3" ;; esac; }
upload up3 "a file to lose"
f3=$(cat "$tmp/up3.file")
p3=$(cat "$tmp/up3.project")
curl -sS -o /dev/null -X DELETE -H "x-goog-api-key: $(key_of "$p3")" \
    "$mbase/v1beta/$f3"
check "$f3 still recorded before use ($p3)" test "$(owner "$f3")" = "$p3"
lost="{\"contents\":[{\"parts\":[{\"fileData\":{\"fileUri\":\"$f3\"}}]}]}"
total0=$(stat - x)
c lost -d "$lost" "$gen"
check "a lost file: Google's 403 handed back" test "$(code lost)" = 403
check "a lost file: asked once, on its project" \
    test "$(($(stat - x) - total0)):$(hdr lost x-gemroute-project)" = "1:$p3"
check "a lost file: dropped from the record" test -z "$(owner "$f3")"
"$BIN/gemroute" status --shm "$shm" --json >"$tmp/st-lost.json"
check "a lost file: no project disabled or cooling" python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))
bad = []
def walk(o):
    if isinstance(o, dict):
        h = o.get('health')
        if isinstance(h, str) and h != 'healthy':
            bad.append(h)
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(s)
assert not bad, bad" "$tmp/st-lost.json"
c lost2 -d "$lost" "$gen"
check "unrecorded now: still not retried elsewhere (one call)" \
    test "$(($(stat - x) - total0))" = 2

# A chunk for a session nobody started.
c nochunk -H 'X-Goog-Upload-Command: upload, finalize' \
    -H 'X-Goog-Upload-Offset: 0' -d 'x' \
    "$base/upload/v1beta/files?upload_id=nosuchsession&upload_protocol=resumable"
check "unknown upload session: 404" test "$(code nochunk)" = 404

# cachedContents at the mock: its creator's alone.
mc() {
    name=$1
    key=$2
    shift 2
    curl -sS -o "$tmp/$name.body" -w '%{http_code}' -H "x-goog-api-key: $key" \
        "$@" >"$tmp/$name.code" 2>"$tmp/$name.err"
}
mc mcc "$KEY1" -H 'Content-Type: application/json' \
    -d "{\"model\":\"models/$MODEL\",\"ttl\":\"300s\",\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a long context\"}]}]}" \
    "$mbase/v1beta/cachedContents"
check "mock: cache create 200" test "$(code mcc)" = 200
mcn=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$tmp/mcc.body" 2>/dev/null)
check "mock: cache named ($mcn)" test -n "$mcn"
mc mcg1 "$KEY1" "$mbase/v1beta/$mcn"
check "mock: its project gets it" test "$(code mcg1)" = 200
mc mcg2 "$KEY2" "$mbase/v1beta/$mcn"
check "mock: another project gets 403" test "$(code mcg2)" = 403
check "mock: Google's words" has mcg2.body "CachedContent not found"
mc mcu2 "$KEY2" -H 'Content-Type: application/json' \
    -d "{\"cachedContent\":\"$mcn\",\"contents\":[{\"parts\":[{\"text\":\"q\"}]}]}" \
    "$mbase/v1beta/models/$MODEL:generateContent"
check "mock: another project may not use it: 403" test "$(code mcu2)" = 403
mc mcp "$KEY1" -X PATCH -H 'Content-Type: application/json' \
    -d '{"ttl":"7200s"}' "$mbase/v1beta/$mcn?updateMask=ttl"
check "mock: PATCH ttl 200" test "$(code mcp)" = 200
check "mock: PATCH moves expireTime" python3 -c "
import json, sys
a = json.load(open(sys.argv[1]))['expireTime']
b = json.load(open(sys.argv[2]))['expireTime']
assert b > a, (a, b)" "$tmp/mcc.body" "$tmp/mcp.body"
mc mcd2 "$KEY2" -X DELETE "$mbase/v1beta/$mcn"
check "mock: another project may not delete it: 403" test "$(code mcd2)" = 403
mc mcd "$KEY1" -X DELETE "$mbase/v1beta/$mcn"
check "mock: its project deletes it" test "$(code mcd)" = 200
mc mcg3 "$KEY1" "$mbase/v1beta/$mcn"
check "mock: deleted: 403" test "$(code mcg3)" = 403

# cachedContents through the gateway: recorded on create, used on its
# project only, the TTL change tracked, forgotten on delete.
c cc -H 'Content-Type: application/json' \
    -d "{\"model\":\"models/$MODEL\",\"ttl\":\"600s\",\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"cached context\"}]}]}" \
    "$base/v1beta/cachedContents"
check "gateway: cache create 200" test "$(code cc)" = 200
cn=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['name'])" "$tmp/cc.body" 2>/dev/null)
cp=$(hdr cc x-gemroute-project)
check "gateway: $cn recorded on $cp" test "$(owner "$cn")" = "$cp"
"$BIN/gemroute" resources --shm "$shm" >"$tmp/res2.txt"
check "gemroute resources: kind cache with its expiry" \
    grep -q "^$cn *$cp *cache *20[0-9][0-9]-" "$tmp/res2.txt"
exp1=$(awk -v n="$cn" '$1 == n { print $4 }' "$tmp/res2.txt")
cbody="{\"cachedContent\":\"$cn\",\"contents\":[{\"parts\":[{\"text\":\"q\"}]}]}"
i=0
on_owner=0
while [ $i -lt 10 ]; do
    c cu -d "$cbody" "$gen"
    [ "$(code cu)" = 200 ] && [ "$(hdr cu x-gemroute-project)" = "$cp" ] &&
        on_owner=$((on_owner + 1))
    i=$((i + 1))
done
check "10 calls naming $cn: 200 from $cp ($on_owner)" test "$on_owner" = 10
c cpatch -X PATCH -H 'Content-Type: application/json' -d '{"ttl":"86400s"}' \
    "$base/v1beta/$cn?updateMask=ttl"
check "gateway: PATCH ttl 200 from $cp" test "$(code cpatch):$(hdr cpatch x-gemroute-project)" = "200:$cp"
exp2=$("$BIN/gemroute" resources --shm "$shm" | awk -v n="$cn" '$1 == n { print $4 }')
check "gateway: the new expiry is recorded ($exp1 -> $exp2)" \
    test "$exp2" \> "$exp1"
c cdel -X DELETE "$base/v1beta/$cn"
check "gateway: cache DELETE 200" test "$(code cdel)" = 200
check "gateway: a deleted cache is forgotten" test -z "$(owner "$cn")"

# The SDK: upload, then 50 calls over 3 projects, all on the owner.
[ -d tests/node_modules/@google/genai ] || tests/sdk_deps.sh >&2
if [ -d tests/node_modules/@google/genai ]; then
    before=$(stat - x)
    GW_BASE=$base GW_TOKEN=$GR_AFF_TOKEN GW_MODEL=$MODEL N=50 \
        node tests/affinity/sdk_files.mjs >"$tmp/sdk.out" 2>"$tmp/sdk.err"
    check "SDK run exit 0 ($(tail -n 3 "$tmp/sdk.err" | tr '\n' ' '))" \
        test $? -eq 0
    for t in upload get "generate x50"; do
        check "SDK: $t" grep -qx "ok $t" "$tmp/sdk.out"
    done
    sf=$(sed -n 's/^file //p' "$tmp/sdk.out")
    sp=$(owner "$sf")
    check "SDK: $sf recorded ($sp)" test -n "$sp"
    check "SDK: all 50 calls on $sp" \
        test "$(grep -c "^project $sp\$" "$tmp/sdk.out")" = 50
    check "SDK: the mock saw 50 calls, no 403" \
        test $(($(stat - x) - before)) = 50
else
    bad "tests/node_modules is missing: run tests/sdk_deps.sh"
fi

# No secret in anything printed or logged.
check "no key or token in the logs" sh -c \
    "! grep -q SECRET '$tmp/router.log' '$tmp/gw.log' '$tmp/res1.txt' \
       '$tmp/status1.txt' '$tmp/sdk.out' '$tmp/sdk.err'"
finish
