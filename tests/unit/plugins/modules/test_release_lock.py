"""shipshape.ops.release_lock: taking, refusing, breaking and releasing the deploy lock."""

from __future__ import annotations

import json
import os
import time

import pytest

from ansible_collections.shipshape.ops.plugins.modules import release_lock


def plant(lock, age, token="old", owner="ghost@old", owner_file=True):
    lock.mkdir()
    if owner_file:
        (lock / "owner.json").write_text(json.dumps(
            {"owner": owner, "since": "2026-01-01T00:00:00Z", "epoch": int(time.time()) - age, "token": token,
             "version": "1.0.0", "message": ""}))
    else:
        past = time.time() - age
        os.utime(str(lock), (past, past))


@pytest.mark.parametrize("check_mode", [False, True])
def test_take_a_free_lock(tmp_path, run_module, check_mode):
    lock = tmp_path / ".deploy.lock"
    failed, result = run_module(
        release_lock, {"path": str(lock), "token": "t1", "owner": "alice@laptop", "version": "2.0.0"},
        check_mode=check_mode)
    assert not failed
    assert result["acquired"] and not result["broken"] and result["changed"] is False
    holder = json.loads((lock / "owner.json").read_text())  # taken in check mode too (documented)
    assert holder["owner"] == "alice@laptop" and holder["token"] == "t1" and holder["version"] == "2.0.0"
    assert oct(lock.stat().st_mode & 0o777) == "0o700"


def test_the_same_token_takes_it_again(tmp_path, run_module):
    lock = tmp_path / ".deploy.lock"
    run_module(release_lock, {"path": str(lock), "token": "t1"})
    failed, result = run_module(release_lock, {"path": str(lock), "token": "t1"})
    assert not failed and result["acquired"]


@pytest.mark.parametrize(
    "age, break_stale, owner_file, refused, hint",
    [
        (10, False, True, True, "Wait for that run to finish."),
        (10, True, True, True, "Wait for that run to finish."),
        (7200, False, True, True, "set deploy_lock_break=true"),
        (7200, True, True, False, None),
        (7200, True, False, False, None),
        (10, True, False, True, "Wait for that run to finish."),
    ],
    ids=["fresh", "fresh-break-asked", "stale", "stale-broken", "stale-no-owner-file", "fresh-no-owner-file"],
)
def test_a_held_lock(tmp_path, run_module, age, break_stale, owner_file, refused, hint):
    lock = tmp_path / ".deploy.lock"
    plant(lock, age, owner_file=owner_file)
    failed, result = run_module(
        release_lock, {"path": str(lock), "token": "new", "max_age": 3600, "break_stale": break_stale})
    assert failed is refused
    if refused:
        assert result["lock_held"] and not result["acquired"]
        assert "held by %s" % ("ghost@old" if owner_file else "unknown") in result["msg"]
        assert hint in result["msg"]
        assert result["age"] >= age - 2
    else:
        assert result["acquired"] and result["broken"]
        assert json.loads((lock / "owner.json").read_text())["token"] == "new"


@pytest.mark.parametrize(
    "token, force, refused",
    [("t1", False, False), ("other", False, True), ("other", True, False)],
    ids=["own", "someone-elses", "forced"],
)
def test_release(tmp_path, run_module, token, force, refused):
    lock = tmp_path / ".deploy.lock"
    run_module(release_lock, {"path": str(lock), "token": "t1", "owner": "alice@laptop"})
    failed, result = run_module(release_lock, {"path": str(lock), "token": token, "state": "absent", "force": force})
    assert failed is refused
    assert lock.exists() is refused
    assert result["holder"]["owner"] == "alice@laptop"
    if refused:
        assert "Not releasing" in result["msg"]


def test_release_of_a_free_lock_is_a_no_op(tmp_path, run_module):
    failed, result = run_module(release_lock, {"path": str(tmp_path / "none"), "token": "t", "state": "absent"})
    assert not failed and result == dict(result, changed=False, holder={})


def test_a_lock_in_a_missing_directory_fails(tmp_path, run_module):
    failed, result = run_module(release_lock, {"path": str(tmp_path / "no" / "dir" / ".lock"), "token": "t"})
    assert failed and "Cannot create the lock" in result["msg"]
