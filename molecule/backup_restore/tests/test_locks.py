"""Backups, restores and their lock (issue 14): a run refused by a held lock says who holds it and how to break it;
a holder started from this controller whose process is gone is provably dead, and <role>_lock_break=true alone
breaks its lock (no max age to lower); a holder that still runs is never broken. A refused restore changes nothing.
Runs after the hostile-input tests and leaves /var/backups/shipshape as it found it."""

from __future__ import annotations

import json

import pytest

from conftest import run_playbook
from lockfixture import holder, plant

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
LOCK = f"{BACKUPS}/.lock-sample_app"


def sh(host, cmd: str) -> str:
    out = host.run(cmd)
    assert out.rc == 0, f"{cmd}: {out.stderr}"
    return out.stdout.strip()


def flat(proc) -> str:
    return " ".join(proc.output.split())  # the YAML callback wraps long messages


def db_state(host) -> dict:
    return {
        "databases": sh(host, "sudo -u postgres psql -X -d postgres -tAc 'SELECT datname FROM pg_database ORDER BY 1'"),
        "notes": sh(host, "sudo -u postgres psql -X -d sample_app -tAc 'SELECT count(*) FROM notes'"),
        "sets": sh(host, f"ls -A {BACKUPS} | grep -v '^.lock-' || true"),
    }


@pytest.fixture()
def scratch(host):
    root = "/var/backups/locktest"
    sh(host, f"rm -rf {root} && install -d -m 0700 -o postgres -g postgres {root}")
    yield root
    host.run(f"rm -rf {root}")


def backup(root: str, **extra):
    return run_playbook("backup.yml", "-e", json.dumps(dict({"backup_hosts": "db_servers", "backup_dir": root}, **extra)))


def test_a_backup_refused_by_a_dead_holder_says_so_and_breaks_it_when_asked(host, scratch):
    lock = f"{scratch}/.lock-sample_app"
    dead = holder("dead")
    plant(host, lock, dead)
    proc = backup(scratch)
    out = flat(proc)
    assert proc.returncode != 0
    assert f"Refused: the lock {lock} is held by alice@here (run {dead['controller_pid']} on" in out
    assert f"That run is gone: its process {dead['controller_pid']} on this controller" in out
    assert "-e backup_lock_break=true" in out and "Wait for that run" not in out
    assert sh(host, f"ls -A {scratch}") == ".lock-sample_app"  # nothing made, the lock untouched
    assert json.loads(host.file(f"{lock}/owner.json").content_string)["token"] == "theirs"

    # break alone, the lock 10 s old (far below backup_lock_max_age): the dead holder's lock goes.
    proc = backup(scratch, backup_lock_break=True)
    assert proc.returncode == 0, proc.output[-4000:]
    remaining = sh(host, f"ls -A {scratch}").split()
    assert len(remaining) == 1 and remaining[0].startswith("sample_app-")  # a set; the lock broken and released


@pytest.mark.parametrize("kind", ["alive", "elsewhere"])
def test_a_holder_not_proved_dead_is_not_broken_by_break_alone(host, scratch, kind):
    lock = f"{scratch}/.lock-sample_app"
    plant(host, lock, holder(kind))
    proc = backup(scratch, backup_lock_break=True)
    out = flat(proc)
    assert proc.returncode != 0
    assert f"Refused: the lock {lock} is held by" in out
    if kind == "alive":
        assert "is still running" in out
    else:
        assert "Wait for that run to finish" in out and "backup_lock_max_age (21600s)" in out
    assert sh(host, f"ls -A {scratch}") == ".lock-sample_app"
    assert json.loads(host.file(f"{lock}/owner.json").content_string)["token"] == "theirs"


@pytest.mark.parametrize("kind", ["alive", "dead"])
def test_a_restore_is_refused_by_the_backup_lock_of_its_name_and_changes_nothing(host, kind):
    info = holder(kind)
    plant(host, LOCK, info)
    try:
        before = db_state(host)
        proc = run_playbook("restore.yml", "-e", json.dumps({"restore_backup_name": "sample_app",
                                                             "restore_confirm": "sample_app"}))
        out = flat(proc)
        assert proc.returncode != 0
        assert f"Refused: the lock {LOCK} is held by alice@here" in out
        if kind == "alive":
            assert "is still running" in out
        else:
            assert "That run is gone" in out and "-e restore_lock_break=true" in out
        assert db_state(host) == before
        assert json.loads(host.file(f"{LOCK}/owner.json").content_string)["token"] == "theirs"
    finally:
        host.run(f"rm -rf {LOCK}")

