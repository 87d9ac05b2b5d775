"""shipshape.ops.health_check: validation messages, each kind against local stand-ins, the summary, secrets."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import subprocess
import threading
import time

import pytest

from ansible_collections.shipshape.ops.plugins.modules import health_check

SECRET = "s3cret-Pa55word"


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("checks", "problem"),
    [
        ([{"name": "bogus", "kind": "nosuch"}],
         "check 'bogus': field 'kind' is 'nosuch', expected one of systemd, http, postgres"),
        ([{"name": "api", "kind": "http"}], "check 'api' (http): field 'url' is required"),
        ([{"name": "dlq", "kind": "redis_stream", "key": "k", "max_ms": 5}],
         "check 'dlq' (redis_stream): field 'max_ms' is not known for this kind (known: "),
        ([{"name": "dlq", "kind": "redis_stream", "key": "k", "warn": "ten"}],
         "check 'dlq' (redis_stream): field 'warn' must be a number, got 'ten'"),
        ([{"name": "dlq", "kind": "redis_stream", "key": "k", "warn": 10, "crit": 5}],
         "check 'dlq' (redis_stream): field 'warn' (10) must not be above 'crit' (5)"),
        ([{"name": "d", "kind": "disk", "path": "/", "min_free_mb_warn": 1, "min_free_mb_crit": 5}],
         "check 'd' (disk): field 'min_free_mb_warn' (1) must not be below 'min_free_mb_crit' (5)"),
        ([{"name": "r", "kind": "redis", "db": "zero"}],
         "check 'r' (redis): field 'db' must be a Redis database number, got 'zero'"),
        ([{"name": "h", "kind": "http", "url": "ftp://x"}],
         "check 'h' (http): field 'url' must start with http:// or https://, got 'ftp://x'"),
        ([{"name": "h", "kind": "http", "url": "http://x", "status": "200"}],
         "check 'h' (http): field 'status' must be an HTTP status code or a list of them, got '200'"),
        ([{"name": "h", "kind": "http", "url": "http://x", "json": "ok"}],
         "check 'h' (http): field 'json' must be a dict, got 'ok'"),
        ([{"name": "a", "kind": "disk", "path": "/"}, {"name": "a", "kind": "disk", "path": "/"}],
         "check 'a': field 'name' is used by another check; names must be unique"),
        ([{"kind": "disk", "path": "/"}], "check #1: field 'name' is required (a non-empty string)"),
        ([{"name": "r", "kind": "redis", "delegate_to": "nosuch-host"}],
         "check 'r': field 'delegate_to' is 'nosuch-host', which is not a host of this inventory"),
    ],
    ids=["kind", "required", "unknown-field", "number", "warn-above-crit", "floor-order", "redis-db", "url-scheme",
         "status-type", "json-type", "unique-name", "no-name", "unknown-delegate"],
)
def test_validation_names_check_field_and_value(run_module, checks, problem):
    failed, result = run_module(health_check, {"action": "validate", "checks": checks, "hosts": ["app", "db"],
                                               "label": "preflight_checks of app"})
    assert failed
    assert result["msg"].startswith("preflight_checks of app are invalid: ")
    assert any(p.startswith(problem) for p in result["problems"]), result["problems"]


def test_an_unknown_field_is_refused(run_module):
    checks = [{"name": "a", "kind": "disk", "path": "/", "nosuch": 1}]
    failed, result = run_module(health_check, {"action": "validate", "checks": checks})
    assert failed and "nosuch" in result["msg"]


def test_valid_checks_return_their_delegates(run_module):
    checks = [{"name": "a", "kind": "disk", "path": "/"},
              {"name": "b", "kind": "redis", "delegate_to": "db"},
              {"name": "c", "kind": "postgres", "db": "x", "user": "u", "delegate_to": "db"},
              {"name": "d", "kind": "redis", "delegate_to": "cache"}]
    failed, result = run_module(health_check, {"action": "validate", "checks": checks, "hosts": ["db", "cache"]},
                                check_mode=True)
    assert not failed and result["problems"] == [] and result["delegates"] == ["db", "cache"]
    assert result["changed"] is False


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------
def run_checks(run_module, checks, **args):
    failed, result = run_module(health_check, dict({"action": "run", "checks": checks}, **args))
    assert not failed, result
    assert all(set(r) == {"name", "kind", "status", "message", "value", "duration_ms", "details"}
               for r in result["checks"])
    return result


@pytest.mark.parametrize(
    ("value", "warn", "crit", "status", "message"),
    [
        (5, 10, 100, "ok", "q 5 (<= warn 10, crit 100)"),
        (10, 10, 100, "ok", "q 10 (<= warn 10, crit 100)"),
        (11, 10, 100, "degraded", "q 11 > warn 10"),
        (101, 10, 100, "failed", "q 101 > crit 100"),
        (7, None, None, "ok", "q 7"),
    ],
)
def test_thresholds(value, warn, crit, status, message):
    assert health_check.thresholds(value, warn, crit, "q") == (status, message)


@pytest.mark.parametrize(
    ("limits", "status", "start"),
    [
        ({}, "ok", "/ free "),
        ({"min_free_percent_crit": 101}, "failed", "/ free "),
        ({"min_free_percent_warn": 101, "min_free_percent_crit": 0}, "degraded", "/ free "),
        ({"min_free_mb_crit": 10 ** 12}, "failed", "/ free "),
    ],
    ids=["no-limits", "percent-crit", "percent-warn", "mb-crit"],
)
def test_disk(run_module, limits, status, start):
    result = run_checks(run_module, [dict({"name": "root", "kind": "disk", "path": "/"}, **limits)])
    (check,) = result["checks"]
    assert check["status"] == status and check["message"].startswith(start), check
    assert set(check["details"]) == {"free_mb", "free_percent", "ran_on"}
    assert check["value"] == check["details"]["free_percent"]


def test_disk_missing_path(run_module):
    (check,) = run_checks(run_module, [{"name": "x", "kind": "disk", "path": "/no/such/dir"}])["checks"]
    assert check["status"] == "failed" and check["message"] == "cannot stat /no/such/dir: No such file or directory"


def app_root(tmp_path, current, running):
    (tmp_path / "releases" / "1.0.0-aaaa").mkdir(parents=True)
    (tmp_path / "releases" / "2.0.0-bbbb").mkdir()
    if current:
        (tmp_path / "current").symlink_to("releases/" + current)
    if running:
        (tmp_path / ".shipshape-running").symlink_to("releases/" + running)
    return str(tmp_path)


@pytest.mark.parametrize(
    ("current", "running", "status", "message"),
    [
        ("2.0.0-bbbb", "2.0.0-bbbb", "ok", "the service runs 2.0.0-bbbb, the current release"),
        ("2.0.0-bbbb", None, "ok", "current is 2.0.0-bbbb (the service has not started since it was deployed)"),
        ("1.0.0-aaaa", "2.0.0-bbbb", "degraded", "current is 1.0.0-aaaa but the service runs 2.0.0-bbbb: a switch did "
         "not finish (the next deploy of 1.0.0-aaaa restarts and gates it)"),
        (None, None, "failed", "{root} has no current release"),
    ],
    ids=["same", "never-started", "interrupted-switch", "no-current"],
)
def test_release_shows_when_the_service_runs_another_release_than_current(run_module, tmp_path, current, running,
                                                                          status, message):
    root = app_root(tmp_path, current, running)
    (check,) = run_checks(run_module, [{"name": "release", "kind": "release", "root": root}])["checks"]
    assert check["status"] == status and check["message"] == message.format(root=root), check
    assert check["details"]["current"] == current and check["details"]["running"] == running


def test_release_root_must_be_absolute(run_module):
    failed, result = run_module(health_check, {"action": "validate",
                                               "checks": [{"name": "release", "kind": "release", "root": "srv/app"}]})
    assert failed and "field 'root' must be the app's absolute root directory, got 'srv/app'" in result["msg"]


def test_only_the_checks_of_this_host_or_delegate_run(run_module):
    checks = [{"name": "here", "kind": "disk", "path": "/"},
              {"name": "there", "kind": "disk", "path": "/", "delegate_to": "db"}]
    assert [c["name"] for c in run_checks(run_module, checks)["checks"]] == ["here"]
    result = run_checks(run_module, checks, delegate="db")
    assert [c["name"] for c in result["checks"]] == ["there"] and result["delegate"] == "db"


# -- HTTP against a local http.server ------------------------------------------------------------
METRICS = {"count": 0}
TOKEN = "metrics-token-do-not-leak"


def metrics_body():
    """A Prometheus text page whose failed-outbox counter grows by 3 at every scrape."""
    METRICS["count"] += 1
    return "\n".join([
        "# HELP outbox_processed_total Outbox rows processed.",
        "# TYPE outbox_processed_total counter",
        'outbox_processed_total{status="ok",queue="a"} 100',
        'outbox_processed_total{status="failed",queue="a"} %d' % (3 * METRICS["count"]),
        'outbox_processed_total{status="failed",queue="b"} 2 1700000000000',
        'http_requests_total{code="5xx",path="/a \\"b\\""} 7.5',
        "loyalty_outbox_dead_total 0",
        # a histogram: tg's adapter calls take 0.25 s each, 10 more at every scrape; idle makes none
        'adapter_latency_seconds_bucket{adapter="tg",le="+Inf"} %d' % (10 + 10 * METRICS["count"]),
        'adapter_latency_seconds_sum{adapter="tg"} %s' % (5 + 2.5 * METRICS["count"]),
        'adapter_latency_seconds_count{adapter="tg"} %d' % (10 + 10 * METRICS["count"]),
        'adapter_latency_seconds_sum{adapter="idle"} 0',
        'adapter_latency_seconds_count{adapter="idle"} 0',
        # a summary without its _count
        'rpc_duration_seconds_sum 12.5',
        'rpc_duration_seconds_count 50',
        'half_seconds_sum 4',
        # a gauge the exporter could not measure
        'replica_lag_seconds NaN',
    ]) + "\n"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/metrics":
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                self.send_response(401)
                self.end_headers()
                return
            body = metrics_body().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/degraded":
            body = json.dumps({"status": "degraded", "checks": {"redis": "down"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/moved" or self.path.startswith("/away?to="):  # a redirect on this origin, or to another
            self.send_response(302)
            self.send_header("Location", "/metrics" if self.path == "/moved" else self.path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/deep":  # a body of JSON nested 5000 deep
            body = b"[" * 5000 + b"]" * 5000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/trickle":  # headers at once, then a byte every 0.2 s for 6 s: each read is quick
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for dummy in range(30):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            return
        if self.path == "/huge":  # 8 MiB of one JSON document
            body = json.dumps({"status": "ok", "pad": "x" * (8 << 20)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass
            return
        if self.path.startswith("/slow/"):
            time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000)
        code = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/status/") else 200
        body = json.dumps({"status": "ok", "items": [{"id": 7}]}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def http_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("check", "status", "message"),
    [
        ({"url": "/healthz", "json": {"status": "ok", "items.0.id": 7}}, "ok", "answered 200 in"),
        ({"url": "/status/503"}, "failed", "answered 503, expected 200"),
        ({"url": "/status/503", "status": [503, 504]}, "ok", "answered 503 in"),
        ({"url": "/healthz", "json": {"status": "degraded"}}, "failed", "status is 'ok', expected 'degraded'"),
        ({"url": "/healthz", "json": {"missing.path": 1}}, "failed", "missing.path is missing (expected 1)"),
        ({"url": "/slow/300", "max_ms": 100}, "degraded", "ms > max 100 ms"),
        ({"url": "/degraded", "json": {"status": "ok"}}, "degraded",
         "status is 'degraded', expected 'ok' (the app reports itself degraded)"),
        ({"url": "/degraded", "json": {"status": "ok", "checks.redis": "up"}}, "failed",
         "checks.redis is 'down', expected 'up'; status is 'degraded', expected 'ok'"),
    ],
    ids=["ok", "503-is-failed", "503-expected", "json-mismatch", "json-missing", "slow-is-degraded",
         "app-degraded-is-degraded", "app-degraded-and-broken-is-failed"],
)
def test_http(run_module, http_url, check, status, message):
    check = dict(check, name="api", kind="http", url=http_url + check["url"])
    (result,) = run_checks(run_module, [check])["checks"]
    assert result["status"] == status and message in result["message"], result
    assert result["details"]["attempts"] == 1
    if "status_code" in result["details"]:
        assert result["value"] == result["details"]["latency_ms"]


def test_http_refused_after_retries(run_module):
    check = {"name": "api", "kind": "http", "url": "http://127.0.0.1:%d/" % free_port(), "retries": 1, "delay": 0}
    (result,) = run_checks(run_module, [check])["checks"]
    assert result["status"] == "failed"
    assert "no answer" in result["message"] and result["message"].endswith("(attempt 2 of 2)")


# -- Redis against a local redis-server, and a fake server that echoes what it got ----------------
@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--save", "", "--appendonly", "no",
                             "--requirepass", SECRET, "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for dummy in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def redis(port, *command):
    cli = shutil.which("redis-cli")
    if cli is None:
        pytest.skip("redis-cli is not installed")
    subprocess.run([cli, "-p", str(port), "--no-auth-warning", "-a", SECRET, *command], check=True,
                   capture_output=True)


def test_redis_ping_and_stream_thresholds(run_module, redis_port):
    redis(redis_port, "DEL", "events:dead")
    for i in range(15):
        redis(redis_port, "XADD", "events:dead", "*", "event", str(i))
    conn = {"host": "127.0.0.1", "port": redis_port, "password": SECRET}
    result = run_checks(run_module, [
        dict(conn, name="redis", kind="redis"),
        dict(conn, name="dlq", kind="redis_stream", key="events:dead", warn=10, crit=100),
        dict(conn, name="dlq-crit", kind="redis_stream", key="events:dead", warn=5, crit=14),
        dict(conn, name="other-db", kind="redis_stream", key="events:dead", db=1),
    ])
    ping, dlq, crit, other = result["checks"]
    assert (ping["status"], ping["value"], ping["message"]) == ("ok", "PONG", "Redis 127.0.0.1:%d answers PONG" % redis_port)
    assert (dlq["status"], dlq["value"], dlq["message"]) == ("degraded", 15, "events:dead length 15 > warn 10")
    assert (crit["status"], crit["message"]) == ("failed", "events:dead length 15 > crit 14")
    assert (other["status"], other["value"]) == ("ok", 0)
    assert SECRET not in json.dumps(result)


def test_redis_wrong_password_is_failed_and_masked(run_module, redis_port):
    (check,) = run_checks(run_module, [{"name": "redis", "kind": "redis", "host": "127.0.0.1",
                                        "port": redis_port, "password": "wrong-" + SECRET}])["checks"]
    assert check["status"] == "failed" and "does not answer PING" in check["message"]
    assert SECRET not in json.dumps(check)


def test_redis_down_is_failed(run_module):
    (check,) = run_checks(run_module, [{"name": "redis", "kind": "redis", "host": "127.0.0.1",
                                        "port": free_port(), "timeout": 2}])["checks"]
    assert check["status"] == "failed" and "does not answer PING" in check["message"]


@pytest.fixture
def echo_server():
    """A fake Redis that answers with an error echoing the first command it received (as some proxies do)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, dummy = server.accept()
        with conn:
            data = conn.recv(4096).decode("utf-8", "replace")
            conn.sendall(("-ERR got %s\r\n" % " ".join(data.split())).encode())
            conn.sendall(b"+PONG\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def test_password_echoed_by_a_server_is_masked(run_module, echo_server):
    (check,) = run_checks(run_module, [{"name": "redis", "kind": "redis", "host": "127.0.0.1", "port": echo_server,
                                        "password": SECRET}])["checks"]
    assert check["status"] == "failed" and "AUTH" in check["message"] and "********" in check["message"]
    assert SECRET not in json.dumps(check)


def test_postgres_unreachable_is_failed_and_masked(run_module):
    check = {"name": "db", "kind": "postgres", "host": "127.0.0.1", "port": free_port(), "db": "x", "user": "u",
             "password": SECRET, "timeout": 2}
    (result,) = run_checks(run_module, [check])["checks"]
    assert result["status"] == "failed"
    assert result["message"].startswith("PostgreSQL u@127.0.0.1:%d/x does not answer 'SELECT 1': " % check["port"])
    assert SECRET not in json.dumps(result)


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------
CHECKS = [
    {"name": "a", "kind": "disk", "path": "/"},
    {"name": "dlq", "kind": "redis_stream", "key": "events:dead", "delegate_to": "db", "password": SECRET},
    {"name": "b", "kind": "disk", "path": "/"},
]


def result(name, status, message="m"):
    return {"name": name, "kind": "disk", "status": status, "message": message, "value": 1, "duration_ms": 1,
            "details": {"ran_on": "x"}}


def summarize(run_module, runs, fail_on="failed", checks=None):
    checks = CHECKS if checks is None else checks
    failed, out = run_module(health_check, {"action": "summarize", "checks": checks, "runs": runs, "host": "app",
                                            "fail_on": fail_on})
    assert not failed, out
    assert SECRET not in json.dumps(out)
    return out


def test_summary_keeps_the_order_of_the_checks_and_counts(run_module):
    runs = [{"checks": [result("a", "ok"), result("b", "ok")], "delegate": None, "started_at": "2026-12-02T10:00:01Z"},
            {"item": "db", "checks": [result("dlq", "degraded", "events:dead length 15 > warn 10")],
             "started_at": "2026-12-02T10:00:00Z"}]
    out = summarize(run_module, runs)
    res = out["result"]
    assert [c["name"] for c in res["checks"]] == ["a", "dlq", "b"]
    assert res["counts"] == {"ok": 2, "degraded": 1, "failed": 0}
    assert (res["status"], res["host"], res["checked_at"]) == ("degraded", "app", "2026-12-02T10:00:00Z")
    assert res["message"] == "3 checks on app: 2 ok, 1 degraded, 0 failed"
    assert out["fail"] is False
    assert out["fail_message"] == "Preflight on app is degraded: dlq degraded (events:dead length 15 > warn 10)."
    assert out["report"][0] == "DEGRADED: 3 checks on app: 2 ok, 1 degraded, 0 failed"
    assert summarize(run_module, runs, fail_on="degraded")["fail"] is True
    assert summarize(run_module, runs, fail_on="never")["fail"] is False


def test_an_unreachable_delegate_makes_its_checks_failed_with_its_error(run_module):
    error = "Failed to connect to the host via ssh: ssh: Could not resolve hostname db: Name or service not known"
    runs = [{"checks": [result("a", "ok"), result("b", "ok")], "delegate": None},
            {"item": "db", "unreachable": True, "msg": error, "changed": False}]
    out = summarize(run_module, runs)
    dlq = out["result"]["checks"][1]
    assert (dlq["name"], dlq["status"], dlq["value"]) == ("dlq", "failed", None)
    assert dlq["message"] == "the probe did not run on db: " + error
    assert out["result"]["status"] == "failed" and out["fail"] is True


def test_no_checks(run_module):
    out = summarize(run_module, [{"checks": [], "delegate": None}], checks=[])
    assert out["result"]["status"] == "ok" and out["result"]["checks"] == []
    assert out["result"]["counts"] == {"ok": 0, "degraded": 0, "failed": 0}
    assert out["result"]["message"] == "no checks configured for app"
    assert out["fail_message"] == ""


def test_the_password_is_never_in_the_invocation(run_module):
    failed, out = run_module(health_check, {"action": "run", "checks": [
        {"name": "redis", "kind": "redis", "host": "127.0.0.1", "port": free_port(), "password": SECRET}]})
    assert not failed
    assert SECRET not in json.dumps(out)


# ----------------------------------------------------------------------------------------------
# The whole inventory (playbooks/health.yml)
# ----------------------------------------------------------------------------------------------
APP_RESULT = {"host": "app", "status": "degraded", "message": "2 checks on app: 1 ok, 1 degraded, 0 failed",
              "checks": [result("a", "ok"), result("dlq", "degraded", "events:dead length 15 > warn 10")]}


@pytest.mark.parametrize(
    ("fail_on", "fail", "reasons"),
    [
        ("failed", True, ["ghost has no result (unreachable, or invalid checks)"]),
        ("degraded", True, ["app/dlq degraded (events:dead length 15 > warn 10)",
                            "ghost has no result (unreachable, or invalid checks)"]),
        ("never", False, ["ghost has no result (unreachable, or invalid checks)"]),
    ],
)
def test_report_on_the_inventory(run_module, fail_on, fail, reasons):
    failed, out = run_module(health_check, {"action": "report", "results": {"app": APP_RESULT},
                                            "hosts": ["app", "ghost"], "fail_on": fail_on})
    assert not failed
    assert out["by_host"] == {"app": APP_RESULT, "ghost": None}
    assert (out["fail"], out["reasons"]) == (fail, reasons)
    assert out["report"] == ["degraded 2 checks on app: 1 ok, 1 degraded, 0 failed",
                             "         - dlq degraded: events:dead length 15 > warn 10",
                             "failed   no result from ghost"]


def test_report_of_healthy_hosts_does_not_fail(run_module):
    ok = {"host": "db", "status": "ok", "message": "1 check on db: 1 ok, 0 degraded, 0 failed",
          "checks": [result("a", "ok")]}
    failed, out = run_module(health_check, {"action": "report", "results": {"db": ok}, "hosts": ["db"]})
    assert not failed and out["fail"] is False and out["reasons"] == []


# -- Prometheus metrics ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "status", "value", "message"),
    [
        ({"metric": "outbox_processed_total", "labels": {"status": "failed", "queue": "b"}, "warn": 1, "crit": 5},
         "degraded", 2.0, 'outbox_processed_total{queue="b",status="failed"} 2.0 > warn 1'),
        ({"metric": "outbox_processed_total", "labels": {"status": "ok"}, "crit": 50},
         "failed", 100.0, 'outbox_processed_total{status="ok"} 100.0 > crit 50'),
        ({"metric": "http_requests_total", "labels": {"path": '/a "b"'}, "warn": 10}, "ok", 7.5, None),
        ({"metric": "loyalty_outbox_dead_total", "crit": 0}, "ok", 0.0, None),
        ({"metric": "no_such_metric"}, "failed", None, "has no sample of no_such_metric{}"),
    ],
    ids=["labels-summed-warn", "crit", "escaped-label", "no-labels", "missing"],
)
def test_prometheus_judges_a_metric_with_labels(run_module, http_url, extra, status, value, message):
    check = dict(extra, name="metric", kind="prometheus", url=http_url + "/metrics", token=TOKEN)
    result = run_checks(run_module, [check])
    (got,) = result["checks"]
    assert (got["status"], got["value"]) == (status, value), got
    if message:
        assert message in got["message"]
    assert TOKEN not in json.dumps(result)


