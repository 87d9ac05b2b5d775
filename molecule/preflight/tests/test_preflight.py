"""shipshape.ops.preflight, end to end: run the role (and playbooks/health.yml) against the scenario's
hosts, break things on purpose, and read preflight_result.

Each test runs ansible-playbook against Molecule's inventory and reads the JSON the playbook leaves
behind, so it checks what deploy and the CLI will see. Broken state is always repaired in `finally`.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

testinfra_hosts = ["db_servers"]  # `host` is the db host: the tests stop Redis and fill streams there

SCENARIO = Path(__file__).resolve().parent.parent
ROOT = SCENARIO.parent.parent
NAME = os.environ.get("MOLECULE_SCENARIO_NAME", "preflight")
APP, DB = f"app-{NAME}", f"db-{NAME}"
DB_PASSWORD = "molecule-db-password"
KEYS = {"name", "kind", "status", "message", "value", "duration_ms"}


def playbook(path: Path, tmp_path: Path, *args: str, extra: dict | None = None) -> subprocess.CompletedProcess:
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent  # the directory, for its group_vars
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
    cmd = ["ansible-playbook", "-i", str(inventory), str(path), "-e", f"preflight_report_dir={tmp_path}",
           "-e", f"health_report_path={tmp_path / 'health.json'}", *args]
    if extra is not None:
        (tmp_path / "extra.json").write_text(json.dumps(extra))
        cmd += ["-e", f"@{tmp_path / 'extra.json'}"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False, timeout=300)


def run_role(tmp_path, *args, **kwargs):
    """Run the role alone; return (process, {host: preflight_result})."""
    proc = playbook(SCENARIO / "run_role.yml", tmp_path, *args, **kwargs)
    results = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("*-*.json")}
    return proc, results


def run_health(tmp_path, *args, **kwargs):
    proc = playbook(ROOT / "playbooks" / "health.yml", tmp_path, *args, **kwargs)
    report = tmp_path / "health.json"
    return proc, json.loads(report.read_text()) if report.exists() else {}


def by_name(result: dict) -> dict:
    return {check["name"]: check for check in result["checks"]}


def test_healthy_system_is_ok_on_every_check(tmp_path):
    proc, report = run_health(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert set(report) == {APP, DB}
    kinds = set()
    for host, result in report.items():
        assert result["status"] == "ok", (host, result)
        assert result["counts"] == {"ok": len(result["checks"]), "degraded": 0, "failed": 0}
        datetime.strptime(result["checked_at"], "%Y-%m-%dT%H:%M:%SZ")
        for check in result["checks"]:
            assert KEYS <= set(check), check
            assert check["status"] == "ok", check
            kinds.add(check["kind"])
    assert kinds == {"systemd", "http", "postgres", "redis", "redis_stream", "sql_count", "disk"}
    api = by_name(report[APP])["api-healthz"]
    assert api["details"]["status_code"] == 200
    assert api["details"]["body"]["status"] == "ok"
    assert isinstance(api["value"], int) and api["value"] == api["details"]["latency_ms"]
    assert by_name(report[APP])["db-from-app"]["details"]["ran_on"] == DB  # delegate_to ran it there
    assert by_name(report[DB])["redis"]["value"] == "PONG"


def test_secrets_never_show(tmp_path):
    proc, report = run_health(tmp_path, "-v")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert DB_PASSWORD not in json.dumps(report)
    assert DB_PASSWORD not in proc.stdout + proc.stderr


def test_check_mode_runs_the_checks(tmp_path):
    proc, report = run_health(tmp_path, "--check")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert report[DB]["status"] == "ok" and report[DB]["counts"]["ok"] == 8


def test_redis_down_fails_the_redis_checks(host, tmp_path):
    assert host.run("systemctl stop redis-server").rc == 0
    try:
        proc, report = run_health(tmp_path)
    finally:
        assert host.run("systemctl start redis-server").rc == 0
    assert proc.returncode != 0, "health.yml must fail when a check fails"
    assert report[DB]["status"] == "failed"
    checks = by_name(report[DB])
    assert checks["redis"]["status"] == "failed"
    assert "does not answer PING" in checks["redis"]["message"]
    assert checks["redis-unit"]["status"] == "failed"
    assert checks["redis-unit"]["value"].startswith("inactive")
    assert checks["db"]["status"] == "ok"  # only Redis is down
    assert by_name(report[APP])["redis-from-app"]["status"] == "failed"
    assert f"{DB}/redis failed" in proc.stdout


@pytest.fixture
def dead_letters(host):
    """15 entries in events:dead: above the dlq check's warn (10), below its crit (100)."""
    host.run("redis-cli DEL events:dead")
    for i in range(15):
        assert host.run(f"redis-cli XADD events:dead '*' event {i}").rc == 0
    yield 15
    host.run("redis-cli DEL events:dead")


