#!/usr/bin/python3
"""A stand-in for an app's health endpoint, standard library only.

GET /healthz         -> 200 {"status": "ok", "database": "ok", ...} (as the Zen Ops runbook shows)
GET /status/<code>   -> <code> {"status": "down"}
GET /slow/<ms>       -> 200 {"status": "ok"} after <ms> milliseconds
GET /degraded        -> 200 {"status": "degraded", ...} (serving, with a queue over its threshold)
GET /metrics         -> Prometheus text, only with "Authorization: Bearer metrics-token" (else 401)
"""
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        parts = self.path.strip("/").split("/")
        code, body = 404, {"status": "not found"}
        if parts == ["healthz"]:
            code, body = 200, {"status": "ok", "database": "ok", "email_queue_pending": 5, "email_queue_failed": 0}
        elif len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            code, body = int(parts[1]), {"status": "down"}
        elif parts == ["degraded"]:
            code, body = 200, {"status": "degraded", "database": "ok", "email_queue_pending": 5000}
        elif parts == ["metrics"]:
            ok = self.headers.get("Authorization") == "Bearer metrics-token"
            # A worker's counters and its adapter latency histogram (40 calls, 30 s in all: a 0.75 s mean).
            text = ('outbox_processed_total{status="ok"} 120\noutbox_processed_total{status="failed"} 17\n'
                    'adapter_latency_seconds_bucket{le="+Inf"} 40\nadapter_latency_seconds_sum 30.0\n'
                    'adapter_latency_seconds_count 40\n'
                    if ok else "unauthorized\n")
            data = text.encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        elif len(parts) == 2 and parts[0] == "slow" and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000)
            code, body = 200, {"status": "ok"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
