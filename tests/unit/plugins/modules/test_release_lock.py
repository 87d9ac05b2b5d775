"""shipshape.ops.release_lock: taking, refusing, breaking and releasing the deploy lock."""

from __future__ import annotations

import json
import os
import signal
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
        (7200, False, True, True, "run again with -e deploy_lock_break=true"),
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


def test_the_refusal_names_the_roles_variables_and_the_controller(tmp_path, run_module):
    lock = tmp_path / ".lock-db"
    run_module(release_lock, {"path": str(lock), "token": "t1", "owner": "cron@db1", "controller": "ops-laptop",
                              "controller_pid": 4242, "version": "20261203T010000Z", "what": "backup"})
    failed, result = run_module(release_lock, {
        "path": str(lock), "token": "t2", "what": "backup", "break_var": "backup_lock_break",
        "max_age_var": "backup_lock_max_age", "max_age": 600})
    assert failed and result["lock_held"] and result["stale"] is False
    assert result["refusal"].startswith("Refused: the lock %s is held by cron@db1 (run 4242 on ops-laptop)" % lock)
    assert "backup 20261203T010000Z" in result["refusal"]
    assert "backup_lock_max_age (600s)" in result["msg"] and "-e backup_lock_break=true" in result["msg"]
    assert "deploy_lock" not in result["msg"]


def test_a_proved_dead_holder_is_broken_only_when_it_is_the_one_named(tmp_path, run_module):
    lock = tmp_path / ".deploy.lock"
    plant(lock, 5, token="dead-run")
    failed, result = run_module(release_lock, {"path": str(lock), "token": "new", "break_stale": True,
                                               "holder_state": "dead", "holder_token": "another-run"})
    assert failed and result["lock_held"]
    assert json.loads((lock / "owner.json").read_text())["token"] == "dead-run"
    failed, result = run_module(release_lock, {"path": str(lock), "token": "new", "holder_state": "dead",
                                               "holder_token": "dead-run"})
    assert failed, "a proved dead holder without break_stale breaks nothing"
    failed, result = run_module(release_lock, {"path": str(lock), "token": "new", "break_stale": True,
                                               "holder_state": "dead", "holder_token": "dead-run"})
    assert not failed and result["broken"] and result["acquired"]
    assert json.loads((lock / "owner.json").read_text())["token"] == "new"
    assert [p.name for p in tmp_path.iterdir()] == [".deploy.lock"], "the broken lock is removed, nothing left aside"


def test_breaking_puts_back_a_lock_taken_in_between(tmp_path):
    lock = tmp_path / ".deploy.lock"
    plant(lock, 7200, token="fresh-run")  # judged stale as "old-run", but "fresh-run" took it meanwhile
    assert release_lock.break_lock(str(lock), "old-run") is False
    assert json.loads((lock / "owner.json").read_text())["token"] == "fresh-run"
    assert [p.name for p in tmp_path.iterdir()] == [".deploy.lock"]


def test_breaking_a_lock_already_gone_is_done(tmp_path):
    assert release_lock.break_lock(str(tmp_path / "gone"), "x") is True


@pytest.mark.parametrize("max_age", [0, -5])
def test_an_age_below_one_second_is_refused(tmp_path, run_module, max_age):
    failed, result = run_module(release_lock, {"path": str(tmp_path / "l"), "token": "t", "max_age": max_age,
                                               "max_age_var": "restore_lock_max_age"})
    assert failed and result["msg"] == (
        "restore_lock_max_age: '%s' is not an age: expected a number of seconds >= 1" % max_age)
    assert not (tmp_path / "l").exists()


def test_wait_takes_the_lock_once_released(tmp_path, run_module):
    import threading

    lock = tmp_path / ".lock-db"
    plant(lock, 5, token="backup-run")
    threading.Timer(1.0, lambda: __import__("shutil").rmtree(str(lock))).start()
    failed, result = run_module(release_lock, {"path": str(lock), "token": "drill", "wait": 30})
    assert not failed and result["acquired"] and not result["broken"]


def test_wait_runs_out_and_refuses(tmp_path, run_module):
    lock = tmp_path / ".lock-db"
    plant(lock, 5, token="backup-run")
    started = time.time()
    failed, result = run_module(release_lock, {"path": str(lock), "token": "drill", "wait": 1})
    assert failed and result["lock_held"] and time.time() - started >= 1


