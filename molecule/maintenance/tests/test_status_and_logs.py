"""playbooks/status.yml and playbooks/logs.yml as an operator runs them against the deployed sample app: a request
found in the journal by its X-Request-ID, and the status naming the release `current` names, the unit, the port, the
commits waiting against v2.0.0 and the env file's keys without any value. Read-only: the app's state is whatever
the maintenance tests left (the probes answer in every mode)."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest

from conftest import run_playbook

testinfra_hosts = ["app_servers"]

APP_DIR = "/srv/sample_app"
SECRET = "molecule-db-password"  # in DATABASE_URL of the app's env file (molecule/group_vars/all.yml)


@pytest.fixture(autouse=True)
def _one_line_results(monkeypatch):
    """Read debug output as one-line JSON (the scenario's yaml result format wraps long lines)."""
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")


def request_with_id(host, request_id: str) -> int:
    cmd = host.run(f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' -H 'X-Request-ID: {request_id}' "
                   "http://127.0.0.1:8000/healthz")
    return int(cmd.stdout.strip() or 0)


def changed(output: str) -> int:
    counts = re.findall(r"^app-\S+\s*:.*?changed=(\d+)", output, re.M)
    assert counts, output[-2000:]
    return int(counts[-1])


def test_logs_find_a_request_by_its_id(host, tmp_path):
    request_id = f"molecule-{uuid.uuid4()}"
    other_id = f"molecule-{uuid.uuid4()}"
    assert request_with_id(host, request_id) == 200
    report = tmp_path / "logs.json"
    for _ in range(10):  # journald takes a moment to store the line
        proc = run_playbook("logs.yml", "-e", f"logs_request_id={request_id}", "-e", "logs_since=10m",
                            "-e", f"logs_report_path={report}", check=True)
        if f"rid={request_id}" in proc.output:
            break
        time.sleep(1)
    assert f'"GET /healthz HTTP/1.1\\" 200' in proc.output and f"rid={request_id}" in proc.output, proc.output[-3000:]
    assert ": 1 matching of " in proc.output
    assert changed(proc.output) == 0
    found = json.loads(report.read_text())
    (only,) = found.values()
    assert only["matched"] == 1
    (line,) = only["lines"]
    assert line["source"] == "sample_app.service" and line["text"].endswith(f"rid={request_id}")
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$", line["ts"])
    # An id nobody sent finds nothing, and a prefix of a real id is not that id.
    proc = run_playbook("logs.yml", "-e", f"logs_request_id={other_id}", check=True)
    assert ": 0 matching of " in proc.output and request_id not in proc.output
    proc = run_playbook("logs.yml", "-e", f"logs_request_id={request_id[:-4]}", check=True)
    assert ": 0 matching of " in proc.output


def test_logs_refuse_bad_input_naming_it(host):
    proc = run_playbook("logs.yml", "-e", "logs_since=yesterday", check=False)
    assert "log_search: since 'yesterday' is not a time or a duration" in proc.output, proc.output[-2000:]
    proc = run_playbook("logs.yml", "-e", "logs_source=file", "-e", '{"logs_paths": ["/srv/sample_app"]}', check=False)
    assert "log_search: path '/srv/sample_app' is not a regular file" in proc.output, proc.output[-2000:]


def test_status_shows_what_runs_and_no_secret(host, tmp_path):
    current = host.run(f"readlink {APP_DIR}/current").stdout.strip().split("/")[-1]
    env_text = host.run(f"cat {APP_DIR}/shared/app.env").stdout
    keys = sorted(set(re.findall(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)=", env_text)))
    assert "DATABASE_URL" in keys and SECRET in env_text  # the secret is there to be leaked
    meta = json.loads(host.run(f"cat {APP_DIR}/releases/{current}/release.json").stdout)
    assert current and meta["version"] == "1.0.0"
    report = tmp_path / "status.json"
    proc = run_playbook("status.yml", "-e", "status_ref=v2.0.0", "-e", f"status_report_path={report}", check=True)
    out = proc.output
    assert f"release: {current}" in out, out[-3000:]
    assert f"version: 1.0.0  sha: {meta['sha'][:12]}  ref: v1.0.0" in out
    assert "unit: sample_app.service active (running) since " in out
    assert re.search(r"port 8000: [0-9.:\[\]]+:8000", out), out[-3000:]
    assert f"env /srv/sample_app/shared/app.env: {', '.join(keys)}" in out
    assert re.search(rf"commits from {meta['sha'][:12]} to v2.0.0: 1\b", out), out[-3000:]
    assert "sample_app 2.0.0: notes.tag" in out
    assert changed(out) == 0
    status = json.loads(report.read_text())
    (only,) = status.values()
    assert only["current"] == current == only["running"] and only["release"]["sha"] == meta["sha"]
    assert only["env_keys"] == keys
    assert only["commits"]["checked"] and only["commits"]["count"] == 1
    assert only["service"]["active_state"] == "active" and only["service"]["since"]
    assert any(r["id"] == current and r["current"] for r in only["releases"])
    # The env file's values appear nowhere: not in the output, not in the report.
    assert SECRET not in out and SECRET not in report.read_text()


def test_status_in_check_mode_is_the_same(host):
    proc = run_playbook("status.yml", "--check", check=True)
    assert "unit: sample_app.service active (running)" in proc.output
    assert changed(proc.output) == 0
