#!/usr/bin/env python3
"""aggregate.py - turn the raw lines of one tools/bench.sh run into
bench/results.json, and print the one-line summary of the headline ratios.

    aggregate.py WORKDIR MODE REPS SECONDS WINDOW_MS TOKENS > results.json
    aggregate.py --summary results.json

Every ratio is taken between runs of the same repetition (they ran
interleaved, seconds apart), then the median over repetitions: a machine
that slows down for a while slows both sides of a ratio alike.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

IMPLS = ["gemroute", "gemroute-exact", "mutex", "redis-zset", "redis-lua"]


def lines(path):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if ln.startswith("{"):
                out.append(json.loads(ln))
    return out


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def machine(work):
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for ln in f:
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for ln in f:
            if ln.startswith("MemTotal"):
                mem_kb = int(ln.split()[1])
    def version(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "unknown"
    commit = os.environ.get("GR_COMMIT")
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True,
                                    timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {
        "commit": commit or "unknown",
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "redis": version(["redis-server", "--version"]),
        "valgrind": version(["valgrind", "--version"]),
        "cc": version(["cc", "--version"]),
        "loadavg_at_start": read_words(os.path.join(work, "loadavg.start")),
        "loadavg_at_end": open("/proc/loadavg").read().split()[:3],
        "busy_at_start": read_lines(os.path.join(work, "busy.start")),
    }


def read_words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return []


def read_lines(path):
    try:
        with open(path) as f:
            return [" ".join(ln.split()) for ln in f if ln.strip()]
    except OSError:
        return []


def reserve_rows(raw):
    keys = sorted({(r["impl"], r["projects"], r["procs"]) for r in raw},
                  key=lambda k: (IMPLS.index(k[0]) if k[0] in IMPLS else 9,
                                 k[1], k[2]))
    rows = []
    for impl, np, procs in keys:
        runs = [r for r in raw if (r["impl"], r["projects"], r["procs"]) ==
                (impl, np, procs)]
        rows.append({
            "impl": impl, "projects": np, "procs": procs,
            "runs": len(runs),
            "ns_per_op": median(r["ns_per_op_median"] for r in runs),
            "cpu_ns_per_op": median(r.get("cpu_ns_per_op_median")
                                    for r in runs),
            "cores_used": median(r.get("cores_used") for r in runs),
            "ops_per_s": median(r["ops_per_s"] for r in runs),
            "ops_per_s_min": min(r["ops_per_s"] for r in runs),
            "ops_per_s_max": max(r["ops_per_s"] for r in runs),
            "refused": sum(r["refused"] for r in runs),
            "failed": sum(r["failed"] for r in runs),
        })
    return rows


def ratio(raw, a, b, np, procs, field="ops_per_s"):
    """Median over repetitions of a's field / b's field, same rep."""
    by = {}
    for r in raw:
        if r["projects"] == np and r["procs"] == procs:
            by.setdefault(r["rep"], {})[r["impl"]] = r[field]
    rs = [v[a] / v[b] for v in by.values()
          if a in v and b in v and v[b] > 0]
    return median(rs)


def find(rows, **kw):
    for r in rows:
        if all(r.get(k) == v for k, v in kw.items()):
            return r
    return None


def targets(res, raw):
    out = []
    rows = res["reserve"]["rows"]
    instr = res["instructions"]
    projects = sorted({r["projects"] for r in rows}) or [0]
    mid = 1000 if 1000 in projects else projects[len(projects) // 2]
    g1 = find(rows, impl="gemroute", projects=mid, procs=1)
    if g1:
        out.append({"what": "reserve+commit, 1 process, %d projects" % mid,
                    "target": "<= 100 ns", "measured": "%.0f ns" %
                    g1["ns_per_op"], "met": g1["ns_per_op"] <= 100,
                    "by": "%.1fx over" % (g1["ns_per_op"] / 100)
                    if g1["ns_per_op"] > 100 else ""})
    gi = find(instr, impl="gemroute", projects=mid, side="client")
    if gi:
        out.append({"what": "instructions per reserve+commit, %d projects"
                    % mid, "target": "<= 400",
                    "measured": "%d (ring drains: %d)" %
                    (gi["instructions"], gi["drain_instructions"]),
                    "met": gi["instructions"] <= 400,
                    "by": "%.1fx over" % (gi["instructions"] / 400)
                    if gi["instructions"] > 400 else ""})
    one = [find(rows, impl="gemroute", projects=p, procs=1)
           for p in projects]
    one = [r for r in one if r]
    if len(one) >= 2:
        ns = [r["ns_per_op"] for r in one]
        cpu = [r["cpu_ns_per_op"] for r in one if r.get("cpu_ns_per_op")]
        ins = [i["instructions"] for i in instr
               if i["impl"] == "gemroute" and i["side"] == "client"]
        flat = max(ns) / min(ns)
        extra = []
        if len(cpu) == len(ns):
            extra.append("CPU time %.2fx" % (max(cpu) / min(cpu)))
        if len(ins) >= 2:
            extra.append("instructions %.2fx" % (max(ins) / min(ins)))
        out.append({"what": "cost flat from %d to %d projects (1 process)"
                    % (projects[0], projects[-1]), "target": "within 2x",
                    "measured": "%.2fx%s" % (flat, " (%s)" % ", ".join(extra)
                                             if extra else ""),
                    "met": flat <= 2, "by": ""})
    procs = sorted({r["procs"] for r in rows})
    if 8 in procs:
        best = []
        for p in projects:
            zs = ratio(raw, "gemroute", "redis-zset", p, 8)
            lu = ratio(raw, "gemroute", "redis-lua", p, 8)
            if zs and lu:
                best.append((p, min(zs, lu)))
        if best:
            worst = min(b for _, b in best)
            out.append({"what": "throughput vs the best Redis variant, "
                        "8 processes", "target": ">= 100x",
                        "measured": ", ".join("%.0fx (%d projects)" % (b, p)
                                              for p, b in best),
                        "met": worst >= 100, "by": ""})
    if 32 in procs:
        ms = [(p, ratio(raw, "gemroute", "mutex", p, 32)) for p in projects]
        ms = [(p, m) for p, m in ms if m]
        if ms:
            worst = min(m for _, m in ms)
            out.append({"what": "throughput vs the mutex table, 32 processes "
                        "on %d cores" % res["machine"]["cpus"],
                        "target": ">= 3x",
                        "measured": ", ".join("%.1fx (%d projects)" % (m, p)
                                              for p, m in ms),
                        "met": worst >= 3,
                        "by": "" if worst >= 3 else
                        "worst %.1fx" % worst})
    e2e = res.get("e2e") or {}
    for scen in ("burst", "steady"):
        for lat, runs in sorted((e2e.get(scen) or {}).items()):
            g = runs.get("gemroute")
            if not g:
                continue
            tag = "%s, latency %s" % (scen, lat)
            if scen == "burst":
                out.append({"what": "gemroute %s: success" % tag,
                            "target": "100%", "measured": "%.1f%%" %
                            g["success_pct"], "met": g["success_pct"] >= 100,
                            "by": ""})
                late = g.get("late_s")
                if late is not None:
                    out.append({"what": "gemroute %s: last call done after "
                                "the quota allows" % tag,
                                "target": "<= 1 s", "measured": "%.2f s" %
                                late, "met": late <= 1, "by": ""})
            else:
                out.append({"what": "gemroute %s: calls sent that succeeded"
                            % tag, "target": "100%", "measured": "%.1f%%" %
                            g["sent_success_pct"],
                            "met": g["sent_success_pct"] >= 100, "by": ""})
                out.append({"what": "gemroute %s: goodput" % tag,
                            "target": ">= 97% of capacity",
                            "measured": "%.1f%%" % g["goodput_pct"],
                            "met": g["goodput_pct"] >= 97, "by": ""})
            out.append({"what": "gemroute %s: 429s" % tag, "target": "0",
                        "measured": str(g["mock_429"]),
                        "met": g["mock_429"] == 0, "by": ""})
    ov = (res.get("overhead") or {}).get("rows") or []
    for r in ov:
        out.append({"what": "gr_generate overhead over a libcurl POST, %d "
                    "process%s" % (r["procs"], "es" if r["procs"] > 1 else ""),
                    "target": "<= 20 us", "measured": "%.1f us" %
                    r["added_us"], "met": r["added_us"] <= 20,
                    "by": "%.1fx over" % (r["added_us"] / 20)
                    if r["added_us"] > 20 else ""})
    for g in (res.get("gateway") or {}).get("rows") or []:
        if g["conns"] == 64 and g["gateway_vs_nginx"] is not None:
            x = g["gateway_vs_nginx"]
            out.append({"what": "gateway throughput vs nginx, 64 "
                        "connections, %s" % g["mode"],
                        "target": ">= 0.8x", "measured": "%.2fx" % x,
                        "met": x >= 0.8, "by": "" if x >= 0.8 else
                        "%.1fx short" % (0.8 / x) if x > 0 else ""})
        if g["conns"] == 1:
            a, n = g["gateway"]["added_p50_us"], g["nginx"]["added_p50_us"]
            if a is None or n is None:
                continue
            ok = a < 100 and (a <= 2 * n)
            why = []
            if n > 0 and a > 2 * n:
                why.append("%.1fx nginx's" % (a / n))
            if a >= 100:
                why.append("%.0f us over 100" % (a - 100))
            out.append({"what": "gateway added p50 latency, 1 connection, "
                        "%s" % g["mode"],
                        "target": "<= 2x nginx's and < 100 us",
                        "measured": "+%.0f us (nginx +%.0f us)" % (a, n),
                        "met": ok, "by": ", ".join(why)})
    return out


def stats_sum(path, field):
    """Sum a per-model counter of the mock's /mock/stats over projects."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        st = json.load(f)
    total = 0
    for p in st["projects"].values():
        for m in p["models"].values():
            v = m
            for k in field.split("."):
                v = v[k]
            total += v
    return total


