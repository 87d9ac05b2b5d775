"""Deploy and rollback as a release engineer sees them: HTTP answers, the current link, the history,
and the failure paths (a broken release, a held lock, a killed build). The tests run in file order."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

from conftest import ROOT, http, run_playbook

testinfra_hosts = ["app_servers"]

ROOT_DIR = "/srv/sample_app"


def history(host) -> list[dict]:
    text = host.file(f"{ROOT_DIR}/deploy-history.jsonl").content_string
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def current_release(host) -> dict:
    target = host.file(f"{ROOT_DIR}/current").linked_to
    return json.loads(host.file(f"{target}/release.json").content_string)


def release_ids(host, prefix: str = "") -> list[str]:
    return sorted(r for r in host.file(f"{ROOT_DIR}/releases").listdir() if r.startswith(prefix))


def release_metrics(host) -> dict[str, float]:
    """sample_app's series of the deploy textfile that node-exporter reads (deploy and rollback share it)."""
    text = host.file("/var/lib/prometheus/node-exporter/shipshape_deploy.prom").content_string
    return {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if not line.startswith("#") and '{app="sample_app"}' in line}


# prepare deployed v1, then v2; converge rolled back; the idempotence step ran the same rollback again.
def test_rollback_goes_back_to_v1_and_its_retry_changed_nothing(host):
    [v2] = release_ids(host, "2.0.0-")
    [v1] = release_ids(host, "1.0.0-")
    status, body = http(host, "GET", "/version")
    assert status == 200 and body["version"] == "1.0.0"
    assert current_release(host)["id"] == v1
    done, retried = history(host)[-2:]
    assert (done["kind"], done["result"], done["from"], done["to"]) == ("rollback", "success", v2, v1)
    # The retry (Molecule's idempotence step, which also saw no task change) stayed on v1 and said so.
    assert (retried["kind"], retried["result"], retried["from"], retried["to"], retried["already"]) == (
        "rollback", "unchanged", v1, v1, True)
    # The release rolled back from is kept for inspection.
    assert host.file(f"{ROOT_DIR}/releases/{v2}/release.json").exists
    metrics = release_metrics(host)
    assert metrics["shipshape_rollback_success"] == 1 and metrics["shipshape_deploy_success"] == 1
    assert metrics["shipshape_rollback_last_success_timestamp_seconds"] >= metrics["shipshape_deploy_last_run_timestamp_seconds"]


def test_a_rollback_right_after_a_rollback_says_what_runs_and_how_to_go_further(host, monkeypatch):
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")  # one-line messages
    [v2] = release_ids(host, "2.0.0-")
    [v1] = release_ids(host, "1.0.0-")
    lines = len(history(host))
    proc = run_playbook("rollback.yml", check=True)
    assert f"already rolled back: {v1} runs since the rollback from {v2}" in proc.output, proc.output[-3000:]
    assert "To go further back, name the release: shipshape rollback --to" in proc.output
    assert "changed=0" in proc.output.split("PLAY RECAP")[-1]
    assert current_release(host)["id"] == v1 and http(host, "GET", "/version")[1]["version"] == "1.0.0"
    assert len(history(host)) == lines + 1 and history(host)[-1]["result"] == "unchanged"


def test_history_records_both_deploys(host):
    entries = [e for e in history(host) if e["kind"] == "deploy" and e["result"] == "success"]
    assert [e["version"] for e in entries][-2:] == ["1.0.0", "2.0.0"]
    assert entries[-1]["from"] == entries[-2]["to"]


# One run for two behaviours (a deploy costs about 12 s): rolling forward reuses the release, and the deploy reads
# the service's log tail.
def test_rolling_forward_again_reuses_the_built_release_and_reads_the_services_log_tail(host, monkeypatch):
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")
    v2 = [r for r in host.file(f"{ROOT_DIR}/releases").listdir() if r.startswith("2.0.0-")]
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", "-e", "deploy_log_lines=5", "-v", check=True)
    assert "success: 1.0.0-" in proc.output
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"
    assert [r for r in host.file(f"{ROOT_DIR}/releases").listdir() if r.startswith("2.0.0-")] == v2
    assert http(host, "GET", "/readyz")[0] == 200
    # The same module as `shipshape logs`: the tail of the unit's journal lands in deploy_result.log_tail.
    marker = '"log_tail": ['
    assert marker in proc.output, proc.output[-3000:]
    tail, _end = json.JSONDecoder().raw_decode(proc.output, proc.output.index(marker) + len(marker) - 1)
    assert 0 < len(tail) <= 5, tail
    assert all(" sample_app.service " in line for line in tail), tail