def test_prometheus_judges_the_increase_over_a_window(run_module, http_url):
    # The failed counter of queue a grows by 3 between two scrapes; queue b's stays: the increase is 3.
    check = {"name": "failed-per-window", "kind": "prometheus", "url": http_url + "/metrics", "token": TOKEN,
             "metric": "outbox_processed_total", "labels": {"status": "failed"}, "window": 1, "warn": 2, "crit": 10}
    (got,) = run_checks(run_module, [check])["checks"]
    assert (got["status"], got["value"]) == ("degraded", 3.0), got
    assert got["details"]["increase"] == 3.0 and got["details"]["window_s"] == 1
    assert "increase over 1s 3.0 > warn 2" in got["message"]


@pytest.mark.parametrize(
    ("extra", "status", "value", "message"),
    [
        ({"metric": "rpc_duration_seconds", "warn": 0.2}, "degraded", 0.25, "rpc_duration_seconds{} mean 0.25 > warn 0.2"),
        ({"metric": "adapter_latency_seconds", "labels": {"adapter": "tg"}, "window": 1, "warn": 0.1, "crit": 0.2},
         "failed", 0.25, 'adapter_latency_seconds{adapter="tg"} mean over 1s 0.25 > crit 0.2'),
        ({"metric": "adapter_latency_seconds", "labels": {"adapter": "idle"}, "window": 1, "crit": 0.2},
         "ok", None, 'adapter_latency_seconds{adapter="idle"}: no observations over 1s'),
        ({"metric": "half_seconds"}, "failed", None, "has no sample of half_seconds_count{}"),
    ],
    ids=["overall-mean", "mean-over-window", "no-observations", "no-count"],
)
def test_prometheus_judges_the_mean_of_a_histogram(run_module, http_url, extra, status, value, message):
    # stat=mean: a latency histogram's _sum / _count, since the start or over the window (tg's overall mean is not
    # 0.25 at any scrape: (5 + 2.5 n) / (10 + 10 n)).
    check = dict(extra, name="latency", kind="prometheus", url=http_url + "/metrics", token=TOKEN, stat="mean")
    (got,) = run_checks(run_module, [check])["checks"]
    assert (got["status"], got["value"]) == (status, value), got
    assert message in got["message"], got


