"""Two databases on one db host, each with its own backup name (sample_app and ledger-eu; issue 16), as an operator
sees them: a drill or restore without a name refuses listing both and touches nothing; with a name each gets its
own newest set; retention of one name never deletes the other's; the drill metrics hold one labelled series per
name; a set whose part on another host failed is not made. The second database's name has a '-' (as createdb
users often name them), and so has its owner role: backed up, drilled and restored by that name, owner kept. Runs
after the other files (file order)."""

from __future__ import annotations

import json
import os
from pathlib import Path


from conftest import run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
METRICS = "/var/tmp/shipshape-names/drill.prom"
REPORTS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")) / "drills-names"
LEDGER_DB = "ledger-eu"
LEDGER = ["-e", f"backup_name={LEDGER_DB}", "-e", f"backup_postgres_db={LEDGER_DB}", "-e", "backup_redis=false",
          "-e", json.dumps({"backup_manifest_tables": ["entries"]})]


def sql(host, query: str, db: str = "postgres") -> str:
    cmd = host.run(f"sudo -u postgres psql -X -d {db} -tAc \"{query}\"")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def sets(host, name: str, root: str = BACKUPS) -> list[str]:
    return sorted(d for d in host.file(root).listdir() if d.startswith(f"{name}-"))


def text(proc) -> str:
    """The run's output with whitespace collapsed: the callback wraps long messages."""
    return " ".join(proc.output.split())


def entries(host, root: str) -> list[str]:
    """Every entry, dot entries (partial sets, locks) included: testinfra's listdir leaves them out."""
    cmd = host.run(f"ls -A {root}")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.split()


def manifest(host, set_id: str) -> dict:
    return json.loads(host.file(f"{BACKUPS}/{set_id}/manifest.json").content_string)


def reports() -> list[Path]:
    return sorted(REPORTS.glob("drill-*.json")) if REPORTS.is_dir() else []


def drill(*args: str, check: bool | None = None):
    return run_playbook("drill.yml", "-e", f"restore_drill_report_dir={REPORTS}",
                        "-e", f"restore_drill_metrics_file={METRICS}", *args, check=check)


def metric(host, name: str, backup: str) -> str | None:
    prefix = f'shipshape_restore_drill_{name}{{backup="{backup}",database="{backup}"}} '
    lines = [line for line in host.file(METRICS).content_string.splitlines() if line.startswith(prefix)]
    return lines[0][len(prefix):] if lines else None


def test_each_name_has_its_own_verified_set(host):
    for name, db in (("sample_app", "sample_app"), (LEDGER_DB, LEDGER_DB)):
        (set_id,) = sets(host, name)
        m = manifest(host, set_id)
        assert m["name"] == name and m["database"] == db and m["verified"] is True
    assert manifest(host, sets(host, LEDGER_DB)[0])["row_counts"] == {"entries": 3}


def test_a_drill_without_a_name_refuses_listing_both_and_runs_nothing(host):
    before = reports()
    proc = drill(check=False)
    assert proc.returncode != 0
    assert f"several backups in {BACKUPS}: {LEDGER_DB}, sample_app; choose one with --name" in proc.output, proc.output[-3000:]
    assert sql(host, "SELECT count(*) FROM pg_database WHERE datname LIKE 'drill_%'") == "0"  # no scratch database
    assert reports() == before  # no report: the drill never started
    assert not host.file(METRICS).exists


