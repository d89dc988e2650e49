#!/bin/sh
# bench_mock.sh - measure bin/gemroute-mock with wrk on this machine.
#
#   tests/e2e/bench_mock.sh [CONFIG] [SECONDS] [CONNECTIONS]
#
# Starts the mock on a free loopback port, runs wrk for SECONDS with two
# wrk threads and CONNECTIONS connections, prints wrk's report, stops the
# mock.  Defaults: tests/mock/bench.conf, 10 s, 64 connections.
set -eu
here=$(cd "$(dirname "$0")/../.." && pwd)
conf=${1:-$here/tests/mock/bench.conf}
secs=${2:-10}
conns=${3:-64}
bin=${BIN:-$here/bin}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

command -v wrk >/dev/null 2>&1 || { echo "bench_mock: wrk is not installed" >&2; exit 1; }
"$bin/gemroute-mock" -c "$conf" --listen 127.0.0.1:0 >"$out" &
pid=$!
i=0
while ! grep -q '^listening on ' "$out" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 50 ] && { echo "bench_mock: mock did not start" >&2; kill "$pid"; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/^listening on 127\.0\.0\.1://p' "$out")
wrk -t2 -c"$conns" -d"${secs}s" -s "$here/tests/e2e/mock_wrk.lua" \
    "http://127.0.0.1:$port/v1beta/models/gemini-2.5-flash:generateContent"
kill "$pid"
wait "$pid"