def test_prometheus_without_the_token_is_failed(run_module, http_url):
    (got,) = run_checks(run_module, [{"name": "m", "kind": "prometheus", "url": http_url + "/metrics",
                                      "metric": "loyalty_outbox_dead_total"}])["checks"]
    assert got["status"] == "failed" and "401" in got["message"]


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"url": "file:///etc/passwd", "metric": "x"}, "field 'url' must start with http:// or https://"),
        ({"url": "http://h/metrics", "metric": "bad name"}, "field 'metric' must be a Prometheus metric name"),
        ({"url": "http://h/metrics", "metric": "x", "window": 3600}, "field 'window' must be between 1 and 600"),
        ({"url": "http://h/metrics", "metric": "x", "labels": ["a"]}, "field 'labels' must be a dict"),
        ({"url": "http://h/metrics", "metric": "x", "stat": "p99"}, "field 'stat' must be one of value, mean, got 'p99'"),
    ],
)
def test_prometheus_fields_are_validated(run_module, check, problem):
    failed, result = run_module(health_check, {"action": "validate",
                                               "checks": [dict(check, name="m", kind="prometheus")]})
    assert failed and problem in result["msg"]


# -- Redis stream consumer groups ----------------------------------------------------------------
def test_redis_stream_group_pending_lag_and_consumers(run_module, redis_port):
    redis(redis_port, "DEL", "orders")
    for i in range(6):
        redis(redis_port, "XADD", "orders", "*", "n", str(i))
    redis(redis_port, "XGROUP", "CREATE", "orders", "workers", "0")
    redis(redis_port, "XGROUP", "CREATE", "orders", "idle", "$")
    # worker-1 reads 4 entries without acknowledging them: 4 pending, 2 not yet delivered (the lag).
    redis(redis_port, "XREADGROUP", "GROUP", "workers", "worker-1", "COUNT", "4", "STREAMS", "orders", ">")
    conn = {"host": "127.0.0.1", "port": redis_port, "password": SECRET, "key": "orders"}
    result = run_checks(run_module, [
        dict(conn, name="pending", kind="redis_stream_group", group="workers", warn=3, crit=10),
        dict(conn, name="lag", kind="redis_stream_group", group="workers", lag_warn=0, lag_crit=1),
        dict(conn, name="nobody", kind="redis_stream_group", group="idle", max_idle_ms=1000),
        dict(conn, name="missing", kind="redis_stream_group", group="nosuch"),
    ])
    pending, lag, nobody, missing = result["checks"]
    assert (pending["status"], pending["value"]) == ("degraded", 4), pending
    assert pending["details"]["pending"] == 4 and pending["details"]["consumers"] == 1
    assert pending["message"] == "orders/workers pending 4 > warn 3"
    assert (lag["status"], lag["details"]["lag"]) == ("failed", 2), lag
    assert lag["message"] == "orders/workers lag 2 > crit 1"
    assert (nobody["status"], nobody["message"]) == ("failed", "orders/idle has no consumers")
    assert (missing["status"], missing["message"]) == ("failed", "stream orders has no consumer group nosuch")
    assert SECRET not in json.dumps(result)