def ideal(offered, limit, window):
    """Earliest admission of each call under a sliding window of `limit`
    per `window` s, calls taken in the order offered (greedy, optimal)."""
    adm = []
    for i, t in enumerate(offered):
        a = t if i < limit else max(t, adm[i - limit] + window)
        adm.append(a)
    return adm


def series(times, end, points=240):
    times = sorted(times)
    out, j = [], 0
    for k in range(points + 1):
        t = end * k / points
        while j < len(times) and times[j] <= t:
            j += 1
        out.append((round(t, 3), j))
    return out


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def e2e_run(prefix, lat):
    with open(prefix + ".json") as f:
        summ = json.loads(f.read().strip().splitlines()[-1])
    calls = []
    with open(prefix + ".csv") as f:
        next(f)
        for ln in f:
            o, e, ok, st, att, n429 = ln.strip().split(",")
            calls.append((float(o), float(e), int(ok), int(st), int(att),
                          int(n429)))
    window = summ["window_ms"] / 1000
    limit = summ["limit"] * summ["projects"]
    lat_hi = float(lat.split("-")[1]) / 1000
    offered = [c[0] for c in calls]
    adm = ideal(offered, limit, window)
    capacity = sum(1 for a in adm if a <= summ["offer_s"])
    ok_lat = [(c[1] - c[0]) * 1000 for c in calls if c[2]]
    done = [c[1] for c in calls if c[1] >= 0]
    sent = [c for c in calls if c[4] > 0 and c[1] >= 0]
    admitted_mid = stats_sum(prefix + ".stats-mid.json", "admitted")
    end = max(summ["run_s"], max(done) if done else 0)
    return {
        "offered": summ["offered"],
        "offer_s": summ["offer_s"],
        "ok": summ["ok"],
        "failed": summ["failed"],
        "unfinished": summ["unfinished"],
        "success_pct": 100.0 * summ["ok"] / summ["offered"],
        "sent": len(sent),
        "sent_failed": sum(1 for c in sent if not c[2]),
        "sent_success_pct": 100.0 * sum(1 for c in sent if c[2]) /
                            len(sent) if sent else 0.0,
        "attempts": summ["attempts"],
        "client_429": summ["client_429"],
        "mock_429": stats_sum(prefix + ".stats.json", "quota_429.total"),
        "admitted_in_offer": admitted_mid,
        "capacity": capacity,
        "goodput_pct": 100.0 * admitted_mid / capacity
                       if admitted_mid is not None and capacity else 0.0,
        "p50_ms": pct(ok_lat, 0.50),
        "p99_ms": pct(ok_lat, 0.99),
        "max_ms": max(ok_lat) if ok_lat else None,
        "last_done_s": max(done) if done else 0.0,
        "quota_allows_s": max(adm) + lat_hi,
        "late_s": (max(done) - (max(adm) + lat_hi)) if done else None,
        "ok_series": series([c[1] for c in calls if c[2]], end),
        "capacity_series": series([a + lat_hi for a in adm], end),
    }