def test_dead_letters_above_warn_are_degraded(dead_letters, tmp_path):
    proc, results = run_role(tmp_path, "--limit", DB)
    assert proc.returncode == 0, "degraded must not fail the play with preflight_fail_on=failed"
    assert results[DB]["status"] == "degraded"
    assert results[DB]["counts"]["degraded"] == 1
    dlq = by_name(results[DB])["dlq"]
    assert (dlq["status"], dlq["value"]) == ("degraded", 15)
    assert dlq["message"] == "events:dead length 15 > warn 10"


def test_fail_on_degraded_fails_the_play(dead_letters, tmp_path):
    proc, results = run_role(tmp_path, "--limit", DB, "-e", "preflight_fail_on=degraded")
    assert proc.returncode != 0
    assert results[DB]["status"] == "degraded"  # set before the role failed
    assert f"Preflight on {DB} is degraded: dlq degraded (events:dead length 15 > warn 10)." in " ".join(proc.stdout.split())


def test_fail_on_never_only_reports(tmp_path):
    checks = [{"name": "down", "kind": "http", "url": "http://127.0.0.1:8080/status/503"}]
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": checks, "preflight_fail_on": "never"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results[APP]["status"] == "failed"


@pytest.mark.parametrize(
    ("check", "status", "message"),
    [
        ({"url": "http://127.0.0.1:8080/status/503"}, "failed", "answered 503, expected 200"),
        ({"url": "http://127.0.0.1:8080/status/503", "status": [503]}, "ok", "answered 503 in"),
        ({"url": "http://127.0.0.1:8080/healthz", "json": {"status": "degraded"}}, "failed",
         "status is 'ok', expected 'degraded'"),
        ({"url": "http://127.0.0.1:8080/slow/300", "max_ms": 100}, "degraded", "ms > max 100 ms"),
        ({"url": "http://127.0.0.1:8081/healthz", "retries": 1, "delay": 0}, "failed", "(attempt 2 of 2)"),
        ({"url": "http://127.0.0.1:8080/degraded", "json": {"status": "ok"}}, "degraded",
         "status is 'degraded', expected 'ok' (the app reports itself degraded)"),
    ],
    ids=["503-is-failed", "503-expected", "json-mismatch", "slow-is-degraded", "refused-after-retry",
         "app-degraded-is-degraded"],
)
def test_http_outcomes(tmp_path, check, status, message):
    checks = [{"name": "api", "kind": "http", **check}]
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": checks})
    assert results[APP]["checks"][0]["status"] == status, results[APP]
    assert message in results[APP]["checks"][0]["message"]
    assert (proc.returncode == 0) == (status != "failed")


def test_a_prometheus_metric_over_its_threshold_is_degraded(tmp_path):
    metric = {"name": "failed-outbox", "kind": "prometheus", "url": "http://127.0.0.1:8080/metrics",
              "token": "metrics-token", "metric": "outbox_processed_total", "labels": {"status": "failed"},
              "warn": 10, "crit": 100}
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": [metric]})
    (check,) = results[APP]["checks"]
    assert (check["status"], check["value"]) == ("degraded", 17.0), check
    assert check["message"] == 'outbox_processed_total{status="failed"} 17.0 > warn 10'
    assert proc.returncode == 0 and "metrics-token" not in proc.stdout + json.dumps(results)


def test_a_workers_mean_latency_over_its_ceiling_is_failed(tmp_path):
    # FastPrep's "high adapter_latency_seconds": the histogram's _sum / _count (stat=mean), against warn/crit.
    latency = {"name": "adapter-latency", "kind": "prometheus", "url": "http://127.0.0.1:8080/metrics",
               "token": "metrics-token", "metric": "adapter_latency_seconds", "stat": "mean", "warn": 0.3, "crit": 0.5}
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": [latency]})
    (check,) = results[APP]["checks"]
    assert (check["status"], check["value"]) == ("failed", 0.75), check
    assert check["message"] == "adapter_latency_seconds{} mean 0.75 > crit 0.5"
    assert check["details"]["count"] == 40.0
    assert proc.returncode != 0


def test_a_consumer_group_with_pending_entries_and_no_live_consumer(host, tmp_path):
    host.run("redis-cli DEL jobs")
    for i in range(5):
        assert host.run(f"redis-cli XADD jobs '*' n {i}").rc == 0
    assert host.run("redis-cli XGROUP CREATE jobs mailers 0").rc == 0
    assert host.run("redis-cli XREADGROUP GROUP mailers m1 COUNT 3 STREAMS jobs '>'").rc == 0
    group = {"name": "mailers", "kind": "redis_stream_group", "key": "jobs", "group": "mailers",
             "warn": 2, "crit": 10, "lag_warn": 5}
    try:
        proc, results = run_role(tmp_path, "--limit", DB, extra={"preflight_checks": [group]})
    finally:
        host.run("redis-cli DEL jobs")
    (check,) = results[DB]["checks"]
    assert (check["status"], check["value"]) == ("degraded", 3), check
    assert check["details"]["lag"] == 2 and check["details"]["consumers"] == 1
    assert check["message"] == "jobs/mailers pending 3 > warn 2"