# -- compose services (docker compose ps, faked) -----------------------------------------------
@pytest.mark.parametrize(
    ("out", "status", "message"),
    [
        ('{"Name":"shop-worker-1","State":"running","Health":""}\n', "ok", "compose service worker: shop-worker-1 running"),
        ('[{"Name":"shop-worker-1","State":"running","Health":"healthy"}]', "ok",
         "compose service worker: shop-worker-1 running (healthy)"),
        ('{"Name":"shop-worker-1","State":"running","Health":"starting"}\n', "degraded", "(starting)"),
        ('{"Name":"shop-worker-1","State":"exited","Health":""}\n', "failed", "shop-worker-1 exited"),
        ('{"Name":"shop-worker-1","State":"running","Health":"unhealthy"}\n', "failed", "(unhealthy)"),
        ("", "failed", "compose service worker has no container"),
    ],
    ids=["running", "healthy-array", "starting", "exited", "unhealthy", "none"],
)
def test_compose_service_state(run_module, monkeypatch, out, status, message):
    calls = []

    def fake(self, argv, **kwargs):
        calls.append(argv)
        return 0, out, ""
    monkeypatch.setattr(health_check.AnsibleModule, "run_command", fake)
    (got,) = run_checks(run_module, [{"name": "worker", "kind": "compose_service", "project_dir": "/srv/shop",
                                      "service": "worker"}])["checks"]
    assert got["status"] == status and message in got["message"], got
    assert calls == [["docker", "compose", "--project-directory", "/srv/shop", "ps", "--all", "--format", "json",
                      "--", "worker"]]