def e2e(work):
    d = os.path.join(work, "e2e")
    if not os.path.isdir(d):
        return None, None
    res = {}
    for name in sorted(os.listdir(d)):
        if not name.endswith(".csv"):
            continue
        scen, rest = name[:-4].split("-", 1)
        lo, hi, contender = rest.split("-", 2)
        lat = "%s-%sms" % (lo, hi) if lo != hi else "%sms" % lo
        res.setdefault(scen, {}).setdefault(lat, {})[contender] = \
            e2e_run(os.path.join(d, name[:-4]), "%s-%s" % (lo, hi))
    raw = lines(os.path.join(d, "overhead.jsonl"))
    rows = []
    for procs in sorted({r["procs"] for r in raw}):
        by = {}
        for r in raw:
            if r["procs"] == procs:
                by.setdefault(r["rep"], {})[r["contender"]] = r
        pairs = [v for v in by.values() if "curl" in v and "gemroute" in v]
        if not pairs:
            continue
        def mid(c, f):
            return median(v[c][f] for v in pairs)
        def added(f):
            return median(v["gemroute"][f] - v["curl"][f] for v in pairs)
        rows.append({
            "procs": procs,
            "reps": len(pairs),
            "calls": raw[0]["calls"],
            "curl_us": mid("curl", "us_per_call_median"),
            "gemroute_us": mid("gemroute", "us_per_call_median"),
            "added_us": added("us_per_call_median"),
            "curl_cpu_us": mid("curl", "cpu_us_per_call_median"),
            "gemroute_cpu_us": mid("gemroute", "cpu_us_per_call_median"),
            "added_cpu_us": added("cpu_us_per_call_median"),
            "failed": sum(r["failed"] for r in raw if r["procs"] == procs),
        })
    ins = {r["contender"]: r["instructions_per_call"]
           for r in lines(os.path.join(d, "overhead_instr.jsonl"))}
    return res, {"rows": rows, "instructions": ins}


