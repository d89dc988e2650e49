"""test_gemroute.py - the Python binding against a live router and mock.

Run by tests/python/run_python.sh, which starts both and sets
GEMROUTE_SHM, GEMROUTE_LIB, GR_LAYOUT (the C layout helper), GR_CLI
(bin/gemroute) and GR_BASE_URL (the mock).  Prints "N passed, N failed".
Outcomes only, never durations.
"""
import ctypes
import json
import os
import subprocess
import sys
import threading
import unittest
import urllib.error
import urllib.request

import gemroute
from gemroute import _ffi

MODEL = "gemini-2.5-flash"
EMBED = "gemini-embedding-001"
PROJECTS = {"one", "two"}
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures", "gemini")
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def c_layout():
    """{struct: (size, align, {field: (offset, size)})} from layout.c."""
    out = subprocess.run([os.environ["GR_LAYOUT"]], check=True,
                         stdout=subprocess.PIPE).stdout.decode()
    structs = {}
    for line in out.splitlines():
        name, a, b = line.split()
        if "." in name:
            s, f = name.split(".")
            structs[s][2][f] = (int(a), int(b))
        else:
            structs[name] = (int(a), int(b), {})
    return structs


def layout_mismatches(mirrors, c):
    """Every difference between ctypes mirrors and the C layout."""
    bad = []
    if set(mirrors) != set(c):
        bad.append("structs: ctypes %s, C %s" % (sorted(mirrors), sorted(c)))
    for name, cls in mirrors.items():
        if name not in c:
            continue
        size, align, fields = c[name]
        if ctypes.sizeof(cls) != size:
            bad.append("%s: sizeof %d, C %d" % (name, ctypes.sizeof(cls),
                                                size))
        if ctypes.alignment(cls) != align:
            bad.append("%s: alignment %d, C %d"
                       % (name, ctypes.alignment(cls), align))
        mine = {f[0]: (getattr(cls, f[0]).offset, getattr(cls, f[0]).size)
                for f in cls._fields_}
        if set(mine) != set(fields):
            bad.append("%s: fields %s, C %s"
                       % (name, sorted(mine), sorted(fields)))
        for f in set(mine) & set(fields):
            if mine[f] != fields[f]:
                bad.append("%s.%s: offset, size %s, C %s"
                           % (name, f, mine[f], fields[f]))
    return bad


def status_json():
    out = subprocess.run([os.environ["GR_CLI"], "status", "--json"],
                         check=True, stdout=subprocess.PIPE).stdout
    return json.loads(out)


def cell(project, model=MODEL):
    for c in status_json()["cells"]:
        if c["project"] == project and c["model"] == model:
            return c
    raise AssertionError("no cell %s/%s in status" % (project, model))


class Layout(unittest.TestCase):
    def test_mirrors_match_the_header(self):
        self.assertEqual(layout_mismatches(_ffi.STRUCTS, c_layout()), [])

    def test_a_mismatch_is_caught(self):
        class Lease(ctypes.Structure):          # key one byte short
            _fields_ = [(n, ctypes.c_char * 127) if n == "key" else (n, t)
                        for n, t in _ffi.Lease._fields_]

        class Usage(ctypes.Structure):          # a field missing
            _fields_ = _ffi.Usage._fields_[:2]
        c = c_layout()
        for name, cls in (("gr_lease", Lease), ("gr_usage", Usage)):
            mirrors = dict(_ffi.STRUCTS, **{name: cls})
            self.assertNotEqual(layout_mismatches(mirrors, c), [], name)


