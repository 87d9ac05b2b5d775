#!/usr/bin/python3
"""A webhook receiver for the tests: every POST body is written to <dir>/<n>.json, answered 200."""
import http.server
import os
import sys
import time

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(os.path.join(OUT, "%d.json" % time.time_ns()), "wb") as fh:
            fh.write(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")


http.server.HTTPServer(("127.0.0.1", 9999), Hook).serve_forever()
