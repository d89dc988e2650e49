#!/usr/bin/env python3
# slow_upstream.py - a stand-in for Gemini that streams slowly, for the
# gateway's disconnect tests: POST ...:streamGenerateContent?alt=sse gets
# up to 100 events, one every 0.1 s; any other POST is answered after
# 10 s ($SLOW_UNARY_S seconds when set).  STATE (argv[1]) gets one line
# when an answer ends: "done N" (all sent), "gone N" (the client went
# away after N events), "unary-gone" (the client went away before the
# answer) or "unary-done".  Prints
# "listening on 127.0.0.1:PORT".  Loopback only.  STATE.headers gets a
# line per request about what came: "ua=... client=... key=project|other
# token=absent|LEAKED x-hop=absent|present", where the project key and the gateway's local
# token are read from $SLOW_KEY and $SLOW_TOKEN (never printed).
import http.server
import json
import os
import select
import sys
import time

STATE = sys.argv[1]
EVENT = json.dumps({
    "candidates": [{"content": {"parts": [{"text": "tick "}],
                                "role": "model"}, "index": 0}],
    "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1,
                      "totalTokenCount": 4}})


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        token = os.environ.get("SLOW_TOKEN", "")
        seen = self.path + str(self.headers) + body.decode("utf-8", "replace")
        with open(STATE + ".headers", "a") as f:
            f.write("ua=%s client=%s key=%s token=%s x-hop=%s\n" % (
                self.headers.get("User-Agent", "-"),
                self.headers.get("x-goog-api-client", "-"),
                "project" if self.headers.get("x-goog-api-key") ==
                os.environ.get("SLOW_KEY") else "other",
                "LEAKED" if token and token in seen else "absent",
                "present" if "x-hop" in self.headers else "absent"))
        if "streamGenerateContent" not in self.path:
            self.unary()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0
        try:
            for _ in range(100):
                data = ("data: " + EVENT + "\r\n\r\n").encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                sent += 1
                time.sleep(0.1)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            what = "done"
        except (BrokenPipeError, ConnectionResetError):
            what = "gone"
        with open(STATE, "a") as f:
            f.write("%s %d\n" % (what, sent))
        self.close_connection = True


    def unary(self):
        # Wait, watching for the client to hang up (EOF on the socket).
        end = time.monotonic() + float(os.environ.get("SLOW_UNARY_S", "10"))
        what = "unary-done"
        while time.monotonic() < end:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            if r and self.connection.recv(1, 0x2) == b"":    # MSG_PEEK
                what = "unary-gone"
                break
        if what == "unary-done":
            body = EVENT.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        with open(STATE, "a") as f:
            f.write(what + "\n")
        self.close_connection = True


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print("listening on 127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