GW_TARGETS = ["direct", "nginx", "gateway"]


def gateway(work):
    """Section 4: direct, nginx and gemroute-gateway in front of the mock,
    from tools/bench/gateway.sh's wrk runs.  Every figure is a median
    over repetitions; added latencies and the throughput ratio are taken
    within a repetition first."""
    d = os.path.join(work, "gateway")
    raw = lines(os.path.join(d, "runs.jsonl"))
    if not raw:
        return None
    meta = {}
    if os.path.exists(os.path.join(d, "meta.json")):
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
    for r in raw:
        secs = r["duration_us"] / 1e6
        r["rps"] = r["requests"] / secs if secs > 0 else 0.0
        n = max(r["requests"], 1)
        r["proxy_cpu_us"] = 1e6 * r["proxy_cpu_s"] / n
        r["mock_cpu_us"] = 1e6 * r["mock_cpu_s"] / n
        r["proxy_cores"] = r["proxy_cpu_s"] / secs if secs > 0 else 0.0
    rows = []
    for mode in ("unary", "stream"):
        for conns in sorted({r["conns"] for r in raw}):
            runs = [r for r in raw if r["mode"] == mode and
                    r["conns"] == conns]
            if not runs:
                continue
            row = {"mode": mode, "conns": conns}
            for t in GW_TARGETS:
                mine = [r for r in runs if r["target"] == t]
                row[t] = {k: median(r[k] for r in mine) for k in
                          ("rps", "p50_us", "p99_us", "proxy_cpu_us",
                           "mock_cpu_us", "proxy_cores")}
                row[t]["errors"] = sum(r["errors"] + r["non2xx"]
                                       for r in mine)
            by = {}
            for r in runs:
                by.setdefault(r["rep"], {})[r["target"]] = r
            for t in ("nginx", "gateway"):
                pairs = [v for v in by.values() if t in v and "direct" in v]
                row[t]["added_p50_us"] = median(
                    v[t]["p50_us"] - v["direct"]["p50_us"] for v in pairs)
                row[t]["added_p99_us"] = median(
                    v[t]["p99_us"] - v["direct"]["p99_us"] for v in pairs)
            row["gateway_vs_nginx"] = median(
                v["gateway"]["rps"] / v["nginx"]["rps"] for v in by.values()
                if "gateway" in v and "nginx" in v and v["nginx"]["rps"] > 0)
            rows.append(row)
    return {"meta": meta, "rows": rows, "floors": gateway_floors(d)}


def gateway_floors(d):
    """What libcurl alone and libmicrohttpd alone cost per call (floors
    in tools/bench/gateway.sh): median CPU per request and requests/s."""
    out = []
    raw = lines(os.path.join(d, "floors.jsonl"))
    for what in ("libcurl", "h1", "libmicrohttpd"):
        mine = [r for r in raw if r["what"] == what and r["requests"] > 0]
        if not mine:
            continue
        for r in mine:
            secs = r.get("seconds") or r.get("duration_us", 0) / 1e6
            r["rps"] = r["requests"] / secs if secs > 0 else 0.0
            r["cpu_us"] = 1e6 * r["cpu_s"] / r["requests"]
        out.append({"what": what, "conns": mine[0]["conns"],
                    "rps": median(r["rps"] for r in mine),
                    "cpu_us": median(r["cpu_us"] for r in mine),
                    "errors": sum(r.get("errors", 0) + r.get("non2xx", 0)
                                  for r in mine)})
    return out


