"""The one checksum mechanism (module_utils/checksums): sha256sum's format, directory parts, tampering and
names that would lead outside the set."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import checksums


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture()
def set_dir(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    (d / "postgres.dump").write_bytes(b"PGDMP dump")
    (d / "redis.rdb").write_bytes(b"REDIS0011 data")
    sub = d / "postgres.dir"
    sub.mkdir()
    (sub / "toc.dat").write_bytes(b"toc")
    (sub / "3001.dat.gz").write_bytes(b"data")
    (sub / "B").write_bytes(b"upper case sorts first")
    return d


def test_a_file_part_is_written_as_sha256sum_writes_it(set_dir):
    sums = checksums.write(str(set_dir), "postgres.dump")
    text = (set_dir / "postgres.dump.sha256").read_text()
    assert text == f"{sha(b'PGDMP dump')}  postgres.dump\n"
    assert sums == {"sha256": sha(b"PGDMP dump"), "size": 10, "sha256_file": "postgres.dump.sha256"}
    assert (set_dir / "postgres.dump.sha256").stat().st_mode & 0o777 == 0o600


def test_a_directory_part_is_its_sorted_listing_and_its_sha256_that_of_the_listing(set_dir):
    sums = checksums.write(str(set_dir), "postgres.dir")
    text = (set_dir / "postgres.dir.sha256").read_text()
    names = [line.split("  ", 1)[1] for line in text.splitlines()]
    assert names == ["postgres.dir/3001.dat.gz", "postgres.dir/B", "postgres.dir/toc.dat"]  # bytewise, as LC_ALL=C sort
    assert sums["sha256"] == sha(text.encode())
    # the same listing the shell of earlier releases wrote
    shell = subprocess.run("find postgres.dir -type f | LC_ALL=C sort | xargs sha256sum", shell=True, cwd=set_dir,
                           capture_output=True, text=True, check=True).stdout
    assert text == shell
    assert sums["size"] == int(subprocess.run(["du", "-sb", "postgres.dir"], cwd=set_dir, capture_output=True, text=True,
                                              check=True).stdout.split()[0])


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils")
def test_sha256sum_checks_what_was_written_and_sets_written_by_sha256sum_verify_here(set_dir):
    checksums.write(str(set_dir), "postgres.dir")
    assert subprocess.run(["sha256sum", "--quiet", "--check", "postgres.dir.sha256"], cwd=set_dir, check=False).returncode == 0
    subprocess.run("sha256sum redis.rdb > redis.rdb.sha256", shell=True, cwd=set_dir, check=True)
    result = checksums.verify_part(str(set_dir), "redis", {"file": "redis.rdb", "sha256": sha(b"REDIS0011 data")})
    assert result["ok"] and result["listed_ok"] and result["problems"] == []


def test_a_tampered_file_is_reported_by_part_and_file(set_dir):
    sums = checksums.write(str(set_dir), "postgres.dump")
    with open(set_dir / "postgres.dump", "ab") as fh:
        fh.write(b"x")
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "postgres.dump", "sha256": sums["sha256"]})
    assert not result["ok"] and not result["listed_ok"]
    assert result["actual"] == sha(b"PGDMP dumpx")
    assert any("postgres.dump FAILED" in p for p in result["problems"])
    assert any("the manifest records %s" % sums["sha256"] in p for p in result["problems"])


def test_a_rewritten_sha256_file_still_fails_against_the_manifest(set_dir):
    sums = checksums.write(str(set_dir), "postgres.dump")
    (set_dir / "postgres.dump").write_bytes(b"evil")
    checksums.write(str(set_dir), "postgres.dump")  # the attacker rewrites the .sha256 too
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "postgres.dump", "sha256": sums["sha256"]})
    assert result["listed_ok"] and not result["ok"]


def test_a_file_added_to_a_directory_part_changes_its_sha256(set_dir):
    sums = checksums.write(str(set_dir), "postgres.dir")
    (set_dir / "postgres.dir" / "extra").write_bytes(b"x")
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "postgres.dir", "sha256": sums["sha256"]})
    assert not result["ok"] and result["listed_ok"]


def test_a_missing_part_is_reported(set_dir):
    checksums.write(str(set_dir), "redis.rdb")
    os.unlink(set_dir / "redis.rdb")
    result = checksums.verify_part(str(set_dir), "redis", {"file": "redis.rdb"})
    assert result["actual"] == "missing" and not result["ok"]
    assert "redis.rdb is missing" in result["problems"]


@pytest.mark.parametrize("name", ["../../../tmp/x", "/etc/shadow", "a/../../x", "$(touch /tmp/pwned)\n", "", "x\\y"])
def test_names_that_could_lead_outside_are_refused(set_dir, name):
    with pytest.raises(checksums.Refused):
        checksums.member(str(set_dir), name)


def test_a_name_that_resolves_outside_through_a_symlink_is_refused(set_dir, tmp_path):
    (tmp_path / "outside").write_bytes(b"secret")
    os.symlink(tmp_path / "outside", set_dir / "link")
    with pytest.raises(checksums.Refused, match="resolves outside"):
        checksums.member(str(set_dir), "link")


@pytest.mark.parametrize("line", [
    "{}  ../../../tmp/x",
    "{}  /etc/passwd",
    "{}  $(touch /tmp/pwned)/../../x",
])
def test_a_sha256_file_naming_a_file_outside_the_set_is_refused_and_nothing_is_read(set_dir, tmp_path, line):
    (set_dir / "redis.rdb.sha256").write_text(line.format(sha(b"secret")) + "\n")
    result = checksums.verify_part(str(set_dir), "redis", {"file": "redis.rdb"})
    assert not result["ok"] and not result["listed_ok"]
    assert any("refused" in p for p in result["problems"]), result["problems"]


def test_a_shell_payload_inside_the_set_is_only_a_name(set_dir, tmp_path):
    marker = tmp_path / "pwned"
    (set_dir / "redis.rdb.sha256").write_text("%s  $(touch %s)\n" % (sha(b""), marker))
    result = checksums.verify_part(str(set_dir), "redis", {"file": "redis.rdb"})
    assert not result["ok"] and not marker.exists()


def test_a_manifest_naming_a_part_outside_the_set_is_refused(set_dir):
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "../set/postgres.dump"})
    assert result["actual"] == "refused" and not result["ok"]
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "postgres.dump", "sha256_file": "/etc/passwd"})
    assert result["actual"] == "refused"


def test_unreadable_lines_are_refused():
    with pytest.raises(checksums.Refused):
        checksums.parse("SHA256 (x) = abc\n")
    with pytest.raises(checksums.Refused):
        checksums.parse("\n")
    assert checksums.parse("%s *bin\n" % ("a" * 64)) == [("a" * 64, "bin")]


def test_verify_manifest_covers_the_parts_and_the_deploy_history(set_dir):
    parts = {"postgres": dict(checksums.write(str(set_dir), "postgres.dump"), file="postgres.dump")}
    (set_dir / "deploy-history.jsonl").write_text("{}\n")
    history = dict(checksums.write(str(set_dir), "deploy-history.jsonl"), file="deploy-history.jsonl")
    results = checksums.verify_manifest(str(set_dir), {"parts": parts, "deploy_history": history})
    assert [r["name"] for r in results] == ["postgres", "deploy_history"] and all(r["ok"] for r in results)
    (set_dir / "deploy-history.jsonl").write_text("tampered\n")
    assert not checksums.verify_manifest(str(set_dir), {"parts": parts, "deploy_history": history})[1]["ok"]
    with pytest.raises(checksums.Refused):
        checksums.verify_manifest(str(set_dir), {"parts": {}})


def test_make_private_sets_modes_and_leaves_symlinks_alone(set_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"x")
    outside.chmod(0o644)
    os.symlink(outside, set_dir / "link")
    (set_dir / "redis.rdb").chmod(0o644)
    changed = checksums.make_private(str(set_dir), check_mode=True)
    assert str(set_dir / "redis.rdb") in changed and (set_dir / "redis.rdb").stat().st_mode & 0o777 == 0o644
    checksums.make_private(str(set_dir))
    assert (set_dir / "redis.rdb").stat().st_mode & 0o777 == 0o600
    assert (set_dir / "postgres.dir").stat().st_mode & 0o777 == 0o700
    assert outside.stat().st_mode & 0o777 == 0o644
    assert checksums.make_private(str(set_dir)) == []


@pytest.fixture()
def deadline():
    """Fail (rather than hang) a test that blocks for more than 5 seconds."""
    def expired(signum, frame):
        raise KeyboardInterrupt("blocked for more than 5 seconds")  # not an OSError, which the code catches
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("where", ["part", "sha256_file", "listed", "link_to_fifo"])
def test_a_fifo_in_a_set_is_refused_not_read_for_ever(set_dir, where, deadline):
    # A FIFO where a part, its .sha256 file or a listed file should be: opening it would block the verify (and the
    # restore or drill waiting on it) for ever; it is reported as not a regular file instead.
    checksums.write(str(set_dir), "postgres.dump")
    if where == "part":
        os.unlink(set_dir / "postgres.dump")
        os.mkfifo(set_dir / "postgres.dump")
    elif where == "sha256_file":
        os.unlink(set_dir / "postgres.dump.sha256")
        os.mkfifo(set_dir / "postgres.dump.sha256")
    elif where == "listed":
        os.mkfifo(set_dir / "pipe")
        (set_dir / "postgres.dump.sha256").write_text("%s  pipe\n" % sha(b""))
    else:
        os.unlink(set_dir / "postgres.dump")
        os.mkfifo(set_dir / "pipe")
        os.symlink("pipe", set_dir / "postgres.dump")
    result = checksums.verify_part(str(set_dir), "postgres", {"file": "postgres.dump"})
    assert not result["ok"]
    assert any("not a regular file" in p for p in result["problems"]), result["problems"]


@pytest.mark.parametrize("change", ["added_file", "sha256_names_another_file", "sha256_lists_a_subset"])
def test_a_sha256_file_that_does_not_cover_its_part_fails_without_a_manifest_sha256(set_dir, change):
    # Manifests of earlier releases may carry no sha256 of the part: the .sha256 file is then the only check,
    # and it must list exactly the part's files, or a file added to (or left out of) the part is never checked.
    checksums.write(str(set_dir), "postgres.dir")
    checksums.write(str(set_dir), "redis.rdb")
    entry = {"file": "postgres.dir"}
    if change == "added_file":
        (set_dir / "postgres.dir" / "4001.dat.gz").write_bytes(b"injected")
    elif change == "sha256_names_another_file":
        (set_dir / "postgres.dump").write_bytes(b"changed")
        shutil.copy(set_dir / "redis.rdb.sha256", set_dir / "postgres.dump.sha256")
        entry = {"file": "postgres.dump"}
    else:
        lines = (set_dir / "postgres.dir.sha256").read_text().splitlines(True)
        (set_dir / "postgres.dir.sha256").write_text(lines[0])
    result = checksums.verify_part(str(set_dir), "postgres", entry)
    assert not result["ok"], result
    assert any("does not list" in p or "not part of" in p for p in result["problems"]), result["problems"]


def test_a_sha256_file_written_by_the_shell_with_dot_slash_names_still_covers_its_part(set_dir):
    subprocess.run("sha256sum ./redis.rdb > redis.rdb.sha256", shell=True, cwd=set_dir, check=True)
    assert checksums.verify_part(str(set_dir), "redis", {"file": "redis.rdb"})["ok"]


def test_writing_a_sha256_file_never_writes_through_a_hard_link_to_a_file_outside_the_set(set_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("root:x:0:0\n")
    os.link(outside, set_dir / "postgres.dump.sha256")
    checksums.write(str(set_dir), "postgres.dump")
    assert outside.read_text() == "root:x:0:0\n"
    assert (set_dir / "postgres.dump.sha256").read_text() == f"{sha(b'PGDMP dump')}  postgres.dump\n"
    assert (set_dir / "postgres.dump.sha256").stat().st_mode & 0o777 == 0o600
    assert [n for n in os.listdir(set_dir) if n.endswith(".tmp")] == []


def test_make_private_never_changes_a_file_outside_the_set_through_a_hard_link(set_dir, tmp_path):
    outside = tmp_path / "shadow"
    outside.write_text("root:$6$secret\n")
    outside.chmod(0o640)
    os.link(outside, set_dir / "postgres.dir" / "linked")
    with pytest.raises(checksums.Refused, match="hard links"):
        checksums.make_private(str(set_dir))
    assert outside.stat().st_mode & 0o777 == 0o640


def test_make_private_changes_fifos_without_opening_them_and_files_through_descriptors(set_dir):
    os.mkfifo(set_dir / "pipe", 0o644)
    (set_dir / "tool").write_bytes(b"#!/bin/sh\n")
    (set_dir / "tool").chmod(0o4755)
    checksums.make_private(str(set_dir))
    assert (set_dir / "pipe").lstat().st_mode & 0o7777 in (0o600, 0o644)  # 0o644 where lchmod is not available
    assert (set_dir / "tool").stat().st_mode & 0o7777 == 0o700
    assert (set_dir / "redis.rdb").stat().st_mode & 0o7777 == 0o600


def test_make_private_never_follows_an_entry_swapped_for_a_symlink_during_the_walk(set_dir, tmp_path, monkeypatch):
    # The set's owner may write in it while root walks it: a file replaced by a link to /etc/shadow between the
    # look and the change must not have the link's target changed.
    outside = tmp_path / "shadow"
    outside.write_text("secret\n")
    outside.chmod(0o640)
    (set_dir / "redis.rdb").chmod(0o644)
    real_lstat = os.lstat

    def lstat_then_swap(p, *args, **kwargs):
        st = real_lstat(p, *args, **kwargs)
        if str(p) == str(set_dir / "redis.rdb"):
            os.unlink(p)
            os.symlink(outside, p)
        return st
    monkeypatch.setattr(checksums.os, "lstat", lstat_then_swap)
    with pytest.raises(checksums.Refused, match="changed while"):
        checksums.make_private(str(set_dir))
    assert outside.stat().st_mode & 0o777 == 0o640


def test_a_very_deep_tree_is_listed_sized_and_made_private_without_recursion_error(set_dir):
    deep = set_dir / "postgres.dir"
    fd = os.open(".", os.O_RDONLY)
    try:
        os.chdir(deep)
        for dummy in range(1500):
            os.mkdir("d")
            os.chdir("d")
        with open("f", "wb") as fh:
            fh.write(b"deep")
    finally:
        os.fchdir(fd)
        os.close(fd)
    try:
        names = checksums.regular_files(str(set_dir), "postgres.dir")
        assert len(names) == 4 and any(n.endswith("/d/f") for n in names)
        assert checksums.size(str(set_dir), "postgres.dir") > 1500
        assert str(set_dir / "redis.rdb") in checksums.make_private(str(set_dir))
    finally:
        subprocess.run(["rm", "-rf", str(deep / "d")], check=True)  # pytest's own clean-up recurses too deep


def test_walk_lists_as_os_walk_does(set_dir, tmp_path):
    os.symlink(tmp_path, set_dir / "postgres.dir" / "link_to_dir")
    os.symlink("nowhere", set_dir / "postgres.dir" / "dangling")
    (set_dir / "postgres.dir" / "sub").mkdir()
    (set_dir / "postgres.dir" / "sub" / "x").write_bytes(b"x")

    def norm(walked):
        return sorted((top, sorted(dirs), sorted(files)) for top, dirs, files in walked)

    assert norm(checksums.walk(str(set_dir))) == norm(os.walk(str(set_dir)))
