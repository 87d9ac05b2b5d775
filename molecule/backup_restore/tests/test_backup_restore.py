"""Backups and restores as an operator sees them: rows in the restored database, notes served by the app,
caches invalidated, and the refusals that keep data safe. The tests run in file order."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path


from conftest import http, run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"


def sql(host, query: str, db: str = "sample_app") -> str:
    cmd = host.run(f"sudo -u postgres psql -X -d {db} -tAc \"{query}\"")
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def sets(host, name: str = "sample_app") -> list[str]:
    """The sets of one backup name (the db host also holds ledger-eu's, a second database)."""
    return sorted(d for d in host.file(BACKUPS).listdir() if d.startswith(f"{name}-"))


def manifest(host, set_id: str) -> dict:
    return json.loads(host.file(f"{BACKUPS}/{set_id}/manifest.json").content_string)


def backup_metrics(host) -> dict[str, float]:
    """The sample_app series of the backup textfile that node-exporter reads: {metric name: value}."""
    text = host.file("/var/lib/prometheus/node-exporter/shipshape_backup.prom").content_string
    series = '{backup="sample_app",database="sample_app"}'
    return {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if not line.startswith("#") and series in line}


def note_bodies(app) -> set[str]:
    status, body = http(app, "GET", "/notes")
    assert status == 200, body
    return {n["body"] for n in body["notes"]}


def test_the_backup_is_verified_complete_and_private(host):
    (set_id,) = sets(host)
    m = manifest(host, set_id)
    assert m["verified"] is True
    assert m["database"] == "sample_app"
    assert m["row_counts"]["notes"] == 2 and m["revision"] == "0001_initial"
    assert set(m["parts"]) == {"postgres", "postgres_roles", "redis"}  # postgres_roles: roles.sql (pg_dumpall --roles-only)
    assert host.file(BACKUPS).mode == 0o700
    for part in m["parts"].values():
        f = host.file(f"{BACKUPS}/{set_id}/{part['file']}")
        assert f.mode == 0o600 and f.user == "postgres"
        assert host.run(f"sha256sum {BACKUPS}/{set_id}/{part['file']}").stdout.split()[0] == part["sha256"]
    # pg_restore can read the archive, and it holds the notes table.
    listing = host.run(f"pg_restore --list {BACKUPS}/{set_id}/postgres.dump").stdout
    assert "TABLE public notes" in listing
    assert not [d for d in host.file(BACKUPS).listdir() if d.startswith(".partial")]
    metrics = backup_metrics(host)
    assert metrics["shipshape_backup_success"] == 1
    assert metrics["shipshape_backup_last_success_timestamp_seconds"] > 1_700_000_000
    assert metrics["shipshape_backup_last_success_timestamp_seconds"] == metrics["shipshape_backup_last_run_timestamp_seconds"]


def test_the_off_host_copy_matches(host):
    (set_id,) = sets(host)
    copy = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "offhost" / host.backend.get_hostname() / set_id
    m = json.loads((copy / "manifest.json").read_text())
    import hashlib

    assert hashlib.sha256((copy / "postgres.dump").read_bytes()).hexdigest() == m["parts"]["postgres"]["sha256"]


def test_the_app_host_backed_up_its_files(app):
    sets_there = [d for d in app.file(BACKUPS).listdir() if not d.startswith(".")]
    assert len(sets_there) == 1
    m = json.loads(app.file(f"{BACKUPS}/{sets_there[0]}/manifest.json").content_string)
    assert set(m["parts"]) == {"files"} and m["verified"]


def test_restore_without_confirmation_is_refused(host, app):
    proc = run_playbook("restore.yml", "-e", "restore_backup_name=sample_app", check=False)
    assert proc.returncode != 0
    assert "Refusing to replace database 'sample_app'" in proc.output
    assert "restore_confirm=sample_app" in proc.output
    assert "(the current one is kept, renamed sample_app_before_<time>)" in " ".join(proc.output.split())
    assert note_bodies(app) == {"note 1 written on v1", "note 2 written on v1"}


def test_restore_brings_the_backup_back_and_invalidates_caches(host, app):
    status, _ = http(app, "POST", "/notes", {"body": "written after the backup"})
    assert status == 201
    for key in ("cache:user:1", "cache:user:2", "keep:me"):
        host.run(f"redis-cli SET {key} v")
    run_playbook("restore.yml", "-e", "restore_backup_name=sample_app", "-e", "restore_confirm=sample_app", check=True)
    assert note_bodies(app) == {"note 1 written on v1", "note 2 written on v1"}
    status, ready = http(app, "GET", "/readyz")
    assert status == 200, ready
    assert host.run("redis-cli EXISTS cache:user:1").stdout.strip() == "0"
    assert host.run("redis-cli EXISTS keep:me").stdout.strip() == "1"
    # The replaced database is kept, and still holds the note written after the backup.
    before = sql(host, "SELECT datname FROM pg_database WHERE datname LIKE 'sample_app_before_%'", "postgres")
    assert before
    assert sql(host, "SELECT count(*) FROM notes WHERE body = 'written after the backup'", before) == "1"


def test_a_tampered_backup_is_refused_and_the_live_database_untouched(host, app):
    (set_id,) = sets(host)
    dump = f"{BACKUPS}/{set_id}/postgres.dump"
    host.run(f"cp -p {dump} /root/dump.orig && printf 'x' >> {dump}")
    status, _ = http(app, "POST", "/notes", {"body": "live after restore"})
    assert status == 201
    databases = sql(host, "SELECT count(*) FROM pg_database", "postgres")
    try:
        proc = run_playbook("restore.yml", "-e", "restore_backup_name=sample_app", "-e", "restore_confirm=sample_app",
                            check=False)
        assert proc.returncode != 0
        assert "failed its checksum check" in proc.output and "live database is untouched" in proc.output
        assert "live after restore" in note_bodies(app)
        assert sql(host, "SELECT count(*) FROM pg_database", "postgres") == databases
    finally:
        host.run(f"mv /root/dump.orig {dump}")


def test_retention_keeps_exactly_the_gfs_set(host):
    """Fake sets at known dates, then one real backup: exactly the newest 2, the newest of each of the last
    3 days, 2 ISO weeks and 2 months remain."""
    gfs = "/var/backups/gfs"
    host.run(f"rm -rf {gfs} && install -d -m 0700 -o postgres -g postgres {gfs}")
    now = datetime.now(timezone.utc)
    fakes = {}
    for days in range(1, 70, 3):
        for hour in (6, 18):
            when = (now - timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
            # Sets of the name being backed up: retention only ever touches sets whose manifest names it.
            set_id = f"sample_app-{when:%Y%m%dT%H%M%SZ}"
            fakes[set_id] = when
            body = json.dumps({"id": set_id, "name": "sample_app", "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}",
                               "verified": True})
            host.run(f"install -d -m 0700 {gfs}/{set_id} && echo '{body}' > {gfs}/{set_id}/manifest.json")
    run_playbook("backup.yml", "-e", "backup_hosts=db_servers", "-e", f"backup_dir={gfs}", "-e", "backup_keep_last=2",
                 "-e", "backup_keep_daily=3", "-e", "backup_keep_weekly=2", "-e", "backup_keep_monthly=2", check=True)
    remaining = {d for d in host.file(gfs).listdir()}
    real = [d for d in remaining if d not in fakes]
    assert len(real) == 1
    newest_first = sorted(fakes, key=fakes.get, reverse=True)
    expected = set(real) | {newest_first[0]}  # keep_last=2: the real one and the newest fake
    for key, count in ((lambda d: d.date(), 3), (lambda d: d.isocalendar()[:2], 2), (lambda d: (d.year, d.month), 2)):
        buckets = [key(now)]  # the real backup is the newest of its day, week and month
        for set_id in newest_first:
            bucket = key(fakes[set_id])
            if bucket not in buckets:
                if len(buckets) >= count:
                    break
                buckets.append(bucket)
                expected.add(set_id)
    assert remaining == expected


def test_a_full_disk_fails_cleanly_and_keeps_older_backups(host):
    tiny = "/var/backups/tiny"
    host.run(f"mkdir -p {tiny} && mount -t tmpfs -o size=256k tmpfs {tiny} && chown postgres:postgres {tiny} && chmod 0700 {tiny}")
    try:
        (set_id,) = sets(host)
        last_success = backup_metrics(host)["shipshape_backup_last_success_timestamp_seconds"]
        host.run(f"cp -a {BACKUPS}/{set_id} {tiny}/")
        # Enough incompressible rows that the dump cannot fit in 256 KiB.
        sql(host, "INSERT INTO notes (body) SELECT md5(random()::text) || md5(random()::text) FROM generate_series(1, 20000)")
        proc = run_playbook("backup.yml", "-e", "backup_hosts=db_servers", "-e", f"backup_dir={tiny}", check=False)
        assert proc.returncode != 0
        assert "failed and was removed; older backups are untouched" in proc.output
        assert host.file(tiny).listdir() == [set_id]
        assert manifest(host, set_id)["verified"]
        assert host.run(f"cd {tiny}/{set_id} && sha256sum --quiet --check postgres.dump.sha256").rc == 0
        # The alerting rules see the failure; the last success stays the last good backup's.
        metrics = backup_metrics(host)
        assert metrics["shipshape_backup_success"] == 0
        assert metrics["shipshape_backup_last_success_timestamp_seconds"] == last_success
        assert metrics["shipshape_backup_last_run_timestamp_seconds"] > last_success
    finally:
        host.run(f"umount {tiny}")