class Classify(unittest.TestCase):
    def test_429_per_minute(self):
        v = gemroute.classify(429, fixture("429-tpm-freetier-flash.json"))
        self.assertEqual(v.status, 429)
        self.assertEqual(v.cls, "quota")
        self.assertEqual(v.dims, ["tpm"])
        self.assertEqual(v.cooldown_source, "retryinfo")
        self.assertGreater(v.cooldown_s, 0)
        self.assertTrue(v.retryable)
        self.assertEqual(len(v.quota_ids), 1)
        self.assertIn("PerMinute", v.quota_ids[0])
        self.assertTrue(v.reason)

    def test_other_answers(self):
        for status, name, cls in (
                (400, "400-api-key-invalid.json", "auth"),
                (404, "404-model-not-found.json", "model"),
                (503, "503-overloaded.json", "overload"),
                (500, "500-internal.json", "server"),
                (200, "200-generate-content.json", "ok")):
            v = gemroute.classify(status, fixture(name))
            self.assertEqual(v.cls, cls, name)
        self.assertEqual(gemroute.classify(0).cls, "server")
        self.assertEqual(gemroute.classify(429, "{}").dims, [])

    def test_str_and_dict_bodies(self):
        body = json.loads(fixture("503-overloaded.json"))
        self.assertEqual(gemroute.classify(503, body).cls, "overload")
        self.assertEqual(gemroute.classify(503, json.dumps(body)).cls,
                         "overload")


class Table(unittest.TestCase):
    def setUp(self):
        self.t = gemroute.open()

    def tearDown(self):
        self.t.close()

    def test_open_missing_table(self):
        with self.assertRaises(gemroute.TableError) as e:
            gemroute.open("/gr-python-no-such-table")
        self.assertIn("gr-python-no-such-table", str(e.exception))
        self.assertEqual(e.exception.code, gemroute.ESHM)

    def test_reserve_settles_on_exit(self):
        with self.t.reserve(MODEL, tokens=10, timeout=10) as lease:
            self.assertIn(lease.project, PROJECTS)
            self.assertEqual(lease.model, MODEL)
            self.assertEqual(lease.base_url, os.environ["GR_BASE_URL"])
            self.assertTrue(lease.key)
            self.assertFalse(lease.settled)
        self.assertTrue(lease.settled)
        lease.commit(tokens=5)          # a second commit does nothing

    def test_commit_in_the_block(self):
        with self.t.reserve(MODEL, tokens=10) as lease:
            lease.commit(tokens=8, images=0,
                         first_byte_ns=gemroute.now_ns())
            self.assertTrue(lease.settled)
        with self.assertRaises(gemroute.StaleLease):
            lease.report(gemroute.classify(200, "{}"))

    def test_exception_in_the_block_settles_and_propagates(self):
        with self.assertRaises(KeyError):
            with self.t.reserve(MODEL, tokens=10) as lease:
                raise KeyError("boom")
        self.assertTrue(lease.settled)

    def test_cost_reaches_the_table(self):
        # More tokens than any project may admit in a window: it can never
        # fit, so it fails at once, with or without a deadline (issue 16).
        with self.assertRaises(gemroute.TooBig) as e:
            self.t.reserve(MODEL, tokens=10 ** 9)
        self.assertEqual(e.exception.code, gemroute.ETOOBIG)
        self.assertIn("largest TPM limit", str(e.exception))
        with self.assertRaises(gemroute.TooBig):
            self.t.reserve(MODEL, tokens=10 ** 9, timeout=3600)
        with self.assertRaises(gemroute.NoModel):
            self.t.reserve("gemini-9-nothing", tokens=1)

    def test_report_reaches_the_cell(self):
        with self.t.reserve(MODEL, tokens=10) as lease:
            lease.report(gemroute.classify(
                429, fixture("429-tpm-freetier-flash.json")))
        project = lease.project
        try:
            c = cell(project)
            self.assertEqual(c["health"], "cooling", c)
            self.assertGreater(c["cooldown_s"]["tpm"], 0, c)
        finally:
            subprocess.run([os.environ["GR_CLI"], "reset", project],
                           check=True, stdout=subprocess.DEVNULL)
        self.assertEqual(cell(project)["health"], "healthy")

    def test_repr_hides_the_key(self):
        # assertNotIn would print the key when it fails.
        with self.t.reserve(MODEL, tokens=1) as lease:
            self.assertTrue(len(lease.key) > 8)
            self.assertFalse(lease.key in repr(lease), "repr shows the key")
            self.assertFalse(lease.key[:-4] in repr(lease),
                             "repr shows most of the key")

    def test_closed_handle(self):
        t = gemroute.open()
        lease = t.reserve(MODEL, tokens=1)
        t.close()
        with self.assertRaises(ValueError):
            t.reserve(MODEL, tokens=1)
        with self.assertRaises(ValueError):
            lease.commit()
        with lease:                     # exit after close: no crash
            pass
        t.close()                       # twice: nothing