@pytest.mark.parametrize("state, token, says, not_says", [
    ("dead", "old", "That run is gone: its process 4242 on this controller (ops-laptop) no longer exists", "Wait for"),
    ("alive", "old", "(Its process 4242 on this controller is still running.)", "That run is gone"),
    ("dead", "someone-else", "Wait for that run to finish", "That run is gone"),
])
def test_the_refusal_words_what_the_action_plugin_proved_of_this_holder(tmp_path, run_module, state, token, says,
                                                                        not_says):
    lock = tmp_path / ".deploy.lock"
    lock.mkdir()
    (lock / "owner.json").write_text(json.dumps({"owner": "alice@ops-laptop", "epoch": int(time.time()), "token": "old",
                                                 "controller": "ops-laptop", "controller_pid": 4242}))
    failed, result = run_module(release_lock, {"path": str(lock), "token": "new", "holder_state": state,
                                               "holder_token": token})
    assert failed and result["lock_held"]
    assert says in result["msg"] and not_says not in result["msg"]


def test_the_refusal_says_what_the_holder_does_not_what_the_refused_run_does(tmp_path, run_module):
    lock = tmp_path / ".lock-db"
    run_module(release_lock, {"path": str(lock), "token": "t1", "owner": "cron@db1", "what": "backup",
                              "version": "db-20261203T010000Z", "reason": "backup db-20261203T010000Z"})
    failed, result = run_module(release_lock, {"path": str(lock), "token": "t2", "what": "drill",
                                               "break_var": "restore_drill_lock_break"})
    assert failed
    assert result["refusal"].endswith("ago), backup db-20261203T010000Z.")  # the same words once, not twice
    assert "-e restore_drill_lock_break=true" in result["msg"]


def test_parent_mode_creates_the_missing_directory_of_the_lock(tmp_path, run_module):
    root = tmp_path / "srv" / "app"
    failed, result = run_module(release_lock, {"path": str(root / ".deploy.lock"), "token": "t1", "parent_mode": "0750"})
    assert not failed and result["acquired"] and result["changed"] is True
    assert oct(root.stat().st_mode & 0o777) == "0o750"
    failed, result = run_module(release_lock, {"path": str(root / ".deploy.lock"), "token": "t1", "parent_mode": "0750"})
    assert not failed and result["changed"] is False


def test_parent_mode_creates_nothing_in_check_mode_and_without_it_the_directory_must_exist(tmp_path, run_module):
    lock = tmp_path / "app" / ".deploy.lock"
    failed, result = run_module(release_lock, {"path": str(lock), "token": "t1", "parent_mode": "0755"}, check_mode=True)
    assert failed and not (tmp_path / "app").exists()
    failed, result = run_module(release_lock, {"path": str(lock), "token": "t1"})
    assert failed and "Cannot create the lock" in result["msg"] and not (tmp_path / "app").exists()


def test_a_parent_mode_that_is_not_a_mode_is_refused(tmp_path, run_module):
    failed, result = run_module(release_lock, {"path": str(tmp_path / "a" / "l"), "token": "t1", "parent_mode": "rwx"})
    assert failed and "parent_mode: 'rwx' is not a mode" in result["msg"]
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kind", ["dangling-link", "link-loop"])
def test_a_link_that_leads_nowhere_at_the_lock_path_is_refused_not_spun_on(tmp_path, run_module, kind):
    # Before: mkdir said it exists, reading it found nothing, and the run retried forever at full CPU.
    lock = tmp_path / ".deploy.lock"
    os.symlink(str(tmp_path / "gone") if kind == "dangling-link" else str(lock), str(lock))

    def hung(signum, frame):
        raise AssertionError("release_lock spun on %s" % kind)

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        failed, result = run_module(release_lock, {"path": str(lock), "token": "t1", "wait": 0})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert failed and not result.get("acquired")
    assert str(lock) in result["msg"] and "expected" in result["msg"]
    assert os.path.islink(str(lock))  # nothing of it was removed


def test_a_stale_lock_named_with_a_trailing_slash_is_broken_when_asked(tmp_path, run_module):
    # Before: its tomb was '<lock>/.broken-...', a rename into itself that always failed, so break_stale was refused
    # as if the lock were taken meanwhile and the lock could never be broken.
    lock = tmp_path / ".deploy.lock"
    plant(lock, 7200)
    failed, result = run_module(release_lock, {"path": str(lock) + "/", "token": "new", "break_stale": True})
    assert not failed, result["msg"]
    assert result["acquired"] and result["broken"]
    assert json.loads((lock / "owner.json").read_text())["token"] == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".deploy.lock"]


def test_a_lock_whose_owner_file_cannot_be_written_is_not_left_behind(tmp_path, run_module, monkeypatch):
    # Before: a full disk ended the run with a traceback and left the lock directory without its owner file, so every
    # later run was refused by 'unknown' until the lock went stale.
    lock = tmp_path / ".deploy.lock"

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release_lock.json, "dump", full)
    failed, result = run_module(release_lock, {"path": str(lock), "token": "t1"})
    assert failed and not result["acquired"]
    assert result["msg"] == "Cannot take the lock %s (deploy): cannot write its owner file: No space left on device" % lock
    assert sorted(p.name for p in tmp_path.iterdir()) == []
