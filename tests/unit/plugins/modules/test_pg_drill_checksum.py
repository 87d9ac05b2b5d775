"""pg_drill's checksum phase uses module_utils/checksums: a tampered part or a name leading outside the set
stops the drill before anything is restored, and nothing runs."""

from __future__ import annotations

import hashlib
import types

import pytest

from ansible_collections.shipshape.ops.plugins.modules import pg_drill


def drill(set_dir, parts):
    module = types.SimpleNamespace(params=dict(set_dir=str(set_dir), parts=parts, os_user="root"), check_mode=True)
    return pg_drill.Drill(module)


@pytest.fixture()
def set_dir(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    (d / "postgres.dump").write_bytes(b"PGDMP")
    digest = hashlib.sha256(b"PGDMP").hexdigest()
    (d / "postgres.dump.sha256").write_text("%s  postgres.dump\n" % digest)
    return d, {"postgres": {"file": "postgres.dump", "sha256": digest, "format": "custom"}}


def test_a_good_set_checks(set_dir):
    d, parts = set_dir
    work = drill(d, parts)
    work.checksum()
    assert work.result["sums"] == [{"name": "postgres", "actual": parts["postgres"]["sha256"], "listed_ok": True}]


def test_a_tampered_part_stops_the_drill(set_dir):
    d, parts = set_dir
    (d / "postgres.dump").write_bytes(b"PGDMPx")
    work = drill(d, parts)
    with pytest.raises(pg_drill.Stop, match="checksum mismatch: postgres"):
        work.checksum()
    assert work.result["sums"][0]["listed_ok"] is False


@pytest.mark.parametrize("part", [
    {"file": "../../../tmp/x"},
    {"file": "postgres.dump", "sha256_file": "/etc/passwd"},
    {"file": "postgres.dump$(touch {marker})"},
])
def test_a_name_outside_the_set_or_a_payload_is_refused(set_dir, tmp_path, part):
    d, parts = set_dir
    marker = tmp_path / "pwned"
    part = dict((k, v.format(marker=marker)) for k, v in part.items())
    work = drill(d, {"postgres": dict(parts["postgres"], **part)})
    with pytest.raises(pg_drill.Stop, match="refused"):
        work.checksum()
    assert work.result["sums"][0]["actual"] == "refused" and not marker.exists()


@pytest.fixture()
def no_hang():
    """A test that would block for ever fails after 5 s instead."""
    import signal

    def expired(signum, frame):
        raise AssertionError("blocked for 5 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("kind", ["fifo", "directory", "outside"])
def test_a_roles_file_that_is_not_a_regular_file_of_the_set_is_refused_naming_it(set_dir, tmp_path, no_hang, kind):
    # open() of a FIFO blocks until a writer comes: the drill's child hung, and the drill with it.
    import os
    d, parts = set_dir
    if kind == "fifo":
        os.mkfifo(d / "roles.sql")
    elif kind == "directory":
        (d / "roles.sql").mkdir()
    else:
        (tmp_path / "elsewhere.sql").write_text("CREATE ROLE x;\n")
        os.symlink(tmp_path / "elsewhere.sql", d / "roles.sql")
    work = drill(d, parts)
    work.p.update(roles_file="roles.sql", required_roles=["app"], create_roles=True)
    with pytest.raises(ValueError, match=r"roles_file: 'roles.sql' cannot be read: .*expected the set's saved roles"):
        work.ensure_roles()