class Calls(unittest.TestCase):
    def setUp(self):
        self.t = gemroute.open()

    def tearDown(self):
        self.t.close()

    def test_generate(self):
        r = self.t.generate(MODEL, HELLO, timeout=30)
        self.assertEqual(r.status, 200)
        self.assertIn("answering in place of Gemini", r.text)
        self.assertIn(r.project, PROJECTS)
        self.assertEqual(r.attempts, 1)
        self.assertGreater(r.usage["prompt"], 0)
        self.assertEqual(r.error, "")
        self.assertEqual(r.verdict.cls, "ok")
        self.assertIn("candidates", r.json())

    def own_call(self, lease, body):
        """The call a worker makes itself (bindings/python/README.md)."""
        req = urllib.request.Request(
            "%s/v1beta/models/%s:generateContent"
            % (lease.base_url, lease.model),
            data=json.dumps(body).encode(),
            headers={"x-goog-api-key": lease.key,
                     "content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_own_call_with_a_lease(self):
        for body, want in ((HELLO, "ok"), ({}, "request")):
            with self.t.reserve(MODEL, tokens=10, timeout=30) as lease:
                status, answer = self.own_call(lease, body)
                first_byte = gemroute.now_ns()
                v = gemroute.classify(status, answer)
                lease.report(v)
                used = json.loads(answer).get("usageMetadata", {})
                lease.commit(tokens=used.get("promptTokenCount", -1),
                             first_byte_ns=first_byte)
            self.assertEqual(v.cls, want, v)
            self.assertTrue(lease.settled)
            if want == "ok":
                self.assertEqual(status, 200)
                self.assertGreater(used["promptTokenCount"], 0)

    def test_generate_json_text(self):
        r = self.t.generate(MODEL, json.dumps(HELLO).encode())
        self.assertEqual(r.status, 200)

    def test_request_at_fault(self):
        with self.assertRaises(gemroute.CallFailed) as e:
            self.t.generate(MODEL, "{}", timeout=30)
        r = e.exception.response
        self.assertEqual(r.status, 400)
        self.assertEqual(r.verdict.cls, "request")
        self.assertEqual(r.attempts, 1)
        self.assertIn("400", str(e.exception))

    def test_no_model(self):
        with self.assertRaises(gemroute.NoModel):
            self.t.generate("gemini-9-nothing", HELLO, timeout=30)

    def test_stream(self):
        events = []
        r = self.t.stream(MODEL, HELLO, events.append, timeout=30)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(events), 3)
        self.assertTrue(all("candidates" in e for e in events))
        self.assertIn("your request was counted", r.text)

    def test_stream_stops_on_exception(self):
        def boom(event):
            raise RuntimeError("stop here")
        with self.assertRaises(RuntimeError):
            self.t.stream(MODEL, HELLO, boom, timeout=30)

    def test_count_tokens_and_embed(self):
        r = self.t.count_tokens(MODEL, HELLO, timeout=30)
        self.assertGreater(r.usage["prompt"], 0)
        r = self.t.embed(EMBED, {"content": {"parts": [{"text": "hi"}]},
                                 "outputDimensionality": 8}, timeout=30)
        self.assertEqual(len(r.json()["embedding"]["values"]), 8)

    def test_threads_share_one_handle(self):
        results, lock = [], threading.Lock()

        def work():
            for _ in range(5):
                r = self.t.generate(MODEL, HELLO, timeout=60)
                with lock:
                    results.append(r.status)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(results, [200] * 20)


if __name__ == "__main__":
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    res = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    bad = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    good = res.testsRun - bad - len(res.skipped)
    print("%d passed, %d failed" % (good, bad))
    sys.exit(1 if bad else 0)
