"""Hostile backup sets (issue 14): a manifest or a .sha256 file that names a file outside the set, or a shell
payload, is refused by the checksum check (shipshape.ops.backup_set) before anything is read outside the set
or restored, nothing runs, and the live database is untouched. Runs after test_backup_restore.py."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from conftest import http, run_playbook

testinfra_hosts = ["db_servers"]

BACKUPS = "/var/backups/shipshape"
HOSTILE = "/var/backups/hostile"


@pytest.fixture()
def hostile_set(host):
    """A copy of the newest real set in HOSTILE; yields (set_id, its directory); removed afterwards."""
    newest = host.run(f"ls -1 {BACKUPS} | grep -v '^[.]' | LC_ALL=C sort | tail -n1").stdout.strip()
    assert newest, "no backup set to copy"
    host.run(f"rm -rf {HOSTILE} && install -d -m 0700 -o postgres -g postgres {HOSTILE} && cp -a {BACKUPS}/{newest} {HOSTILE}/")
    yield newest, f"{HOSTILE}/{newest}"
    host.run(f"rm -rf {HOSTILE}")


def state(host, app) -> dict:
    """What a refused restore must leave unchanged: databases, notes served, the real sets."""
    dbs = host.run("sudo -u postgres psql -X -tAc 'SELECT datname FROM pg_database ORDER BY 1'")
    assert dbs.rc == 0, dbs.stderr
    status, body = http(app, "GET", "/notes")
    assert status == 200, body
    return {"databases": dbs.stdout, "notes": sorted(n["body"] for n in body["notes"]),
            "sets": host.run(f"ls -1a {BACKUPS}").stdout}


def restore_from(set_id: str):
    return run_playbook("restore.yml", "-e", f"restore_backup_dir={HOSTILE}", "-e", f"restore_backup_id={set_id}",
                        "-e", "restore_confirm=sample_app", check=False)


def test_a_sha256_file_naming_a_file_outside_the_set_is_refused(host, app, hostile_set):
    set_id, set_dir = hostile_set
    # A file outside the set, with its true sha256 listed: sha256sum --check would read it and pass.
    outside = host.run(f"realpath -m {set_dir}/../../../tmp/x").stdout.strip()
    host.run(f"mkdir -p $(dirname {outside}) && printf outside > {outside}")
    digest = host.run(f"sha256sum {outside}").stdout.split()[0]
    host.run(f"printf '%s  ../../../tmp/x\\n' {digest} >> {set_dir}/postgres.dump.sha256")
    before = state(host, app)
    try:
        proc = restore_from(set_id)
        assert proc.returncode != 0
        assert "failed its checksum check" in proc.output and "live database is untouched" in proc.output
        assert "postgres.dump.sha256 names '../../../tmp/x': refused" in proc.output
        assert state(host, app) == before
    finally:
        host.run(f"rm -f {outside}")


@pytest.mark.parametrize("field", ["file", "sha256_file"])
def test_a_manifest_naming_a_shell_payload_is_refused_and_runs_nothing(host, app, hostile_set, field):
    set_id, set_dir = hostile_set
    marker = f"/tmp/shipshape-pwned-{uuid.uuid4().hex[:8]}"
    payload = f"postgres.dump$(touch {marker})"
    manifest = json.loads(host.file(f"{set_dir}/manifest.json").content_string)
    manifest["parts"]["postgres"][field] = payload
    encoded = base64.b64encode(json.dumps(manifest).encode()).decode()
    assert host.run(f"echo {encoded} | base64 -d > {set_dir}/manifest.json").rc == 0
    before = state(host, app)
    proc = restore_from(set_id)
    assert proc.returncode != 0
    # The restore's preflight refuses the name before the checksum module reads anything (that module's own
    # refusal of such names is covered by tests/unit/plugins/modules/test_backup_set.py).
    assert "its manifest names files outside the set's directory" in proc.output, proc.output[-3000:]
    assert payload in proc.output and "nothing was restored" in proc.output
    assert not host.file(marker).exists
    assert not app.file(marker).exists
    assert not Path(marker).exists()  # nor on the controller
    assert state(host, app) == before


@pytest.mark.parametrize("fmt, compression, part_file", [
    ("plain", "gzip", "postgres.sql.gz"),
    ("plain", "none", "postgres.sql"),
    ("plain", "zstd", "postgres.sql.zst"),
    ("directory", "gzip", "postgres.dir"),
])
def test_each_dump_format_is_sealed_verified_and_private(host, fmt, compression, part_file):
    """The dump runs as argv (a plain dump compressed in a second step); the seal writes sha256sum-compatible
    files, a directory part's sha256 being that of its listing."""
    if compression == "zstd" and host.run("command -v zstd").rc != 0:
        pytest.skip("no zstd on the db host")
    root = f"/var/backups/format-{fmt}-{compression}"
    host.run(f"rm -rf {root}")
    try:
        run_playbook("backup.yml", "-e", "backup_hosts=db_servers", "-e", f"backup_dir={root}",
                     "-e", f"backup_postgres_format={fmt}", "-e", f"backup_compression={compression}", check=True)
        (set_id,) = [d for d in host.file(root).listdir() if not d.startswith(".")]
        set_dir = f"{root}/{set_id}"
        m = json.loads(host.file(f"{set_dir}/manifest.json").content_string)
        part = m["parts"]["postgres"]
        assert m["verified"] is True and part["file"] == part_file and part["sha256_file"] == part_file + ".sha256"
        assert host.run(f"cd {set_dir} && sha256sum --quiet --check {part_file}.sha256").rc == 0
        listed = host.run(f"sha256sum {set_dir}/{part_file}.sha256").stdout.split()[0]
        actual = listed if fmt == "directory" else host.run(f"sha256sum {set_dir}/{part_file}").stdout.split()[0]
        assert part["sha256"] == actual
        assert not host.file(f"{set_dir}/postgres.sql").exists or part_file == "postgres.sql"
        for path in host.run(f"find {set_dir} -mindepth 1").stdout.split():
            f = host.file(path)
            assert f.user == "postgres" and f.mode == (0o700 if f.is_directory else 0o600), path
    finally:
        host.run(f"rm -rf {root}")
