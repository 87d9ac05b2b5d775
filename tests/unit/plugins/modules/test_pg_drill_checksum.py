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
