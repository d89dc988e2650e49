#!/usr/bin/env python3
"""cluster_report.py - the cluster section of a benchmarks page, from the
raw lines tools/bench/cluster.sh wrote in its work folder.

    cluster_report.py WORK MODE RATE_S REPS CELLS RESULTS PAGE

Writes every figure to RESULTS (JSON) and the tables between PAGE's
<!-- bench:cluster:begin --> and <!-- bench:cluster:end --> markers (the
hand-written text around them stays; a page without the markers gets
them appended).
"""
import datetime
import json
import os
import statistics
import subprocess
import sys

SYNC_MS = 100           # the cluster section's defaults (docs/CLUSTER.md)
SETTLED_MS = 800        # a settled cell's longest gap between exchanges


def lines(path):
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]


def fmt(v, nd=0):
    if v is None:
        return "n/a"
    return "{:,.{}f}".format(v, nd)


def main():
    work, mode, rate_s, reps, cells, results, page = sys.argv[1:8]
    cells = int(cells)
    rates = lines(os.path.join(work, "rates.jsonl"))
    cost = lines(os.path.join(work, "cost.jsonl"))
    instr = {j["router"]: j["instructions_per_op"]
             for j in lines(os.path.join(work, "instr.jsonl"))}
    load0 = open(os.path.join(work, "loadavg.start")).read().strip()
    load1 = open(os.path.join(work, "loadavg.end")).read().strip()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True,
                                check=True).stdout.strip()
        # the page this run writes does not count as a change
        if subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".",
                           ":!docs/BENCHMARKS.md"]).returncode:
            commit += " (with uncommitted changes)"
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")

    lease_ms = 2000 if mode == "quick" else 10000
    settled_ms = min(lease_ms / 4, 60000 / 8, SETTLED_MS)
    busy = cells * 1000 / SYNC_MS
    settled = cells * 1000 / settled_ms
    out = []
    out.append("Run: `make bench-cluster%s`, %s, source at commit %s; "
               "load average at the start %s, at the end %s (a shared "
               "2-core machine: other work ran beside it). %s s per rate; "
               "%s cells per router (10 one-model projects), `sync_ms` "
               "100, `lease_ms` %s, a 60 s window; two clustered "
               "routers on one Redis, each offered the rate."
               % ("-quick" if mode == "quick" else "", when, commit, load0,
                  load1, rate_s, cells,
                  "2000" if mode == "quick" else "10000"))
    out.append("")
    out.append("| calls/s per router | cluster: commands sent/s per "
               "router | executed/s (with the script's own) | Redis CPU | "
               "Lua window: sent/s | executed/s | Redis CPU | sent, Lua / "
               "cluster |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    by = {(j["design"], j["rate"]): j for j in rates}
    table = []
    for r in sorted({j["rate"] for j in rates}):
        c = by.get(("cluster", r))
        lu = by.get(("lua", r))
        ratio = None
        if c and lu and c["commands_per_s_per_router"] > 0:
            ratio = lu["commands_per_s_per_router"] / \
                c["commands_per_s_per_router"]
        label = "0 (idle)" if r == 0 else fmt(r)
        if lu and lu["rate"] and lu["calls_per_s_per_router"] < 0.9 * r:
            label += " (Lua reached %s)" % fmt(lu["calls_per_s_per_router"])
        if c and c["refused"]:
            label += " (%d refused)" % c["refused"]
        out.append("| %s | %s | %s | %s%% | %s | %s | %s | %s |" % (
            label,
            fmt(c["commands_per_s_per_router"], 1) if c else "n/a",
            fmt(c["executed_per_s_per_router"], 1) if c else "n/a",
            fmt(c["redis_cpu_percent"], 1) if c else "n/a",
            fmt(lu["commands_per_s_per_router"], 0) if lu else "-",
            fmt(lu["executed_per_s_per_router"], 0) if lu else "-",
            (fmt(lu["redis_cpu_percent"], 1) + "%") if lu else "-",
            ("%sx" % fmt(ratio, 1)) if ratio else "-"))
        table.append({"rate": r, "cluster": c, "lua": lu, "ratio": ratio})
    out.append("")
    out.append("The Lua window sends one command per call it makes; where "
               "it made fewer calls than offered (one round trip each, on a "
               "busy machine), the row says how many, and the ratio is of "
               "what was measured.")
    out.append("")
    out.append("The bound, cells x ticks: %s cells x 10 exchanges/s "
               "(`sync_ms` 100) = **%s commands/s** while every cell moves, "
               "%s cells x one exchange per %s ms = %s/s once they settle "
               "(docs/CLUSTER.md, \"Scale\")." % (
                   cells, fmt(busy), cells, fmt(settled_ms),
                   fmt(settled, 1)))
    out.append("")

    def med(router, key):
        v = [j[key] for j in cost if j["router"] == router
             and j.get(key) is not None]
        return statistics.median(v) if v else None

    ratios = []
    for rep in sorted({j["rep"] for j in cost}):
        a = [j for j in cost if j["rep"] == rep and j["router"] == "ca"]
        b = [j for j in cost if j["rep"] == rep and j["router"] == "st"]
        if a and b and b[0]["ns_per_op_median"] > 0:
            ratios.append(a[0]["ns_per_op_median"] /
                          b[0]["ns_per_op_median"])
    cpu_ratios = []
    for rep in sorted({j["rep"] for j in cost}):
        a = [j for j in cost if j["rep"] == rep and j["router"] == "ca"]
        b = [j for j in cost if j["rep"] == rep and j["router"] == "st"]
        if a and b and b[0]["cpu_ns_per_op_median"] > 0:
            cpu_ratios.append(a[0]["cpu_ns_per_op_median"] /
                              b[0]["cpu_ns_per_op_median"])
    wall_r = statistics.median(ratios) if ratios else None
    cpu_r = statistics.median(cpu_ratios) if cpu_ratios else None
    ir = None
    if instr.get("st") and instr.get("ca"):
        ir = instr["ca"] / instr["st"]
    out.append("Reserve + commit, one process pinned to CPU 1 (`taskset`; "
               "routers and Redis on CPU 0), %s interleaved runs of %s s; "
               "medians:" % (reps, "0.2" if mode == "quick" else "0.5"))
    out.append("")
    out.append("| router | wall ns/op | CPU ns/op | `perf stat` task-clock "
               "ms per run | instructions/op (callgrind) |")
    out.append("|---|---:|---:|---:|---:|")
    for n, name in (("st", "standalone"), ("ca", "clustered")):
        out.append("| %s | %s | %s | %s | %s |" % (
            name, fmt(med(n, "ns_per_op_median"), 1),
            fmt(med(n, "cpu_ns_per_op_median"), 1),
            fmt(med(n, "task_clock_ms"), 1), fmt(instr.get(n))))
    out.append("| **clustered / standalone** (median of the runs' "
               "ratios) | **%s** | %s | | %s |" % (
        fmt(wall_r, 3) if wall_r else "n/a", fmt(cpu_r, 3) if cpu_r else
        "n/a", fmt(ir, 3) if ir else "n/a"))
    refused = sum(j["refused"] + j["failed"] for j in cost)
    out.append("")
    def met(v):
        return "n/a" if v is None else ("yes" if v <= 1.10 else "no")
    out.append("Target: within 10%% (ratio <= 1.10): wall time **%s**, CPU "
               "time **%s**, instructions **%s**. Reservations refused in "
               "these runs: %d." % (met(wall_r), met(cpu_r), met(ir),
                                    refused))

    json.dump({"mode": mode, "when": when, "commit": commit,
               "loadavg_start": load0, "loadavg_end": load1,
               "cells": cells, "rate_seconds": float(rate_s),
               "bound_busy_per_s": busy, "bound_settled_per_s": settled,
               "rates": table, "cost": cost, "instructions": instr,
               "wall_ratio": wall_r, "cpu_ratio": cpu_r,
               "instruction_ratio": ir},
              open(results, "w"), indent=1)

    begin, end = "<!-- bench:cluster:begin -->", "<!-- bench:cluster:end -->"
    text = open(page).read()
    body = begin + "\n" + "\n".join(out) + "\n" + end
    if begin in text and end in text:
        i, k = text.index(begin), text.index(end) + len(end)
        text = text[:i] + body + text[k:]
    else:
        text = text.rstrip("\n") + "\n\n## 5. Cluster\n\n" + body + "\n"
    open(page, "w").write(text)
    print("\n".join(out))


if __name__ == "__main__":
    main()
