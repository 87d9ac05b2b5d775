"""Restore drills as an operator sees them: a report whose numbers match the data, a scratch database that is
gone afterwards, metrics for node_exporter, and alerts on a damaged, a failing or a stale backup. The tests
run in file order (the converge drill first)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
REPORTS = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "drills"
METRICS = "/var/lib/prometheus/node-exporter/shipshape_restore_drill.prom"
HOOK_DIR = "/var/tmp/hook"
# A URL with a token in it, as a Telegram URL has: it must never appear in the playbook's output.
SECRET_URL = "http://127.0.0.1:9999/hook/bot123456:SECRET-token-in-url"
CLOSED_URL = "http://127.0.0.1:9998/hook/bot123456:SECRET-token-in-url"
PHASES = ["fetch", "checksum", "restore", "verify", "cleanup"]


def sql(host, query: str, db: str = "sample_app") -> str:
    cmd = host.run(f"sudo -u postgres psql -X -d {db} -tAc \"{query}\"")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def the_set(host) -> str:
    (set_id,) = [d for d in host.file(BACKUPS).listdir() if not d.startswith(".")]
    return set_id


def reports() -> list[Path]:
    return sorted(REPORTS.glob("drill-*.json"), key=lambda p: p.stat().st_mtime)


def drill(*args: str) -> tuple[object, dict]:
    """Run playbooks/drill.yml; return the process and the report it wrote."""
    before = set(reports())
    proc = run_playbook("drill.yml", "-e", f"restore_drill_report_dir={REPORTS}", *args)
    new = [p for p in reports() if p not in before]
    assert len(new) == 1, f"expected one new report, got {new}\n{proc.output[-4000:]}"
    return proc, json.loads(new[0].read_text())


def scratch_databases(host) -> str:
    return sql(host, "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'drill_%'", "postgres")


def hook_bodies(host, since: float = 0) -> list[dict]:
    """What the receiver got (its files are named by the time they arrived, in ns), since a Unix time."""
    files = sorted(host.file(HOOK_DIR).listdir()) if host.file(HOOK_DIR).exists else []
    files = [f for f in files if int(f.split(".")[0]) / 1e9 >= since]
    return [json.loads(host.file(f"{HOOK_DIR}/{f}").content_string) for f in files]


@pytest.fixture()
def clear_hook(host):
    host.run(f"rm -f {HOOK_DIR}/*.json")


def metric(host, name: str) -> float:
    for line in host.file(METRICS).content_string.splitlines():
        if line.startswith(f'shipshape_restore_drill_{name}{{backup="sample_app",database="sample_app"}} '):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in {METRICS}")


def test_the_converge_drill_passed_and_its_numbers_match_the_data(host):
    report = json.loads(reports()[-1].read_text())
    m = json.loads(host.file(f"{BACKUPS}/{the_set(host)}/manifest.json").content_string)
    assert report["result"] == "passed", report["issues"]
    assert report["issues"] == [] and report["alert"] is False
    assert report["database"] == "sample_app" and report["scratch_database"].startswith("drill_sample_app_")
    backup = report["backup"]
    assert backup["id"] == m["id"] and backup["sha256"] == m["parts"]["postgres"]["sha256"]
    assert backup["file"] == "postgres.dump" and backup["size"] == m["parts"]["postgres"]["size"]
    assert 0 <= backup["age_s"] < 3600
    checks = {c["name"]: c for c in report["checks"]}
    # The counts of the live database when the backup was taken: the two notes written on v1.
    assert checks["rows notes"] == {"name": "rows notes", "kind": "row_count", "expected": 2, "actual": 2,
                                    "tolerance_pct": 0.0, "ok": True}
    assert checks["rows outbox"]["expected"] == checks["rows outbox"]["actual"] == 2  # v1 writes an outbox row per note
    assert checks["table notes"]["ok"] and checks["table outbox"]["ok"]
    assert checks["schema revision"]["expected"] == checks["schema revision"]["actual"] == "0001_initial"
    assert checks["assertion notes of v1"]["actual"] == "2" and checks["assertion an outbox row per note"]["actual"] == "t"
    assert checks["checksum postgres.dump"]["ok"] and checks["checksum redis.rdb"]["ok"]
    assert checks["scratch database dropped"]["ok"]
    assert all(c["ok"] for c in report["checks"])
    # Every phase timed where it ran; the recovery time is fetch + checksum + restore + verify; the controller's
    # clock (round trips included) is never shorter than the drill host's.
    phases = report["phases_s"]
    assert set(phases) == set(PHASES)
    assert all(isinstance(phases[p], (int, float)) and phases[p] >= 0 for p in PHASES)
    assert phases["restore"] >= report["restore_detail_s"]["create_database"] + report["restore_detail_s"]["pg_restore"] > 0
    assert report["recovery_s"] == pytest.approx(sum(phases[p] for p in ["fetch", "checksum", "restore", "verify"]), abs=0.003)
    assert set(report["phases_wall_s"]) == {"fetch", "work", "cleanup"}
    assert report["phases_wall_s"]["work"] >= phases["checksum"] + phases["restore"] + phases["verify"]
    assert report["total_s"] >= sum(report["phases_wall_s"].values()) >= report["recovery_s"]
    md = Path(report["report_files"]["markdown"]).read_text()
    assert "PASSED" in md and m["id"] in md and "| rows notes | `2` | `2` | yes |" in md
    assert scratch_databases(host) == ""
    started = datetime.strptime(report["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    assert hook_bodies(host, since=started) == [], "a passing drill of a fresh backup must not alert"


def test_the_metrics_are_written_for_node_exporter(host):
    f = host.file(METRICS)
    assert f.exists and f.mode == 0o644
    assert not host.file(METRICS + ".tmp").exists
    assert metric(host, "success") == 1
    assert abs(metric(host, "last_success_timestamp_seconds") - time.time()) < 900
    assert metric(host, "last_run_timestamp_seconds") >= metric(host, "last_success_timestamp_seconds")
    assert metric(host, "recovery_seconds") > 0 and metric(host, "backup_age_seconds") >= 0
    assert "# TYPE shipshape_restore_drill_success gauge" in f.content_string
    assert 'shipshape_restore_drill_phase_seconds{backup="sample_app",database="sample_app",phase="restore"}' in f.content_string


def test_a_tampered_backup_fails_on_its_checksum_and_alerts(host, clear_hook):
    dump = f"{BACKUPS}/{the_set(host)}/postgres.dump"
    host.run(f"cp -p {dump} /root/dump.orig && printf 'x' >> {dump}")
    last_success = metric(host, "last_success_timestamp_seconds")
    databases = sql(host, "SELECT count(*) FROM pg_database", "postgres")
    try:
        proc, report = drill("-e", f"restore_drill_webhook_url={SECRET_URL}", "-e", "restore_drill_webhook_format=json")
    finally:
        host.run(f"mv /root/dump.orig {dump}")
    assert proc.returncode != 0
    assert "failed its checksum check" in proc.output
    assert "SECRET-token" not in proc.output and "127.0.0.1:9999" not in proc.output
    assert report["result"] == "failed"
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["checksum postgres.dump"]["ok"] is False
    assert checks["checksum postgres.dump"]["expected"] != checks["checksum postgres.dump"]["actual"]
    assert checks["checksum redis.rdb"]["ok"] is True
    assert any("failed its checksum check" in i for i in report["issues"])
    # Nothing was restored: no restore or verify phase, no database created.
    assert report["phases_s"]["restore"] is None and report["phases_s"]["verify"] is None and report["recovery_s"] is None
    assert sql(host, "SELECT count(*) FROM pg_database", "postgres") == databases
    (body,) = hook_bodies(host)
    assert body["result"] == "failed" and "checksum postgres.dump" in body["failed_checks"]
    assert metric(host, "success") == 0
    assert metric(host, "last_success_timestamp_seconds") == last_success


def test_a_failing_assertion_fails_the_drill_names_it_and_still_drops_the_scratch_database(host):
    assertions = json.dumps([{"name": "ninety-nine notes", "query": "SELECT count(*) FROM notes", "expected": 99}])
    # Nothing listens on the webhook's port here: the failed post is an issue, and still no URL is printed.
    proc, report = drill("-e", json.dumps({"restore_drill_assertions": json.loads(assertions)}),
                         "-e", f"restore_drill_webhook_url={CLOSED_URL}")
    assert proc.returncode != 0
    assert "ninety-nine notes" in proc.output
    assert "SECRET-token" not in proc.output and "127.0.0.1:9998" not in proc.output
    assert report["result"] == "failed" and report["failed_checks"] == ["assertion ninety-nine notes"]
    check = next(c for c in report["checks"] if c["name"] == "assertion ninety-nine notes")
    assert (check["expected"], check["actual"], check["ok"]) == ("99", "2", False)
    assert 'assertion ninety-nine notes: expected "99", got "2"' in report["issues"]
    assert any(i.startswith("webhook failed: -1") for i in report["issues"])
    assert not any("SECRET-token" in i for i in report["issues"])
    assert report["recovery_s"] > 0
    assert next(c for c in report["checks"] if c["name"] == "scratch database dropped")["ok"]
    assert scratch_databases(host) == ""


def test_a_stale_backup_alerts_even_though_the_drill_passes(host, clear_hook):
    time.sleep(2)
    proc, report = drill("-e", "restore_drill_max_backup_age=1", "-e", f"restore_drill_webhook_url={SECRET_URL}",
                         "-e", "restore_drill_webhook_format=slack")
    assert proc.returncode == 0, proc.output[-4000:]
    assert "SECRET-token" not in proc.output
    assert report["result"] == "passed" and report["stale"] is True and report["alert"] is True
    assert report["backup"]["age_s"] >= 2 and report["newest_backup_age_s"] >= 2
    assert any("more than restore_drill_max_backup_age 1 s" in i for i in report["issues"])
    (body,) = hook_bodies(host)
    assert set(body) == {"text"} and "passed" in body["text"] and "restore_drill_max_backup_age" in body["text"]
    assert metric(host, "success") == 1


def test_a_scratch_name_that_is_a_live_database_is_refused(host):
    notes = sql(host, "SELECT count(*) FROM notes")
    proc, report = drill("-e", "restore_drill_scratch_name=sample_app")
    assert proc.returncode != 0
    assert "Refusing scratch database 'sample_app'" in proc.output
    assert report["result"] == "failed"
    assert not any(c["name"] == "scratch database dropped" for c in report["checks"])
    # Neither written to nor dropped.
    assert sql(host, "SELECT count(*) FROM notes") == notes
    assert sql(host, "SELECT count(*) FROM pg_database WHERE datname = 'sample_app'", "postgres") == "1"


def test_a_drill_waits_for_a_running_backup_then_fails_naming_it_and_creates_nothing(host):
    from lockfixture import holder, plant

    lock = f"{BACKUPS}/.lock-sample_app"
    info = holder("alive", version="sample_app-20261203T010000Z")
    plant(host, lock, info)
    try:
        started = time.time()
        proc, report = drill("-e", "restore_drill_lock_wait=4")
        flat = " ".join(proc.output.split())
        assert proc.returncode != 0 and report["result"] == "failed"
        assert time.time() - started >= 4  # it waited for the backup before giving up
        assert f"Refused: the lock {lock} is held by alice@here (run {info['controller_pid']} on" in flat
        assert "backup sample_app-20261203T010000Z" in flat and "still running" in flat
        assert any("Refused: the lock" in issue for issue in report["issues"]), report["issues"]
        assert scratch_databases(host) == ""  # no scratch database was made
        assert json.loads(host.file(f"{lock}/owner.json").content_string)["token"] == "theirs"
    finally:
        host.run(f"rm -rf {lock}")


def test_a_backup_kept_on_another_host_is_fetched_through_the_controller(host):
    """The sets may live elsewhere (restore_drill_backup_host): here a copy of the set on the app host."""
    import testinfra

    app = testinfra.get_host(f"ansible://{host.backend.get_hostname().replace('db-', 'app-', 1)}"
                             f"?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")
    set_id = the_set(host)
    remote = "/var/backups/elsewhere"
    app.run(f"rm -rf {remote} && mkdir -p {remote}")
    for name in ("manifest.json", "postgres.dump", "postgres.dump.sha256", "redis.rdb", "redis.rdb.sha256",
                 "roles.sql", "roles.sql.sha256"):
        content = host.run(f"base64 -w0 {BACKUPS}/{set_id}/{name}").stdout
        assert app.run(f"mkdir -p {remote}/{set_id} && echo {content} | base64 -d > {remote}/{set_id}/{name}").rc == 0
    proc, report = drill("-e", f"restore_drill_backup_host={app.backend.get_hostname()}",
                         "-e", f"restore_drill_backup_dir={remote}", "-e", f"restore_drill_backup_id={set_id}")
    assert proc.returncode == 0, proc.output[-4000:]
    assert report["result"] == "passed"
    assert report["backup"]["host"] == app.backend.get_hostname() and report["backup"]["id"] == set_id
    assert report["phases_s"]["fetch"] > 0
    assert host.file("/var/tmp/shipshape-restore-drill").listdir() == []
    assert scratch_databases(host) == ""


def write_drill_inventory(host) -> None:
    """The scheduler's inventory: this db host over the local connection, with the sandbox's db_servers vars."""
    project = os.environ["MOLECULE_PROJECT_DIRECTORY"]
    hosts = f"""---
