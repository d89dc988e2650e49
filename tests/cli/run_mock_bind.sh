#!/bin/sh
# run_mock_bind.sh - gemroute-mock listens on loopback unless told
# otherwise: with no listen setting it binds 127.0.0.1, and it says so;
# told to bind every address, it warns.
set -u
. "$(dirname "$0")/../lib.sh"
dir=$(mktemp -d /tmp/grbind.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
cat >"$dir/m.conf" <<CONF
projects = ( { name = "p"; keys = ["bind-SECRET-1"];
  limits = ( { model = "m"; rpm = 1; } ); } );
CONF

wait_line() {
    for _ in $(seq 200); do
        grep -q "listening on" "$dir/out" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

"$BIN/gemroute-mock" -c "$dir/m.conf" >"$dir/out" 2>"$dir/err" &
pid=$!
if wait_line; then
    grep -q "^listening on 127\.0\.0\.1:8080$" "$dir/out" && ok ||
        no "default bind: $(cat "$dir/out")"
elif grep -q "Address already in use" "$dir/err"; then
    echo "port 8080 is taken here: default bind not checked"
else
    no "mock did not start: $(cat "$dir/err")"
fi
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""

"$BIN/gemroute-mock" -c "$dir/m.conf" --listen 0.0.0.0:0 >"$dir/out" \
    2>"$dir/err" &
pid=$!
if wait_line; then ok; else no "mock on 0.0.0.0 did not start"; fi
grep -qi "warn" "$dir/err" && ok || no "no warning for a non-loopback bind"
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""

finish