def test_a_degraded_release_that_serves_passes_the_gate_with_a_warning(host):
    # QUEUE_PENDING_DEGRADED=-1: the app's own /healthz says "degraded" (its outbox is over the threshold) while it
    # serves. deploy_health_fail_on=failed (the default) lets it through and says so; a plain deploy puts it back.
    env = {"DATABASE_URL": "postgresql://{{ shipshape_db_user }}:{{ shipshape_db_password }}@{{ shipshape_db_host }}"
                           ":5432/{{ shipshape_db_name }}",
           "REDIS_URL": "{{ shipshape_redis_url }}", "QUEUE_PENDING_DEGRADED": "-1"}
    running = current_release(host)["id"]
    try:
        # The gate retries a check until it is ok: a release that stays degraded waits out every retry (3 here, 20 by
        # default), then passes with the warning.
        proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", "-e", "deploy_health_retries=3",
                            "-e", json.dumps({"systemd_release_env": env}), check=True)
        output = " ".join(proc.output.split())
        assert "health degraded; WARNING: the gate let a degraded release through (deploy_health_fail_on=failed): healthz" \
            in output, proc.output[-3000:]
        assert "the app reports itself degraded" in output
        status, body = http(host, "GET", "/healthz")
        assert (status, body["status"]) == (200, "degraded"), body
        assert http(host, "GET", "/notes")[0] == 200
        assert current_release(host)["id"] == running
        record = history(host)[-1]
        assert record["kind"] == "deploy" and record["to"] == running
        assert record["warnings"] and "healthz" in record["warnings"][0], record
    finally:
        run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    status, body = http(host, "GET", "/healthz")
    assert (status, body["status"]) == (200, "ok"), body
    assert "warnings" not in history(host)[-1]


def test_v2_is_live_with_its_migration(host):
    status, body = http(host, "GET", "/version")
    assert status == 200
    assert body["version"] == "2.0.0"
    assert current_release(host)["version"] == "2.0.0"
    assert body["release_id"] == current_release(host)["id"]
    status, ready = http(host, "GET", "/readyz")
    assert status == 200, ready
    assert ready["alembic_revision"] == "0002_note_tags"


def test_notes_written_on_v1_survive_and_v2_feature_works(host):
    status, body = http(host, "GET", "/notes")
    assert status == 200
    assert {"note 1 written on v1", "note 2 written on v1"} <= {n["body"] for n in body["notes"]}
    status, created = http(host, "POST", "/notes", {"body": "tagged on v2", "tag": "v2"})
    assert status == 201, created
    assert created["tag"] == "v2"


def test_unit_is_hardened_socket_activated_and_secrets_stay_private(host):
    service = host.service("sample_app.service")
    assert service.is_running
    props = host.run("systemctl show sample_app.service -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp -p User").stdout
    for expected in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "User=sample_app"):
        assert expected in props
    assert host.service("sample_app.socket").is_running
    env = host.file(f"{ROOT_DIR}/shared/app.env")
    assert env.mode == 0o600 and env.user == "root"
    assert host.user("sample_app").shell == "/usr/sbin/nologin"
    journal = host.run("journalctl -u sample_app.service --no-pager").stdout
    assert "molecule-db-password" not in journal


# The sandbox's SAMPLE_APP_SIGNATURE (inventories/sandbox/group_vars/app_servers.yml): what naive quoting breaks.
SIGNATURE = "pa$word \"q\" 'single' back\\slash `cmd` ${HOME} Grüße\ttab"


def service_environment(host, unit: str) -> dict[str, str]:
    """The environment of the unit's main process, as the service sees it."""
    pid = host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip()
    raw = host.run(f"base64 -w0 /proc/{pid}/environ")  # NUL-separated: base64 carries it whole
    assert raw.rc == 0 and pid != "0", raw.stderr
    entries = base64.b64decode(raw.stdout).decode("utf-8").split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def test_every_environment_value_reaches_the_service_byte_for_byte(host):
    """systemd_release_env is written so that systemd's EnvironmentFile= parser gives each value back unchanged: a
    '$', quotes, a backslash, a backquote, non-ASCII letters and a tab (JSON quoting gave '\\u00fc' and '\\t')."""
    env = service_environment(host, "sample_app.service")
    assert env["SAMPLE_APP_SIGNATURE"] == SIGNATURE, env["SAMPLE_APP_SIGNATURE"]
    assert env["DATABASE_URL"].startswith("postgresql://sample_app:")


BACKUP_DIR = "/var/backups/shipshape"


