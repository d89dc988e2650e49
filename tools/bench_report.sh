#!/bin/sh
# bench_report.sh - write docs/BENCHMARKS.md's tables (between their
# markers, so the hand-written text stays) and the PNG charts under
# docs/bench/ from a results file of tools/bench.sh.
#
#   tools/bench_report.sh [bench/results.json]
set -eu
cd "$(dirname "$0")/.."
python3 tools/bench/report.py "${1:-bench/results.json}" docs/BENCHMARKS.md \
    docs/bench