# ----------------------------------------------------------------------------------------------
# action=check: validate, run and summarise in one run
# ----------------------------------------------------------------------------------------------
def test_check_runs_and_summarises_in_one_run_as_the_three_steps_do(run_module, tmp_path):
    checks = [{"name": "root", "kind": "disk", "path": "/"},
              {"name": "gone", "kind": "disk", "path": str(tmp_path / "nosuch")}]
    failed, out = run_module(health_check, {"action": "check", "checks": checks, "host": "app", "fail_on": "never"})
    assert not failed, out
    res = out["result"]
    assert [c["name"] for c in res["checks"]] == ["root", "gone"]
    assert (res["status"], res["host"], res["counts"]) == ("failed", "app", {"ok": 1, "degraded": 0, "failed": 1})
    assert out["fail"] is False and out["fail_message"].startswith("Preflight on app is failed: gone failed (")
    assert out["report"][0] == "FAILED: 2 checks on app: 1 ok, 0 degraded, 1 failed"
    # The same answer as the three steps give for the same checks.
    run = run_checks(run_module, checks)
    run = {key: run[key] for key in ("checks", "delegate", "started_at")}  # what a registered run hands over
    steps = summarize(run_module, [run], fail_on="never", checks=checks)
    assert [(c["name"], c["status"]) for c in steps["result"]["checks"]] == [(c["name"], c["status"]) for c in res["checks"]]
    assert steps["report"][0] == out["report"][0]
    # fail_on decides whether the host fails, as with action=summarize.
    failed, out = run_module(health_check, {"action": "check", "checks": checks, "host": "app", "fail_on": "failed"})
    assert not failed and out["fail"] is True