def db_host(host):
    """The db host of this scenario (the data lives there, not on the app host)."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    name = host.backend.get_hostname().replace("app-", "db-", 1)
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


def backup_sets(host) -> dict[str, str]:
    """Every sealed set under the backup directory, id -> path (a set is a directory with a manifest.json)."""
    found = host.run(f"find {BACKUP_DIR} -name manifest.json -not -path '*/.partial-*'").stdout.split()
    return {os.path.basename(os.path.dirname(path)): os.path.dirname(path) for path in found}


# The run of the next test (a deploy of the running release) also shows that a killed build is cleaned up.
def plant_a_killed_build(host) -> None:
    # What a run killed during pip install leaves: a release directory still marked unfinished.
    host.run(f"mkdir -p {ROOT_DIR}/releases/3.0.0-deadbeef/venv && echo building > {ROOT_DIR}/releases/3.0.0-deadbeef/.shipshape-unfinished")


def test_a_deploy_with_deploy_backup_backs_up_the_db_host_and_names_the_set_and_cleans_a_killed_build(host):
    db = db_host(host)
    before = backup_sets(db)
    app_before = backup_sets(host)
    running = current_release(host)["id"]
    plant_a_killed_build(host)
    assert current_release(host)["id"] == running  # a killed build leaves current valid
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", "-e", "deploy_backup=true", check=True)
    # The next deploy removed the unfinished release and left current where it was.
    assert not host.file(f"{ROOT_DIR}/releases/3.0.0-deadbeef").exists
    assert current_release(host)["id"] == running
    made = set(backup_sets(db)) - set(before)
    assert len(made) == 1, (made, proc.output[-3000:])
    [set_id] = made
    path = backup_sets(db)[set_id]
    # A verified, sealed set of the database and Redis (where the data is), 0700 with 0600 files.
    manifest = json.loads(db.file(f"{path}/manifest.json").content_string)
    assert (manifest["id"], manifest["verified"], manifest["database"]) == (set_id, True, "sample_app")
    assert {"postgres", "redis"} <= set(manifest["parts"])
    assert db.file(path).mode == 0o700
    assert not db.run(f"find {path} -type f ! -perm 0600").stdout.strip()
    assert backup_sets(host) == app_before  # not the app host's files instead
    # The deploy history and the deploy's result name it.
    last = history(host)[-1]
    assert (last["kind"], last["backup_id"], last["backup_hosts"]) == ("deploy", set_id, [db.backend.get_hostname()])
    assert f"backup {set_id} on {db.backend.get_hostname()}" in proc.output
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_a_deploy_whose_backup_fails_switches_nothing_and_releases_the_lock(host, monkeypatch):
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")  # one-line messages
    db = db_host(host)
    before_sets = backup_sets(db)
    before = current_release(host)["id"]
    releases_before = release_ids(host)
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v1.0.0", "-e", "deploy_backup=true",
                        "-e", "backup_postgres_db=no_such_database", check=False)
    assert proc.returncode != 0
    assert f"The pre-deploy backup failed on {db.backend.get_hostname()}" in proc.output, proc.output[-3000:]
    assert f"Nothing was built or switched; {before} still runs" in proc.output
    assert current_release(host)["id"] == before and release_ids(host) == releases_before
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"
    assert not host.file(f"{ROOT_DIR}/.deploy.lock").exists
    assert backup_sets(db) == before_sets  # the failed set was removed, nothing half-written looks like a backup
    assert not db.run(f"find {BACKUP_DIR} -name '.partial-*'").stdout.strip()
    last = history(host)[-1]
    assert last["result"] == "failed" and "pre-deploy backup failed" in last["message"]


def poll_version(host):
    """Ask /version five times a second from inside the app host until stopped; returns a stop function
    that gives every answer, one a line (a request that got no answer is FAILED)."""
    host.run("rm -f /tmp/poll.log; systemd-run --unit=poller --collect --quiet sh -c "
             "'while :; do r=$(curl -s -m 10 http://127.0.0.1:8000/version); echo \"${r:-FAILED}\" >> /tmp/poll.log; sleep 0.2; done'")

    def stop() -> list[str]:
        host.run("systemctl stop poller")
        return host.file("/tmp/poll.log").content_string.splitlines()

    return stop


def test_broken_release_fails_as_a_candidate_and_never_serves(host):
    before = current_release(host)
    stop = poll_version(host)
    try:
        proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=broken", "-e", "deploy_health_retries=3", check=False)
    finally:
        answers = stop()
    assert proc.returncode != 0
    assert "failed its candidate check" in proc.output and "it never served a request" in proc.output, proc.output[-3000:]
    # The live release answered every request, throughout (the last line may be cut by the stop).
    answers = answers[:-1]
    assert len(answers) > 10
    failed = [line for line in answers if line == "FAILED" or json.loads(line)["version"] != "2.0.0"]
    assert not failed, f"{len(failed)} of {len(answers)} requests did not get 2.0.0: {set(failed)}"
    assert current_release(host)["id"] == before["id"]
    refused = [e for e in history(host) if e.get("version", "").endswith("broken")]
    assert refused and refused[-1]["result"] == "refused"
    marker = host.file(f"{ROOT_DIR}/releases/{refused[-1]['to']}/.shipshape-failed")
    assert "candidate check" in json.loads(marker.content_string)["reason"]
    assert not host.service("sample_app-candidate").is_running


def test_broken_release_is_rolled_back_automatically_after_the_switch(host):
    # Without a candidate check the broken release is switched to, fails the health gate, and the deploy
    # switches back by itself. (It is marked failed already: forced.)
    before = current_release(host)["id"]
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=broken", "-e", "deploy_health_retries=3",
                        "-e", '{"deploy_candidate_checks": [], "systemd_release_force": true}', check=False)
    out = proc.output
    assert proc.returncode != 0
    assert "failed on" in out and f"rolled back to {before}, which is ok" in out and "is marked failed" in out, out[-3000:]
    status, body = http(host, "GET", "/version")
    assert status == 200 and body["version"] == "2.0.0"
    assert current_release(host)["id"] == before
    broken = [e for e in history(host) if e.get("version", "").endswith("broken")]
    assert broken[-1]["result"] == "rolled_back"
    # The alerting rules see the failed deploy; the last success stays the last good deploy's.
    metrics = release_metrics(host)
    assert metrics["shipshape_deploy_success"] == 0
    assert metrics["shipshape_deploy_last_run_timestamp_seconds"] > metrics["shipshape_deploy_last_success_timestamp_seconds"] > 0
    marker = host.file(f"{ROOT_DIR}/releases/{broken[-1]['to']}/.shipshape-failed")
    assert "health gate" in json.loads(marker.content_string)["reason"]


def test_a_failed_release_is_refused_next_time(host):
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=broken", check=False)
    assert proc.returncode != 0
    assert "was marked failed" in proc.output
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_a_held_lock_refuses_a_second_deploy(host):
    owner = {"owner": "mallory@ci-runner-7", "since": "2026-11-25T09:00:00Z", "epoch": 4102444800 - 10**9,
             "version": "9.9.9", "message": "hotfix", "token": "someone-else"}
    host.run(f"mkdir {ROOT_DIR}/.deploy.lock && echo '{json.dumps(owner)}' > {ROOT_DIR}/.deploy.lock/owner.json")
    try:
        proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v1.0.0", check=False)
        assert proc.returncode != 0
        assert "held by mallory@ci-runner-7 since 2026-11-25T09:00:00Z" in proc.output, proc.output[-2000:]
        assert http(host, "GET", "/version")[1]["version"] == "2.0.0"
        # Rollback takes the same lock.
        proc = run_playbook("rollback.yml", check=False)
        assert proc.returncode != 0 and "held by mallory@ci-runner-7" in proc.output
    finally:
        host.run(f"rm -rf {ROOT_DIR}/.deploy.lock")


def test_check_mode_reports_and_changes_nothing(host):
    before = current_release(host)["id"]
    proc = run_playbook("deploy.yml", "--check", "-e", "systemd_release_git_ref=v1.0.0", check=True)
    assert f"{before} (2.0.0) -> 1.0.0-" in proc.output
    assert current_release(host)["id"] == before
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_a_check_run_of_a_release_never_built_says_so_and_builds_nothing(host):
    # The CLI's check pass before a production deploy: a new release has no directory to unpack into or migrations
    # to read yet, and that is no failure.
    before = current_release(host)["id"]
    proc = run_playbook("deploy.yml", "--check", "-e", "systemd_release_git_ref=v2.0.0",
                        "-e", "systemd_release_id=2.0.0-check-only", check=True)
    assert "Check run: release 2.0.0-check-only would be built first" in " ".join(proc.output.split()), proc.output[-3000:]
    assert f"{before} (2.0.0) -> 2.0.0-check-only" in proc.output
    assert not host.file(f"{ROOT_DIR}/releases/2.0.0-check-only").exists
    assert current_release(host)["id"] == before


def flip_current(host, release_id: str) -> None:
    """Point current at a release as the switch does, without restarting anything."""
    cmd = host.run(f"cd {ROOT_DIR} && ln -sfn releases/{release_id} current.flip && mv -Tf current.flip current")
    assert cmd.rc == 0, cmd.stderr


def test_an_interrupted_switch_is_finished_by_the_next_deploy(host, monkeypatch):
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")  # one-line messages
    # What a run killed between the switch and the restart leaves: current names 2.0.0, the service runs 1.0.0.
    v2 = current_release(host)["id"]
    v1 = [r for r in host.file(f"{ROOT_DIR}/releases").listdir() if r.startswith("1.0.0-")][0]
    flip_current(host, v1)
    assert host.run("systemctl restart sample_app.service").rc == 0
    # v1 answers before current moves back: a worker that boots after the flip would import v2 through `current`
    for _ in range(30):
        status, body = http(host, "GET", "/version")
        if status == 200:
            break
        host.run("sleep 1")
    assert body["version"] == "1.0.0"
    flip_current(host, v2)
    status, body = http(host, "GET", "/version")
    assert (status, body["version"]) == (200, "1.0.0") and current_release(host)["id"] == v2
    # Health says so before any deploy: the release check is degraded, naming both releases.
    checks = json.dumps({"preflight_checks": [{"name": "release", "kind": "release", "root": ROOT_DIR}]})
    health = run_playbook("health.yml", "--limit", "app_servers", "-e", checks, check=True)
    assert f"current is {v2} but the service runs {v1}: a switch did not finish" in health.output, health.output[-3000:]
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    assert f"The service runs {v1}, not current ({v2}): an interrupted switch" in proc.output, proc.output[-3000:]
    # Restarted on current and health-gated, not recorded as "unchanged".
    assert f"success: {v2} -> {v2}" in proc.output, proc.output[-3000:]
    assert history(host)[-1]["result"] == "success"
    status, body = http(host, "GET", "/version")
    assert status == 200 and body["version"] == "2.0.0" and body["release_id"] == v2
    # The next run finds nothing to finish.
    proc = run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    assert f"unchanged: {v2} -> {v2}" in proc.output, proc.output[-3000:]


def test_a_rollback_killed_after_its_switch_is_finished_by_the_next_one_not_taken_further_back(host):
    # A rollback whose run is killed after its switch (here: while its health gate waits on a port nothing serves)
    # leaves v1 current, the history without its outcome, and its lock. The next rollback, told to break the dead
    # run's lock, finishes that rollback (from v2 to v1) instead of going from v1 to whatever came before it.
    v2 = current_release(host)["id"]
    [v1] = release_ids(host, "1.0.0-")
    records = len(history(host))
    hang = json.dumps({"rollback_health_checks": [{"name": "hang", "kind": "http", "url": "http://127.0.0.1:8009/"}],
                       "rollback_health_retries": 150, "rollback_health_delay": 1, "rollback_mark_failed": False})
    env = dict(os.environ, ANSIBLE_CONFIG=str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
    proc = subprocess.Popen(["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
                             str(ROOT / "playbooks" / "rollback.yml"), "-e", hang],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if current_release(host)["id"] == v1 and len(history(host)) > records:
                break
            time.sleep(1)
        assert proc.poll() is None, "the rollback ended before it could be killed"
        assert current_release(host)["id"] == v1
        time.sleep(2)  # inside the gate now
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    started = history(host)[-1]
    assert (started["kind"], started["result"], started["from"], started["to"]) == ("rollback", "started", v2, v1)
    assert host.file(f"{ROOT_DIR}/.deploy.lock").exists  # the killed run's
    retry = run_playbook("rollback.yml", "-e", "rollback_lock_break=true", "-e", "rollback_mark_failed=false", check=True)
    output = " ".join(retry.output.split())
    assert f"finishing the rollback from {v2} to {v1}" in output, retry.output[-3000:]
    assert current_release(host)["id"] == v1 and http(host, "GET", "/version")[1]["version"] == "1.0.0"
    done = history(host)[-1]
    assert (done["kind"], done["result"], done["from"], done["to"]) == ("rollback", "success", v2, v1), done
    assert not host.file(f"{ROOT_DIR}/.deploy.lock").exists
    # v2 again for the tests after this one
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    assert current_release(host)["id"] == v2


# Hostile input: each value is refused before anything runs, naming the variable and the value; no
# command ran (the marker a payload would create exists neither on the controller nor on the host), and
# nothing changed (current, the release list, the history, the unit and env files, the lock).
MARKER = "/tmp/shipshape-deploy-pwned"


def snapshot(host) -> dict:
    return {
        "current": host.file(f"{ROOT_DIR}/current").linked_to,
        "releases": sorted(host.file(f"{ROOT_DIR}/releases").listdir()),
        "history": len(history(host)),
        "env": host.file(f"{ROOT_DIR}/shared/app.env").sha256sum,
        "unit": host.file("/etc/systemd/system/sample_app.service").sha256sum,
        "lock": host.file(f"{ROOT_DIR}/.deploy.lock").exists,
    }


@pytest.mark.parametrize("extra, expected", [
    ({"systemd_release_id": "../../tmp/pwn"}, "systemd_release_id '../../tmp/pwn' must be one path component"),
    ({"systemd_release_id": "1.0..0"}, "systemd_release_id '1.0..0' must be one path component"),
    ({"systemd_release_git_ref": f"$(touch {MARKER})"},
     f'systemd_release_git_ref "$(touch {MARKER})" must not contain a space'),
    ({"systemd_release_git_ref": f"`touch {MARKER}`"}, f'systemd_release_git_ref "`touch {MARKER}`" must not contain'),
    ({"systemd_release_git_ref": f"--upload-pack=touch {MARKER}"},
     f"systemd_release_git_ref '--upload-pack=touch {MARKER}' must not start with '-'"),
    ({"systemd_release_git_ref": "v2.0.0..v1.0.0"}, "systemd_release_git_ref 'v2.0.0..v1.0.0' must not contain '..'"),
    ({"systemd_release_git_ref": "no-such-tag"}, "systemd_release_git_ref 'no-such-tag' names no commit in"),
    ({"systemd_release_env": {"DATABASE_URL": f"x\nExecStartPre=/bin/touch {MARKER}"}},
     "systemd_release_env['DATABASE_URL'] contains a newline"),
    ({"systemd_release_env": {"BAD NAME": "x"}}, "systemd_release_env key 'BAD NAME' must be an environment variable name"),
    ({"systemd_release_unit_settings": {"MemoryMax": f"512M\nExecStartPre=/bin/touch {MARKER}"}},
     "systemd_release_unit_settings['MemoryMax'] contains a line break"),
    ({"systemd_release_exec_start": f"/bin/true\nExecStartPre=/bin/touch {MARKER}"},
     "systemd_release_exec_start contains a line break"),
    ({"systemd_release_workers": {"outbox": f"/bin/true\nExecStartPre=/bin/touch {MARKER}"}},
     "systemd_release_workers['outbox'] \"/bin/true\\nExecStartPre=/bin/touch"),
    ({"systemd_release_requirements": "../../../../tmp/pwn"},
     "systemd_release_requirements '../../../../tmp/pwn' must be a relative path"),
    ({"systemd_release_shared_dirs": ["log", "../../../tmp/pwn"]},
     'systemd_release_shared_dirs ["log", "../../../tmp/pwn"] must be a list of directory names'),
    ({"systemd_release_workers": {"../../tmp/pwn": "/bin/true"}},
     "systemd_release_workers key '../../tmp/pwn' must be a worker name"),
    ({"systemd_release_root": "/srv/../tmp/pwn"}, "deploy_app_root '/srv/../tmp/pwn' (systemd_release_root"),
    ({"systemd_release_user": "root\nx"}, "systemd_release_user "),
    ({"deploy_candidate_env": {"BIND": f"127.0.0.1:8001\nExecStartPre=/bin/touch {MARKER}"}},
     "deploy_candidate_env['BIND'] contains a newline"),
    # Wheels that are not there are refused before the lock too, even when the release is built already.
    ({"systemd_release_wheelhouse": "/nonexistent/wheels.tar.gz"},
     "systemd_release_wheelhouse: '/nonexistent/wheels.tar.gz' is not a file on the controller"),
    ({"systemd_release_wheelhouse": __file__}, f"systemd_release_wheelhouse: '{__file__}' is not a directory on the controller"),
], ids=lambda v: json.dumps(v)[:40])
def test_hostile_input_is_refused_naming_the_variable(host, extra, expected):
    before = snapshot(host)
    host.run(f"rm -f {MARKER}")
    subprocess.run(["rm", "-f", MARKER], check=False)
    args = {"systemd_release_git_ref": "v2.0.0", **extra}
    proc = run_playbook("deploy.yml", "-e", json.dumps(args), check=False)
    assert proc.returncode != 0
    assert expected in proc.output, proc.output[-3000:]
    assert not os.path.exists(MARKER), "a command ran on the controller"
    assert not host.file(MARKER).exists, "a command ran on the host"
    assert not host.file("/srv/tmp/pwn").exists and not host.file("/tmp/pwn").exists
    assert snapshot(host) == before
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"
    if extra.get("systemd_release_git_ref") != "no-such-tag":  # only the repository can refuse that one, under the lock
        # Refused by the checks that run before the lock: nothing on the host changed, not even for a moment.
        recap = re.search(r"^app-deploy\s*:.*$", proc.output, re.M)
        assert recap and "changed=0" in recap.group(0), proc.output[-3000:]
    if "systemd_release_env" in extra or "deploy_candidate_env" in extra:
        # The value is a secret as often as not: never echoed.
        assert "ExecStartPre" not in proc.output


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)


def test_a_commit_whose_submodule_a_release_would_lack_is_refused_and_nothing_is_built(host, tmp_path):
    """git archive holds none of a submodule's files: such a release would start without them."""
    for name in ("theme", "app"):
        (tmp_path / name).mkdir()
        git(tmp_path / name, "init", "-q", "-b", "main")
        (tmp_path / name / "README").write_text(name)
        git(tmp_path / name, "add", ".")
        git(tmp_path / name, "commit", "-q", "-m", name)
    git(tmp_path / "app", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(tmp_path / "theme"),
        "static/theme")
    git(tmp_path / "app", "commit", "-q", "-m", "theme")
    before = snapshot(host)
    proc = run_playbook("deploy.yml", "-e", json.dumps({"systemd_release_git_repo": str(tmp_path / "app"),
                                                        "systemd_release_git_ref": "main"}), check=False)
    assert proc.returncode != 0
    said = " ".join(proc.output.split())
    assert "systemd_release_git_ref 'main' (commit " in said, said[-3000:]
    assert "has git submodules (static/theme), whose files a git archive does not hold" in said
    assert "set systemd_release_git_allow_missing to ['submodules']" in said
    assert snapshot(host) == before  # nothing built, current and the history as they were, the lock released
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_a_hostile_rollback_target_is_refused_naming_it(host):
    before = snapshot(host)
    proc = run_playbook("rollback.yml", "-e", json.dumps({"rollback_to": "../../tmp/pwn"}), check=False)
    assert proc.returncode != 0
    assert "rollback_to '../../tmp/pwn' must be empty or a release id" in proc.output, proc.output[-3000:]
    assert not host.file("/srv/tmp/pwn").exists and not host.file("/tmp/pwn").exists
    assert snapshot(host) == before
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


