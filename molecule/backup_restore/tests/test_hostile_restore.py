"""Restores that hostile or mistaken values cannot steer: each is refused with one line naming the variable and
the value, no payload runs (its marker file does not appear), and nothing changes (the database list, the live
database's rows, the backup listing, Redis's keys). Runs after test_backup_restore.py (file order)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
MARKER = "/tmp/shipshape-hostile-marker"


def sh(host, cmd: str) -> str:
    out = host.run(cmd)
    assert out.rc == 0, f"{cmd}: {out.stderr}"
    return out.stdout.strip()


def databases(host) -> list[str]:
    return sh(host, "sudo -u postgres psql -X -d postgres -tAc 'SELECT datname FROM pg_database ORDER BY 1'").splitlines()


def state(host) -> dict:
    """What a refused restore must leave as it was."""
    return {
        "databases": databases(host),
        "notes": sh(host, "sudo -u postgres psql -X -d sample_app -tAc 'SELECT count(*) FROM notes'"),
        "sets": sh(host, f"ls -A {BACKUPS}"),
        "redis_keys": sh(host, "redis-cli DBSIZE"),
        "etc": sh(host, "ls -A /etc | md5sum"),
    }


def module(host, name: str, args: dict, become_user: str = "root") -> dict:
    """One module of the collection run ad hoc on the host (as any playbook could call it); its result."""
    hostname = host.backend.get_hostname()
    env = dict(os.environ, ANSIBLE_CONFIG=str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_NOCOLOR="1")
    cmd = ["ansible", "-i", os.environ["MOLECULE_INVENTORY_FILE"], hostname, "-m", name, "-a", json.dumps(args),
           "--become", "--become-user", become_user]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=300)
    try:
        return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][hostname]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(f"no result from {cmd} (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc


def refused(host, extra: dict, *needles: str):
    """restore.yml with the extra vars (as JSON, so nothing is split or quoted by a shell) fails, says each needle,
    runs no payload and changes nothing."""
    host.run(f"rm -f {MARKER}")
    before = state(host)
    # The db host holds two backup names (sample_app, ledger-eu): the restores here are of sample_app.
    proc = run_playbook("restore.yml", "-e", json.dumps(dict({"restore_backup_name": "sample_app"}, **extra,
                                                             restore_confirm="sample_app")), check=False)
    assert proc.returncode != 0, proc.output[-3000:]
    for needle in needles:
        assert needle in proc.output, f"{needle!r} not in:\n{proc.output[-3000:]}"
    assert not host.file(MARKER).exists
    assert state(host) == before
    return proc


@pytest.mark.parametrize(
    "name",
    [
        'x";DROP DATABASE app;--',
        f"x\";COPY (SELECT 1) TO PROGRAM 'touch {MARKER}';--",
        "sample_app; touch " + MARKER,
        "sample app",
        "1sample_app",
        "sample_app\n",
        "-dpostgres",
        "dbname=postgres host=127.0.0.1",
    ],
    ids=["drop-database", "copy-to-program", "semicolon", "space", "leading-digit", "newline", "leading-hyphen",
         "connection-string"],
)
def test_a_target_database_that_is_not_a_database_name_is_refused(host, name):
    refused(host, {"restore_target_db": name}, f"restore_target_db: '{name.strip()}",
            "is not a database name: expected [A-Za-z_][A-Za-z0-9_$-]*")


# PostgreSQL's limit is 63 bytes; the restore shortens the names it derives from a name that long (the module's
# tests, unit and live, restore into a 63-byte database).
def test_a_target_database_longer_than_postgresql_allows_is_refused(host):
    name = "a" * 64
    refused(host, {"restore_target_db": name}, f"restore_target_db: '{name}' is 64 bytes long: expected at most 63")


@pytest.mark.parametrize("backup_id", ["../../etc", "..", "/etc", "a/../../etc", f"x;touch {MARKER}", ".hidden"])
def test_a_backup_id_that_is_not_one_directory_name_is_refused(host, backup_id):
    refused(host, {"restore_backup_id": backup_id}, f"restore_backup_id: '{backup_id}' is not a backup id")


@pytest.mark.parametrize("owner", [f"app; touch {MARKER}", "app' -c 'x", "-c role=postgres"])
def test_an_owner_that_is_not_a_role_name_is_refused(host, owner):
    refused(host, {"restore_owner": owner}, f"restore_owner: '{owner}' is not a PostgreSQL role name")


@pytest.mark.parametrize("pattern", ["*", "**", "?*", "*?*", "[^]*"])
def test_a_pattern_matching_every_key_needs_the_confirmation(host, pattern):
    for i in range(3):
        host.run(f"redis-cli SET hostile:key:{i} v")
    refused(host, {"restore_redis_patterns": ["cache:*", pattern]},
            f"restore_redis_patterns: '{pattern}' matches every key, as a FLUSHDB would",
            "restore_redis_match_all=true")
    assert sh(host, "redis-cli EXISTS hostile:key:0 hostile:key:1 hostile:key:2") == "3"


def test_the_module_refuses_a_pattern_matching_every_key_too(host):
    """The role's check is not the only one: redis_invalidate, called by any playbook, refuses as well."""
    host.run("redis-cli SET hostile:module v")
    keys = sh(host, "redis-cli DBSIZE")
    out = module(host, "shipshape.ops.redis_invalidate", {"patterns": ["*"], "db": 0})
    assert out.get("failed"), out
    assert out["msg"].startswith("patterns: '*' matches every key of db 0, as a FLUSHDB would")
    assert sh(host, "redis-cli DBSIZE") == keys


def test_the_module_refuses_a_hostile_database_name_too(host):
    (set_id,) = [d for d in sh(host, f"ls {BACKUPS}").split() if d.startswith("sample_app-")]
    before = databases(host)
    out = module(host, "shipshape.ops.pg_restore_set",
                 {"name": 'x";DROP DATABASE sample_app;--', "path": f"{BACKUPS}/{set_id}/postgres.dump"},
                 become_user="postgres")
    assert out.get("failed"), out
    assert out["msg"].startswith("name: 'x\";DROP DATABASE sample_app;--' is not a database name")
    assert databases(host) == before


@pytest.mark.parametrize("file", ["../../../../etc/hostname", f"postgres.dump; touch {MARKER}", "/etc/hostname"])
def test_a_manifest_naming_files_outside_its_set_is_refused(host, file):
    """A tampered (off-host) set whose manifest names a file outside the set's directory, or one with shell
    metacharacters: refused before its checksums are read or anything is restored."""
    (set_id,) = [d for d in sh(host, f"ls {BACKUPS}").split() if d.startswith("sample_app-")]
    m = json.loads(host.file(f"{BACKUPS}/{set_id}/manifest.json").content_string)
    m["id"] = "tampered-1"
    m["started_at"] = "2000-01-01T00:00:00Z"  # never the newest
    m["parts"]["postgres"]["file"] = file
    sh(host, f"cp -a {BACKUPS}/{set_id} {BACKUPS}/tampered-1")
    host.run(f"cat > {BACKUPS}/tampered-1/manifest.json <<'EOF'\n{json.dumps(m)}\nEOF")
    try:
        refused(host, {"restore_backup_id": "tampered-1"}, "Backup tampered-1: its manifest names files outside the set's directory",
                "the set may have been tampered with, nothing was restored")
    finally:
        host.run(f"rm -rf {BACKUPS}/tampered-1")