all:
  vars:
    ansible_python_interpreter: /usr/bin/python3
    shipshape_environment: molecule
    shipshape_db_host: 127.0.0.1
    shipshape_db_name: sample_app
    shipshape_db_user: sample_app
    shipshape_db_password: molecule-db-password
    shipshape_redis_url: redis://127.0.0.1:6379/0
db_servers:
  hosts:
    {host.backend.get_hostname()}:
      ansible_connection: local
"""
    inv = "/var/tmp/drill-inventory"
    assert host.run(f"rm -rf {inv} && mkdir -p {inv}/group_vars").rc == 0
    assert host.run(f"ln -s {project}/inventories/sandbox/group_vars/db_servers.yml {inv}/group_vars/db_servers.yml").rc == 0
    assert host.run(f"cat > {inv}/hosts.yml <<'EOF'\n{hosts}EOF").rc == 0


def test_the_schedule_installs_a_persistent_timer_whose_service_runs_a_real_drill_and_is_removed_when_disabled(host):
    """The timer as `systemctl list-timers` shows it, and a manual start of its service: `shipshape drill --yes` of
    the checkout, as the timer would run it, restores the newest backup, writes a passing report and lands in the
    CLI's history on the scheduler host."""
    python = os.environ.get("SHIPSHAPE_PYTHON_HOME", "/usr")
    assert host.run(f"{os.environ['MOLECULE_PROJECT_DIRECTORY']}/.venv/bin/shipshape --version").rc == 0, (
        f"the checkout's .venv does not run in the container (its Python is under {python}: run through "
        "scripts/test, or export SHIPSHAPE_PYTHON_HOME before molecule create)")
    write_drill_inventory(host)
    drills = "/root/.local/state/shipshape/drills"
    host.run(f"rm -rf {drills}")
    run_playbook("../molecule/restore_drill/schedule.yml", check=True)
    again = run_playbook("../molecule/restore_drill/schedule.yml", check=True)
    assert "changed=0" in again.output
    assert "shipshape-restore-drill.timer" in host.run("systemctl list-timers --all --no-pager").stdout
    show = host.run("systemctl show -p TimersCalendar -p Persistent -p RandomizedDelayUSec shipshape-restore-drill.timer").stdout
    assert "OnCalendar=*-*-01 04:00:00" in show and "Persistent=yes" in show and "RandomizedDelayUSec=30min" in show
    assert host.service("shipshape-restore-drill.timer").is_enabled
    assert "Type=oneshot" in host.run("systemctl show -p Type shipshape-restore-drill.service").stdout
    # One drill per scheduled name, each named (a host with several names would otherwise refuse to guess).
    assert "drill --yes -i /var/tmp/drill-inventory --name sample_app || failed=1" in \
        host.file("/usr/local/libexec/shipshape-restore-drill").content_string

    started = host.run("systemctl start shipshape-restore-drill.service")
    journal = host.run("journalctl -u shipshape-restore-drill.service --no-pager -n 60").stdout
    assert started.rc == 0, journal
    (report_file,) = [f for f in host.file(drills).listdir() if f.endswith(".json")]
    report = json.loads(host.file(f"{drills}/{report_file}").content_string)
    assert report["result"] == "passed", report
    assert report["backup"]["id"] == the_set(host)
    assert report["phases_s"]["restore"] > 0
    assert scratch_databases(host) == ""
    history = host.run(f"{os.environ['MOLECULE_PROJECT_DIRECTORY']}/.venv/bin/shipshape history --drills")
    assert history.rc == 0 and "success" in history.stdout and report["backup"]["id"] in history.stdout, history.stdout
    assert "molecule-db-password" not in journal

    # The program is checked when the timer is installed, not a month later.
    missing = run_playbook("../molecule/restore_drill/schedule.yml", "-e", "restore_drill_schedule_home=/nowhere")
    assert missing.returncode != 0 and "/nowhere/.venv/bin/shipshape is not an executable" in missing.output

    run_playbook("../molecule/restore_drill/schedule.yml", "-e", "restore_drill_schedule_enabled=false", check=True)
    assert "shipshape-restore-drill" not in host.run("systemctl list-timers --all --no-pager").stdout
    assert not host.file("/etc/systemd/system/shipshape-restore-drill.timer").exists
    assert not host.file("/etc/systemd/system/shipshape-restore-drill.service").exists
    assert "LoadState=not-found" in host.run("systemctl show -p LoadState shipshape-restore-drill.timer").stdout