def aggregate(work, mode, reps, seconds, window_ms, tokens):
    raw = lines(os.path.join(work, "reserve.jsonl"))
    res = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": mode,
        "machine": machine(work),
        "reserve": {
            "reps": int(reps), "seconds_per_run": float(seconds),
            "window_ms": int(window_ms), "tokens": int(tokens),
            "rows": reserve_rows(raw),
            "ratios": [],
        },
        "instructions": lines(os.path.join(work, "instr.jsonl")),
        "check": lines(os.path.join(work, "check.jsonl")),
        "memory": lines(os.path.join(work, "memory.jsonl")),
    }
    for np in sorted({r["projects"] for r in raw}):
        for procs in sorted({r["procs"] for r in raw}):
            row = {"projects": np, "procs": procs}
            for other in IMPLS[1:]:
                row["vs_" + other] = ratio(raw, "gemroute", other, np, procs)
            res["reserve"]["ratios"].append(row)
    res["e2e"], res["overhead"] = e2e(work)
    res["gateway"] = gateway(work)
    res["targets"] = targets(res, raw)
    return res


def one_op(res, impl, np):
    """"N ns, N instr" of impl in one process, or None."""
    x = find(res["reserve"]["rows"], impl=impl, projects=np, procs=1)
    i = find(res["instructions"], impl=impl, projects=np, side="client")
    if not x:
        return None
    return "%.0f ns%s" % (x["ns_per_op"],
                          ", %d instr" % i["instructions"] if i else "")


def summary(res):
    rows = res["reserve"]["rows"]
    projects = sorted({r["projects"] for r in rows}) or [0]
    mid = 1000 if 1000 in projects else projects[len(projects) // 2]
    parts = []
    g1, e1 = one_op(res, "gemroute", mid), one_op(res, "gemroute-exact", mid)
    if g1:
        parts.append("reserve+commit %s (1 proc, %d projects)" % (g1, mid))
    if e1:
        parts.append("a lease per call %s" % e1)
    rat = {(r["projects"], r["procs"]): r for r in res["reserve"]["ratios"]}
    r32 = rat.get((mid, 32))
    if r32 and r32["vs_mutex"]:
        parts.append("%.1fx mutex at 32 procs" % r32["vs_mutex"])
    r8 = rat.get((mid, 8))
    if r8 and r8["vs_redis-zset"] and r8["vs_redis-lua"]:
        parts.append("%.0fx best Redis at 8 procs" %
                     min(r8["vs_redis-zset"], r8["vs_redis-lua"]))
    for c in res["check"]:
        if c["impl"] == "redis-zset":
            parts.append("tutorial Redis over-admits +%d/100 at %d procs" %
                         (c["over_admitted"], c["procs"]))
    e2e = res.get("e2e") or {}
    for lat, runs in sorted((e2e.get("steady") or {}).items()):
        g = runs.get("gemroute")
        if g:
            parts.append("steady %s: goodput %.1f%%, %s 429s" %
                         (lat, g["goodput_pct"], g["mock_429"]))
    for r in (res.get("overhead") or {}).get("rows") or []:
        parts.append("gr_generate +%.1f us (%d procs)" %
                     (r["added_us"], r["procs"]))
    for g in (res.get("gateway") or {}).get("rows") or []:
        if g["mode"] == "unary" and g["conns"] == 1:
            parts.append("gateway +%.0f us p50 (nginx +%.0f us)" % (
                g["gateway"]["added_p50_us"] or 0,
                g["nginx"]["added_p50_us"] or 0))
        if g["mode"] == "unary" and g["conns"] == 64 and \
                g["gateway_vs_nginx"] is not None:
            parts.append("gateway %.2fx nginx's requests/s at 64 conns" %
                         g["gateway_vs_nginx"])
    met = sum(1 for t in res["targets"] if t["met"])
    parts.append("targets met %d/%d" % (met, len(res["targets"])))
    return "summary: " + "; ".join(parts)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        with open(sys.argv[2]) as f:
            print(summary(json.load(f)))
        return
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    json.dump(aggregate(*sys.argv[1:]), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