def test_sql_count_over_crit_is_failed(host, tmp_path):
    insert = ("PGPASSWORD=%s psql -h 127.0.0.1 -U sample_app -d sample_app -qc "
              "\"INSERT INTO outbox (status) SELECT 'pending' FROM generate_series(1, 1001)\"" % DB_PASSWORD)
    assert host.run(insert).rc == 0
    try:
        proc, results = run_role(tmp_path, "--limit", DB)
    finally:
        host.run("PGPASSWORD=%s psql -h 127.0.0.1 -U sample_app -d sample_app -qc 'DELETE FROM outbox'" % DB_PASSWORD)
    assert proc.returncode != 0
    outbox = by_name(results[DB])["outbox-pending"]
    assert (outbox["status"], outbox["value"]) == ("failed", 1001)
    assert outbox["message"] == "outbox-pending 1001 > crit 1000"


def test_no_checks_is_ok(tmp_path):
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": []})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results[APP]["status"] == "ok"
    assert results[APP]["checks"] == []
    assert results[APP]["counts"] == {"ok": 0, "degraded": 0, "failed": 0}
    assert "no checks configured" in results[APP]["message"]


def test_invalid_checks_are_rejected_before_any_runs(tmp_path):
    checks = [
        {"name": "bogus", "kind": "nosuch"},
        {"name": "api", "kind": "http"},
        {"name": "dlq", "kind": "redis_stream", "key": "events:dead", "warn": "ten", "max_ms": 5},
    ]
    proc, results = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": checks})
    assert proc.returncode != 0
    assert results == {}  # stopped before any probe ran
    out = " ".join(proc.stdout.split())
    assert "check 'bogus': field 'kind' is 'nosuch', expected one of systemd, http" in out
    assert "check 'api' (http): field 'url' is required" in out
    assert "check 'dlq' (redis_stream): field 'max_ms' is not known for this kind" in out
    assert "check 'dlq' (redis_stream): field 'warn' must be a number, got 'ten'" in out


def test_unknown_delegate_is_rejected(tmp_path):
    checks = [{"name": "db", "kind": "redis", "delegate_to": "nosuch-host"}]
    proc, _ = run_role(tmp_path, "--limit", APP, extra={"preflight_checks": checks})
    assert proc.returncode != 0
    assert "check 'db': field 'delegate_to' is 'nosuch-host', which is not a host of this inventory" in " ".join(
        proc.stdout.split())


@pytest.fixture
def ghost_inventory(tmp_path):
    """An inventory host that cannot be reached (its name does not resolve), beside the scenario's hosts."""
    path = tmp_path / "ghost.ini"
    path.write_text(f"{GHOST} ansible_host=ghost.invalid ansible_connection=ssh "
                    "ansible_ssh_common_args='-o ConnectTimeout=5'\n")
    return str(path)


GHOST = f"ghost-{NAME}"
CONNECTION_ERROR = "Could not resolve hostname ghost.invalid"


def test_unreachable_delegate_fails_its_checks_with_the_connection_error(tmp_path, ghost_inventory):
    checks = [{"name": "via-ghost", "kind": "redis", "delegate_to": GHOST, "password": DB_PASSWORD},
              {"name": "root-disk", "kind": "disk", "path": "/"}]
    proc, results = run_role(tmp_path, "-i", ghost_inventory, "--limit", APP,
                             extra={"preflight_checks": checks, "preflight_fail_on": "never"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    ghost, disk = results[APP]["checks"]
    assert (ghost["name"], ghost["status"], ghost["value"]) == ("via-ghost", "failed", None)
    assert ghost["message"].startswith(f"the probe did not run on {GHOST}: ")
    assert CONNECTION_ERROR in ghost["message"]
    assert disk["status"] == "ok"  # the checks of the host itself still ran
    assert results[APP]["counts"] == {"ok": 1, "degraded": 0, "failed": 1}
    assert DB_PASSWORD not in proc.stdout + proc.stderr


def test_unreachable_host_shows_its_connection_error(tmp_path, ghost_inventory):
    proc, report = run_health(tmp_path, "-i", ghost_inventory, "--limit", f"{APP},{GHOST}")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert CONNECTION_ERROR in out  # not hidden by no_log, not "failed (no message)"
    assert "has been hidden" not in out
    assert report[GHOST] is None and report[APP]["status"] == "ok"
    assert f"{GHOST} has no result (unreachable, or invalid checks)" in " ".join(proc.stdout.split())
