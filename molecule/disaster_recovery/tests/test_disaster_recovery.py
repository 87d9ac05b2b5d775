"""Disaster recovery from nothing as an operator sees it: the recovered app serves the notes written before the
backup and runs the last good release; a run interrupted after the restore continues without restoring again;
a tampered backup stops the recovery before the app host is provisioned. The tests run in file order (the
converge recovery first)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import http, run_playbook

testinfra_hosts = ["app_servers"]

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
BACKUPS = EPHEMERAL / "backups"
NOTES_BEFORE = {f"note {i} before the disaster" for i in (1, 2, 3)}
PHASES = ["backups", "provision", "restore", "deploy", "caches", "health"]
SECRET = "molecule-db-password"


@pytest.fixture()
def db(host):
    import testinfra

    name = host.backend.get_hostname().replace("app-", "db-", 1)
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def sql(db, query: str) -> str:
    cmd = db.run(f"sudo -u postgres psql -X -d sample_app -tAc \"{query}\"")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def note_bodies(app) -> set[str]:
    status, body = http(app, "GET", "/notes")
    assert status == 200, body
    return {n["body"] for n in body["notes"]}


def reports(report_dir: Path) -> list[Path]:
    return sorted(report_dir.glob("dr-*.json"))


def recover(report_dir: Path, *args: str, backups: Path = BACKUPS):
    """Run playbooks/disaster_recovery.yml; return the process and the report it wrote."""
    before = set(reports(report_dir))
    proc = run_playbook("disaster_recovery.yml", "-e", f"disaster_recovery_backup_dir={backups}",
                        "-e", f"disaster_recovery_report_dir={report_dir}", *args)
    new = [p for p in reports(report_dir) if p not in before]
    assert len(new) == 1, f"expected one new report, got {new}\n{proc.output[-6000:]}"
    return proc, json.loads(new[0].read_text())


def blank(which: str) -> None:
    run_playbook("../molecule/disaster_recovery/blank.yml", "-e", f"blank_hosts={which}", check=True)


def backed_up_release() -> dict:
    (app_dir,) = [d for d in BACKUPS.iterdir() if d.name.startswith("app-")]
    (set_dir,) = [d for d in app_dir.iterdir() if (d / "manifest.json").exists()]  # prepare made one set per host
    return json.loads((set_dir / "manifest.json").read_text())["deploy_history"]["last_good"]


def test_the_recovered_app_serves_the_backed_up_notes_on_the_last_good_release(host, db):
    assert note_bodies(host) == NOTES_BEFORE
    last_good = backed_up_release()
    status, version = http(host, "GET", "/version")
    assert status == 200, version
    assert version["version"] == "2.0.0" and version["release_id"] == last_good["id"] and version["sha"] == last_good["sha"]
    status, ready = http(host, "GET", "/readyz")
    assert status == 200 and ready["alembic_revision"] == "0002_note_tags", ready
    # The files came back where they were, owned by the service user; Redis's durable keys came back and
    # the cache keys were invalidated.
    upload = host.file("/srv/sample_app/shared/uploads/report.txt")
    assert upload.content_string == "uploaded before the disaster\n" and upload.user == "sample_app"
    assert db.run("redis-cli GET keep:session").stdout.strip() == "alive"
    assert db.run("redis-cli EXISTS cache:user:1").stdout.strip() == "0"


def test_the_report_gives_the_time_to_recover_the_data_age_and_the_release():
    (path,) = reports(EPHEMERAL / "dr")[:1]
    report = json.loads(path.read_text())
    assert report["result"] == "recovered", report["failure"]
    assert [p["phase"] for p in report["phases"]] == PHASES
    assert all(p["status"] == "done" and p["seconds"] > 0 for p in report["phases"])
    assert report["recovery_s"] == pytest.approx(sum(p["seconds"] for p in report["phases"]), abs=0.05)
    assert report["data"]["row_counts"]["notes"] == 3 and report["data"]["revision"] == "0002_note_tags"
    assert 0 < report["data"]["age_s"] < 3600
    restored = report["restored"]
    assert {tuple(r["parts"]) for r in restored.values()} == {("postgres", "redis"), ("files",)}
    assert all(r["status"] == "restored" for r in restored.values())
    assert report["release"]["asked"]["from"] == "deploy history"
    (running,) = report["release"]["running"].values()
    assert running["release"] == backed_up_release()["id"] and running["migrations_applied"] is False
    assert all(h["status"] == "ok" for h in report["health"].values())
    assert report["left_to_do"] == []
    md = Path(report["report_files"]["markdown"]).read_text()
    assert "RECOVERED" in md and running["release"] in md and report["data"]["backup_id"] in md
    # Nothing secret reaches the reports or the state.
    for f in (path, Path(report["report_files"]["markdown"]), Path(report["state_file"])):
        assert SECRET not in f.read_text()


def test_a_run_stopped_after_the_restore_continues_without_restoring_again(host, db):
    blank("all")
    report_dir = EPHEMERAL / "dr-resume"
    proc, first = recover(report_dir, "-e", "disaster_recovery_stop_after=restore")
    assert proc.returncode != 0
    assert "stopped after the restore phase as asked" in proc.output
    assert first["result"] == "stopped" and first["recovery_s"] is None
    assert {p["phase"]: p["status"] for p in first["phases"]} == {
        "backups": "done", "provision": "done", "restore": "done", "deploy": "not run", "caches": "not run", "health": "not run"}
    assert [item.split(":")[0] for item in first["left_to_do"]] == ["deploy", "caches", "health"]
    # The data is back, nothing serves yet.
    assert sql(db, "SELECT count(*) FROM notes") == "3"
    assert not host.file("/srv/sample_app/current").exists
    # Written between the runs: a restore done again would replace the database and lose it.
    sql(db, "INSERT INTO notes (body) VALUES ('written between the runs')")
    marker = host.file("/var/lib/shipshape/disaster_recovery/restored.json").content_string

    proc, second = recover(report_dir)
    assert proc.returncode == 0, proc.output[-6000:]
    assert second["result"] == "recovered"
    assert note_bodies(host) == NOTES_BEFORE | {"written between the runs"}
    assert host.file("/var/lib/shipshape/disaster_recovery/restored.json").content_string == marker
    assert all(r["status"].startswith("already restored and verified") for r in second["restored"].values())
    restore = next(p for p in second["phases"] if p["phase"] == "restore")
    # The restore counts with the time of the run that did it.
    first_restore = next(p for p in first["phases"] if p["phase"] == "restore")
    assert restore["run_id"] == first["run_id"] and restore["seconds"] == first_restore["seconds"]
    assert second["recovery_s"] == pytest.approx(sum(p["seconds"] for p in second["phases"]), abs=0.05)
    status, version = http(host, "GET", "/version")
    assert status == 200 and version["release_id"] == backed_up_release()["id"]


def test_the_full_stack_drill_recovers_throwaway_hosts_checks_the_api_and_tears_them_down(db):
    drills = EPHEMERAL / "drills"
    proc = run_playbook("drill.yml", "-e", "restore_drill_mode=full_stack", "-e", f"restore_drill_full_stack_backup_dir={BACKUPS}",
                        "-e", f"restore_drill_report_dir={drills}")
    assert proc.returncode == 0, proc.output[-6000:]
    (path,) = sorted(drills.glob("drill-*.json"))
    report = json.loads(path.read_text())
    assert report["mode"] == "full_stack" and report["result"] == "passed", report["issues"]
    checks = {c["name"]: c for c in report["checks"]}
    # The throwaway app serves the backup's rows (3 notes; the live db has a 4th written since) and the last good release.
    assert checks["api rows notes"]["expected"] == checks["api rows notes"]["actual"] == 3
    assert checks["api release"]["actual"] == backed_up_release()["id"]
    assert checks["recovered from nothing"]["ok"] and checks["throwaway hosts removed"]["ok"]
    assert report["recovery_from_nothing_s"] > 0 and set(report["phases_s"]) == set(PHASES)
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=org.shipshape.drill=full_stack"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert left == ""
    metrics = db.file("/var/lib/prometheus/node-exporter/shipshape_restore_drill.prom").content_string
    assert "shipshape_restore_drill_recovery_from_nothing_seconds{" in metrics
    # One series per backup name, labelled with it and the database (several databases share the file).
    assert 'shipshape_restore_drill_success{backup="sample_app",database="sample_app"} 1' in metrics, metrics


def test_a_tampered_backup_stops_before_the_app_host_is_provisioned(host, db):
    blank("app_servers")
    tampered = EPHEMERAL / "backups-tampered"
    shutil.rmtree(tampered, ignore_errors=True)
    shutil.copytree(BACKUPS, tampered)
    (dump,) = tampered.glob("db-*/*/postgres.dump")
    with dump.open("ab") as fh:
        fh.write(b"x")
    notes = sql(db, "SELECT count(*) FROM notes")
    proc, report = recover(EPHEMERAL / "dr-tampered", backups=tampered)
    assert proc.returncode != 0
    assert "failed its checksum check" in proc.output and "before any host was provisioned" in proc.output
    assert report["result"] == "failed"
    assert report["failure"]["phase"] == "backups" and "postgres.dump" in report["failure"]["message"]
    assert {p["phase"]: p["status"] for p in report["phases"]} == {
        "backups": "failed", "provision": "not run", "restore": "not run", "deploy": "not run", "caches": "not run",
        "health": "not run"}
    assert [item.split(":")[0] for item in report["left_to_do"]] == PHASES
    # The app host was not provisioned: no service user, no app root. The db host was not touched.
    assert host.run("id sample_app").rc != 0
    assert not host.file("/srv/sample_app").exists
    assert sql(db, "SELECT count(*) FROM notes") == notes
