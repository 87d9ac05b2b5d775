"""Hostile and unusual input to the backup role (issue 14): each bad value is refused with one line naming the
variable and the value, nothing is written outside the backup directory (no marker appears, on the hosts or the
controller), and the backup listings are unchanged. Retention touches only sets of its own backup_name, and a
backup of a name runs only while it holds that name's lock. Runs after test_backup_restore.py and leaves
/var/backups/shipshape as it found it."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
# Where a payload would land: a set named ../../tmp/pwn-<time> under /var/backups/shipshape is /var/tmp/pwn-...,
# its partial /var/backups/shipshape/tmp/pwn-... (below .partial-..), one more ../ reaches /tmp.
MARKERS = "ls -d /tmp/pwn* /var/tmp/pwn* /var/backups/tmp /var/backups/shipshape/tmp /pwn* 2>/dev/null"


def state(host) -> str:
    """Every entry of /var/backups two levels down (the sets, dot entries included), with the markers."""
    listing = host.run("find /var/backups -maxdepth 2 | LC_ALL=C sort").stdout
    return listing + "markers:" + host.run(MARKERS).stdout


def controller_markers() -> set[str]:
    eph = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
    return {str(p) for p in [*Path("/tmp").glob("pwn*"), *eph.parent.glob("pwn*"), *eph.glob("pwn*")]}


def backup(extra: dict, hosts: str = "db_servers"):
    # JSON extra vars: values reach the role exactly as given (no key=value splitting on spaces).
    return run_playbook("backup.yml", "-e", json.dumps(dict({"backup_hosts": hosts}, **extra)))


@pytest.mark.parametrize("extra, variable, shown, hosts", [
    ({"backup_name": "../../tmp/pwn"}, "backup_name", "'../../tmp/pwn'", "db_servers:app_servers"),
    ({"backup_name": "../../../tmp/pwn"}, "backup_name", "'../../../tmp/pwn'", "db_servers:app_servers"),
    ({"backup_name": "a/../../../tmp/pwn"}, "backup_name", "'a/../../../tmp/pwn'", "db_servers"),
    ({"backup_name": "-pwn"}, "backup_name", "'-pwn'", "db_servers"),
    ({"backup_dir": "/var/backups/shipshape/../../../tmp/pwn"}, "backup_dir", "'/var/backups/shipshape/../../../tmp/pwn'",
     "db_servers"),
    ({"backup_dir": "tmp/pwn"}, "backup_dir", "'tmp/pwn'", "db_servers"),
    ({"backup_user": "root;touch /tmp/pwn"}, "backup_user", "'root;touch /tmp/pwn'", "db_servers"),
    ({"backup_postgres_db": "--file=/tmp/pwn"}, "backup_postgres_db", "'--file=/tmp/pwn'", "db_servers"),
    ({"backup_files_paths": ["--checkpoint=1", "--checkpoint-action=exec=touch /tmp/pwn"]}, "backup_files_paths",
     "--checkpoint-action=exec=touch /tmp/pwn", "app_servers"),
    ({"backup_redis_rdb": "/var/lib/redis/../../../tmp/pwn"}, "backup_redis_rdb", "'/var/lib/redis/../../../tmp/pwn'",
     "db_servers"),
    ({"backup_keep_last": 0}, "backup_keep_last", "'0'", "db_servers"),
    ({"backup_keep_daily": -1}, "backup_keep_daily", "'-1'", "db_servers"),
    ({"backup_keep_weekly": -4}, "backup_keep_weekly", "'-4'", "db_servers"),
    ({"backup_keep_monthly": -6}, "backup_keep_monthly", "'-6'", "db_servers"),
    ({"backup_compression_level": 42}, "backup_compression_level", "'42'", "db_servers"),
    ({"backup_postgres_jobs": 0}, "backup_postgres_jobs", "'0'", "db_servers"),
    ({"backup_lock_max_age": 0}, "backup_lock_max_age", "'0'", "db_servers"),
])
def test_a_bad_value_is_refused_naming_it_and_nothing_is_written(host, app, extra, variable, shown, hosts):
    before = (state(host), state(app), controller_markers())
    proc = backup(extra, hosts)
    assert proc.returncode != 0
    # One refusal that names the variable and shows the value before saying what is expected.
    said = next((line for line in proc.output.splitlines() if f"{variable} " in line and " must be " in line), "")
    assert shown in said.split(" must be ")[0], proc.output[-3000:]
    assert "Dump the database" not in proc.output and "Archive the" not in proc.output  # refused before any part ran
    assert host.run(MARKERS).stdout == "" and app.run(MARKERS).stdout == ""
    assert (state(host), state(app), controller_markers()) == before


def test_an_off_host_directory_with_dotdot_is_refused(host, app):
    eph = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    bad = f"{eph}/offhost/../../pwn"
    before = (state(host), state(app), controller_markers())
    proc = backup({"backup_offhost": "controller", "backup_offhost_dir": bad})
    assert proc.returncode != 0
    assert f"backup_offhost_dir '{bad}' must be" in proc.output, proc.output[-3000:]
    assert not Path(bad).exists() and not Path(eph).parent.joinpath("pwn").exists()
    assert (state(host), state(app), controller_markers()) == before


@pytest.mark.parametrize("extra, user, reason", [
    ({"backup_user": "root", "backup_group": "root"}, "root", 'FATAL: role "root" does not exist'),
    ({"backup_postgres_db": "no_such_db"}, "postgres", 'FATAL: database "no_such_db" does not exist'),
], ids=["user-without-a-role", "missing-database"])
def test_a_database_the_backup_user_cannot_read_is_refused_before_the_lock(host, app, extra, user, reason):
    """pg_dump runs as backup_user through the local socket: an OS user with no PostgreSQL role (root, as on a host
    that is app and db server at once) or a database that does not exist is refused with the server's reason, before
    the lock is taken or anything is written."""
    before = (state(host), state(app))
    proc = backup(extra)
    assert proc.returncode != 0
    db = extra.get("backup_postgres_db", "sample_app")
    said = " ".join(proc.output.split())  # the callback wraps long messages
    assert (f"backup_postgres_db '{db}' as backup_user '{user}' on {host.backend.get_hostname()}: {reason}. "
            "pg_dump runs as backup_user") in said, proc.output[-3000:]
    assert "Nothing was backed up." in said
    assert "Take the backup lock" not in proc.output and "Dump the database" not in proc.output
    assert (state(host), state(app)) == before


def entries(host, root: str) -> set[str]:
    """Every entry of a directory, dot entries (locks, partial sets) included."""
    cmd = host.run(f"ls -A {root}")
    assert cmd.rc == 0, cmd.stderr
    return set(cmd.stdout.split())


def make_set(host, root: str, name: str, when: datetime, verified: bool = True) -> str:
    set_id = f"{name}-{when:%Y%m%dT%H%M%SZ}"
    body = json.dumps({"id": set_id, "name": name, "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}", "verified": verified})
    assert host.run(f"install -d -m 0700 {root}/{set_id} && echo '{body}' > {root}/{set_id}/manifest.json").rc == 0
    return set_id


def test_retention_touches_only_its_own_sets(host):
    """A backup directory shared with another app: a new sample_app backup with keep_last=1 deletes only older
    sample_app sets and sample_app's stale partial; the other app's sets, its running backup's partial and a
    directory that is no set all survive."""
    shared = "/var/backups/shared"
    host.run(f"rm -rf {shared} && install -d -m 0700 -o postgres -g postgres {shared}")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    mine = [make_set(host, shared, "sample_app", now - timedelta(days=d)) for d in (40, 20, 10)]
    theirs = [make_set(host, shared, "other_app", now - timedelta(days=d)) for d in (90, 60, 30)]
    # Looks like one of ours by its name, but its manifest names another app: not ours.
    impostor = f"sample_app-{now - timedelta(days=50):%Y%m%dT%H%M%SZ}"
    host.run(f"install -d -m 0700 {shared}/{impostor} && echo '{{\"name\": \"other_app\", \"verified\": true}}' > "
             f"{shared}/{impostor}/manifest.json")
    foreign = ["lost+found", "notes"]
    for d in foreign:
        host.run(f"install -d -m 0700 {shared}/{d}")
    running = f".partial-other_app-{now:%Y%m%dT%H%M%SZ}"  # other_app's backup, writing right now
    stale = f".partial-sample_app-{now - timedelta(days=2):%Y%m%dT%H%M%SZ}"  # left by a killed sample_app run
    host.run(f"install -d -m 0700 {shared}/{running} {shared}/{stale} && touch {shared}/{running}/postgres.dump")
    proc = backup({"backup_dir": shared, "backup_keep_last": 1, "backup_keep_daily": 0, "backup_keep_weekly": 0,
                   "backup_keep_monthly": 0})
    assert proc.returncode == 0, proc.output[-4000:]
    remaining = entries(host, shared)
    ours_now = {d for d in remaining if d.startswith("sample_app-") and d != impostor}
    assert len(ours_now) == 1 and not ours_now & set(mine)  # the new set alone: retention removed the older ones
    assert set(theirs) <= remaining
    assert impostor in remaining and set(foreign) <= remaining
    assert running in remaining and host.file(f"{shared}/{running}/postgres.dump").exists
    assert stale not in remaining
    assert ".lock-sample_app" not in remaining  # released
    host.run(f"rm -rf {shared}")


def plant_lock(host, root: str, age: int):
    owner = json.dumps({"owner": "ci@elsewhere", "since": "2026-01-01T00:00:00Z", "epoch": int(time.time()) - age,
                        "version": "sample_app-x", "message": "backup sample_app-x", "token": "theirs"})
    host.run(f"rm -rf {root} && install -d -m 0700 -o postgres -g postgres {root} && install -d -m 0700 {root}/.lock-sample_app"
             f" && echo '{owner}' > {root}/.lock-sample_app/owner.json")


def test_a_held_lock_refuses_a_second_backup_and_a_stale_one_says_how_to_break_it(host):
    locked = "/var/backups/locked"
    plant_lock(host, locked, age=10)
    proc = backup({"backup_dir": locked})
    assert proc.returncode != 0
    assert f"Refused: the lock {locked}/.lock-sample_app is held by ci@elsewhere" in proc.output
    assert "backup sample_app-x" in proc.output
    assert "Wait for that run to finish" in proc.output and "backup_lock_break=true" in proc.output
    assert entries(host, locked) == {".lock-sample_app"}
    assert "theirs" in host.file(f"{locked}/.lock-sample_app/owner.json").content_string

    plant_lock(host, locked, age=7200)
    proc = backup({"backup_dir": locked, "backup_lock_max_age": 3600})
    assert proc.returncode != 0
    assert "older than backup_lock_max_age" in proc.output and "-e backup_lock_break=true" in proc.output
    assert entries(host, locked) == {".lock-sample_app"}

    proc = backup({"backup_dir": locked, "backup_lock_max_age": 3600, "backup_lock_break": True})
    assert proc.returncode == 0, proc.output[-4000:]
    remaining = sorted(entries(host, locked))
    assert len(remaining) == 1 and remaining[0].startswith("sample_app-")  # a set; the lock was broken and released
    host.run(f"rm -rf {locked}")