# Workers: each its own unit, PartOf the service. "where" prints the directory it runs in (the release current pointed
# to when it started); "outbox" is the sample app's outbox worker.
WORKERS = {"systemd_release_workers": {
    "outbox": f"{ROOT_DIR}/current/venv/bin/python -m sample_app.outbox_worker --interval 2",
    "where": "/bin/sh -c 'pwd -P; exec sleep infinity'"}}
WORKER_UNITS = ["sample_app.worker-outbox.service", "sample_app.worker-where.service"]


def worker_pids(host) -> list[str]:
    return [host.run(f"systemctl show -p MainPID --value {unit}").stdout.strip() for unit in WORKER_UNITS]


def where_worker_ran_in(host) -> str:
    """The directory the "where" worker printed when it last started."""
    lines = host.run("journalctl -u sample_app.worker-where.service -o cat --no-pager").stdout.splitlines()
    return [line for line in lines if line.startswith(f"{ROOT_DIR}/releases/")][-1]


def test_workers_run_the_release_the_service_runs_and_leave_with_their_configuration(host):
    v2 = current_release(host)["id"]
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", "-e", json.dumps(WORKERS), check=True)
    for unit in WORKER_UNITS:
        assert host.service(unit).is_running and host.service(unit).is_enabled, unit
        unit_file = host.file(f"/etc/systemd/system/{unit}")
        assert unit_file.user == "root" and unit_file.mode == 0o644
        assert "User=sample_app" in unit_file.content_string and "PartOf=sample_app.service" in unit_file.content_string
    assert where_worker_ran_in(host) == f"{ROOT_DIR}/releases/{v2}"
    # The outbox worker reaches the database and Redis with the service's environment: its passes report deliveries.
    outbox_log = host.run("journalctl -u sample_app.worker-outbox.service -o cat --no-pager").stdout
    assert '"delivered": ' in outbox_log and '"error"' not in outbox_log, outbox_log[-2000:]
    # shipshape status shows them with the service.
    status = " ".join(run_playbook("status.yml", "--limit", "app_servers", check=True).output.split())
    assert "unit: sample_app.worker-outbox.service active (running)" in status, status[-3000:]
    before = worker_pids(host)

    # A rollback restarts the workers with the service, in the release rolled back to (v1, on v2's schema: a
    # rollback does not migrate, and v1 serves on a schema ahead of it).
    [v1] = release_ids(host, "1.0.0-")
    run_playbook("rollback.yml", "-e", json.dumps({**WORKERS, "rollback_to": v1}), check=True)
    assert current_release(host)["id"] == v1
    after = worker_pids(host)
    assert all(pid != "0" for pid in after) and not set(after) & set(before), (before, after)
    assert where_worker_ran_in(host) == f"{ROOT_DIR}/releases/{v1}"

    # Taken out of the configuration, a worker is stopped and its unit removed; the service goes on.
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    assert current_release(host)["id"] == v2
    for unit in WORKER_UNITS:
        assert not host.file(f"/etc/systemd/system/{unit}").exists, unit
        assert host.run(f"systemctl is-active {unit}").stdout.strip() != "active", unit
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_socket_activation_turned_off_and_on_again_keeps_the_app_answering(host):
    # Off: the socket is stopped, disabled and its unit removed in the switch's run; the service binds the port itself.
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", "-e",
                 json.dumps({"systemd_release_socket_activation": False}), check=True)
    assert not host.file("/etc/systemd/system/sample_app.socket").exists
    assert host.run("systemctl is-active sample_app.socket").stdout.strip() != "active"
    assert "Environment=BIND=" in host.file("/etc/systemd/system/sample_app.service").content_string
    assert host.service("sample_app.service").is_running
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"
    # On again: the service, which holds the port, stops before the socket listens, then starts behind it.
    run_playbook("deploy.yml", "-e", "systemd_release_git_ref=v2.0.0", check=True)
    socket = host.service("sample_app.socket")
    assert socket.is_running and socket.is_enabled and host.service("sample_app.service").is_running
    assert "Requires=sample_app.socket" in host.file("/etc/systemd/system/sample_app.service").content_string
    assert http(host, "GET", "/version")[1]["version"] == "2.0.0"


