"""shipshape.ops.config_files: several files in one run, atomic writes, modes, validation before writing."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat

import pytest

from ansible_collections.shipshape.ops.plugins.modules import config_files

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SECRET = "DATABASE_PASSWORD=s3cr3t-hunter2-xyzzy"


def entry(path, content, mode="0644", **extra):
    return dict({"path": str(path), "content": content, "mode": mode, "owner": OWNER, "group": GROUP}, **extra)


def deploy_files(tmp_path, env_content=SECRET + "\n"):
    return [
        entry(tmp_path / "app.service", "[Service]\nExecStart=/srv/app/bin/app\n"),
        entry(tmp_path / "app.socket", "[Socket]\nListenStream=8000\n"),
        entry(tmp_path / "app.env", env_content, mode="0600"),
    ]


def write(run_module, files, check_mode=False):
    return run_module(config_files, {"files": files}, check_mode=check_mode)


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_creates_the_files_with_their_mode_and_content(tmp_path, run_module):
    files = deploy_files(tmp_path)
    failed, result = write(run_module, files)
    assert not failed and result["changed"]
    assert result["changed_paths"] == [f["path"] for f in files]
    assert result["files"] == [
        {"path": f["path"], "changed": True, "created": True, "content_changed": True, "attributes_changed": False}
        for f in files
    ]
    for f in files:
        with open(f["path"], encoding="utf-8") as fh:
            assert fh.read() == f["content"]
    assert [mode_of(f["path"]) for f in files] == [0o644, 0o644, 0o600]
    assert sorted(os.listdir(tmp_path)) == ["app.env", "app.service", "app.socket"]  # no temp file left


def test_a_second_run_changes_nothing(tmp_path, run_module):
    files = deploy_files(tmp_path)
    write(run_module, files)
    inodes = [os.lstat(f["path"]).st_ino for f in files]
    failed, result = write(run_module, files)
    assert not failed and result["changed"] is False and result["changed_paths"] == []
    assert not any(r["changed"] or r["created"] for r in result["files"])
    assert [os.lstat(f["path"]).st_ino for f in files] == inodes


def test_a_content_change_rewrites_the_file(tmp_path, run_module):
    write(run_module, deploy_files(tmp_path))
    files = deploy_files(tmp_path, env_content=SECRET + "\nEXTRA=1\n")
    failed, result = write(run_module, files)
    assert not failed and result["changed"] and result["changed_paths"] == [str(tmp_path / "app.env")]
    assert result["files"][2] == {"path": str(tmp_path / "app.env"), "changed": True, "created": False,
                                  "content_changed": True, "attributes_changed": False}
    assert (tmp_path / "app.env").read_text() == SECRET + "\nEXTRA=1\n"
    assert mode_of(tmp_path / "app.env") == 0o600


def test_a_shorter_content_is_a_change(tmp_path, run_module):
    path = tmp_path / "app.env"
    path.write_text("A=1\nB=2\n")
    path.chmod(0o600)
    failed, result = write(run_module, [entry(path, "A=1\n", mode="600")])
    assert not failed and result["files"][0]["content_changed"] and path.read_text() == "A=1\n"


def test_a_mode_change_is_fixed_in_place(tmp_path, run_module):
    files = deploy_files(tmp_path)
    write(run_module, files)
    env = tmp_path / "app.env"
    inode = os.lstat(env).st_ino
    files[2]["mode"] = "0640"
    failed, result = write(run_module, files)
    assert not failed and result["changed"] and result["changed_paths"] == [str(env)]
    assert result["files"][2] == {"path": str(env), "changed": True, "created": False, "content_changed": False,
                                  "attributes_changed": True}
    assert mode_of(env) == 0o640 and os.lstat(env).st_ino == inode and env.read_text() == SECRET + "\n"


def test_check_mode_writes_nothing_and_reports_the_change(tmp_path, run_module):
    existing = tmp_path / "app.socket"
    existing.write_text("old\n")
    existing.chmod(0o644)
    files = deploy_files(tmp_path)
    failed, result = write(run_module, files, check_mode=True)
    assert not failed and result["changed"] and result["changed_paths"] == [f["path"] for f in files]
    assert [(r["created"], r["content_changed"]) for r in result["files"]] == [
        (True, True), (False, True), (True, True)]
    assert sorted(os.listdir(tmp_path)) == ["app.socket"] and existing.read_text() == "old\n"


def test_the_result_never_holds_the_content(tmp_path, run_module):
    for check_mode in (True, False, False):
        failed, result = write(run_module, deploy_files(tmp_path), check_mode=check_mode)
        assert not failed and SECRET not in json.dumps(result) and "s3cr3t" not in json.dumps(result)


def bad_entry(tmp_path, kind):
    """An entry that fails validation, and the words its message must hold."""
    if kind == "mode":
        return entry(tmp_path / "bad.conf", "x\n", mode="0o644"), ["mode '0o644'", "'0644'"]
    if kind == "unquoted mode":  # YAML's reading of an unquoted 0640
        return entry(tmp_path / "bad.conf", "x\n", mode=0o640), ["mode 416 is not a string", "unquoted 0640", "quoted"]
    if kind == "relative path":
        return entry("etc/bad.conf", "x\n"), ["etc/bad.conf", "not an absolute path"]
    if kind == "duplicate path":
        return entry(tmp_path / "app.service", "other\n"), [str(tmp_path / "app.service"), "listed twice"]
    if kind == "missing directory":
        return entry(tmp_path / "no" / "bad.conf", "x\n"), [str(tmp_path / "no"), "does not exist"]
    if kind == "symlink":
        target = tmp_path / "elsewhere"
        target.mkdir()
        (target / "real.conf").write_text("real\n")
        (tmp_path / "bad.conf").symlink_to(target / "real.conf")
        return entry(tmp_path / "bad.conf", "x\n"), ["is a symlink"]
    if kind == "directory":
        (tmp_path / "bad.conf").mkdir()
        return entry(tmp_path / "bad.conf", "x\n"), ["not a regular file"]
    if kind == "unknown owner":
        return entry(tmp_path / "bad.conf", "x\n", owner="no-such-user-shipshape"), ["owner 'no-such-user-shipshape'"]
    if kind == "unknown group":
        return entry(tmp_path / "bad.conf", "x\n", group="no-such-group-shipshape"), ["group 'no-such-group-shipshape'"]
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["mode", "unquoted mode", "relative path", "duplicate path", "missing directory",
                                  "symlink", "directory", "unknown owner", "unknown group"])
def test_an_invalid_entry_fails_naming_it_and_writes_no_file(tmp_path, run_module, kind):
    files = deploy_files(tmp_path)
    bad, words = bad_entry(tmp_path, kind)
    files.insert(2, bad)  # after two valid entries, before a third
    before = sorted(os.listdir(tmp_path))
    failed, result = write(run_module, files)
    assert failed and result["msg"].startswith("files[2] (%s): " % bad["path"]), result["msg"]
    for word in words:
        assert word in result["msg"], result["msg"]
    assert sorted(os.listdir(tmp_path)) == before
    if kind == "symlink":
        assert (tmp_path / "elsewhere" / "real.conf").read_text() == "real\n"


def test_a_failed_write_leaves_no_temp_file(tmp_path, run_module, monkeypatch):
    env = tmp_path / "app.env"
    env.write_text("OLD=1\n")
    env.chmod(0o600)

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    failed, result = write(run_module, [entry(env, SECRET + "\n", mode="0600")])
    assert failed and result["msg"].startswith("cannot write %s: " % env) and "No space left" in result["msg"]
    assert result["changed"] is False and result["changed_paths"] == []
    assert sorted(os.listdir(tmp_path)) == ["app.env"] and env.read_text() == "OLD=1\n"
    assert SECRET not in json.dumps(result)


def test_others_names_the_files_of_the_pattern_that_are_not_listed_and_touches_none(tmp_path, run_module):
    # The worker units of an app: two on the host, one still configured; another app's unit matches no pattern.
    for name in ("app.worker-mailer.service", "app.worker-outbox.service", "other.worker-x.service"):
        (tmp_path / name).write_text("[Service]\n")
    files = [entry(tmp_path / "app.worker-outbox.service", "[Service]\nExecStart=/bin/true\n")]
    failed, result = run_module(config_files, {"files": files, "others": str(tmp_path / "app.worker-*.service")})
    assert not failed, result
    assert result["others"] == [str(tmp_path / "app.worker-mailer.service")]
    assert (tmp_path / "app.worker-mailer.service").read_text() == "[Service]\n"  # reported, never removed
    failed, result = run_module(config_files, {"files": files})
    assert not failed and result["others"] == []


def test_others_must_be_an_absolute_pattern(tmp_path, run_module):
    failed, result = run_module(config_files, {"files": deploy_files(tmp_path), "others": "*.service"})
    assert failed and "others: '*.service' is not an absolute path pattern" in result["msg"]
    assert os.listdir(tmp_path) == []  # refused before any file is written


@pytest.mark.parametrize("spelling", ["{dir}//app.service", "{dir}/./app.service"])
def test_one_file_listed_under_two_spellings_is_refused_as_listed_twice(tmp_path, run_module, spelling):
    # Before: both entries were written in turn (the second won), so every run rewrote the file twice and reported
    # a change, and an 'others' pattern reported a listed file as another one.
    files = deploy_files(tmp_path)
    bad = entry(spelling.format(dir=tmp_path), "other\n")
    files.insert(2, bad)
    before = sorted(os.listdir(tmp_path))
    failed, result = write(run_module, files)
    assert failed and result["msg"].startswith("files[2] (%s): " % bad["path"]) and "listed twice" in result["msg"]
    assert sorted(os.listdir(tmp_path)) == before
