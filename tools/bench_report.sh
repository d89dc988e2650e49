#!/bin/sh
# bench_report.sh - write docs/BENCHMARKS.md's reservation table from
# bench/results.json (between the markers, so hand-written text stays).
set -eu
cd "$(dirname "$0")/.."
res=${1:-bench/results.json}
doc=docs/BENCHMARKS.md
table=$(python3 - "$res" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| projects | processes | ns per reserve+commit (median of %d) | ops/s, all processes |" % r["reps"])
print("|---:|---:|---:|---:|")
for row in r["reserve_commit"]:
    print("| %d | %d | %.1f | %.0f |" % (row["projects"], row["procs"], row["ns_per_op"], row["ops_per_s"]))
print()
print("Instructions per reserve+commit (callgrind, 1 process, 1,000 projects): %d" % r["instructions_per_op_1proc_1000projects"])
PY
)
python3 - "$doc" "$table" <<'PY'
import sys, re
doc, table = sys.argv[1], sys.argv[2]
text = open(doc).read()
begin, end = "<!-- reserve-table:begin -->", "<!-- reserve-table:end -->"
i, j = text.index(begin) + len(begin), text.index(end)
open(doc, "w").write(text[:i] + "\n" + table + "\n" + text[j:])
PY