# keep-N, last: it removes releases the tests above use. systemd_release_keep=2 and keep_failed=0 over v1, v2 and
# the failed "broken" release; the new release is v2's code under another id.
def test_keep_n_prunes_after_a_successful_deploy_but_never_what_a_rollback_needs(host, monkeypatch):
    monkeypatch.setenv("ANSIBLE_CALLBACK_RESULT_FORMAT", "json")  # one-line messages
    [v1] = release_ids(host, "1.0.0-")
    [v2] = release_ids(host, "2.0.0-")
    assert current_release(host)["id"] == v2
    failed = [r for r in release_ids(host) if host.file(f"{ROOT_DIR}/releases/{r}/.shipshape-failed").exists]
    assert failed and set(release_ids(host)) == {v1, v2, *failed}
    # Wheels no release links (as a wheelhouse of releases pruned long ago): keep-N removes them too.
    orphan = f"{ROOT_DIR}/shared/wheelhouse-00000000deadbeef"
    assert host.run(f"mkdir -p {orphan} && touch {orphan}/old-1.0-py3-none-any.whl").rc == 0
    proc = run_playbook("deploy.yml", "-e", json.dumps({
        "systemd_release_git_ref": "v2.0.0", "systemd_release_id": "2.0.1-keep", "systemd_release_keep": 2,
        "systemd_release_keep_failed": 0}), check=True)
    # What a user sees: the new release (current) and the one before it (previous, the last good release).
    assert host.run(f"ls -1 {ROOT_DIR}/releases").stdout.split() == sorted(["2.0.1-keep", v2])
    assert host.file(f"{ROOT_DIR}/current").linked_to.endswith("/2.0.1-keep")
    assert host.file(f"{ROOT_DIR}/previous").linked_to.endswith(f"/{v2}")
    last = history(host)[-1]
    assert last["result"] == "success" and sorted(last["pruned"]) == sorted([v1, *failed])
    assert f"pruned {v1}, {failed[0]}" in proc.output, proc.output[-3000:]  # oldest first: complete, then failed
    assert not host.file(orphan).exists
    # The release a rollback goes back to is still there: the rollback works.
    run_playbook("rollback.yml", check=True)
    assert current_release(host)["id"] == v2 and http(host, "GET", "/version")[1]["version"] == "2.0.0"


