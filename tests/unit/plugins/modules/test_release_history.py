"""shipshape.ops.release_history: appending records and finding the previous good release."""

from __future__ import annotations

import json

import pytest

from ansible_collections.shipshape.ops.plugins.modules import release_history

DEPLOYS = [
    {"kind": "deploy", "to": "1.0.0-a", "result": "success"},
    {"kind": "deploy", "to": "2.0.0-b", "from": "1.0.0-a", "result": "success"},
    {"kind": "deploy", "to": "2.0.1-c", "from": "2.0.0-b", "result": "rolled_back"},
    {"kind": "deploy", "to": "3.0.0-d", "from": "2.0.0-b", "result": "success"},
]
ROLLBACK = {"kind": "rollback", "from": "3.0.0-d", "to": "2.0.0-b", "result": "success"}
# What a rollback writes before its switch; killed after it, nothing follows.
STARTED = {"kind": "rollback", "from": "3.0.0-d", "to": "2.0.0-b", "result": "started"}


def write(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


@pytest.mark.parametrize(
    "records, current, exclude, expected",
    [
        (DEPLOYS, "3.0.0-d", [], "2.0.0-b"),
        (DEPLOYS, "3.0.0-d", ["2.0.0-b"], "1.0.0-a"),
        (DEPLOYS + [ROLLBACK], "2.0.0-b", [], "1.0.0-a"),  # never back to what a rollback left
        # ... unless it was deployed again, successfully, after that rollback
        (DEPLOYS + [ROLLBACK, {"kind": "deploy", "to": "3.0.0-d", "from": "2.0.0-b", "result": "success"},
                    {"kind": "deploy", "to": "4.0.0-e", "from": "3.0.0-d", "result": "success"}], "4.0.0-e", [], "3.0.0-d"),
        (DEPLOYS + [ROLLBACK, {"kind": "deploy", "to": "3.0.0-d", "from": "2.0.0-b", "result": "rolled_back"}],
         "2.0.0-b", [], "1.0.0-a"),
        (DEPLOYS[:1], "1.0.0-a", [], ""),
        ([], "", [], ""),
        # a rollback killed after its switch: never back to the release it was leaving (2.0.0-b runs, so 1.0.0-a)
        (DEPLOYS + [STARTED], "2.0.0-b", [], "1.0.0-a"),
        # killed before its switch (3.0.0-d still runs): the retry goes where it was going
        (DEPLOYS + [STARTED], "3.0.0-d", [], "2.0.0-b"),
    ],
    ids=["newest-other-success", "excluded", "rolled-back-from", "redeployed-after-rollback",
         "redeploy-rolled-back-again", "only-current", "no-history", "killed-after-switch", "killed-before-switch"],
)
def test_previous_good(tmp_path, run_module, records, current, exclude, expected):
    path = tmp_path / "h.jsonl"
    write(path, records, tail='{"torn": ')
    failed, result = run_module(release_history, {"path": str(path), "current": current, "exclude": exclude})
    assert not failed and result["changed"] is False
    assert result["previous_good"] == expected
    assert len(result["entries"]) == len(records)  # the torn line is skipped


def test_read_of_a_missing_file(tmp_path, run_module):
    failed, result = run_module(release_history, {"path": str(tmp_path / "none.jsonl")})
    assert not failed and result["entries"] == [] and result["previous_good"] == ""


@pytest.mark.parametrize("limit, count", [(0, 4), (2, 2), (50, 4)])
def test_limit_returns_the_newest(tmp_path, run_module, limit, count):
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS)
    failed, result = run_module(release_history, {"path": str(path), "limit": limit})
    assert [e["to"] for e in result["entries"]] == [d["to"] for d in DEPLOYS][-count:]


@pytest.mark.parametrize("check_mode", [False, True])
@pytest.mark.parametrize("report_change", [True, False])
def test_append(tmp_path, run_module, check_mode, report_change):
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS[:1])
    failed, result = run_module(
        release_history,
        {"path": str(path), "action": "append", "record": {"to": "x", "result": "success"}, "report_change": report_change},
        check_mode=check_mode)
    assert not failed and result["changed"] is report_change
    assert result["record"]["to"] == "x" and result["record"]["at"].endswith("Z")
    lines = path.read_text().splitlines()
    if check_mode:
        assert len(lines) == 1
    else:
        assert len(lines) == 2 and json.loads(lines[1]) == result["record"]


def test_append_keeps_a_given_timestamp(tmp_path, run_module):
    path = tmp_path / "h.jsonl"
    failed, result = run_module(release_history, {"path": str(path), "action": "append", "record": {"at": "then"}})
    assert not failed and result["record"] == {"at": "then"}


def test_append_into_a_missing_directory_fails(tmp_path, run_module):
    failed, result = run_module(release_history, {"path": str(tmp_path / "no" / "h.jsonl"), "action": "append"})
    assert failed and "does not exist" in result["msg"]


DEPLOYED_3 = DEPLOYS  # 3.0.0-d runs, deployed successfully


@pytest.mark.parametrize(
    "records, current, expected",
    [
        (DEPLOYED_3 + [ROLLBACK], "2.0.0-b", ROLLBACK),
        # A retried rollback (recorded unchanged) and a refused deploy switch nothing: the rollback stays in effect.
        (DEPLOYED_3 + [ROLLBACK, {"kind": "rollback", "from": "2.0.0-b", "to": "2.0.0-b", "result": "unchanged"},
                       {"kind": "deploy", "to": "5.0.0-x", "from": "2.0.0-b", "result": "refused"}], "2.0.0-b", ROLLBACK),
        # A rollback whose release then failed its gate still switched.
        (DEPLOYED_3 + [dict(ROLLBACK, result="unhealthy")], "2.0.0-b", dict(ROLLBACK, result="unhealthy")),
        # A successful deploy since: a rollback goes back as usual.
        (DEPLOYED_3 + [ROLLBACK, {"kind": "deploy", "to": "3.0.0-d", "from": "2.0.0-b", "result": "success"}], "3.0.0-d", {}),
        # current is not what the rollback switched to (moved by hand, or a deploy that failed without rolling back).
        (DEPLOYED_3 + [ROLLBACK], "3.0.0-d", {}),
        (DEPLOYED_3, "3.0.0-d", {}),
        ([], "", {}),
        # a rollback killed after its switch is in effect (a retry finishes it); before its switch it is not
        (DEPLOYED_3 + [STARTED], "2.0.0-b", STARTED),
        (DEPLOYED_3 + [STARTED], "3.0.0-d", {}),
        # its outcome record, when it finished, is the one in effect
        (DEPLOYED_3 + [STARTED, ROLLBACK], "2.0.0-b", ROLLBACK),
    ],
    ids=["right-after", "after-no-ops", "unhealthy-rollback", "deployed-since", "current-elsewhere", "no-rollback", "empty",
         "killed-after-switch", "killed-before-switch", "finished"],
)
def test_rollback_in_effect(tmp_path, run_module, records, current, expected):
    path = tmp_path / "h.jsonl"
    write(path, records)
    failed, result = run_module(release_history, {"path": str(path), "current": current})
    assert not failed and result["rollback_in_effect"] == expected
