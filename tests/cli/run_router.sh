#!/bin/sh
# run_router.sh - the router as a process: it serves a table, refuses to
# start beside a live router, stops cleanly on SIGTERM, and a router
# started after one was killed adopts the table with its counts; the CLI
# prints leases and status without ever showing a key.
set -u
. "$(dirname "$0")/../lib.sh"

dir=$(mktemp -d /tmp/grrouter.XXXXXX)
shm="/grtest-router-$$"
cleanup() {
    rm -rf "$dir"
    rm -f "/dev/shm$shm" "/dev/shm$shm-nb" ${shm2:+"/dev/shm$shm2"} \
        "/dev/shm$shm.res" "/dev/shm$shm-nb.res" ${shm2:+"/dev/shm$shm2.res"} \
        "/dev/shm$shm.hist" "/dev/shm$shm-nb.hist" ${shm2:+"/dev/shm$shm2.hist"} \
        "/dev/shm$shm.bj" "/dev/shm$shm-nb.bj" ${shm2:+"/dev/shm$shm2.bj"}
}
export GR_KEY_A="test-SECRET-key-aaaa1111"
umask 022
cat >"$dir/r.conf" <<CONF
router = { shm = "$shm"; window_ms = 2000; state_file = "state";
           base_url = "http://gruser:SECRET-pw@127.0.0.1:9/g"; };
models = ( { name = "m1"; rpm = 100; tpm = 10000; rpd = 1000; } );
projects = ( { name = "pa"; key = "env:GR_KEY_A"; },
             { name = "pb"; key = "test-SECRET-key-bbbb2222"; } );
CONF

start() { start_router "$dir/r.conf" "$shm" "$dir/router.log"; }

start
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "reserve prints a lease" 'echo "$out" | grep -q "\"ok\": true"'
check "reserve masks the key" 'echo "$out" | grep -Eq "\"key\": \"\.\.\.(1111|2222)\""'
check "no key in reserve output" '! echo "$out" | grep -q "test-SECRET-key"'
check "item 15: reserve shows base_url without credentials" \
    'echo "$out" | grep -q "\"base_url\": \"http://127.0.0.1:9/g\"" &&
     ! echo "$out" | grep -q "gruser\|SECRET-pw"'
for i in 1 2 3 4; do
    "$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 >/dev/null
done
json=$("$BIN/gemroute" status --shm "$shm" --json)
check "status --json parses" 'echo "$json" | python3 -c "import json,sys; json.load(sys.stdin)"'
admitted=$(echo "$json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["counts"]["admitted"] for c in d["cells"]))')
check "5 admissions counted" '[ "$admitted" = 5 ]'
check "limits after headroom" 'echo "$json" | grep -q "\"rpm\": 95, \"tpm\": 9500, \"rpd\": 950, \"ipm\": null"'
check "no key in status" '! echo "$json" | grep -q "test-SECRET-key"'
check "item 15: status --json shows base_url without credentials" \
    'echo "$json" | grep -q "\"base_url\": \"http://127.0.0.1:9/g\"" &&
     ! echo "$json" | grep -q "gruser\|SECRET-pw"'
check "status table has both projects" '"$BIN/gemroute" status --shm "$shm" | grep -q "^pb "'

# Another user cannot attach, and is told why (needs root and setpriv).
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   as_nobody "$BIN/gemroute" help >/dev/null 2>&1; then
    out=$(as_nobody "$BIN/gemroute" status --shm "$shm" 2>&1)
    rc=$?
    check "another user is refused (exit $rc)" '[ $rc -eq 1 ]'
    check "and told why: $out" 'echo "$out" | grep -q "Permission denied (the table is mode 600, uid 0"'
fi

# --- operator actions go to the router; the tools only read ----------------
# (issue 14: one read API, one writer)
sock=$(sed -n 's/.*gemrouted: control socket \(.*\) (mode .*/\1/p' "$dir/router.log" | tail -1)
check "the router made its control socket ($sock)" '[ -S "$sock" ]'
check "the socket has the segment's mode (600)" \
    '[ "$(stat -c %a "$sock")" = 600 ]'
out=$("$BIN/gemroute" drain --shm "$shm" pb 2>&1); rc=$?
check "drain through the socket: exit 0 ($out)" '[ $rc -eq 0 ] &&
    echo "$out" | grep -q "^pb: draining: no new calls; 0 in flight finish$"'
check "the router applied and logged it, with the peer's uid and pid" \
    'grep -q "control: drain pb by uid $(id -u) pid [0-9]" "$dir/router.log"'
check "status shows it at once" \
    '"$BIN/gemroute" status --shm "$shm" | grep -q "^pb .*operator: draining"'
# The protocol itself: one line, answered after the change is applied.
ans=$(python3 - "$sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b"enable pb\nreset pb/m1 rpm\nreset pb/m1 tpd\nfrobnicate\n"
          b"drain nosuch\n")
f = s.makefile("r")
print("|".join(f.readline().strip() for _ in range(5)))
PY
)
check "protocol: ok/error lines ($ans)" '[ "$ans" = "ok pb: enabled|ok pb/m1 rpm: reset|ok pb/m1 tpd: reset|error usage: drain|disable|enable PROJECT[/MODEL], reset PROJECT[/MODEL] [rpm|tpm|rpd|ipm|tpd], ping|error no project '"'"'nosuch'"'"' in $shm" ]'
out=$("$BIN/gemroute" drain --shm "$shm" nosuch 2>&1); rc=$?
check "unknown project: exit 1, the router's sentence ($out)" \
    '[ $rc -eq 1 ] && [ "$out" = "gemroute: no project '"'"'nosuch'"'"' in $shm" ]'
