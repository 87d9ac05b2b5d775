"""Maintenance and read-only modes as a release engineer sees them: HTTP answers from inside the app host,
the env file, restarts (or none), check mode, the status entry point, a failed verification, and the
flag-file mechanism behind nginx. Converge left the app in maintenance; the tests run in file order and
each leaves the app in a known state."""

from __future__ import annotations

import json
import re

import pytest

from conftest import http, run_playbook

testinfra_hosts = ["app_servers"]

APP_DIR = "/srv/sample_app"
MODES = f"{APP_DIR}/shared/modes.env"
SERVICE = "sample_app.service"
SNIPPET = "/etc/nginx/snippets/sample_app-maintenance.conf"
NGINX = 8080


@pytest.fixture(autouse=True)
def _one_line_results(monkeypatch):
    """The scenario's yaml result format wraps long messages: read results as one-line JSON instead."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")


def maintenance(*args: str, check: bool | None = True):
    return run_playbook("maintenance.yml", *args, check=check)


def changed(output: str) -> int:
    """changed= of the app host in the play recap."""
    counts = re.findall(r"^app-\S+\s*:.*?changed=(\d+)", output, re.M)
    assert counts, output[-2000:]
    return int(counts[-1])


def started(host) -> str:
    """When the service last became active, and its main PID: both change on a restart."""
    return host.run(f"systemctl show {SERVICE} -p ActiveEnterTimestampMonotonic -p MainPID").stdout.strip()


def test_converge_put_the_app_in_maintenance(host):
    status, body = http(host, "GET", "/notes")
    assert (status, body) == (503, {"error": "maintenance"})
    status, body = http(host, "POST", "/notes", {"body": "refused"})
    assert (status, body) == (503, {"error": "maintenance"})
    for path in ("/healthz", "/readyz", "/metrics"):
        assert http(host, "GET", path)[0] == 200, path
    modes = host.file(MODES)
    assert modes.user == "root" and modes.mode == 0o644
    assert "MAINTENANCE_MODE=1" in modes.content_string
    assert "READ_ONLY_MODE" not in modes.content_string
    # app.env stays systemd_release's, untouched.
    assert host.file(f"{APP_DIR}/shared/app.env").mode == 0o600


def test_status_reports_without_changing(host):
    before = started(host)
    proc = maintenance("-e", "maintenance_state=status")
    assert "sample_app on app-maintenance: maintenance (env-file)" in proc.output, proc.output[-2000:]
    assert changed(proc.output) == 0
    assert started(host) == before


def test_read_only_refuses_writes_and_serves_reads(host):
    proc = maintenance("-e", "maintenance_state=read_only")
    assert "maintenance -> read_only (env-file, restarted" in proc.output
    status, body = http(host, "GET", "/notes")
    assert status == 200 and body["count"] == 2
    assert http(host, "POST", "/notes", {"body": "refused"}) == (503, {"error": "read_only"})
    assert "READ_ONLY_MODE=1" in host.file(MODES).content_string
    assert "MAINTENANCE_MODE" not in host.file(MODES).content_string


def test_the_same_state_again_changes_and_restarts_nothing(host):
    before = started(host)
    proc = maintenance("-e", "maintenance_state=read_only")
    assert changed(proc.output) == 0, proc.output[-3000:]
    assert "GET /notes answered 200, GET /healthz answered 200, POST /notes answered 503" in proc.output
    assert started(host) == before


def test_check_mode_changes_nothing(host):
    before, modes = started(host), host.file(MODES).content_string
    proc = maintenance("--check", "-e", "maintenance_state=live")
    assert "read_only -> live" in proc.output
    assert started(host) == before
    assert host.file(MODES).content_string == modes
    assert http(host, "POST", "/notes", {"body": "refused"})[0] == 503


def test_live_accepts_writes_again(host):
    maintenance("-e", "maintenance_state=live")
    assert not host.file(MODES).exists
    status, created = http(host, "POST", "/notes", {"body": "written after maintenance"})
    assert status == 201, created
    assert http(host, "GET", "/notes")[1]["count"] == 3
    before = started(host)
    proc = maintenance("-e", "maintenance_state=live")
    assert changed(proc.output) == 0
    assert started(host) == before


def test_a_service_that_missed_its_restart_is_restarted(host):
    # The file says maintenance but the service runs live (as after a run stopped before its handler):
    # restart the service with the file moved away, then put the file back.
    maintenance("-e", "maintenance_state=maintenance")
    host.run(f"mv {MODES} /root/modes.env && systemctl restart {SERVICE} && mv /root/modes.env {MODES}")
    try:
        assert http(host, "GET", "/notes")[0] == 200
        status = maintenance("-e", "maintenance_state=status").output
        assert "maintenance (env-file, but the service runs live until it restarts)" in status, status[-2000:]
        proc = maintenance("-e", "maintenance_state=maintenance")
        assert changed(proc.output) == 1  # the restart alone: the file was already right
        assert http(host, "GET", "/notes")[0] == 503
    finally:
        maintenance("-e", "maintenance_state=live")


def test_a_failed_verification_says_what_answered_what(host):
    # /version is open in the app's maintenance mode: as the probe path it answers 200, not 503.
    try:
        proc = maintenance("-e", "maintenance_state=maintenance", "-e", "maintenance_probe_path=/version",
                           "-e", "maintenance_verify_retries=2", "-e", "maintenance_verify_delay=1", check=False)
        assert proc.returncode != 0
        # POST /version is 405 (the app has no such route), also named.
        assert ("sample_app on app-maintenance is not maintenance: GET /version answered 200 (expected 503) and "
                "POST /version answered 405 (expected 503) after 2 attempts.") in proc.output, proc.output[-3000:]
    finally:
        maintenance("-e", "maintenance_state=live")


def test_unknown_state_is_refused(host):
    proc = maintenance("-e", "maintenance_state=closed", check=False)
    assert proc.returncode != 0 and "Say which state" in proc.output


@pytest.mark.parametrize("extra, expected", [
    ({"maintenance_env_vars": {"maintenance": "MAINTENANCE_MODE|.*", "read_only": "READ_ONLY_MODE"}},
     "maintenance_env_vars.maintenance 'MAINTENANCE_MODE|.*' must be an environment variable name"),
    ({"maintenance_service": "sample_app.service; touch /tmp/shipshape-maintenance-pwned"},
     "maintenance_service 'sample_app.service; touch /tmp/shipshape-maintenance-pwned' must be a systemd service unit name"),
])
def test_hostile_mode_settings_are_refused_naming_them(host, extra, expected):
    # Refused before anything is read or written: the modes file, the service and its answers stay as they were.
    modes_before = host.file(MODES).exists and host.file(MODES).sha256sum
    before = started(host)
    proc = maintenance("-e", json.dumps({"maintenance_state": "maintenance", **extra}), check=False)
    assert proc.returncode != 0
    assert expected in proc.output, proc.output[-3000:]
    assert not host.file("/tmp/shipshape-maintenance-pwned").exists
    assert (host.file(MODES).exists and host.file(MODES).sha256sum) == modes_before
    assert started(host) == before
    assert http(host, "GET", "/notes")[0] == 200


FLAG = ("-e", "maintenance_mechanism=flag-file", "-e", f"maintenance_nginx_snippet_path={SNIPPET}",
        "-e", f"maintenance_check_url_base=http://127.0.0.1:{NGINX}")


def test_flag_file_maintenance_behind_nginx(host):
    before = started(host)
    maintenance("-e", "maintenance_state=maintenance", *FLAG)
    assert host.file(f"{APP_DIR}/shared/maintenance.flag").exists
    assert host.run("nginx -t").rc == 0
    status, page = http(host, "GET", "/notes", port=NGINX)
    assert status == 503 and "Down for maintenance" in page
    assert http(host, "GET", "/healthz", port=NGINX)[0] == 200
    # The app itself is live (no restart): only the proxy refuses.
    assert http(host, "GET", "/notes")[0] == 200
    assert started(host) == before


def test_flag_file_read_only_then_live_behind_nginx(host):
    proc = maintenance("-e", "maintenance_state=read_only", *FLAG)
    assert "maintenance -> read_only (flag-file)" in proc.output
    assert not host.file(f"{APP_DIR}/shared/maintenance.flag").exists
    assert host.file(f"{APP_DIR}/shared/read_only.flag").exists
    assert http(host, "GET", "/notes", port=NGINX)[0] == 200
    assert http(host, "POST", "/notes", {"body": "refused"}, port=NGINX) == (503, {"error": "read_only"})
    assert changed(maintenance("-e", "maintenance_state=read_only", *FLAG).output) == 0
    maintenance("-e", "maintenance_state=live", *FLAG)
    assert not host.file(f"{APP_DIR}/shared/read_only.flag").exists
    assert http(host, "POST", "/notes", {"body": "through nginx"}, port=NGINX)[0] == 201