def test_check_refuses_a_delegated_check_and_runs_nothing(run_module, monkeypatch):
    ran = []
    monkeypatch.setattr(health_check, "run_one", lambda module, check: ran.append(check) or {})
    checks = [{"name": "here", "kind": "disk", "path": "/"},
              {"name": "dlq", "kind": "redis_stream", "key": "events:dead", "delegate_to": "db", "password": SECRET}]
    failed, out = run_module(health_check, {"action": "check", "checks": checks, "label": "preflight_checks of app"})
    assert failed and ran == []
    assert out["msg"].startswith("preflight_checks of app are invalid: check 'dlq': field 'delegate_to' is 'db'; "
                                 "action=check runs only the checks of this host"), out["msg"]
    assert SECRET not in json.dumps(out)


def test_check_validates_before_running_anything(run_module, monkeypatch):
    ran = []
    monkeypatch.setattr(health_check, "run_one", lambda module, check: ran.append(check) or {})
    checks = [{"name": "root", "kind": "disk", "path": "/"}, {"name": "api", "kind": "http"}]
    failed, out = run_module(health_check, {"action": "check", "checks": checks, "label": "deploy_health_checks"})
    assert failed and ran == []
    assert out["msg"].startswith("deploy_health_checks are invalid: check 'api' (http): field 'url' is required")


def test_check_of_no_checks_is_ok(run_module):
    failed, out = run_module(health_check, {"action": "check", "checks": [], "host": "app"})
    assert not failed and out["result"]["status"] == "ok"
    assert out["result"]["message"] == "no checks configured for app" and out["fail"] is False


def test_http_retries_end_at_their_deadline_when_nothing_answers(run_module):
    # A socket that accepts and never answers (systemd's socket in front of a service that cannot start): every
    # attempt waits a whole timeout, so the retries stop at retries x delay + timeout, not after every attempt.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    try:
        check = {"name": "api", "kind": "http", "url": "http://127.0.0.1:%d/" % listener.getsockname()[1],
                 "retries": 20, "delay": 0.1, "timeout": 0.5}
        (result,) = run_checks(run_module, [check])["checks"]
    finally:
        listener.close()
    assert result["status"] == "failed" and "no answer" in result["message"], result
    # 20 x 0.1 + 0.5 = 2.5 s: five attempts of 0.5 s fit, then no time for another (not 21 attempts, 12.5 s).
    assert 2 <= result["details"]["attempts"] <= 5, result
    assert "no time for another within 2.5 s, the retries' deadline" in result["message"], result["message"]


def test_http_body_that_never_ends_is_failed_within_the_timeout(run_module, http_url):
    # A body trickled a byte at a time never trips the socket's timeout: the read now has a deadline.
    check = {"name": "api", "kind": "http", "url": http_url + "/trickle", "timeout": 1, "json": {"status": "ok"}}
    started = time.monotonic()
    (result,) = run_checks(run_module, [check])["checks"]
    assert time.monotonic() - started < 4, result
    assert result["status"] == "failed", result
    assert "its body did not end within the timeout (1 s)" in result["message"], result["message"]


def test_http_body_too_large_for_a_json_check_is_failed_not_read_whole(run_module, http_url):
    check = {"name": "api", "kind": "http", "url": http_url + "/huge", "json": {"status": "ok"}}
    (result,) = run_checks(run_module, [check])["checks"]
    assert result["status"] == "failed", result
    assert "its body is larger than 1048576 bytes" in result["message"], result["message"]
    assert len(json.dumps(result)) < 4096
    # Without a json check only the status counts: ok, the body read no further than the bound.
    (result,) = run_checks(run_module, [dict(check, json={})])["checks"]
    assert result["status"] == "ok", result


@pytest.mark.parametrize(
    "url",
    ["http://monitor:%s@127.0.0.1:%d/healthz", "http://127.0.0.1:%d/healthz?access_token=%s&view=full",
     "http://monitor:p@%s@127.0.0.1:%d/healthz"],
    ids=["userinfo", "query-token", "userinfo-with-at-sign"],
)
def test_http_credentials_in_the_url_are_masked(run_module, http_url, url):
    port = int(http_url.rsplit(":", 1)[1])
    url = url % ((SECRET, port) if "@" in url else (port, SECRET))
    (result,) = run_checks(run_module, [{"name": "api", "kind": "http", "url": url, "status": 503}])["checks"]
    assert result["status"] == "failed", result
    assert "p@" in url or "answered 200, expected 503" in result["message"], result  # urllib cannot parse p@...@
    assert SECRET not in json.dumps(result), result
    assert "127.0.0.1:%d/healthz" % port in result["message"]


