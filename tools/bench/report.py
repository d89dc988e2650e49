#!/usr/bin/env python3
"""report.py - write the tables of docs/BENCHMARKS.md and the PNG charts of
docs/bench/ from bench/results.json.

    report.py RESULTS.json DOC.md CHART_DIR

Each table goes between its markers (<!-- bench:NAME:begin --> and
<!-- bench:NAME:end -->), so the hand-written text around them stays.
Charts are drawn by gnuplot (pngcairo) from data files written here.
"""
import json
import os
import subprocess
import sys
import tempfile

IMPLS = ["gemroute", "gemroute-exact", "mutex", "redis-zset", "redis-lua"]
LABEL = {
    "gemroute": "gemroute (lock-free table)",
    "gemroute-exact": "gemroute, a lease per call (batch_calls = 1)",
    "mutex": "same table, one robust mutex",
    "redis-zset": "Redis, tutorial pipeline",
    "redis-lua": "Redis, Lua script",
}
E2E = ["gemroute", "direct", "roundrobin", "bucket"]
E2E_LABEL = {
    "gemroute": "gemroute (gr_generate)",
    "direct": "no protection",
    "roundrobin": "round-robin + 429 marking",
    "bucket": "token bucket + backoff",
}


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def rate(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def ns(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return "%.2f ms" % (x / 1e6)
    if x >= 1e4:
        return "%.1f us" % (x / 1e3)
    return "%.0f ns" % x


def times(x):
    return "-" if x is None else ("%.0fx" % x if x >= 10 else "%.1fx" % x)


def t_machine(r):
    m = r["machine"]
    return "\n".join([
        "| | |", "|---|---|",
        "| CPUs (nproc) | %s |" % m["cpus"],
        "| CPU model | %s |" % m["cpu_model"],
        "| memory | %s GB |" % m["memory_gb"],
        "| kernel | %s |" % m["kernel"],
        "| compiler | %s |" % m["cc"],
        "| Redis | %s |" % m["redis"],
        "| valgrind | %s |" % m["valgrind"],
        "| run | `%s`, %s, source at commit %s; load average at the "
        "start %s, at the end %s |" %
        ("make bench" if r["mode"] == "full" else "make bench-quick",
         r["generated"], m.get("commit", "unknown"),
         " ".join(m.get("loadavg_at_start", ["?"])),
         " ".join(m["loadavg_at_end"])),
        "| busy at the start (%%CPU, command) | %s |" %
        ("; ".join(m.get("busy_at_start") or []) or "nothing above 20%"),
    ])


def t_reserve(r):
    res = r["reserve"]
    rows, rat = res["rows"], res["ratios"]
    out = []
    for np in sorted({x["projects"] for x in rows}):
        out.append("**%s projects** (operations per second, all processes; "
                   "median of %d; window %d ms)\n" %
                   (format(np, ","), res["reps"], res["window_ms"]))
        out.append("| processes | gemroute | gemroute, a lease per call "
                   "| mutex table | Redis tutorial "
                   "| Redis Lua | gemroute / mutex | gemroute / best Redis "
                   "| cores used: gemroute, mutex |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for procs in sorted({x["procs"] for x in rows}):
            cells = [rate((find(rows, impl=i, projects=np, procs=procs) or
                           {}).get("ops_per_s")) for i in IMPLS]
            q = find(rat, projects=np, procs=procs) or {}
            zs, lu = q.get("vs_redis-zset"), q.get("vs_redis-lua")
            best = min(zs, lu) if zs and lu else None
            cores = [(find(rows, impl=i, projects=np, procs=procs) or
                      {}).get("cores_used") for i in ("gemroute", "mutex")]
            out.append("| %d | %s | %s | %s | %s |" % (
                procs, " | ".join(cells), times(q.get("vs_mutex")),
                times(best), ", ".join("-" if c is None else "%.2f" % c
                                       for c in cores)))
        out.append("")
    return "\n".join(out).rstrip()


def t_single(r):
    rows = r["reserve"]["rows"]
    instr = r["instructions"]
    projects = sorted({x["projects"] for x in rows})
    out = ["| contender | " + " | ".join("%s projects" % format(p, ",")
                                         for p in projects) + " |",
           "|---|" + "---:|" * len(projects)]
    for i in IMPLS:
        cells = []
        for p in projects:
            x = find(rows, impl=i, projects=p, procs=1)
            c = find(instr, impl=i, projects=p, side="client")
            s = ns(x["ns_per_op"]) if x else "-"
            if x and x.get("cpu_ns_per_op"):
                s += " (CPU %s)" % ns(x["cpu_ns_per_op"])
            if c:
                s += " / %s instr" % format(c["instructions"], ",")
            cells.append(s)
        out.append("| %s | %s |" % (LABEL[i], " | ".join(cells)))
    return "\n".join(out)


def t_instr(r):
    ws = sorted({c.get("window_ms") for c in r["instructions"]
                 if c.get("window_ms")})
    out = ["Window: %s ms.\n" % ", ".join(str(w) for w in ws)] if ws else []
    out += ["| contender | projects | client instructions per op | "
           "of which ring drains | drains per 1,000 ops | "
           "instructions per drain | server instructions per op |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for c in r["instructions"]:
        if c["side"] != "client":
            continue
        srv = find(r["instructions"], impl=c["impl"], side="server")
        drain = c["impl"].startswith("gemroute")
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            LABEL[c["impl"]], format(c["projects"], ","),
            format(c["instructions"], ","),
            format(c["drain_instructions"], ",") if drain else "-",
            c["drains_per_1000_ops"] if drain else "-",
            format(c["instructions_per_drain"], ",") if drain else "-",
            format(srv["instructions"], ",")
            if srv and c["projects"] == srv["projects"] else "-"))
    return "\n".join(out)


def t_check(r):
    if not r["check"]:
        return "(not run)"
    out = ["Window: %d ms.\n" % r["check"][0]["window_ms"],
           "| contender | processes | admitted | highest occupancy, the "
           "contender's own view (limit 100) | instants over | highest "
           "occupancy, Google's view | instants over |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for c in r["check"]:
        out.append("| %s | %d | %d | %s | %d | %s | %d |" % (
            LABEL[c["impl"]], c["procs"], c["ops"],
            over(c["max_occupancy"], c["limit"]), c["violations"],
            over(c["google_max_occupancy"], c["limit"]),
            c["google_violations"]))
    return "\n".join(out)


def over(occ, limit):
    return "**%d (+%d)**" % (occ, occ - limit) if occ > limit else str(occ)


def t_memory(r):
    out = ["| projects x models | cells | segment | router RSS | "
           "of which shared (segment pages touched) | of which private |",
           "|---:|---:|---:|---:|---:|---:|"]
    for m in r["memory"]:
        out.append("| %s x %d | %s | %.1f MiB | %.1f MiB | %.1f MiB | "
                   "%.1f MiB |" % (
                       format(m["projects"], ","), m["models"],
                       format(m["projects"] * m["models"], ","),
                       m["segment_bytes"] / 1048576, m["rss_kb"] / 1024,
                       m["rss_shmem_kb"] / 1024, m["rss_anon_kb"] / 1024))
    return "\n".join(out)


def t_e2e(r, scen):
    e2e = (r.get("e2e") or {}).get(scen) or {}
    if not e2e:
        return "(not run: the mock or gr_generate was not available)"
    out = []
    for lat in sorted(e2e):
        runs = e2e[lat]
        any_run = next(iter(runs.values()))
        line = ("**latency %s**: %s calls offered over %.0f s; the quota "
                "admits %s of them in that time" %
                (lat, format(any_run["offered"], ","), any_run["offer_s"],
                 format(any_run["capacity"], ",")))
        if scen == "burst":
            line += (", and the last call can be done at %.1f s" %
                     any_run["quota_allows_s"])
        out.append(line + "\n")
        out.append("| contender | succeeded | failed (of which sent) | "
                   "unfinished | 429s served | p50 | p99 | max | "
                   "last call done | goodput |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in E2E:
            x = runs.get(c)
            if not x:
                continue
            out.append("| %s | %.1f%% | %s (%s) | %s | %s | %s | %s | %s | "
                       "%.1f s | %.1f%% |" % (
                           E2E_LABEL[c], x["success_pct"],
                           format(x["failed"], ","),
                           format(x["sent_failed"], ","),
                           format(x["unfinished"], ","),
                           "-" if x["mock_429"] is None
                           else format(x["mock_429"], ","),
                           ms(x["p50_ms"]), ms(x["p99_ms"]),
                           ms(x["max_ms"]), x["last_done_s"],
                           x["goodput_pct"]))
        out.append("")
    return "\n".join(out).rstrip()


def ms(x):
    if x is None:
        return "-"
    return "%.1f s" % (x / 1000) if x >= 10000 else "%.0f ms" % x


def t_overhead(r):
    ov = r.get("overhead") or {}
    if not ov.get("rows"):
        return "(not run: the mock or gr_generate was not available)"
    out = ["| processes | libcurl POST, wall | gr_generate, wall | added, "
           "wall | libcurl POST, CPU | gr_generate, CPU | added, CPU |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    for x in ov["rows"]:
        out.append("| %d | %.1f us | %.1f us | **%.1f us** | %.1f us | "
                   "%.1f us | %.1f us |" % (
                       x["procs"], x["curl_us"], x["gemroute_us"],
                       x["added_us"], x["curl_cpu_us"], x["gemroute_cpu_us"],
                       x["added_cpu_us"]))
    out.append("")
    out.append("Median of %d interleaved repetitions of %s calls per "
               "process." % (ov["rows"][0]["reps"],
                             format(ov["rows"][0]["calls"], ",")))
    ins = ov.get("instructions") or {}
    if "curl" in ins and "gemroute" in ins:
        out.append("Instructions per call (callgrind, one process): plain "
                   "POST %s, gr_generate %s, added **%s**." % (
                       format(ins["curl"], ","), format(ins["gemroute"], ","),
                       format(ins["gemroute"] - ins["curl"], ",")))
    return "\n".join(out)


def us(x):
    return "-" if x is None else "%.0f us" % x


def plus(x):
    return "-" if x is None else "%+.0f us" % x


def t_gateway(r):
    gw = r.get("gateway") or {}
    if not gw.get("rows"):
        return "(not run: wrk, nginx or the gateway was not available)"
    meta = gw.get("meta") or {}
    out = ["| call | connections | requests/s: direct | nginx | gateway | "
           "gateway / nginx | p50 direct | added p50: nginx | gateway | "
           "p99 direct | added p99: nginx | gateway | CPU per request: "
           "mock | nginx | gateway | cores used: nginx, gateway |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
           "---:|---:|---:|---:|"]
    for g in gw["rows"]:
        d, n, w = g["direct"], g["nginx"], g["gateway"]
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s | **%s** | %s "
                   "| %s | **%s** | %s | %s | %s | %.2f, %.2f |" % (
                       g["mode"], g["conns"], rate(d["rps"]),
                       rate(n["rps"]), rate(w["rps"]),
                       "-" if g["gateway_vs_nginx"] is None else
                       "%.2fx" % g["gateway_vs_nginx"],
                       us(d["p50_us"]), plus(n["added_p50_us"]),
                       plus(w["added_p50_us"]), us(d["p99_us"]),
                       plus(n["added_p99_us"]), plus(w["added_p99_us"]),
                       us(d["mock_cpu_us"]), us(n["proxy_cpu_us"]),
                       us(w["proxy_cpu_us"]), n["proxy_cores"] or 0,
                       w["proxy_cores"] or 0))
    errs = sum(g[t]["errors"] for g in gw["rows"] for t in g
               if isinstance(g[t], dict) and "errors" in g[t])
    out.append("")
    out.append("%s, one thread; %s; median of %s runs of %s s each; "
               "%s; errors and non-2xx answers: %d." % (
                   meta.get("wrk", "?"), meta.get("nginx", "nginx"),
                   meta.get("reps", "?"), meta.get("seconds", "?"),
                   "wrk and the mock on CPU 0, the proxy on CPU 0 too at "
                   "1 connection, on CPU 1 at 16 and 64"
                   if meta.get("pinned") else "not pinned", errs))
    fl = {f["what"]: f for f in gw.get("floors") or []}
    if "libcurl" in fl and "libmicrohttpd" in fl:
        c, h = fl["libcurl"], fl["libmicrohttpd"]
        out.append("")
        out.append("The floor, at %d connections on CPU 1 alone: libcurl "
                   "alone, driven as the gateway's loops drive it "
                   "(`gr-bench-curl-floor`: the upstream half of a call, "
                   "nothing else), %s of CPU per call at %s calls/s; "
                   "libmicrohttpd alone (the gateway's `/healthz`: no "
                   "token, no call), %s per request at %s requests/s; "
                   "together %s, against nginx's whole hop above; "
                   "errors: %d." % (
                       c["conns"], us(c["cpu_us"]), rate(c["rps"]),
                       us(h["cpu_us"]), rate(h["rps"]),
                       us(c["cpu_us"] + h["cpu_us"]),
                       c["errors"] + h["errors"]))
    if "h1" in fl:
        out.append("")
        out.append("The same upstream half through the loops' own HTTP/1.1 "
                   "client, which the gateway sends with (client/h1.c, "
                   "driven the same way: `gr-bench-h1-floor`): %s of CPU "
                   "per call at %s calls/s." % (
                       us(fl["h1"]["cpu_us"]), rate(fl["h1"]["rps"])))
    return "\n".join(out)


def t_targets(r):
    out = ["| target | wanted | measured | met |", "|---|---|---|---|"]
    for t in r["targets"]:
        out.append("| %s | %s | %s | %s |" % (
            t["what"], t["target"], t["measured"],
            "yes" if t["met"] else "**no**" + (" (%s)" % t["by"]
                                               if t["by"] else "")))
    return "\n".join(out)


def put(text, name, body):
    begin = "<!-- bench:%s:begin -->" % name
    end = "<!-- bench:%s:end -->" % name
    if begin not in text:
        return text
    i = text.index(begin) + len(begin)
    j = text.index(end)
    return text[:i] + "\n" + body + "\n" + text[j:]


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def charts(r, outdir):
    os.makedirs(outdir, exist_ok=True)
    rows = r["reserve"]["rows"]
    projects = sorted({x["projects"] for x in rows}) or [0]
    mid = 1000 if 1000 in projects else projects[len(projects) // 2]
    head = ("set terminal pngcairo noenhanced size 900,540 "
            "font 'sans,11'\nset key outside right top\nset grid\n")
    with tempfile.TemporaryDirectory() as tmp:
        if rows:
            plots = []
            for i in IMPLS:
                f = os.path.join(tmp, "thr-%s.dat" % i)
                with open(f, "w") as d:
                    for x in sorted((x for x in rows if x["impl"] == i and
                                     x["projects"] == mid),
                                    key=lambda x: x["procs"]):
                        d.write("%d %g\n" % (x["procs"], x["ops_per_s"]))
                plots.append("'%s' using 1:2 with linespoints lw 2 title '%s'" %
                             (f, LABEL[i]))
            gnuplot(head + "set output '%s/reserve_throughput.png'\n"
                    "set title 'Reserve + commit: operations per second, all "
                    "processes (%s projects, %d cores)'\n"
                    "set logscale x 2\nset logscale y 10\n"
                    "set xlabel 'processes'\n"
                    "set ylabel 'operations per second'\n"
                    "set format y '%%.0s%%c'\n"
                    "plot %s\n" % (outdir, format(mid, ","),
                                    r["machine"]["cpus"], ", ".join(plots)))
            plots = []
            for i in IMPLS:
                f = os.path.join(tmp, "one-%s.dat" % i)
                with open(f, "w") as d:
                    for x in sorted((x for x in rows if x["impl"] == i and
                                     x["procs"] == 1),
                                    key=lambda x: x["projects"]):
                        d.write("%d %g\n" % (x["projects"], x["ns_per_op"]))
                plots.append("'%s' using 1:2 with linespoints lw 2 title '%s'" %
                             (f, LABEL[i]))
            gnuplot(head + "set output '%s/reserve_projects.png'\n"
                    "set title 'Reserve + commit, one process: time per "
                    "operation'\nset logscale x 10\nset logscale y 10\n"
                    "set xlabel 'projects'\nset ylabel 'ns per operation'\n"
                    "set format y '%%.0s%%c'\n"
                    "plot %s\n" % (outdir, ", ".join(plots)))
        if r["memory"]:
            f = os.path.join(tmp, "mem.dat")
            with open(f, "w") as d:
                for m in r["memory"]:
                    d.write("%d %g %g %g\n" % (
                        m["projects"], m["segment_bytes"] / 1048576,
                        m["rss_kb"] / 1024, m["rss_anon_kb"] / 1024))
            gnuplot(head + "set output '%s/memory.png'\n"
                    "set title 'Memory, 8 models per project'\n"
                    "set logscale x 10\nset logscale y 10\n"
                    "set xlabel 'projects'\nset ylabel 'MiB'\n"
                    "plot '%s' using 1:2 with linespoints lw 2 title "
                    "'segment size', '' using 1:3 with linespoints lw 2 "
                    "title 'router RSS', '' using 1:4 with linespoints lw 2 "
                    "title 'router private RSS'\n" % (outdir, f))
        e2e_charts(r, outdir, tmp, head)


def e2e_charts(r, outdir, tmp, head):
    e2e = r.get("e2e") or {}
    for scen in ("burst", "steady"):
        for lat, runs in sorted((e2e.get(scen) or {}).items()):
            plots = []
            for c in E2E:
                x = runs.get(c)
                if not x or not x.get("ok_series"):
                    continue
                f = os.path.join(tmp, "%s-%s-%s.dat" % (scen, lat, c))
                with open(f, "w") as d:
                    for t, n in x["ok_series"]:
                        d.write("%g %d\n" % (t, n))
                plots.append("'%s' using 1:2 with lines lw 2 title '%s'" %
                             (f, E2E_LABEL[c]))
            if not plots:
                continue
            cap = next(iter(runs.values()))
            f = os.path.join(tmp, "cap-%s-%s.dat" % (scen, lat))
            with open(f, "w") as d:
                for t, n in cap.get("capacity_series", []):
                    d.write("%g %d\n" % (t, n))
            plots.append("'%s' using 1:2 with lines dt 2 lc 'black' "
                         "title 'what the quota allows'" % f)
            name = "%s_%s.png" % (scen, lat.replace("-", "_"))
            gnuplot(head + "set output '%s/%s'\n"
                    "set title '%s, latency %s: calls succeeded so far'\n"
                    "set xlabel 'seconds'\nset ylabel 'calls'\n"
                    "plot %s\n" % (outdir, name, scen.capitalize(), lat,
                                   ", ".join(plots)))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        r = json.load(f)
    doc = sys.argv[2]
    with open(doc) as f:
        text = f.read()
    for name, fn in (("machine", t_machine), ("reserve", t_reserve),
                     ("single", t_single), ("instructions", t_instr),
                     ("check", t_check), ("memory", t_memory),
                     ("burst", lambda x: t_e2e(x, "burst")),
                     ("steady", lambda x: t_e2e(x, "steady")),
                     ("overhead", t_overhead), ("gateway", t_gateway),
                     ("targets", t_targets)):
        text = put(text, name, fn(r))
    with open(doc, "w") as f:
        f.write(text)
    charts(r, sys.argv[3])


if __name__ == "__main__":
    main()
