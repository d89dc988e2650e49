#!/bin/sh
# bench_report.sh - write a benchmarks page's tables (between their
# markers, so the hand-written text stays) and its PNG charts from a
# results file of tools/bench.sh.  The published page is the default; a
# quick run passes its own copy under bench/quick/.
#
#   tools/bench_report.sh [RESULTS [PAGE [CHART_DIR]]]
set -eu
cd "$(dirname "$0")/.."
python3 tools/bench/report.py "${1:-bench/results.json}" \
    "${2:-docs/BENCHMARKS.md}" "${3:-docs/bench}"