def test_prometheus_credentials_in_the_url_are_masked(run_module):
    url = "http://scraper:%s@127.0.0.1:%d/metrics" % (SECRET, free_port())
    (result,) = run_checks(run_module, [{"name": "m", "kind": "prometheus", "url": url, "metric": "up"}])["checks"]
    assert result["status"] == "failed" and "cannot read" in result["message"], result
    assert SECRET not in json.dumps(result), result


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"kind": "http", "url": "http://x", "retries": -1}, "field 'retries' must be a whole number from 0, got -1"),
        ({"kind": "http", "url": "http://x", "retries": 1.5}, "field 'retries' must be a whole number from 0, got 1.5"),
        ({"kind": "http", "url": "http://x", "delay": -2}, "field 'delay' must be 0 or more seconds, got -2"),
        ({"kind": "http", "url": "http://x", "timeout": 0}, "field 'timeout' must be more than 0 seconds, got 0"),
        ({"kind": "postgres", "db": "x", "user": "u", "timeout": -5}, "field 'timeout' must be more than 0 seconds, got -5"),
        ({"kind": "redis", "port": 70000}, "field 'port' must be a port number from 1 to 65535, got 70000"),
        ({"kind": "http", "url": "http://x", "headers": {"Authorization": "Bearer %s\r\nX-Evil: 1" % SECRET}},
         "field 'headers': header 'Authorization' must be one line of text"),
        ({"kind": "http", "url": "http://x", "headers": {"X-A\nB": "v"}},
         "field 'headers': 'X-A\\nB' is not an HTTP header name"),
        ({"kind": "http", "url": "http://x:99999/"}, "field 'url' has no valid port"),
        ({"kind": "http", "url": "http://x/a b"}, "field 'url' holds a space or a control character"),
        ({"kind": "http", "url": "http://[::1/"}, "field 'url' is not a valid URL (Invalid IPv6 URL), got 'http://[::1/'"),
        ({"kind": "http", "url": "https://x", "validate_certs": "false"},
         "field 'validate_certs' must be true or false, got 'false'"),
        ({"kind": "http", "url": "http://x", "method": "GET /admin HTTP/1.0\r\nX-Evil: 1"},
         "field 'method' must be an HTTP method such as GET or HEAD, got"),
        ({"kind": "http", "url": "http://x", "method": ["GET"]}, "field 'method' must be an HTTP method such as GET or HEAD, got ['GET']"),
    ],
    ids=["retries-negative", "retries-fraction", "delay-negative", "timeout-zero", "pg-timeout-negative",
         "port-range", "header-crlf", "header-name", "url-port", "url-space", "url-ipv6-unclosed", "validate-certs-text",
         "method-line", "method-list"],
)
def test_numbers_headers_and_urls_a_probe_cannot_use_are_refused(run_module, check, problem):
    # Each of these used to pass validation and then hang (a PostgreSQL timeout of 0 waits for ever), become a
    # "probe error: cannot unpack" (retries -1), or print the header's secret value in the probe's error.
    failed, result = run_module(health_check, {"action": "validate", "checks": [dict(check, name="c")]})
    assert failed and any(problem in p for p in result["problems"]), result["problems"]
    assert SECRET not in json.dumps([result["msg"], result["problems"]])


def test_a_postgres_timeout_under_a_second_is_not_no_timeout(run_module, monkeypatch):
    # int(0.5) was 0: libpq's connect_timeout=0 and statement_timeout=0 both mean wait for ever.
    seen = {}

    class FakeConn:
        def cursor(self):
            raise RuntimeError("stop here")

        def close(self):
            pass

    class FakePsycopg2:
        @staticmethod
        def connect(**kw):
            seen.update(kw)
            return FakeConn()

    monkeypatch.setitem(__import__("sys").modules, "psycopg2", FakePsycopg2)
    check = {"name": "db", "kind": "postgres", "db": "x", "user": "u", "timeout": 0.5}
    (result,) = run_checks(run_module, [check])["checks"]
    assert result["status"] == "failed"
    assert seen["connect_timeout"] >= 1 and seen["options"] == "-c statement_timeout=500", seen


class Recorder(http.server.BaseHTTPRequestHandler):
    """Another origin: records the headers it is sent and answers the metrics to anyone."""

    seen: list = []

    def do_GET(self):  # noqa: N802
        Recorder.seen.append(dict(self.headers))
        body = metrics_body().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def other_origin():
    Recorder.seen.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


@pytest.mark.parametrize("kind", ["prometheus", "http"])
def test_a_redirect_to_another_origin_is_not_sent_the_credentials(run_module, http_url, other_origin, kind):
    # urllib sent the token (and any Authorization header) to whatever host a redirect named.
    check = {"name": "m", "kind": kind, "url": http_url + "/away?to=" + other_origin + "/metrics"}
    if kind == "prometheus":
        check.update(metric="loyalty_outbox_dead_total", token=TOKEN)
    else:
        check.update(headers={"Authorization": "Bearer " + TOKEN, "X-Trace": "t1"})
    (got,) = run_checks(run_module, [check])["checks"]
    assert len(Recorder.seen) == 1, got  # the redirect was followed
    assert all(TOKEN not in json.dumps(seen) for seen in Recorder.seen), Recorder.seen
    assert "Authorization" not in Recorder.seen[0]
    if kind == "http":
        assert Recorder.seen[0].get("X-Trace") == "t1" and got["status"] == "ok", got


def test_a_redirect_on_the_same_origin_keeps_the_token(run_module, http_url):
    check = {"name": "m", "kind": "prometheus", "url": http_url + "/moved", "metric": "loyalty_outbox_dead_total",
             "token": TOKEN}
    (got,) = run_checks(run_module, [check])["checks"]
    assert got["status"] == "ok" and got["value"] == 0.0, got


def test_a_redirect_to_a_file_url_is_not_followed(run_module, http_url):
    check = {"name": "api", "kind": "http", "url": http_url + "/away?to=file:///etc/passwd"}
    (got,) = run_checks(run_module, [check])["checks"]
    assert got["status"] == "failed" and "root:" not in json.dumps(got), got


@pytest.mark.parametrize(("extra", "status"), [({"crit": 30}, "failed"), ({"warn": 5}, "failed"), ({}, "ok")],
                         ids=["crit", "warn", "no-threshold"])
