"""backup_set: seal (sha256 files + each part readable by its tool), verify (reported by part and file,
tampered names refused) and private."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from ansible_collections.shipshape.ops.plugins.modules import backup_set


@pytest.fixture()
def new_set(tmp_path):
    d = tmp_path / ".partial-app-1"
    d.mkdir()
    (d / "redis.rdb").write_bytes(b"REDIS0011 payload")
    (d / "postgres.sql.gz").write_bytes(gzip.compress(b"CREATE TABLE notes ();\n"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("srv/app/a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
    (d / "files.tar.gz").write_bytes(buf.getvalue())
    (d / "deploy-history.jsonl").write_text("{}\n")
    return d


PARTS = {
    "postgres": {"file": "postgres.sql.gz", "format": "plain", "compression": "gzip"},
    "redis": {"file": "redis.rdb"},
    "files": {"file": "files.tar.gz"},
}


def seal(run_module, path, **extra):
    return run_module(backup_set, dict(dict(action="seal", path=str(path), parts=PARTS, files=["deploy-history.jsonl"]), **extra))


def write_manifest(path, sealed):
    parts = {name: dict(PARTS[name], **sums) for name, sums in sealed["parts"].items()}
    history = dict(sealed["files"]["deploy-history.jsonl"], file="deploy-history.jsonl")
    (path / "manifest.json").write_text(json.dumps({"parts": parts, "deploy_history": history, "verified": True}))


def test_seal_writes_the_sums_and_reads_each_part_with_its_tool(run_module, new_set):
    failed, result = seal(run_module, new_set)
    assert not failed and result["changed"]
    assert result["readable"] == {"postgres": "gzip --test", "redis": "header", "files": "tar --list --gzip --file"}
    assert result["parts"]["redis"]["size"] == len(b"REDIS0011 payload")
    for name in ("postgres.sql.gz", "redis.rdb", "files.tar.gz", "deploy-history.jsonl"):
        assert (new_set / (name + ".sha256")).is_file()


def test_seal_in_check_mode_writes_nothing(run_module, new_set):
    failed, result = run_module(backup_set, dict(action="seal", path=str(new_set), parts=PARTS), check_mode=True)
    assert not failed and not result["changed"] and result["parts"]["redis"]["sha256"]
    assert not list(new_set.glob("*.sha256"))


def test_seal_refuses_a_part_that_its_tool_cannot_read(run_module, new_set):
    (new_set / "postgres.sql.gz").write_bytes(b"not gzip")
    failed, result = seal(run_module, new_set)
    assert failed and "the postgres part postgres.sql.gz is not readable by gzip" in result["msg"]
    (new_set / "postgres.sql.gz").write_bytes(gzip.compress(b"x"))
    (new_set / "redis.rdb").write_bytes(b"junk")
    failed, result = seal(run_module, new_set)
    assert failed and "REDIS header" in result["msg"]


def test_seal_refuses_a_part_named_outside_the_set(run_module, new_set):
    failed, result = run_module(backup_set, dict(action="seal", path=str(new_set), parts={"redis": {"file": "../x"}}))
    assert failed and "parts: redis file '../x' refused" in result["msg"]
    assert not (new_set.parent / "x.sha256").exists()


def test_verify_passes_a_sealed_set_and_names_a_tampered_part(run_module, new_set):
    dummy, sealed = seal(run_module, new_set)
    write_manifest(new_set, sealed)
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set)))
    assert not failed and result["ok"] and result["problems"] == [] and set(result["parts"]) == {"postgres", "redis", "files", "deploy_history"}
    with open(new_set / "redis.rdb", "ab") as fh:
        fh.write(b"x")
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set)))
    assert failed and "failed its checksum check" in result["msg"] and "redis (redis.rdb)" in result["msg"]
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set), fail_on_mismatch=False))
    assert not failed and not result["ok"] and result["problems"][0].startswith("redis (redis.rdb): ")


@pytest.mark.parametrize("tamper", [
    lambda m, marker: m["parts"]["redis"].update(file="../../../tmp/x"),
    lambda m, marker: m["parts"]["redis"].update(sha256_file="$(touch %s)" % marker),
    lambda m, marker: m["parts"]["redis"].update(file="/etc/passwd"),
])
def test_verify_refuses_a_tampered_manifest_and_runs_nothing(run_module, new_set, tmp_path, tamper):
    marker = tmp_path / "pwned"
    dummy, sealed = seal(run_module, new_set)
    write_manifest(new_set, sealed)
    manifest = json.loads((new_set / "manifest.json").read_text())
    tamper(manifest, marker)
    (new_set / "manifest.json").write_text(json.dumps(manifest))
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set), fail_on_mismatch=False))
    assert not failed and not result["ok"]
    assert result["parts"]["redis"]["actual"] == "refused" and "refused" in result["problems"][0]
    assert not marker.exists()


def test_verify_refuses_a_sha256_file_naming_a_file_outside(run_module, new_set, tmp_path):
    marker = tmp_path / "pwned"
    dummy, sealed = seal(run_module, new_set)
    write_manifest(new_set, sealed)
    (new_set / "redis.rdb.sha256").write_text("%s  ../../../tmp/x\n%s  $(touch %s)\n" % ("0" * 64, "0" * 64, marker))
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set), fail_on_mismatch=False))
    assert not result["ok"]
    assert any("names '../../../tmp/x': refused" in p for p in result["problems"]), result["problems"]
    assert not marker.exists()


def test_verify_without_a_manifest_fails_naming_the_path(run_module, new_set):
    failed, result = run_module(backup_set, dict(action="verify", path=str(new_set)))
    assert failed and result["msg"].startswith("path: the set %s has no readable manifest.json" % new_set)


def test_private_changes_modes_once(run_module, new_set):
    (new_set / "redis.rdb").chmod(0o644)
    failed, result = run_module(backup_set, dict(action="private", path=str(new_set)), check_mode=True)
    assert not failed and result["changed"] and (new_set / "redis.rdb").stat().st_mode & 0o777 == 0o644
    failed, result = run_module(backup_set, dict(action="private", path=str(new_set)))
    assert result["changed"] and (new_set / "redis.rdb").stat().st_mode & 0o777 == 0o600
    failed, result = run_module(backup_set, dict(action="private", path=str(new_set)))
    assert not failed and not result["changed"]


def test_private_names_an_unknown_owner(run_module, new_set):
    failed, result = run_module(backup_set, dict(action="private", path=str(new_set), owner="no-such-user-x"))
    assert failed and result["msg"] == "owner: no user 'no-such-user-x' on this host"


def test_private_refuses_a_hard_link_naming_it_and_changes_nothing_outside(run_module, new_set, tmp_path):
    import os
    outside = tmp_path / "shadow"
    outside.write_text("secret\n")
    outside.chmod(0o640)
    os.link(outside, new_set / "linked")
    failed, result = run_module(backup_set, dict(action="private", path=str(new_set)))
    assert failed and "hard links" in result["msg"] and "linked" in result["msg"]
    assert outside.stat().st_mode & 0o777 == 0o640
