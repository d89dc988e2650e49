#!/bin/sh
# run_reload.sh - the operator's side of issue 5, through bin/gemroute
# against a real router: `gemroute reload` (exit 0 applied, 2 refused,
# with the first FILE:LINE error), a bad file shown by `status` in all
# three views, a change on disk seen without any signal, and
# drain/disable/enable/reset: visible in status at once, kept across
# reloads, and `enable` overriding a rejected key.  No key is printed.
#
# Nothing is timed: waits poll, bounded by a watchdog that kills the
# script (and fails it) after WATCHDOG seconds.
set -u
. "$(dirname "$0")/../lib.sh"
WATCHDOG=${WATCHDOG:-120}
[ "${GR_SANITIZED:-0}" = 1 ] && WATCHDOG=$((WATCHDOG * 4))

dir=$(mktemp -d /tmp/grreloadcli.XXXXXX)
shm="/grtest-reload-$$"
dog=""
cleanup() {
    [ -n "$dog" ] && kill "$dog" 2>/dev/null
    rm -rf "$dir"
    remove_table "$shm"
}
trap 'exit 1' TERM INT
( sleep "$WATCHDOG"; echo "FAIL: watchdog after $WATCHDOG s"
  echo "0 passed, 1 failed"; kill -TERM $$ ) </dev/null >&2 &
dog=$!

G() { "$BIN/gemroute" "$@" --shm "$shm"; }
json() {    # python3 expression over the status JSON, as j
    G status --json | python3 -c "import json,sys; j=json.load(sys.stdin)
print($1)"
}
cell() {    # python3 expression over the cell PROJECT MODEL, as c
    G status --json | python3 -c "import json,sys
j=json.load(sys.stdin)
c=[c for c in j['cells'] if c['project']=='$1' and c['model']=='$2'][0]
print($3)"
}
waitfor() { # shell condition, polled
    until eval "$1"; do sleep 0.02; done
}

mkdir "$dir/inc"
export GR_RELOAD_KEY_A="reload-SECRET-key-aaaa1111"
printf 'models = ( { name = "m1"; rpm = 100; tpm = 10000; rpd = 1000; },\n  { name = "m2"; rpm = 50; } );\n' >"$dir/inc/models.conf"
conf() {    # extra router settings, then the projects
    cat >"$dir/r.tmp" <<CONF
router = { shm = "$shm"; window_ms = 2000; max_projects = 4; max_models = 2; $1 };
@include "inc/models.conf"
projects = ( $2 );
CONF
    mv "$dir/r.tmp" "$dir/r.conf"
}
PAB='{ name = "pa"; key = "env:GR_RELOAD_KEY_A"; },
  { name = "pb"; key = "reload-SECRET-key-bbbb2222"; }'
conf "" "$PAB"
chmod 600 "$dir/r.conf"
# applied, so the generation below is the starting one
start_router "$dir/r.conf" "$shm" "$dir/router.log" --unlink-on-exit
gen0=$(json 'j["router"]["config_generation"]')

# --- gemroute reload --------------------------------------------------------
out=$(G reload 2>&1); rc=$?
check "reload applied: exit 0 ($rc: $out)" '[ $rc -eq 0 ]'
check "reload names the new generation" \
    'echo "$out" | grep -q "config generation $((gen0 + 1))"'

conf "" "$PAB, { name = \"pc\"; key = \"env:GR_RELOAD_NO_SUCH_VAR\"; }"
# (the watcher may pick the change up first; either way it is refused)
out=$(G reload 2>&1); rc=$?
check "bad file: reload exits 2 ($rc)" '[ $rc -eq 2 ]'
check "reload prints the first FILE:LINE error" \
    'echo "$out" | grep -q "r.conf:[0-9]*: project .pc.: key 1: environment variable is not set"'
check "the key source is not echoed" '! echo "$out" | grep -q GR_RELOAD_NO_SUCH_VAR'
check "status shows the failed reload" \
    'G status | grep -q "^last reload .* FAILED"'
check "status shows its first error" \
    'G status | grep -q "^  .*r.conf:[0-9]*: project .pc.: key 1: "'
check "JSON: last_reload.ok false, error kept" \
    '[ "$(json "j[\"last_reload\"][\"ok\"], \"key 1: environment variable\" in j[\"last_reload\"][\"error\"]")" = "False True" ]'
check "the key source is in neither status nor the log" \
    '! G status --json | grep -q GR_RELOAD_NO_SUCH_VAR && ! grep -q GR_RELOAD_NO_SUCH_VAR "$dir/router.log"'
check "Prometheus: failure counted" \
    'G status --prometheus | grep -q "^gemroute_reloads_total{result=\"failure\"} [1-9]"'
check "Prometheus: last reload not a success" \
    'G status --prometheus | grep -q "^gemroute_last_reload_success 0$"'