def test_prometheus_nan_is_not_within_the_thresholds(run_module, http_url, extra, status):
    # NaN > crit and NaN > warn are both false: a lag the exporter could not measure was judged ok.
    check = dict(extra, name="lag", kind="prometheus", url=http_url + "/metrics", token=TOKEN, metric="replica_lag_seconds")
    (got,) = run_checks(run_module, [check])["checks"]
    assert got["status"] == status, got
    if extra:
        assert "replica_lag_seconds{} is NaN, not a number" in got["message"], got


@pytest.mark.parametrize("kind", ["http", "prometheus"])
def test_a_refused_url_is_shown_without_its_credentials(run_module, kind):
    check = {"name": "c", "kind": kind, "url": "htps://monitor:%s@example.com/?token=%s" % (SECRET, SECRET)}
    if kind == "prometheus":
        check["metric"] = "up"
    failed, result = run_module(health_check, {"action": "validate", "checks": [check]})
    assert failed and "field 'url' must start with http:// or https://, got 'htps://monitor:********@" in result["msg"]
    assert SECRET not in json.dumps([result["msg"], result["problems"]])


def fake_psycopg2(monkeypatch, value):
    class Cursor:
        description = [("count",)]

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def execute(self, query):
            pass

        def fetchone(self):
            return (value,)

    class Conn:
        def cursor(self):
            return Cursor()

        def close(self):
            pass

    class Module:
        @staticmethod
        def connect(**kw):
            return Conn()

    monkeypatch.setitem(__import__("sys").modules, "psycopg2", Module)


@pytest.mark.parametrize(("value", "status"), [(__import__("decimal").Decimal("3.7"), "failed"), (True, "failed"),
                                               (__import__("decimal").Decimal("4"), "degraded"), (3, "ok")],
                         ids=["fraction", "boolean", "whole-decimal", "int"])
def test_sql_count_of_a_value_that_is_not_a_whole_number_is_failed(run_module, monkeypatch, value, status):
    # psycopg2 gives numeric as Decimal: int(Decimal('3.7')) was 3, within warn 3, where psql's text '3.7' failed.
    fake_psycopg2(monkeypatch, value)
    check = {"name": "stuck", "kind": "sql_count", "db": "x", "user": "u", "query": "SELECT avg(n) FROM t", "warn": 3}
    (got,) = run_checks(run_module, [check])["checks"]
    assert got["status"] == status, got
    if status == "failed":
        assert "not an integer" in got["message"], got


@pytest.mark.parametrize("path", ["var/lib/postgresql", "", "."])
def test_a_disk_path_that_is_not_absolute_is_refused(run_module, path):
    # statvfs of a relative path measured the filesystem of the module's working directory: the data disk could be
    # full and the check ok.
    failed, result = run_module(health_check, {"action": "validate", "checks": [{"name": "d", "kind": "disk", "path": path}]})
    assert failed and any(p.startswith("check 'd' (disk): field 'path'") for p in result["problems"]), result["problems"]


@pytest.mark.parametrize("unit", ["sample_app*", "sample_app?.service", "[ab]pp.service", "app service", "-app"])
def test_a_systemd_unit_that_is_a_pattern_or_not_a_name_is_refused(run_module, unit):
    # systemctl show takes a glob: 'sample_app*' showed every matching unit and the check judged the last one,
    # ok while the others were failed.
    failed, result = run_module(health_check, {"action": "validate", "checks": [{"name": "u", "kind": "systemd", "unit": unit}]})
    assert failed and "check 'u' (systemd): field 'unit' must be one systemd unit name (no pattern), got %r" % unit \
        in result["problems"], result["problems"]


def test_a_password_holding_whitespace_is_masked_too(run_module, echo_server):
    # mask() made the message one line before looking for the password: one holding two spaces or a tab was no
    # longer in the text as given, and was shown.
    password = "s3cret  Pa55\tword"
    (check,) = run_checks(run_module, [{"name": "redis", "kind": "redis", "host": "127.0.0.1", "port": echo_server,
                                        "password": password}])["checks"]
    assert check["status"] == "failed" and "AUTH" in check["message"] and "********" in check["message"], check
    assert "Pa55" not in json.dumps(check), check


def test_http_body_nested_too_deep_is_judged_by_its_status(run_module, http_url):
    # json.loads raised RecursionError: 'probe error', failed, for an endpoint answering the expected 200.
    (got,) = run_checks(run_module, [{"name": "api", "kind": "http", "url": http_url + "/deep"}])["checks"]
    assert got["status"] == "ok" and "answered 200" in got["message"], got
    (got,) = run_checks(run_module, [{"name": "api", "kind": "http", "url": http_url + "/deep", "json": {"0": 1}}])["checks"]
    assert got["status"] == "failed" and "0 is missing (expected 1)" in got["message"], got


@pytest.mark.parametrize("action", ["check", "validate"])
def test_credential_headers_never_come_back_in_the_result_or_the_invocation(run_module, http_url, action):
    # A header is a value of a dict, not a no_log option: its value used to come back in `invocation`, which
    # `-v`, ansible-runner's events and the CLI's run artifacts keep.
    headers = {"Authorization": "Bearer hdr-s3cret-bearer", "X-Api-Key": "hdr-s3cret-key",
               "Cookie": "sid=hdr-s3cret-cookie", "Accept": "application/json"}
    check = {"name": "api", "kind": "http", "url": http_url + "/healthz", "headers": headers}
    failed, result = run_module(health_check, {"action": action, "checks": [check], "host": "app"})
    text = json.dumps(result)
    assert not failed, result
    assert "hdr-s3cret" not in text, text
    # The header names and an ordinary header's value are still there to read.
    sent = result["invocation"]["module_args"]["checks"][0]["headers"]
    assert sent["Accept"] == "application/json" and set(sent) == set(headers), sent


def test_a_credential_header_is_masked_in_a_validation_message(run_module):
    check = {"name": "api", "kind": "http", "url": "http://127.0.0.1:1/x", "timeout": "soon",
             "headers": {"X-Auth-Token": "hdr-s3cret-token"}}
    failed, result = run_module(health_check, {"action": "check", "checks": [check]})
    assert failed and "hdr-s3cret" not in json.dumps(result), result