def test_the_wheels_came_as_one_archive_unpacked_once(host):
    # Every release of this scenario was built from the sandbox's wheelhouse.tar: one directory named by its content
    # (the orphan planted before keep-N is gone).
    shared = f"{ROOT_DIR}/shared"
    dirs = [d for d in host.file(shared).listdir() if d.startswith("wheelhouse")]
    assert len(dirs) == 1 and dirs[0].startswith("wheelhouse-"), dirs
    assert "sha1:" in host.file(f"{shared}/{dirs[0]}/.shipshape-unpacked").content_string
    assert any(name.endswith(".whl") for name in host.file(f"{shared}/{dirs[0]}").listdir())
    # Every release left links the wheels it was built from (keep-N keeps what a release links).
    for rid in release_ids(host):
        assert host.file(f"{ROOT_DIR}/releases/{rid}/.shipshape-wheelhouse").linked_to == f"{shared}/{dirs[0]}", rid


def test_releases_of_the_same_dependencies_share_one_venv_and_keep_n_keeps_it(host):
    # Every release of this scenario has the same requirements and wheelhouse: one venv, built once (complete), linked
    # by each release that is left after keep-N; none left behind that no release links.
    shared = f"{ROOT_DIR}/shared/venvs"
    venvs = host.file(shared).listdir()
    assert len(venvs) == 1, venvs
    assert host.file(f"{shared}/{venvs[0]}/.shipshape-complete").exists
    left = release_ids(host)
    assert len(left) == 2
    for rid in left:
        venv = host.file(f"{ROOT_DIR}/releases/{rid}/venv")
        assert venv.is_symlink and venv.linked_to == f"{shared}/{venvs[0]}", (rid, venv.linked_to)
    assert host.run(f"{ROOT_DIR}/current/venv/bin/python -c 'import flask'").rc == 0
    assert http(host, "GET", "/readyz")[0] == 200