check "the running config stays (no pc)" \
    '! G status --json | grep -q "\"pc\""'

# --- a change on disk, no signal ---------------------------------------------
g=$(json 'j["router"]["config_generation"]')
conf "" "$PAB"
waitfor '[ "$(json "j[\"router\"][\"config_generation\"]")" -gt "$g" ]'
ok
check "status: last reload ok again" 'G status | grep -q "^last reload .* ok ("'
g=$(json 'j["router"]["config_generation"]')
printf 'models = ( { name = "m1"; rpm = 200; tpm = 10000; rpd = 1000; },\n  { name = "m2"; rpm = 50; } );\n' >"$dir/inc/m.tmp"
mv "$dir/inc/m.tmp" "$dir/inc/models.conf"
waitfor '[ "$(json "j[\"router\"][\"config_generation\"]")" -gt "$g" ]'
check "an included file's change is applied" \
    '[ "$(cell pa m1 "c[\"config_limit\"][\"rpm\"]")" = 200 ]'

# --- operator state ------------------------------------------------------------
out=$(G drain pa 2>&1); rc=$?
check "drain pa: exit 0 ($out)" '[ $rc -eq 0 ]'
check "drained at once" '[ "$(cell pa m1 "c[\"health\"]")" = draining ]'
check "JSON names the operator state" \
    '[ "$(json "[p[\"operator\"] for p in j[\"projects\"] if p[\"name\"]==\"pa\"][0]")" = draining ]'
G disable pb/m2 >/dev/null
check "disable pb/m2: that cell only" \
    '[ "$(cell pb m2 "c[\"health\"], c[\"operator\"]")" = "disabled disabled" ] && [ "$(cell pb m1 "c[\"health\"]")" = healthy ]'
res=$(G reserve --model m1)
check "a drained project takes no new call" \
    'echo "$res" | grep -q "\"project\": \"pb\""'
out=$(G reload 2>&1)
check "operator state survives a reload" \
    '[ "$(cell pa m1 "c[\"health\"]")" = draining ] && [ "$(cell pb m2 "c[\"operator\"]")" = disabled ]'
check "status table says why" \
    'G status | grep -q "^pa .*operator: draining"'
G enable pa >/dev/null
G enable pb/m2 >/dev/null
check "enable: back in rotation" \
    '[ "$(cell pa m1 "c[\"health\"]") $(cell pb m2 "c[\"health\"]")" = "healthy healthy" ]'

# --- mistakes and reset (what reset and enable clear is checked in
# tests/stress/stress_reload.c, where a client can report a rejected key)
out=$(G drain nosuch 2>&1); rc=$?
check "unknown project: exit 1 and a sentence" \
    '[ $rc -eq 1 ] && echo "$out" | grep -q "no project .nosuch."'
out=$(G reset pa/nosuch 2>&1); rc=$?
check "unknown model: exit 1" '[ $rc -eq 1 ]'
out=$(G reset pa --dim xyz 2>&1); rc=$?
check "bad --dim: exit 2" '[ $rc -eq 2 ]'
out=$(G reset pa/m1 --dim rpd 2>&1); rc=$?
check "reset pa/m1 --dim rpd: exit 0 ($out)" '[ $rc -eq 0 ]'
out=$(G reset pa 2>&1); rc=$?
check "reset pa: exit 0" '[ $rc -eq 0 ]'

# --- views --------------------------------------------------------------------
check "table fits 100 columns" \
    '[ "$(G status | awk "length > 100" | wc -l)" -eq 0 ]'
check "no colour when stdout is not a terminal" \
    '! G status | grep -q "$(printf "\033")"'
check "summary line" 'G status | grep -q "^projects: [0-9]* healthy, "'
check "next Pacific midnight, UTC and local" \
    'G status | grep -q "^next RPD reset .*Z = 00:00 PT = "'
check "pool headroom per model" \
    'G status | grep -q "^m1  pool headroom: rpm [0-9]*%  tpm [0-9]*%"'
"$BIN/gemroute" status --watch 0.1 --shm "$shm" >"$dir/watch.out" 2>&1 &
w=$!
waitfor '[ "$(grep -c "^every 0.1s" "$dir/watch.out")" -ge 2 ]'
kill -INT "$w"
wait "$w"; rc=$?
check "--watch redraws until Ctrl-C, then exits 0 ($rc)" '[ $rc -eq 0 ]'
check "no key anywhere" \
    '! { G status; G status --json; G status --prometheus; } | grep -q "SECRET"'
out=$(G status --watch 1 --json 2>&1); rc=$?
check "--watch with --json refused (exit 2)" '[ $rc -eq 2 ]'

# --- the router gone ------------------------------------------------------------
stop_router 2>/dev/null
out=$(G reload 2>&1); rc=$?
check "reload without a router: exit 2" '[ $rc -eq 2 ]'

finish
