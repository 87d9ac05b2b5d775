"""The release_lock, release_history and release_source_git modules, run through Ansible as a playbook would."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from module_runner import run_ansible_module


def module(ansible_env, name: str, args: dict, check: bool = False) -> tuple[int, dict]:
    return run_ansible_module(ansible_env, f"shipshape.ops.{name}", args, check)


def test_lock_refuses_a_second_holder_naming_the_first(tmp_path, ansible_env):
    lock = str(tmp_path / ".deploy.lock")
    rc, first = module(ansible_env, "release_lock", {"path": lock, "owner": "alice@laptop", "token": "a", "version": "2.0.0"})
    assert rc == 0 and first["acquired"] and not first["changed"]
    rc, second = module(ansible_env, "release_lock", {"path": lock, "owner": "bob@ci", "token": "b"})
    assert rc != 0
    assert "held by alice@laptop" in second["msg"] and "deploying 2.0.0" in second["msg"]
    # bob cannot release alice's lock; alice can.
    rc, _ = module(ansible_env, "release_lock", {"path": lock, "token": "b", "state": "absent"})
    assert rc != 0
    rc, _ = module(ansible_env, "release_lock", {"path": lock, "token": "a", "state": "absent"})
    assert rc == 0
    assert not (tmp_path / ".deploy.lock").exists()


def test_a_stale_lock_is_broken_only_when_asked(tmp_path, ansible_env):
    lock = tmp_path / ".deploy.lock"
    lock.mkdir()
    (lock / "owner.json").write_text(json.dumps({"owner": "ghost@old", "since": "2026-01-01T00:00:00Z",
                                                   "epoch": int(time.time()) - 7200, "token": "g"}))
    rc, refused = module(ansible_env, "release_lock", {"path": str(lock), "token": "n", "max_age": 3600})
    assert rc != 0 and "deploy_lock_break=true" in refused["msg"]
    rc, taken = module(ansible_env, "release_lock", {"path": str(lock), "token": "n", "max_age": 3600, "break_stale": True})
    assert rc == 0 and taken["broken"] and taken["holder"]["token"] == "n"


@pytest.fixture()
def history_file(tmp_path):
    path = tmp_path / "deploy-history.jsonl"
    records = [
        {"kind": "deploy", "to": "1.0.0-a", "result": "success"},
        {"kind": "deploy", "to": "2.0.0-b", "from": "1.0.0-a", "result": "success"},
        {"kind": "deploy", "to": "2.0.1-c", "from": "2.0.0-b", "result": "rolled_back"},
        {"kind": "deploy", "to": "3.0.0-d", "from": "2.0.0-b", "result": "success"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"torn": ')
    return path


def test_previous_good_comes_from_history_and_skips_failures(history_file, ansible_env):
    rc, result = module(ansible_env, "release_history", {"path": str(history_file), "current": "3.0.0-d"})
    assert rc == 0
    assert result["previous_good"] == "2.0.0-b"
    assert len(result["entries"]) == 4  # the torn last line is skipped, not fatal
    rc, result = module(ansible_env, "release_history", {"path": str(history_file), "current": "3.0.0-d", "exclude": ["2.0.0-b"]})
    assert result["previous_good"] == "1.0.0-a"


def test_a_release_rolled_back_from_is_not_previous_good(history_file, ansible_env):
    with history_file.open("a") as fh:
        fh.write("\n" + json.dumps({"kind": "rollback", "from": "3.0.0-d", "to": "2.0.0-b", "result": "success"}) + "\n")
    rc, result = module(ansible_env, "release_history", {"path": str(history_file), "current": "2.0.0-b"})
    assert result["previous_good"] == "1.0.0-a"


def test_append_writes_a_line_and_check_mode_does_not(tmp_path, ansible_env):
    path = tmp_path / "h.jsonl"
    rc, result = module(ansible_env, "release_history", {"path": str(path), "action": "append", "record": {"to": "x", "result": "success"}}, check=True)
    assert rc == 0 and not path.exists()
    rc, result = module(ansible_env, "release_history", {"path": str(path), "action": "append", "record": {"to": "x", "result": "success"}})
    assert rc == 0 and result["changed"]
    assert json.loads(path.read_text())["to"] == "x"


def git(repo, *args: str) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    subprocess.run(["git", "-C", str(repo), *args], env={**os.environ, **env}, check=True, capture_output=True)


def test_the_git_source_runs_on_the_controller_and_refuses_a_release_that_would_lack_a_submodule(tmp_path, ansible_env):
    """Through Ansible, release_source_git is its action plugin: the controller's own process, its own cache."""
    for name in ("theme", "app"):
        (tmp_path / name).mkdir()
        git(tmp_path / name, "init", "-q", "-b", "main")
        (tmp_path / name / "README").write_text(name)
        git(tmp_path / name, "add", ".")
        git(tmp_path / name, "commit", "-q", "-m", name)
    git(tmp_path / "app", "tag", "v1.0.0")
    args = {"repo": str(tmp_path / "app"), "ref": "v1.0.0", "cache": str(tmp_path / "cache"),
            "ref_variable": "systemd_release_git_ref"}
    rc, first = module(ansible_env, "release_source_git", args)
    assert rc == 0 and first["changed"] and first["exported"] and first["describe"] == "v1.0.0", first
    assert first["left_out"] == {"submodules": [], "lfs": []} and os.path.isfile(first["artifact"])
    rc, again = module(ansible_env, "release_source_git", args, check=True)
    assert rc == 0 and not again["changed"] and again["artifact"] == first["artifact"]

    git(tmp_path / "app", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(tmp_path / "theme"), "theme")
    git(tmp_path / "app", "commit", "-q", "-m", "theme")
    rc, refused = module(ansible_env, "release_source_git", dict(args, ref="main"))
    assert rc != 0 and "has git submodules (theme), whose files a git archive does not hold" in refused["msg"]
    assert refused["left_out"]["submodules"] == ["theme"]
    assert sorted(os.listdir(tmp_path / "cache" / "artifacts")) == [os.path.basename(first["artifact"])]
    rc, allowed = module(ansible_env, "release_source_git", dict(args, ref="main", allow_missing=["submodules"]))
    assert rc == 0 and allowed["exported"] and any("leaves out its submodules: theme" in str(w)
                                                   for w in allowed["warnings"]), allowed
