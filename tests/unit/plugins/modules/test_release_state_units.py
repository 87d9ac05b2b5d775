"""release_state's switch writes the units in the same module run: after the links move, only what differs, every
entry checked before any link moves, and the content never returned."""

from __future__ import annotations

import grp
import json
import os
import pwd

from ansible_collections.shipshape.ops.plugins.module_utils import config_files
from ansible_collections.shipshape.ops.plugins.modules import release_state

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
UNIT = "[Service]\nExecStart=/srv/app/current/bin/app\n"


def make_release(root, rid, built_at="2026-11-01T00:00:00Z"):
    path = root / "releases" / rid
    path.mkdir(parents=True)
    (path / "release.json").write_text(json.dumps({"id": rid, "version": rid.split("-")[0], "built_at": built_at}))


def app(tmp_path):
    root = tmp_path / "app"
    make_release(root, "1.0.0-a")
    make_release(root, "2.0.0-b", "2026-11-02T00:00:00Z")
    os.symlink("releases/1.0.0-a", root / "current")
    units = tmp_path / "units"
    units.mkdir()
    return root, units


def unit(units, name, content=UNIT, mode="0644"):
    return {"path": str(units / name), "content": content, "mode": mode, "owner": OWNER, "group": GROUP}


def switch(run_module, root, target, unit_files, check_mode=False, **extra):
    return run_module(release_state, dict({"root": str(root), "action": "switch", "target": target,
                                           "unit_files": unit_files}, **extra), check_mode=check_mode)


def test_the_switch_writes_the_units_and_a_second_run_changes_nothing(tmp_path, run_module):
    root, units = app(tmp_path)
    files = [unit(units, "app.service"), unit(units, "app.socket", "[Socket]\nListenStream=8000\n")]
    failed, result = switch(run_module, root, "2.0.0-b", files)
    assert not failed, result
    assert result["changed"] is True and result["switched"] is True
    assert os.readlink(root / "current") == "releases/2.0.0-b"
    assert (units / "app.service").read_text() == UNIT and oct((units / "app.socket").stat().st_mode)[-3:] == "644"
    assert result["unit_files_changed"] == [f["path"] for f in files]
    assert UNIT not in json.dumps(result)  # the content is never returned
    failed, again = switch(run_module, root, "2.0.0-b", files)
    assert not failed and again["changed"] is False and again["switched"] is False and again["unit_files_changed"] == []


def test_a_changed_unit_alone_is_a_change_without_a_switch(tmp_path, run_module):
    root, units = app(tmp_path)
    (units / "app.service").write_text("[Service]\nExecStart=/old\n")
    failed, result = switch(run_module, root, "1.0.0-a", [unit(units, "app.service")])
    assert not failed and result["changed"] is True and result["switched"] is False
    assert result["unit_files_changed"] == [str(units / "app.service")]
    assert (units / "app.service").read_text() == UNIT


def test_an_invalid_unit_file_moves_no_link_and_writes_nothing(tmp_path, run_module):
    root, units = app(tmp_path)
    files = [unit(units, "app.service"), unit(units, "app.socket", mode="644x")]
    failed, result = switch(run_module, root, "2.0.0-b", files)
    assert failed and result["msg"].startswith("release_state: unit_files[1] (%s): mode '644x' is not valid" % files[1]["path"])
    assert os.readlink(root / "current") == "releases/1.0.0-a" and not os.path.lexists(root / "previous")
    assert os.listdir(units) == []


def test_a_unit_file_that_cannot_be_read_moves_no_link(tmp_path, run_module, monkeypatch):
    root, units = app(tmp_path)
    (units / "app.service").write_text("[Service]\nExecStart=/old\n")

    def unreadable(want):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(config_files, "compare", unreadable)
    failed, result = switch(run_module, root, "2.0.0-b", [unit(units, "app.service")])
    assert failed and result["msg"].startswith("release_state: cannot read %s: " % (units / "app.service")), result["msg"]
    assert os.readlink(root / "current") == "releases/1.0.0-a" and not os.path.lexists(root / "previous")
    assert (units / "app.service").read_text() == "[Service]\nExecStart=/old\n"


def test_check_mode_reports_the_units_and_writes_nothing(tmp_path, run_module):
    root, units = app(tmp_path)
    failed, result = switch(run_module, root, "2.0.0-b", [unit(units, "app.service")], check_mode=True)
    assert not failed and result["changed"] is True and result["switched"] is True
    assert result["unit_files_changed"] == [str(units / "app.service")]
    assert os.listdir(units) == [] and os.readlink(root / "current") == "releases/1.0.0-a"


def test_others_names_the_unit_files_of_the_pattern_not_listed_and_touches_none(tmp_path, run_module):
    root, units = app(tmp_path)
    (units / "app.worker-mailer.service").write_text("[Service]\n")
    (units / "app.worker-outbox.service").write_text("[Service]\n")
    failed, result = switch(run_module, root, "1.0.0-a", [unit(units, "app.worker-outbox.service")],
                            unit_files_others=str(units / "app.worker-*.service"))
    assert not failed and result["unit_files_others"] == [str(units / "app.worker-mailer.service")]
    assert (units / "app.worker-mailer.service").read_text() == "[Service]\n"


def test_unit_files_go_with_the_switch_only(tmp_path, run_module):
    root, units = app(tmp_path)
    failed, result = run_module(release_state, {"root": str(root), "unit_files": [unit(units, "app.service")]})
    assert failed and "unit_files, unit_files_others and manage_units go with action=switch, not action=read" in result["msg"]
    assert os.listdir(units) == []