def test_a_restore_without_a_name_refuses_listing_both_and_restores_nothing(host):
    databases = sql(host, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database")
    proc = run_playbook("restore.yml", "-e", "restore_confirm=sample_app", check=False)
    assert proc.returncode != 0
    assert f"several backups in {BACKUPS}: {LEDGER_DB}, sample_app; choose one with --name" in proc.output, proc.output[-3000:]
    assert sql(host, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") == databases


def test_each_name_drills_its_own_newest_and_the_metrics_hold_both(host):
    for name in (LEDGER_DB, "sample_app"):
        before = set(reports())
        drill("-e", f"restore_drill_backup_name={name}", check=True)
        (new,) = [p for p in reports() if p not in before]
        report = json.loads(new.read_text())
        assert report["result"] == "passed", report["issues"]
        assert report["backup"]["id"] == sets(host, name)[-1] and report["database"] == name
        if name == LEDGER_DB:
            ledger_run = metric(host, "last_run_timestamp_seconds", LEDGER_DB)
    # one file, one labelled series per name; drilling sample_app left ledger-eu's lines as they were
    for name in (LEDGER_DB, "sample_app"):
        assert metric(host, "success", name) == "1"
        assert int(metric(host, "last_success_timestamp_seconds", name)) > 0
    assert metric(host, "last_run_timestamp_seconds", LEDGER_DB) == ledger_run
    assert "database=\"sample_app\"" in host.file(METRICS).content_string


def test_restoring_ledger_eu_restores_it_and_runs_none_of_sample_apps_cache_patterns(host):
    host.run("redis-cli SET cache:user:42 v")
    sql(host, "INSERT INTO entries (amount) VALUES (100)", LEDGER_DB)
    proc = run_playbook("restore.yml", "-e", f"restore_backup_name={LEDGER_DB}", "-e", f"restore_confirm={LEDGER_DB}",
                        check=True)
    assert sql(host, "SELECT count(*) FROM entries", LEDGER_DB) == "3"
    # its owner, a role whose name has a '-' too, owns the restored database as it owned the one replaced
    owner = f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{LEDGER_DB}'"
    assert sql(host, owner) == "ledger-owner"
    assert sql(host, "SELECT count(*) FROM notes", "sample_app") != ""  # sample_app untouched and still there
    # sample_app's pattern cache:* belongs to sample_app: a restore of ledger-eu does not run it
    assert host.run("redis-cli EXISTS cache:user:42").stdout.strip() == "1"
    assert f"none: no patterns are configured for {LEDGER_DB}" in text(proc)


def test_retention_of_one_name_never_deletes_the_others_sets(host):
    sample_app_sets = sets(host, "sample_app")
    (old_ledger,) = sets(host, LEDGER_DB)
    run_playbook("backup.yml", "-e", "backup_hosts=db_servers", *LEDGER, "-e", "backup_keep_last=1",
                 "-e", "backup_keep_daily=0", "-e", "backup_keep_weekly=0", "-e", "backup_keep_monthly=0", check=True)
    (new_ledger,) = sets(host, LEDGER_DB)
    assert new_ledger != old_ledger  # the older ledger-eu set went to retention
    assert sets(host, "sample_app") == sample_app_sets  # sample_app's sets are not ledger-eu's to count or delete


def test_a_set_whose_part_on_another_host_failed_is_not_made(host, app):
    """The database part fails on the db host (its revision query names no column: the manifest fails after the dump) while
    the app host seals its files under the same id: the app host's part is set aside, the run fails naming the db
    host, no set is listed."""
    root = "/var/backups/whole"
    for h in (host, app):
        h.run(f"rm -rf {root}")
    db_host = host.backend.get_hostname()
    proc = run_playbook("backup.yml", "-e", f"backup_dir={root}",
                        "-e", json.dumps({"backup_revision_query": "SELECT no_such_column FROM pg_class"}), check=False)
    assert proc.returncode != 0
    assert "failed and was removed" in text(proc)
    assert f"is not whole: {db_host} failed before sealing its part" in text(proc), proc.output[-4000:]
    for h in (host, app):
        assert [d for d in entries(h, root) if not d.startswith(".")] == []
    assert [d for d in entries(app, root) if d.startswith(".partial-sample_app-")]  # set aside, not a set
    assert "made sample_app-" not in proc.output
    # the next backup of the name clears what was set aside, and makes a whole set on both hosts
    run_playbook("backup.yml", "-e", f"backup_dir={root}", check=True)
    for h in (host, app):
        there = entries(h, root)
        assert len([d for d in there if d.startswith("sample_app-")]) == 1
        assert not [d for d in there if d.startswith(".partial-")]
        h.run(f"rm -rf {root}")