out=$("$BIN/gemroute" disable --shm "$shm" "pa/" 2>&1); rc=$?
check "bad PROJECT/MODEL: exit 2" '[ $rc -eq 2 ]'

# The CLI never maps the segment writable: with the segment 0400 and no
# capability (so root's DAC override is gone too), an O_RDWR open would
# fail; status and the operator commands still work.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   setpriv --bounding-set=-all --inh-caps=-all true 2>/dev/null; then
    nocap() { setpriv --bounding-set=-all --inh-caps=-all "$@"; }
    chmod 0400 "/dev/shm$shm"
    check "read-only: a writable open is refused here" \
        '! nocap python3 -c "import os; os.open(\"/dev/shm$shm\", os.O_RDWR)" 2>/dev/null'
    out=$(nocap "$BIN/gemroute" status --shm "$shm" 2>&1); rc=$?
    check "read-only: status works ($rc)" '[ $rc -eq 0 ] && echo "$out" | grep -q "^pb "'
    out=$(nocap "$BIN/gemroute" disable --shm "$shm" pb/m1 2>&1); rc=$?
    check "read-only: disable works, the router writes ($out)" \
        '[ $rc -eq 0 ] && [ "$("$BIN/gemroute" status --shm "$shm" --json | python3 -c "
import json, sys
d = json.load(sys.stdin)
print([c[\"operator\"] for c in d[\"cells\"] if c[\"project\"] == \"pb\"][0])")" = disabled ]'
    out=$(nocap "$BIN/gemroute" enable --shm "$shm" pb 2>&1); rc=$?
    check "read-only: enable works ($out)" '[ $rc -eq 0 ]'
    chmod 0600 "/dev/shm$shm"
else
    echo "skip: read-only CLI check needs root and setpriv"
fi

# Another uid: refused by the socket's mode, and by SO_PEERCRED when the
# mode would let it in (the segment opened to nobody's group and the
# socket to everyone on purpose, so that only the credential check stands
# in the way).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   id nobody >/dev/null 2>&1 &&
   as_nobody "$BIN/gemroute" help >/dev/null 2>&1; then
    # Readable through its group (clients refuse a table open to others).
    chgrp nogroup "/dev/shm$shm" && chmod 0640 "/dev/shm$shm"
    out=$(as_nobody "$BIN/gemroute" drain --shm "$shm" pa 2>&1); rc=$?
    check "nobody: the socket's mode refuses ($rc: $out)" \
        '[ $rc -eq 1 ] && echo "$out" | grep -q "connect($sock): Permission denied (the router.s control socket"'
    chmod 0666 "$sock"
    out=$(as_nobody "$BIN/gemroute" drain --shm "$shm" pa 2>&1); rc=$?
    check "nobody: SO_PEERCRED refuses ($rc: $out)" \
        '[ $rc -eq 1 ] && echo "$out" | grep -q "^gemroute: permission denied: uid $(id -u nobody) is not the router.s user (uid 0), root"'
    check "the refusal is logged" \
        'grep -q "control: refused uid $(id -u nobody) pid [0-9]" "$dir/router.log"'
    check "and nothing was drained" \
        '! "$BIN/gemroute" status --shm "$shm" | grep -q "^pa .*operator: draining"'
    chmod 0600 "$sock" "/dev/shm$shm"
    chgrp root "/dev/shm$shm"
else
    echo "skip: the other-uid checks need root, setpriv and the user nobody"
fi

"$BIN/gemrouted" -c "$dir/r.conf" --foreground 2>"$dir/second.log"
rc=$?
check "second router refused (exit $rc)" '[ $rc -eq 1 ]'
check "refusal names the live router" 'grep -q "a live router (pid $router_pid) owns $shm" "$dir/second.log"'

stop_router KILL 2>/dev/null
dead=$("$BIN/gemroute" status --shm "$shm" --json)
check "status shows a dead router" 'echo "$dead" | grep -q "\"alive\": false"'
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "clients reserve without a router" 'echo "$out" | grep -q "\"ok\": true"'
start
check "literal key in a readable file: warned" 'grep -q "r.conf is readable by others (mode 644) and the config holds 1 literal keys" "$dir/router.log"'
check "restarted router adopts the table" 'grep -q "adopted $shm" "$dir/router.log"'
admitted=$("$BIN/gemroute" status --shm "$shm" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(c["counts"]["admitted"] for c in d["cells"]), d["router"]["alive"])')
check "counts kept across the restart ($admitted)" '[ "$admitted" = "6 True" ]'

# Item 16: the env: key has left the router's environment, and a reload
# (which reads env: keys again) still works and leaves it clean.
environ_clean() { ! tr '\0' '\n' <"/proc/$router_pid/environ" | grep -q "test-SECRET-key"; }
check "item 16: env: key scrubbed from /proc/PID/environ" environ_clean
kill -HUP "$router_pid"
for _ in $(seq 200); do
    [ "$(grep -c "config .* applied" "$dir/router.log")" -ge 1 ] && break
    sleep 0.05
done
check "item 16: a reload after the scrub reads the env: key again" 'grep -q "config .* applied" "$dir/router.log" && ! grep -q "reload refused" "$dir/router.log"'
check "item 16: env: key still scrubbed after the reload" environ_clean

# Item 9: the table truncated under the router: it survives, says so and
# serves a new table.
truncate -s 4096 "/dev/shm$shm"
for _ in $(seq 200); do
    grep -q "serving $shm again" "$dir/router.log" && break
    sleep 0.05
done
check "item 9: router survives a truncated table" 'kill -0 "$router_pid" 2>/dev/null'
check "item 9: and says so in one line" 'grep -q "$shm was truncated under the router (SIGBUS at byte" "$dir/router.log"'
check "item 9: and serves a new table" 'grep -q "serving $shm again" "$dir/router.log" && wait_ready "$shm"'
out=$("$BIN/gemroute" reserve --shm "$shm" --model m1 --tokens 50 2>&1)
check "item 9: clients reserve from the new table" 'echo "$out" | grep -q "\"ok\": true"'

stop_router
rc=$?
check "SIGTERM exits 0 ($rc)" '[ $rc -eq 0 ]'
check "the control socket is removed on exit" '[ ! -e "$sock" ]'

# router.control: a path of one's own, relative to the config file.
shm2="/grtest-router2-$$"
cat >"$dir/c.conf" <<CONF
router = { shm = "$shm2"; window_ms = 2000; control = "ctl/c.sock";
           state_file = "state2"; };
models = ( { name = "m1"; rpm = 100; } );
projects = ( { name = "pa"; key = "env:GR_KEY_A"; } );
CONF
mkdir "$dir/ctl"
start_router "$dir/c.conf" "$shm2" "$dir/router2.log" --unlink-on-exit
check "router.control is used" '[ -S "$dir/ctl/c.sock" ]'
out=$("$BIN/gemroute" drain --shm "$shm2" pa 2>&1); rc=$?
check "the CLI finds it through the header ($out)" \
    '[ $rc -eq 0 ] && echo "$out" | grep -q "^pa: draining"'
stop_router
check "and removes it on exit" '[ ! -e "$dir/ctl/c.sock" ]'
out=$("$BIN/gemroute" drain --shm "$shm" pa 2>&1); rc=$?
check "no router: exit 1 and why ($out)" \
    '[ $rc -eq 1 ] && echo "$out" | grep -q "no router is running for $shm"'

# Item 16: a router is not dumpable: its /proc/PID files belong to root even
# when it runs as another user (and no core file can be written).
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   as_nobody "$BIN/gemroute" help >/dev/null 2>&1; then
    nb="$dir/nb"
    mkdir "$nb" && chown nobody "$nb" && chmod 711 "$dir"
    sed -e "s|$shm|$shm-nb|" -e 's|"state"|"nb/state"|' "$dir/r.conf" >"$nb/r.conf"
    chmod 644 "$nb/r.conf"
    # setpriv itself, not the function: the pid must be the router's
    router_wrap="setpriv --reuid=nobody --regid=nogroup --clear-groups"
    start_router "$nb/r.conf" "$shm-nb" "$dir/nobody.log" --unlink-on-exit
    router_wrap=""
    owner=$(stat -c %u "/proc/$router_pid/environ" 2>/dev/null)
    check "item 16: router not dumpable (/proc/PID/environ owned by uid $owner)" '[ "$owner" = 0 ]'
    stop_router
    rm -f "/dev/shm$shm-nb"
else
    echo "item 16 (not dumpable): skipped: needs root, setpriv and the user nobody"
fi
check "router log has no key" '! grep -q "test-SECRET-key" "$dir/router.log"'

finish
