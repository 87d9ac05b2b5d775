"""Retention (keep last N + daily/weekly/monthly) and set discovery of the backup_sets module."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.shipshape.ops.plugins.modules import backup_sets

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)  # a Wednesday


def make_set(root, set_id, when, verified=True):
    d = root / set_id
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"id": set_id, "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}", "verified": verified}))


def ids_at(root, offsets_hours):
    out = {}
    for h in offsets_hours:
        when = NOW - timedelta(hours=h)
        set_id = f"s-{when:%Y%m%dT%H%M}"
        make_set(root, set_id, when)
        out[h] = set_id
    return out


def kept(root, **keep):
    result = backup_sets.summarise(str(root), keep.get("last", 1), keep.get("daily", 0), keep.get("weekly", 0),
                                   keep.get("monthly", 0), now=int(NOW.timestamp()))
    return {s["id"] for s in result["sets"]} - set(result["delete"]), result


def test_keep_last_only(tmp_path):
    ids = ids_at(tmp_path, [1, 2, 3, 4])
    remaining, dummy = kept(tmp_path, last=2)
    assert remaining == {ids[1], ids[2]}


@pytest.mark.parametrize(
    "keep, expected_offsets",
    [
        # the newest of each of the last 3 days: Nov 25 11:00, Nov 24 23:00, Nov 23 23:00
        ({"last": 1, "daily": 3}, {1, 13, 37}),
        # the newest of this ISO week (Mon 23 - Sun 29) and of the one before: Sun Nov 22 23:00
        ({"last": 1, "weekly": 2}, {1, 61}),
        # this month and the one before
        ({"last": 1, "monthly": 2}, {1, 24 * 30}),
    ],
)
def test_grandfather_father_son(tmp_path, keep, expected_offsets):
    # 1h, 13h, 25h, 37h, ... and one in October.
    offsets = [1, 13, 25, 37, 49, 61, 73, 85, 97, 24 * 30, 24 * 31]
    ids = ids_at(tmp_path, offsets)
    remaining, dummy = kept(tmp_path, **keep)
    assert remaining == {ids[h] for h in expected_offsets}


def test_the_newest_verified_set_is_never_deleted_and_unverified_sets_never_kept(tmp_path):
    make_set(tmp_path, "old-good", NOW - timedelta(days=3))
    make_set(tmp_path, "new-bad", NOW - timedelta(hours=1), verified=False)
    remaining, result = kept(tmp_path, last=1)
    assert remaining == {"old-good"}
    assert result["newest_verified"] == "old-good"
    assert result["newest_verified_age"] == 3 * 86400
    assert "new-bad" in result["delete"]


def test_partials_are_reported_not_counted(tmp_path):
    make_set(tmp_path, "good", NOW - timedelta(hours=2))
    (tmp_path / ".partial-next").mkdir()
    dummy, result = kept(tmp_path, last=1)
    assert result["partials"] == [".partial-next"]
    assert [s["id"] for s in result["sets"]] == ["good"]


def test_a_named_set_is_selected_only_when_verified(tmp_path):
    make_set(tmp_path, "a", NOW - timedelta(hours=2))
    make_set(tmp_path, "b", NOW - timedelta(hours=1), verified=False)
    ok = backup_sets.summarise(str(tmp_path), 5, 0, 0, 0, backup_id="a")
    bad = backup_sets.summarise(str(tmp_path), 5, 0, 0, 0, backup_id="b")
    assert ok["selected"]["id"] == "a" and bad["selected"] == {}


# With a name, retention only ever touches that name's own sets (issue 14: other apps' sets, foreign
# directories and a concurrent backup's partial set survive).

def make_named(root, name, when, verified=True, set_id=None):
    set_id = set_id or f"{name}-{when:%Y%m%dT%H%M%SZ}"
    d = root / set_id
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"id": set_id, "name": name, "started_at": f"{when:%Y-%m-%dT%H:%M:%SZ}",
                                                 "verified": verified}))
    return set_id


def test_another_apps_sets_are_never_deleted(tmp_path, run_module):
    mine = [make_named(tmp_path, "app", NOW - timedelta(days=d)) for d in (1, 2, 3)]
    theirs = [make_named(tmp_path, "other_app", NOW - timedelta(days=d)) for d in (10, 20)]
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app", "keep_last": 1, "keep_daily": 0,
                                              "keep_weekly": 0, "keep_monthly": 0})
    assert not failed and not result["changed"]
    assert sorted(result["delete"]) == sorted(mine[1:])
    assert [s["id"] for s in result["sets"]] == mine
    assert set(theirs) <= set(result["foreign"]) and not set(theirs) & set(result["delete"])


@pytest.mark.parametrize("entry, manifest", [
    ("lost+found", None),                                     # not a set at all
    ("app-20260101T000000Z", None),                           # our id pattern, but no manifest
    ("app-20260102T000000Z", {"id": "x", "name": "other"}),   # our id pattern, a manifest naming another name
    ("app-copy", {"id": "app-copy", "name": "app"}),          # our name, not a set id
    ("app-2-20260103T000000Z", {"name": "app-2"}),            # a name that starts with ours
])
def test_directories_that_are_not_this_names_sets_are_kept(tmp_path, run_module, entry, manifest):
    make_named(tmp_path, "app", NOW - timedelta(hours=1))
    (tmp_path / entry).mkdir()
    if manifest is not None:
        (tmp_path / entry / "manifest.json").write_text(json.dumps(dict(manifest, started_at="2026-01-01T00:00:00Z",
                                                                        verified=True)))
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app", "keep_last": 1, "keep_daily": 0,
                                              "keep_weekly": 0, "keep_monthly": 0})
    assert not failed
    assert entry in result["foreign"] and entry not in result["delete"]
    assert entry not in [s["id"] for s in result["sets"]]


def test_a_link_is_never_a_set_to_delete(tmp_path, run_module):
    target = tmp_path / "elsewhere"
    target.mkdir()
    root = tmp_path / "backups"
    root.mkdir()
    make_named(root, "app", NOW - timedelta(hours=1))
    old = make_named(target, "app", NOW - timedelta(days=9))
    (root / old).symlink_to(target / old)
    failed, result = run_module(backup_sets, {"path": str(root), "name": "app", "keep_last": 1, "keep_daily": 0,
                                              "keep_weekly": 0, "keep_monthly": 0})
    assert not failed and result["delete"] == [] and old in result["foreign"]


def test_only_this_names_partials_are_returned(tmp_path, run_module):
    make_named(tmp_path, "app", NOW - timedelta(hours=1))
    for partial in (".partial-app-20261125T100000Z", ".partial-other_app-20261125T110000Z", ".partial-app-2-20261125T110000Z",
                    ".partial-weird"):
        (tmp_path / partial).mkdir()
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app"})
    assert not failed
    assert result["partials"] == [".partial-app-20261125T100000Z"]
    assert {".partial-other_app-20261125T110000Z", ".partial-app-2-20261125T110000Z", ".partial-weird"} <= set(result["foreign"])


def test_without_a_name_nothing_is_proposed_for_deletion(tmp_path, run_module):
    ids = [make_named(tmp_path, "app", NOW - timedelta(days=d)) for d in (1, 2, 3)]
    (tmp_path / ".partial-app-20261125T100000Z").mkdir()
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "keep_last": 1, "keep_daily": 0, "keep_weekly": 0,
                                              "keep_monthly": 0})
    assert not failed
    assert result["delete"] == [] and result["partials"] == []
    assert [s["id"] for s in result["sets"]] == ids  # restores and drills still see every set


@pytest.mark.parametrize("args, option, value, expected", [
    ({"keep_last": 0}, "keep_last", "0", "at least 1"),
    ({"keep_daily": -1}, "keep_daily", "-1", "0 or more"),
    ({"keep_weekly": -3}, "keep_weekly", "-3", "0 or more"),
    ({"keep_monthly": -1}, "keep_monthly", "-1", "0 or more"),
    ({"name": "../../tmp/pwn"}, "name", "'../../tmp/pwn'", "one path component"),
    ({"name": "app/x"}, "name", "'app/x'", "one path component"),
    ({"name": "a..b"}, "name", "'a..b'", "no '..'"),
    ({"name": "-rf"}, "name", "'-rf'", "one path component"),
    ({"backup_id": "../../etc"}, "backup_id", "'../../etc'", "one path component"),
    ({"path": "relative/dir"}, "path", "relative/dir", "absolute path without '..'"),
    ({"path": "/var/backups/../../etc"}, "path", "/var/backups/../../etc", "absolute path without '..'"),
])
def test_bad_values_are_refused_naming_the_option_and_the_value(tmp_path, run_module, args, option, value, expected):
    make_named(tmp_path, "app", NOW - timedelta(days=30))
    make_named(tmp_path, "app", NOW - timedelta(days=1))
    failed, result = run_module(backup_sets, dict({"path": str(tmp_path), "name": "app"}, **args))
    assert failed
    assert result["msg"].startswith(option + " must be")
    assert value in result["msg"] and expected in result["msg"]
    assert "\n" not in result["msg"]
    assert "delete" not in result
    assert len(list(tmp_path.iterdir())) == 2  # nothing touched


# Sets namespaced by name (issue 16): a restore or drill chooses a name, never guesses between several.

def two_names(root):
    return {
        "app": [make_named(root, "app", NOW - timedelta(hours=h)) for h in (5, 30)],
        "ledger": [make_named(root, "ledger", NOW - timedelta(hours=h)) for h in (1, 50)],
    }


def test_several_names_and_none_chosen_is_refused_listing_them(tmp_path, run_module):
    two_names(tmp_path)
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "choose_name": True,
                                              "name_option": "--name (restore_drill_backup_name)"})
    assert failed and result["name_required"] is True
    assert result["names"] == ["app", "ledger"]
    assert result["msg"] == (f"several backups in {tmp_path}: app, ledger; "
                             "choose one with --name (restore_drill_backup_name)")


@pytest.mark.parametrize("name", ["app", "ledger"])
def test_each_name_gets_its_own_newest(tmp_path, run_module, name):
    ids = two_names(tmp_path)
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": name, "choose_name": True})
    assert not failed
    assert result["name"] == name and result["newest_verified"] == ids[name][0]
    assert result["newest_manifest"]["name"] == name
    assert [s["id"] for s in result["sets"]] == ids[name]
    assert result["names"] == ["app", "ledger"]


def test_one_name_is_used_without_choosing(tmp_path, run_module):
    ids = [make_named(tmp_path, "app", NOW - timedelta(hours=h)) for h in (2, 9)]
    (tmp_path / "lost+found").mkdir()
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "choose_name": True})
    assert not failed and result["name"] == "app" and result["newest_verified"] == ids[0]
    assert result["delete"] == [] and result["partials"] == []  # a chosen name never proposes deletions


def test_a_backup_id_chooses_its_own_name(tmp_path, run_module):
    ids = two_names(tmp_path)
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "choose_name": True, "backup_id": ids["app"][1]})
    assert not failed
    assert result["name"] == "app" and result["selected"]["id"] == ids["app"][1]
    # the newest of the chosen set's own name (how stale that database's backups are), not ledger's newer one
    assert result["newest_verified"] == ids["app"][0]


def test_a_set_of_another_name_is_not_selected_under_a_name(tmp_path, run_module):
    ids = two_names(tmp_path)
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app", "choose_name": True,
                                              "backup_id": ids["ledger"][0]})
    assert not failed and result["selected"] == {}


def test_a_set_renamed_on_disk_is_still_selected_by_id(tmp_path, run_module):
    make_named(tmp_path, "app", NOW - timedelta(hours=3))
    make_named(tmp_path, "app", NOW - timedelta(hours=8), set_id="copied-set")
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "choose_name": True, "backup_id": "copied-set"})
    assert not failed and result["selected"]["id"] == "copied-set" and result["name"] == "app"
    assert "copied-set" in [s["id"] for s in result["sets"]]


def test_unverified_sets_and_partials_add_no_name(tmp_path, run_module):
    make_named(tmp_path, "app", NOW - timedelta(hours=3))
    make_named(tmp_path, "ledger", NOW - timedelta(hours=1), verified=False)
    (tmp_path / ".partial-other-20261125T100000Z").mkdir()
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "choose_name": True})
    assert not failed and result["names"] == ["app"] and result["name"] == "app"


def test_a_renamed_set_of_the_chosen_name_is_selected_by_id_and_another_names_is_not(tmp_path, run_module):
    make_named(tmp_path, "app", NOW - timedelta(hours=3))
    make_named(tmp_path, "app", NOW - timedelta(hours=8), set_id="copied-set")
    make_named(tmp_path, "ledger", NOW - timedelta(hours=8), set_id="ledger-copy")
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app", "choose_name": True,
                                              "backup_id": "copied-set"})
    assert not failed and result["selected"]["id"] == "copied-set"
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app", "choose_name": True,
                                              "backup_id": "ledger-copy"})
    assert not failed and result["selected"] == {}


def test_a_fifo_for_a_manifest_is_not_a_set_and_does_not_hang_the_listing(tmp_path, run_module):
    import os
    import signal

    def expired(signum, frame):
        raise KeyboardInterrupt("the listing blocked on a FIFO")  # not an OSError, which the code catches
    good = make_named(tmp_path, "app", NOW - timedelta(hours=2))
    (tmp_path / "app-20261125T110000Z").mkdir()
    os.mkfifo(tmp_path / "app-20261125T110000Z" / "manifest.json")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    try:
        failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app"})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not failed and result["newest_verified"] == good
    assert "app-20261125T110000Z" in result["foreign"] and result["delete"] == []


@pytest.mark.parametrize("args", [{}, {"backup_id": "app-20261125T110000Z"},
                                  {"backup_id": "app-20261125T110000Z", "choose_name": True}])
def test_a_link_is_never_a_set_even_without_a_name(tmp_path, run_module, args):
    # disaster_recovery lists by path and id only: a link (to a directory outside the backup directory) must not
    # become the newest verified set or the selected one, which a restore would then read.
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "backups"
    root.mkdir()
    good = make_named(root, "app", NOW - timedelta(hours=3))
    make_named(outside, "app", NOW - timedelta(hours=1), set_id="app-20261125T110000Z")
    (root / "app-20261125T110000Z").symlink_to(outside / "app-20261125T110000Z")
    failed, result = run_module(backup_sets, dict({"path": str(root)}, **args))
    assert not failed, result
    assert result["newest_verified"] == good and result["selected"] == {}
    assert "app-20261125T110000Z" in result["foreign"]
    assert "app-20261125T110000Z" not in [s["id"] for s in result["sets"]]


@pytest.mark.parametrize("claim", ["false", "no", 1, [0]])
def test_only_json_true_makes_a_set_verified(tmp_path, run_module, claim):
    good = make_named(tmp_path, "app", NOW - timedelta(hours=3))
    make_named(tmp_path, "app", NOW - timedelta(hours=1), verified=claim)
    failed, result = run_module(backup_sets, {"path": str(tmp_path), "name": "app"})
    assert not failed and result["newest_verified"] == good


def test_a_manifest_that_is_a_symlink_is_not_read_and_its_target_never_returned(tmp_path, run_module):
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"id": "x", "name": "app", "started_at": "2026-11-25T11:00:00Z", "verified": True,
                                  "password": "hunter2"}))
    root = tmp_path / "backups"
    root.mkdir()
    good = make_named(root, "app", NOW - timedelta(hours=3))
    (root / "app-20261125T110000Z").mkdir()
    (root / "app-20261125T110000Z" / "manifest.json").symlink_to(secret)
    for args in ({"name": "app"}, {}):
        failed, result = run_module(backup_sets, dict({"path": str(root)}, **args))
        assert not failed and result["newest_verified"] == good
        assert "hunter2" not in json.dumps(result)
