#!/usr/bin/env python3
"""cache_report.py - the cache section's table (section 7 of
docs/BENCHMARKS.md) from the raw results tools/bench/cache.sh wrote.

    cache_report.py WORKDIR PAGE MODE [COMMAND]

WORKDIR is tools/bench.sh's temporary folder (its cache/ holds
runs.jsonl, instr.jsonl and meta.json).  The table goes between
<!-- bench:cache:begin --> and <!-- bench:cache:end --> of PAGE, so the
hand-written text stays.  Every ratio is taken within one repetition
(upstream / hit), then the median over the repetitions.  Prints one line
to standard error with the 1-process ratio.
"""
import json
import os
import statistics
import subprocess
import sys
import time


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def us(x):
    if x is None:
        return "-"
    if x >= 1000:
        return "%.2f ms" % (x / 1000)
    return "%.1f us" % x


def times(x):
    return "-" if x is None else ("%.0fx" % x if x >= 10 else "%.1fx" % x)


def rate(x):
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def med(rows, key):
    v = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(v) if v else None


def ratio(runs, procs, key):
    """median over repetitions of upstream[key] / hit[key]"""
    out = []
    for rep in sorted({r["rep"] for r in runs}):
        u = [r for r in runs if r["rep"] == rep and r["procs"] == procs and
             r["mode"] == "upstream"]
        h = [r for r in runs if r["rep"] == rep and r["procs"] == procs and
             r["mode"] == "hit"]
        if u and h and h[0][key] > 0:
            out.append(u[0][key] / h[0][key])
    return statistics.median(out) if out else None


def run_line(mode, meta, command):
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return ("Run: `%s`, %s, source at commit %s; load average at the "
            "start %s, at the end %s (a shared machine: other work ran "
            "meanwhile). Median of %d interleaved repetitions of %d calls "
            "per process%s." %
            (command or ("make bench" if mode == "full"
                         else "make bench-quick"),
             time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), commit,
             meta.get("loadavg_at_start", "?"), load, meta.get("reps", 0),
             meta.get("calls", 0),
             "; the 1-process runs pinned (caller on CPU 1, mock and "
             "router on CPU 0)" if meta.get("pinned") else ""))


def table(work, mode, command):
    d = os.path.join(work, "cache")
    runs = lines(os.path.join(d, "runs.jsonl"))
    instr = {r["mode"]: r["instructions_per_call"]
             for r in lines(os.path.join(d, "instr.jsonl"))}
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
    if not runs:
        return None, None
    out = [
        "| processes | | upstream call | cache hit | the hit's advantage |",
        "|---:|---|---:|---:|---:|",
    ]
    for procs in sorted({r["procs"] for r in runs}):
        u = [r for r in runs if r["procs"] == procs and r["mode"] ==
             "upstream"]
        h = [r for r in runs if r["procs"] == procs and r["mode"] == "hit"]
        for label, key, fmt in (("wall p50", "p50_us", us),
                                ("wall p99", "p99_us", us),
                                ("CPU per call", "cpu_us", us),
                                ("calls/s, all processes", "calls_per_s",
                                 rate)):
            r = ratio(runs, procs, key)
            if key == "calls_per_s" and r:
                r = 1 / r       # hits per second over calls per second
            out.append("| %d | %s | %s | %s | %s |" % (
                procs, label, fmt(med(u, key)), fmt(med(h, key)),
                ("**%s**" % times(r)) if key == "p50_us" and procs == 1
                else times(r)))
    out.append("")
    if "upstream" in instr and "hit" in instr:
        out.append("Instructions per call, one process (callgrind, "
                   "runs of {:,} and {:,} calls, the difference): upstream "
                   "call %s, cache hit %s, **%s** fewer.".format(
                       meta.get("n1", 0), meta.get("n2", 0)) % (
                       "{:,}".format(instr["upstream"]),
                       "{:,}".format(instr["hit"]),
                       times(instr["upstream"] / max(1, instr["hit"]))))
    else:
        out.append("Instructions per call: counted by `make bench` "
                   "only (callgrind).")
    out.append("")
    out.append(run_line(mode, meta, command))
    return "\n".join(out), ratio(runs, 1, "p50_us")


def put(text, name, body):
    begin = "<!-- bench:%s:begin -->" % name
    end = "<!-- bench:%s:end -->" % name
    if begin not in text:
        return text
    i = text.index(begin) + len(begin)
    j = text.index(end)
    return text[:i] + "\n" + body + "\n" + text[j:]


def main():
    work, page, mode = sys.argv[1:4]
    command = sys.argv[4] if len(sys.argv) > 4 else None
    body, r1 = table(work, mode, command)
    if body is None:
        print("bench: cache: no results", file=sys.stderr)
        return 0
    with open(page) as f:
        text = f.read()
    with open(page, "w") as f:
        f.write(put(text, "cache", body))
    print("bench: cache: a hit's p50 is %s below an upstream call's "
          "(1 process)" % times(r1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
