"""The release_state module: the atomic switch of current/previous, what it refuses, check mode, and the
release the service runs (read from its main process's working directory)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.shipshape.ops.plugins.modules import release_state


def make_release(root, rid, built_at="2026-11-01T00:00:00Z"):
    path = root / "releases" / rid
    path.mkdir(parents=True)
    (path / "release.json").write_text(json.dumps({"id": rid, "version": rid.split("-")[0], "built_at": built_at}))
    return path


def link(root, name, rid):
    os.symlink(f"releases/{rid}", root / name)


def test_first_switch_sets_current_only(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "1.0.0-a"})
    assert not failed and result["changed"] is True
    assert os.readlink(tmp_path / "current") == "releases/1.0.0-a"
    assert not os.path.lexists(tmp_path / "previous")
    assert result["current"] == "1.0.0-a" and result["switched_from"] == ""


def test_switch_moves_current_to_previous_and_leaves_no_temporary_link(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    make_release(tmp_path, "2.0.0-b", "2026-11-02T00:00:00Z")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b"})
    assert not failed and result["changed"] is True
    assert os.readlink(tmp_path / "current") == "releases/2.0.0-b"
    assert os.readlink(tmp_path / "previous") == "releases/1.0.0-a"
    assert (result["current"], result["previous"], result["switched_from"]) == ("2.0.0-b", "1.0.0-a", "1.0.0-a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "previous", "releases"]


def test_switch_to_the_current_release_changes_nothing(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "1.0.0-a"})
    assert not failed and result["changed"] is False


def test_check_mode_reports_the_switch_and_changes_nothing(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    make_release(tmp_path, "2.0.0-b")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b"},
                                check_mode=True)
    assert not failed and result["changed"] is True
    assert os.readlink(tmp_path / "current") == "releases/1.0.0-a"
    assert not os.path.lexists(tmp_path / "previous")


@pytest.mark.parametrize("target, expected", [
    ("../../tmp/pwn", "must be one path component"),
    ("..", "must be one path component"),
    ("a/../b", "must be one path component"),
    ("1..2", "must not contain '..'"),
    ("", "must be one path component"),
    ("-rf", "must be one path component"),
    ("x\ny", "must be one path component"),
    ("1.0.0-a\n", "must be one path component"),
    ("missing-1", "is not a release directory"),
    ("outside", "is not a release directory"),
])
def test_switch_refuses_a_target_outside_the_releases(tmp_path, run_module, target, expected):
    make_release(tmp_path, "1.0.0-a")
    link(tmp_path, "current", "1.0.0-a")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), tmp_path / "releases" / "outside")  # a link out of releases/
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": target})
    assert failed
    assert expected in result["msg"] and "target '%s'" % target in result["msg"]
    assert os.readlink(tmp_path / "current") == "releases/1.0.0-a"
    assert not os.path.lexists(tmp_path / "previous")


@pytest.mark.parametrize("root", ["relative/path", "/srv/app/../etc", "/", "/srv/./app"])
def test_refuses_a_root_that_is_not_a_plain_absolute_path(run_module, root):
    failed, result = run_module(release_state, {"root": root})
    assert failed and f"root '{root}'" in result["msg"]


def test_read_returns_the_state_and_no_running_release_without_a_service(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path)})
    assert not failed and result["changed"] is False
    assert result["current"] == "1.0.0-a" and result["running"] == ""
    assert [r["id"] for r in result["releases"]] == ["1.0.0-a"]


def test_the_running_release_is_read_from_the_main_process_working_directory(tmp_path, monkeypatch):
    path = make_release(tmp_path, "1.0.0-a")

    class FakeModule:
        @staticmethod
        def run_command(argv):
            assert argv == ["systemctl", "show", "--property", "MainPID", "--value", "--", "app.service"]
            return 0, "4242\n", ""

    real_readlink = os.readlink
    monkeypatch.setattr(os, "readlink", lambda p: str(path) if p == "/proc/4242/cwd" else real_readlink(p))
    assert release_state.running_release(FakeModule(), "app.service", str(tmp_path / "releases")) == "1.0.0-a"
    monkeypatch.setattr(os, "readlink", lambda p: "/somewhere/else")
    assert release_state.running_release(FakeModule(), "app.service", str(tmp_path / "releases")) == ""


def test_a_stopped_service_runs_no_release(tmp_path):
    class Stopped:
        @staticmethod
        def run_command(argv):
            return 0, "0\n", ""

    assert release_state.running_release(Stopped(), "app.service", str(tmp_path / "releases")) == ""


def test_the_units_state_comes_from_one_systemctl_call_in_the_order_asked():
    class Module:
        calls = []

        def run_command(self, argv):
            self.calls.append(argv)
            # systemctl prints each unit's properties in its own order, one block per unit.
            return 0, "UnitFileState=enabled\nActiveState=active\n\nActiveState=inactive\nUnitFileState=\n", ""

        def fail_json(self, msg):
            raise AssertionError(msg)

    module = Module()
    assert release_state.unit_states(module, ["app.service", "app.socket"]) == {
        "app.service": {"active": "active", "enabled": "enabled"},
        "app.socket": {"active": "inactive", "enabled": ""}}
    assert module.calls == [["systemctl", "show", "--property", "ActiveState,UnitFileState", "--", "app.service", "app.socket"]]
    assert release_state.unit_states(module, []) == {} and len(module.calls) == 1


def test_a_unit_name_that_is_not_one_is_refused(tmp_path, run_module):
    failed, result = run_module(release_state, {"root": str(tmp_path), "units": ["app.service", "-x;rm"]})
    assert failed and result["msg"] == "release_state: units '-x;rm' must be a systemd unit name"


def test_where_the_working_directory_cannot_be_read_the_start_marker_says_it(tmp_path, monkeypatch):
    make_release(tmp_path, "1.0.0-a")
    make_release(tmp_path, "2.0.0-b")
    link(tmp_path, "current", "2.0.0-b")
    link(tmp_path, ".shipshape-running", "1.0.0-a")  # the unit's ExecStartPre copied current when it started

    class Running:
        @staticmethod
        def run_command(argv):
            return 0, "4242\n", ""

    real_readlink = os.readlink

    def no_ptrace(path):
        if str(path).startswith("/proc/"):
            raise PermissionError(13, "Permission denied", path)
        return real_readlink(path)

    monkeypatch.setattr(os, "readlink", no_ptrace)
    assert release_state.running_release(Running(), "app.service", str(tmp_path / "releases")) == "1.0.0-a"
    os.unlink(tmp_path / ".shipshape-running")
    assert release_state.running_release(Running(), "app.service", str(tmp_path / "releases")) == ""


def releases(root):
    return sorted(p.name for p in (root / "releases").iterdir())


def make_failed(root, rid, built_at):
    path = make_release(root, rid, built_at)
    (path / ".shipshape-failed").write_text(json.dumps({"reason": "health gate", "at": built_at}))


@pytest.mark.parametrize("check_mode", [False, True])
def test_prune_removes_beyond_keep_but_never_current_previous_or_protected(tmp_path, run_module, check_mode):
    for i in range(1, 7):
        make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
    make_failed(tmp_path, "f1", "2026-11-01T12:00:00Z")
    make_failed(tmp_path, "f2", "2026-11-02T12:00:00Z")
    make_failed(tmp_path, "f3", "2026-11-03T12:00:00Z")
    (tmp_path / "releases" / "u1").mkdir()  # a killed build: no release.json
    (tmp_path / "releases" / "r2" / "shared").symlink_to(tmp_path)  # links into shared/ are removed, not followed
    link(tmp_path, "current", "r6")
    link(tmp_path, "previous", "f3")  # a deploy rolled back by its gate leaves previous on the failed release
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 3, "keep_failed": 1,
                                                "protect": ["r1"]}, check_mode=check_mode)
    assert not failed and result["changed"] is True
    # Three complete releases stay: r6 (current), r1 (the last good release, protected) and the newest other, r5.
    # One failed release stays: f3, which previous names. Unfinished builds go.
    assert result["pruned"] == ["r2", "r3", "r4", "f1", "f2", "u1"]
    if check_mode:
        assert len(releases(tmp_path)) == 10
    else:
        assert releases(tmp_path) == ["f3", "r1", "r5", "r6"]
        assert (tmp_path / "releases").is_dir() and tmp_path.is_dir()
        assert result["prune"] == [] and result["unfinished"] == []
        assert [r["id"] for r in result["releases"]] == ["r1", "f3", "r5", "r6"]


def test_prune_keeps_the_release_the_service_still_runs(tmp_path, monkeypatch):
    for i in range(1, 5):
        make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
    link(tmp_path, "current", "r4")
    link(tmp_path, "previous", "r3")

    class Module:
        check_mode = False

        def run_command(self, argv):
            return 0, "4242\n", ""

        def warn(self, msg):
            raise AssertionError(msg)

    real_readlink = os.readlink
    monkeypatch.setattr(os, "readlink", lambda p: str(tmp_path / "releases" / "r1") if p == "/proc/4242/cwd" else real_readlink(p))
    running = release_state.running_release(Module(), "app.service", str(tmp_path / "releases"))
    assert running == "r1"
    state = release_state.read_state(str(tmp_path), 2, 1, [running])
    assert release_state.prune(Module(), str(tmp_path), state) == (["r2"], [])
    assert releases(tmp_path) == ["r1", "r3", "r4"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_prune_removes_the_shared_venvs_no_release_links_any_more(tmp_path, run_module, check_mode):
    venvs = tmp_path / "shared" / "venvs"
    old, new, orphan = "0123456789abcdef", "fedcba9876543210", "00000000deadbeef"
    for key in (old, new, orphan, "not-a-key"):
        (venvs / key / "bin").mkdir(parents=True)
    (venvs / "a-link").symlink_to(tmp_path / "shared")  # never a link, never followed
    for i, key in ((1, old), (2, old), (3, new), (4, new)):
        release = make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
        (release / "venv").symlink_to(venvs / key)
    (make_release(tmp_path, "r0", "2026-10-01T00:00:00Z") / "venv" / "bin").mkdir(parents=True)  # its own venv
    link(tmp_path, "current", "r4")
    link(tmp_path, "previous", "r3")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 2,
                                                "venvs_dir": str(venvs)}, check_mode=check_mode)
    assert not failed and result["changed"] is True
    assert result["pruned"] == ["r0", "r1", "r2"]
    # r1 and r2 were the last to link "old"; "orphan" nobody linked; "new" stays with r3 and r4; a name that is not a
    # venv key is never removed
    assert result["pruned_venvs"] == [orphan, old]
    left = sorted(p.name for p in venvs.iterdir())
    assert left == sorted(["a-link", new, old, orphan, "not-a-key"] if check_mode else ["a-link", new, "not-a-key"])
    assert (tmp_path / "shared").is_dir()


@pytest.mark.parametrize("check_mode", [False, True])
def test_prune_removes_the_wheelhouses_no_release_links_any_more(tmp_path, run_module, check_mode):
    shared = tmp_path / "shared"
    old, new, orphan = "wheelhouse-0123456789abcdef", "wheelhouse-fedcba9876543210", "wheelhouse-00000000deadbeef"
    for name in (old, new, orphan, "wheelhouse", "venvs", "uploads"):
        (shared / name).mkdir(parents=True)
    (shared / "wheelhouse-1111111111111111").symlink_to(shared / "uploads")  # never a link, never followed
    for i, name in ((1, old), (2, new), (3, new)):
        release = make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
        (release / ".shipshape-wheelhouse").symlink_to(shared / name)
        (release / "uploads").symlink_to(shared / "uploads")
    make_release(tmp_path, "r0", "2026-10-01T00:00:00Z")  # built before releases linked their wheels
    link(tmp_path, "current", "r3")
    link(tmp_path, "previous", "r2")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 2,
                                                "wheelhouses_dir": str(shared)}, check_mode=check_mode)
    assert not failed and result["changed"] is True
    assert result["pruned"] == ["r0", "r1"]
    # r1 was the last to link "old"; "orphan" nobody linked; "new" stays with r2 and r3; the shared directories that
    # are not wheelhouses named by their content (the unnamed one of earlier releases included) are never removed
    assert result["pruned_wheelhouses"] == [orphan, old]
    left = sorted(p.name for p in shared.iterdir())
    kept = ["uploads", "venvs", "wheelhouse", "wheelhouse-1111111111111111", new]
    assert left == sorted(kept + ([old, orphan] if check_mode else []))


@pytest.mark.parametrize("option", ["venvs_dir", "wheelhouses_dir"])
def test_a_wheelhouses_dir_or_venvs_dir_outside_the_root_is_refused_by_name(tmp_path, run_module, option):
    root = tmp_path / "app"
    (tmp_path / "wheelhouse-0123456789abcdef").mkdir(parents=True)
    make_release(root, "r1")
    make_release(root, "r0", "2026-10-01T00:00:00Z")
    link(root, "current", "r1")
    failed, result = run_module(release_state, {"root": str(root), "action": "prune", "keep": 1,
                                                option: str(tmp_path)})
    assert failed and result["msg"] == "release_state: %s '%s' must be empty or a plain absolute path inside root '%s'" \
        % (option, tmp_path, root)
    assert releases(root) == ["r0", "r1"] and (tmp_path / "wheelhouse-0123456789abcdef").is_dir()


@pytest.mark.parametrize("venvs_dir", ["/etc", "{root}/../elsewhere", "{root}", "relative/venvs"])
def test_a_venvs_dir_outside_the_root_is_refused_and_nothing_removed(tmp_path, run_module, venvs_dir):
    (tmp_path / "app" / "shared" / "venvs" / "0123456789abcdef").mkdir(parents=True)
    root = tmp_path / "app"
    make_release(root, "r1")
    make_release(root, "r0", "2026-10-01T00:00:00Z")
    link(root, "current", "r1")
    failed, result = run_module(release_state, {"root": str(root), "action": "prune", "keep": 1,
                                                "venvs_dir": venvs_dir.format(root=root)})
    assert failed and f"venvs_dir '{venvs_dir.format(root=root)}' must be empty or a plain absolute path inside root" \
        in result["msg"]
    assert releases(root) == ["r0", "r1"] and (root / "shared" / "venvs" / "0123456789abcdef").is_dir()


def test_prune_without_venvs_dir_leaves_the_shared_venvs(tmp_path, run_module):
    (tmp_path / "shared" / "venvs" / "00000000deadbeef").mkdir(parents=True)
    make_release(tmp_path, "r1")
    link(tmp_path, "current", "r1")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 1})
    assert not failed and result["changed"] is False and result["pruned_venvs"] == [] == result["pruned_wheelhouses"]
    assert (tmp_path / "shared" / "venvs" / "00000000deadbeef").is_dir()


def test_prune_with_nothing_beyond_keep_changes_nothing(tmp_path, run_module):
    for i in range(1, 3):
        make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
    link(tmp_path, "current", "r2")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 2})
    assert not failed and result["changed"] is False and result["pruned"] == []
    assert releases(tmp_path) == ["r1", "r2"]


@pytest.mark.parametrize("marker, force, expected", [
    (".shipshape-unfinished", False, "Cannot switch to release '2.0.0-b': it is unfinished (releases there: "),
    (".shipshape-unfinished", True, "Cannot switch to release '2.0.0-b': it is unfinished"),
    (".shipshape-failed", False, "Cannot switch to release '2.0.0-b': it is failed (releases there: "),
])
def test_switch_refuses_an_unfinished_or_unforced_failed_release(tmp_path, run_module, marker, force, expected):
    make_release(tmp_path, "1.0.0-a")
    (make_release(tmp_path, "2.0.0-b") / marker).write_text("{}")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b",
                                                "force": force})
    assert failed and result["msg"].startswith(expected), result["msg"]
    assert os.readlink(tmp_path / "current") == "releases/1.0.0-a"
    assert not os.path.lexists(tmp_path / "previous")


def test_switch_with_force_goes_to_a_failed_release(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    (make_release(tmp_path, "2.0.0-b") / ".shipshape-failed").write_text("{}")
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b",
                                                "force": True})
    assert not failed and result["changed"] is True and result["switched_from"] == "1.0.0-a"
    assert os.readlink(tmp_path / "current") == "releases/2.0.0-b"


@pytest.mark.parametrize("record", ['["1.0.0"]', '"1.0.0"', "7", "null"],
                         ids=["list", "string", "number", "null"])
def test_a_release_json_that_is_not_an_object_reads_as_unfinished_not_a_traceback(tmp_path, run_module, record):
    make_release(tmp_path, "1.0.0-a")
    (make_release(tmp_path, "2.0.0-b") / "release.json").write_text(record)
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path)})
    assert not failed, result.get("msg")
    assert {r["id"]: r["status"] for r in result["releases"]} == {"1.0.0-a": "complete", "2.0.0-b": "unfinished"}


@pytest.mark.parametrize("built_at", [None, 20261102, ["2026"]], ids=["null", "number", "list"])
def test_a_built_at_that_is_not_a_string_orders_without_a_traceback(tmp_path, run_module, built_at):
    make_release(tmp_path, "1.0.0-a")
    path = make_release(tmp_path, "2.0.0-b")
    (path / "release.json").write_text(json.dumps({"id": "2.0.0-b", "version": "2.0.0", "built_at": built_at}))
    failed, result = run_module(release_state, {"root": str(tmp_path)})
    assert not failed, result.get("msg")
    assert sorted(r["id"] for r in result["releases"]) == ["1.0.0-a", "2.0.0-b"]
    assert all(isinstance(r["built_at"], str) for r in result["releases"])


@pytest.mark.parametrize("marker", ["", "{", "reason: gate"], ids=["empty", "cut", "not-json"])
def test_a_failed_marker_that_is_not_json_still_marks_the_release_failed(tmp_path, run_module, marker):
    # An operator's `touch .shipshape-failed` (or a marker cut short) must not make a failed release complete.
    make_release(tmp_path, "1.0.0-a")
    (make_release(tmp_path, "2.0.0-b", "2026-11-02T00:00:00Z") / ".shipshape-failed").write_text(marker)
    link(tmp_path, "current", "1.0.0-a")
    failed, result = run_module(release_state, {"root": str(tmp_path)})
    assert not failed
    assert {r["id"]: r["status"] for r in result["releases"]}["2.0.0-b"] == "failed"
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b"})
    assert failed and "it is failed" in result["msg"]
    assert os.readlink(tmp_path / "current") == "releases/1.0.0-a"


def test_a_fifo_as_release_json_does_not_hang_the_read(tmp_path, run_module):
    make_release(tmp_path, "1.0.0-a")
    path = tmp_path / "releases" / "2.0.0-b"
    path.mkdir()
    os.mkfifo(str(path / "release.json"))  # an artifact can carry one; opening it waits for a writer forever

    def hung(signum, frame):
        raise AssertionError("release_state hung on a FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        failed, result = run_module(release_state, {"root": str(tmp_path)})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not failed
    assert {r["id"]: r["status"] for r in result["releases"]} == {"1.0.0-a": "complete", "2.0.0-b": "unfinished"}


@pytest.mark.parametrize("spelling", ["releases/{rid}/.", "{root}/releases/{rid}/", "releases/{rid}/venv/..",
                                      "./releases//{rid}"])
def test_prune_never_removes_the_release_current_names_however_its_link_is_spelled(tmp_path, run_module, spelling):
    # Before: 'releases/r1/.' read as current '.', so r1 (the live release) was the oldest to prune.
    for i in range(1, 4):
        make_release(tmp_path, f"r{i}", f"2026-11-0{i}T00:00:00Z")
    (tmp_path / "releases" / "r1" / "venv").mkdir()
    os.symlink(spelling.format(root=tmp_path, rid="r1"), tmp_path / "current")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "prune", "keep": 2})
    assert not failed
    assert result["current"] == "r1"
    assert releases(tmp_path) == ["r1", "r3"] and result["pruned"] == ["r2"]


@pytest.mark.parametrize("current", ["releases/0.9.0-gone", "/elsewhere/releases/0.9.0-x"], ids=["dangling", "outside"])
def test_a_switch_from_a_current_that_names_no_release_here_keeps_previous(tmp_path, run_module, current):
    # Before: previous was pointed at releases/<whatever current named>, a link to nothing, and the link to the
    # release a rollback goes back to was lost.
    make_release(tmp_path, "1.0.0-a")
    make_release(tmp_path, "2.0.0-b", "2026-11-02T00:00:00Z")
    link(tmp_path, "previous", "1.0.0-a")
    os.symlink(current, tmp_path / "current")
    failed, result = run_module(release_state, {"root": str(tmp_path), "action": "switch", "target": "2.0.0-b"})
    assert not failed and result["switched"] is True
    assert os.readlink(tmp_path / "current") == "releases/2.0.0-b"
    assert os.readlink(tmp_path / "previous") == "releases/1.0.0-a"
    assert (result["current"], result["previous"]) == ("2.0.0-b", "1.0.0-a")
