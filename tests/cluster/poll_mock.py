#!/usr/bin/env python3
# poll_mock.py PORT OUT STOP - for the cluster tests: every 40 ms, until
# the file STOP exists, append "WALL_S REQUESTS_IN_WINDOW 429S_TOTAL" of
# project "pool", model gemini-2.5-flash, as the mock on PORT counts
# them, to OUT.
import json, os, sys, time, urllib.request
port, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
with open(out, "w") as f:
    while not os.path.exists(stop):
        try:
            j = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%s/mock/stats" % port, timeout=2).read())
            m = j["projects"]["pool"]["models"].get("gemini-2.5-flash")
            if m:
                f.write("%.3f %d %d\n" % (time.time(), m["window"]["requests"],
                                          m["quota_429"]["total"]))
                f.flush()
        except Exception:
            pass
        time.sleep(0.04)
