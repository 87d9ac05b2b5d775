"""keep-N and release states, as the release_state module (plugins/modules/release_state.py) computes them on a host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collections.shipshape.ops.plugins.modules import release_state


def make_release(root: Path, rid: str, built_at: str, status: str = "complete") -> None:
    path = root / "releases" / rid
    path.mkdir(parents=True)
    if status != "unfinished":
        (path / "release.json").write_text(json.dumps({"id": rid, "version": rid.split("-")[0], "built_at": built_at}))
    if status == "unfinished":
        (path / ".shipshape-unfinished").write_text("building")
    if status == "failed":
        (path / ".shipshape-failed").write_text(json.dumps({"reason": "health gate", "at": built_at}))


def state(root: Path, keep: int = 3, keep_failed: int = 1) -> dict:
    return release_state.read_state(str(root), keep, keep_failed)


def link(root: Path, name: str, rid: str) -> None:
    os.symlink(f"releases/{rid}", root / name)


def test_empty_root_has_no_releases(tmp_path):
    result = state(tmp_path)
    assert result["releases"] == [] and result["current"] == "" and result["prune"] == []


def test_keep_n_prunes_the_oldest_complete_releases_by_build_time_not_name(tmp_path):
    # Names sort differently from build times on purpose.
    for i, rid in enumerate(["z-1", "a-2", "m-3", "b-4", "c-5"]):
        make_release(tmp_path, rid, f"2026-11-0{i + 1}T00:00:00Z")
    link(tmp_path, "current", "c-5")
    link(tmp_path, "previous", "b-4")
    assert state(tmp_path, keep=3)["prune"] == ["z-1", "a-2"]


def test_current_and_previous_are_never_pruned(tmp_path):
    for i, rid in enumerate(["r1", "r2", "r3", "r4"]):
        make_release(tmp_path, rid, f"2026-11-0{i + 1}T00:00:00Z")
    # Rolled back to the oldest: it and the one before it stay.
    link(tmp_path, "current", "r1")
    link(tmp_path, "previous", "r2")
    assert state(tmp_path, keep=2)["prune"] == ["r3", "r4"][:2] and "r1" not in state(tmp_path, keep=2)["prune"]


def test_failed_and_unfinished_releases_do_not_take_the_slots_of_good_ones(tmp_path):
    make_release(tmp_path, "g1", "2026-11-01T00:00:00Z")
    make_release(tmp_path, "f1", "2026-11-02T00:00:00Z", "failed")
    make_release(tmp_path, "f2", "2026-11-03T00:00:00Z", "failed")
    make_release(tmp_path, "g2", "2026-11-04T00:00:00Z")
    make_release(tmp_path, "u1", "", "unfinished")
    link(tmp_path, "current", "g2")
    result = state(tmp_path, keep=2, keep_failed=1)
    statuses = {r["id"]: r["status"] for r in result["releases"]}
    assert statuses == {"g1": "complete", "f1": "failed", "f2": "failed", "g2": "complete", "u1": "unfinished"}
    # Two good releases fit in keep=2 although three failed/unfinished ones exist; the oldest failed goes.
    assert result["prune"] == ["f1"]
    assert result["unfinished"] == ["u1"]


def test_a_release_without_release_json_counts_as_unfinished(tmp_path):
    (tmp_path / "releases" / "half").mkdir(parents=True)
    assert state(tmp_path)["unfinished"] == ["half"]


@pytest.mark.parametrize("keep", [2, 5])
def test_nothing_is_pruned_below_the_keep_count(tmp_path, keep):
    for i in range(keep):
        make_release(tmp_path, f"r{i}", f"2026-11-1{i}T00:00:00Z")
    assert state(tmp_path, keep=keep)["prune"] == []
