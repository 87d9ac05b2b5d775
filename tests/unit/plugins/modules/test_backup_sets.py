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
