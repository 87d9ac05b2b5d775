"""shipshape.ops.release_history: appending records and finding the previous good release."""

from __future__ import annotations

import json
import os

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


ON_HOST = ["1.0.0-a", "2.0.0-b", "2.0.1-c", "3.0.0-d"]


def rollback(run_module, path, check_mode=False, **kw):
    args = {"path": str(path), "action": "rollback", "releases": ON_HOST, "host": "app1",
            "record": {"user": "alice", "message": "5xx"}}
    args.update(kw)
    return run_module(release_history, args, check_mode=check_mode)


def test_a_rollback_goes_to_the_previous_good_release_and_records_its_intent_first(tmp_path, run_module):
    path = tmp_path / "history.jsonl"
    write(path, DEPLOYS)
    failed, result = rollback(run_module, path, current="3.0.0-d")
    assert not failed and result["changed"] is False
    assert (result["target"], result["from"], result["already"], result["interrupted"]) == (
        "2.0.0-b", "3.0.0-d", False, False)
    last = json.loads(path.read_text().splitlines()[-1])
    assert {k: last[k] for k in ("kind", "from", "to", "result", "user", "message")} == {
        "kind": "rollback", "from": "3.0.0-d", "to": "2.0.0-b", "result": "started", "user": "alice", "message": "5xx"}
    assert result["record"] == last


def test_a_rollback_in_check_mode_records_nothing(tmp_path, run_module):
    path = tmp_path / "history.jsonl"
    write(path, DEPLOYS)
    failed, result = rollback(run_module, path, check_mode=True, current="3.0.0-d")
    assert not failed and result["target"] == "2.0.0-b"
    assert len(path.read_text().splitlines()) == len(DEPLOYS)


@pytest.mark.parametrize("records, kw, message", [
    ([], {"current": "1.0.0-a"},
     "No previous good release in the history of app1; name one with rollback_to (releases there: 1.0.0-a, 2.0.0-b, "
     "2.0.1-c, 3.0.0-d)."),
    (DEPLOYS, {"current": "3.0.0-d", "to": "0.9.0-z"},
     "rollback_to: release '0.9.0-z' does not exist on app1 (releases there: 1.0.0-a, 2.0.0-b, 2.0.1-c, 3.0.0-d)."),
    (DEPLOYS, {"current": "3.0.0-d", "releases": []},
     "rollback_to: release '2.0.0-b' does not exist on app1 (releases there: none)."),
], ids=["nothing-to-go-back-to", "named-release-missing", "previous-good-gone"])
def test_a_rollback_with_nowhere_to_go_is_refused_and_records_nothing(tmp_path, run_module, records, kw, message):
    path = tmp_path / "history.jsonl"
    write(path, records)
    failed, result = rollback(run_module, path, **kw)
    assert failed and result["msg"] == message
    assert len(path.read_text().splitlines()) == len(records)


# Right after a rollback, what it switched to stays; a rollback stopped after its switch is finished from where it set
# out. Either way the target already runs: no intent is recorded.
@pytest.mark.parametrize("last, plan", [
    (ROLLBACK, ("2.0.0-b", "2.0.0-b", True, False)),
    (STARTED, ("2.0.0-b", "3.0.0-d", False, True)),
], ids=["right-after-a-rollback", "stopped-after-its-switch"])
def test_a_rollback_whose_target_runs_already_records_nothing(tmp_path, run_module, last, plan):
    path = tmp_path / "history.jsonl"
    write(path, DEPLOYS + [last])
    failed, result = rollback(run_module, path, current="2.0.0-b")
    assert not failed
    assert (result["target"], result["from"], result["already"], result["interrupted"]) == plan
    assert result["previous_good"] == "1.0.0-a" and result["rollback_in_effect"]["result"] == last["result"]
    assert result["record"] == {} and len(path.read_text().splitlines()) == len(DEPLOYS) + 1


# With metrics_file, an append writes the run's series too (the metrics of a rollback, as roles/rollback sends them).
RB = "shipshape_rollback_"


def rollback_metrics(success, now=1700000500):
    return [
        {"name": RB + "last_success_timestamp_seconds", "help": "Last success.", "value": now if success else None,
         "keep": True, "default": 0},
        {"name": RB + "last_run_timestamp_seconds", "help": "Last run.", "value": now},
        {"name": RB + "success", "help": "1 when it succeeded.", "value": 1 if success else 0},
    ]


def append_with_metrics(run_module, history, prom, metrics, result="success", check_mode=False, **kw):
    args = {"path": str(history), "action": "append", "record": {"kind": "rollback", "to": "x", "result": result},
            "metrics_file": str(prom), "metrics_prefix": RB, "metrics_labels": {"app": "sample_app"},
            "metrics": metrics}
    args.update(kw)
    return run_module(release_history, args, check_mode=check_mode)


def series(prom):
    return dict(line.rsplit(" ", 1) for line in prom.read_text().splitlines() if line and not line.startswith("#"))


def test_an_append_with_metrics_writes_the_record_and_the_series_keeping_other_writers(tmp_path, run_module):
    history, prom = tmp_path / "h.jsonl", tmp_path / "textfile" / "shipshape_deploy.prom"
    prom.parent.mkdir()
    prom.write_text('shipshape_deploy_success{app="sample_app"} 1\n' + RB + 'success{app="other"} 0\n')
    failed, result = append_with_metrics(run_module, history, prom, rollback_metrics(True), report_change=False)
    assert not failed and result["changed"] is False  # the record's report_change decides, not the textfile
    assert json.loads(history.read_text())["result"] == "success"
    assert series(prom) == {
        RB + 'last_success_timestamp_seconds{app="sample_app"}': "1700000500",
        RB + 'last_run_timestamp_seconds{app="sample_app"}': "1700000500",
        RB + 'success{app="sample_app"}': "1",
        RB + 'success{app="other"}': "0",
        'shipshape_deploy_success{app="sample_app"}': "1",
    }
    assert result["metrics"] == {"path": str(prom), "written": 3, "removed": 0, "kept": 2}
    assert oct(prom.stat().st_mode & 0o777) == "0o644"
    # The file names its last writer (a reader looking for who wrote the series finds this module).
    assert prom.read_text().startswith("# Written by shipshape.ops.release_history;")

    # A failed run after it keeps the last success, and says 0.
    failed, result = append_with_metrics(run_module, history, prom, rollback_metrics(False, now=1700000900),
                                         result="unhealthy")
    assert not failed
    assert series(prom)[RB + 'last_success_timestamp_seconds{app="sample_app"}'] == "1700000500"
    assert series(prom)[RB + 'success{app="sample_app"}'] == "0"
    assert len(history.read_text().splitlines()) == 2


def test_an_append_with_metrics_in_check_mode_writes_neither(tmp_path, run_module):
    history, prom = tmp_path / "h.jsonl", tmp_path / "m.prom"
    failed, result = append_with_metrics(run_module, history, prom, rollback_metrics(True), check_mode=True)
    assert not failed and result["metrics"]["written"] == 3
    assert not history.exists() and not prom.exists()


@pytest.mark.parametrize("metrics, prom_name, message", [
    ([{"name": "shipshape_deploy_success", "value": 1}], "m.prom", "does not start with prefix 'shipshape_rollback_'"),
    ([{"name": RB + "success", "value": "yes"}], "m.prom", "value 'yes' is not a number"),
    ([{"name": RB + "success", "value": 1}], "m.txt", "does not end in .prom"),
], ids=["outside-the-prefix", "not-a-number", "not-a-prom-file"])
def test_bad_metrics_are_refused_before_the_record_is_appended(tmp_path, run_module, metrics, prom_name, message):
    history, prom = tmp_path / "h.jsonl", tmp_path / prom_name
    write(history, DEPLOYS[:1])
    failed, result = append_with_metrics(run_module, history, prom, metrics)
    assert failed and message in result["msg"] and result["msg"].startswith("metrics: ")
    assert len(history.read_text().splitlines()) == 1 and not prom.exists()


@pytest.mark.parametrize("action", ["read", "rollback"])
def test_metrics_are_refused_outside_an_append(tmp_path, run_module, action):
    history, prom = tmp_path / "h.jsonl", tmp_path / "m.prom"
    write(history, DEPLOYS)
    failed, result = append_with_metrics(run_module, history, prom, rollback_metrics(True), action=action,
                                         current="3.0.0-d", releases=["2.0.0-b", "3.0.0-d"])
    assert failed and "with action=append only (action is %s)" % action in result["msg"]
    assert len(history.read_text().splitlines()) == len(DEPLOYS) and not prom.exists()


def test_a_textfile_that_cannot_be_read_appends_nothing(tmp_path, run_module):
    history = tmp_path / "h.jsonl"
    blocker = tmp_path / "file"
    blocker.write_text("")
    failed, result = append_with_metrics(run_module, history, blocker / "m.prom", rollback_metrics(True))
    assert failed and result["msg"].startswith("cannot read %s" % (blocker / "m.prom"))
    assert not history.exists()


def test_metrics_that_cannot_be_written_fail_naming_the_record_kept(tmp_path, run_module, monkeypatch):
    from ansible_collections.shipshape.ops.plugins.module_utils import prometheus_text

    def full_disk(plan):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(prometheus_text, "write", full_disk)
    history, prom = tmp_path / "h.jsonl", tmp_path / "m.prom"
    failed, result = append_with_metrics(run_module, history, prom, rollback_metrics(True))
    assert failed and result["msg"].startswith(
        "The record was appended to %s, but the metrics could not be written to %s" % (history, prom))
    assert json.loads(history.read_text())["result"] == "success" and result["record"]["result"] == "success"


def test_metrics_without_a_textfile_are_refused_and_nothing_is_appended(tmp_path, run_module):
    history = tmp_path / "h.jsonl"
    failed, result = append_with_metrics(run_module, history, tmp_path / "m.prom", rollback_metrics(True),
                                         metrics_file="")
    assert failed and result["msg"] == ("metrics: 3 given, but metrics_file is empty: expected the textfile (*.prom) "
                                        "to write them into")
    assert not history.exists()


def test_a_record_appended_after_a_torn_line_is_read_back(tmp_path, run_module):
    # Before: the torn line had no line break, so the next record was glued to it and both were skipped; the deploy
    # that record named was then never a previous good release.
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS[:1], tail='{"torn": ')
    record = {"kind": "deploy", "to": "2.0.0-b", "from": "1.0.0-a", "result": "success"}
    failed, result = run_module(release_history, {"path": str(path), "action": "append", "record": record})
    assert not failed
    failed, result = run_module(release_history, {"path": str(path), "current": "3.0.0-d"})
    assert not failed
    assert [e["to"] for e in result["entries"]] == ["1.0.0-a", "2.0.0-b"]
    assert result["previous_good"] == "2.0.0-b"


@pytest.mark.parametrize("line", [b"42", b'"deploy"', b"[1, 2]", b"null", b"\xff\xfe{}", b'{"to": "\xe9"}'],
                         ids=["number", "string", "list", "null", "not-utf8", "not-utf8-in-a-record"])
def test_a_line_that_is_not_a_record_is_skipped_not_a_traceback(tmp_path, run_module, line):
    path = tmp_path / "h.jsonl"
    path.write_bytes(json.dumps(DEPLOYS[0]).encode() + b"\n" + line + b"\n" + json.dumps(DEPLOYS[1]).encode() + b"\n")
    failed, result = run_module(release_history, {"path": str(path), "current": "3.0.0-d"})
    assert not failed, result.get("msg")
    assert [e["to"] for e in result["entries"]] == ["1.0.0-a", "2.0.0-b"]
    assert result["previous_good"] == "2.0.0-b"
    failed, result = run_module(release_history, {"path": str(path), "action": "rollback", "current": "2.0.0-b",
                                                  "releases": ["1.0.0-a", "2.0.0-b"]}, check_mode=True)
    assert not failed, result.get("msg")
    assert result["target"] == "1.0.0-a"


@pytest.mark.parametrize("action", ["read", "append", "rollback"])
def test_a_history_path_that_is_a_directory_fails_with_one_message_naming_it(tmp_path, run_module, action):
    path = tmp_path / "h.jsonl"
    path.mkdir()
    failed, result = run_module(release_history, {"path": str(path), "action": action, "current": "1.0.0-a",
                                                  "releases": ["1.0.0-a"], "to": "1.0.0-a"})
    assert failed and str(path) in result["msg"] and "expected" in result["msg"], result["msg"]
    assert "Traceback" not in result["msg"] and list(path.iterdir()) == []


@pytest.mark.parametrize("record", [{"kind": "deploy", "to": ["9.9.9"], "result": "success"},
                                    {"kind": "rollback", "from": {"id": "x"}, "to": "1.0.0-a", "result": "success"},
                                    {"kind": ["deploy"], "to": "9.9.9", "result": "success"}],
                         ids=["to-a-list", "from-an-object", "kind-a-list"])
def test_a_record_whose_fields_are_not_strings_is_skipped_not_a_traceback(tmp_path, run_module, record):
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS[:2] + [record])
    failed, result = run_module(release_history, {"path": str(path), "current": "3.0.0-d"})
    assert not failed, result.get("msg")
    assert [e["to"] for e in result["entries"]] == ["1.0.0-a", "2.0.0-b"]
    assert result["previous_good"] == "2.0.0-b"


def test_a_record_with_a_null_from_is_kept(tmp_path, run_module):
    path = tmp_path / "h.jsonl"
    write(path, [dict(DEPLOYS[0], **{"from": None})] + DEPLOYS[1:2])
    failed, result = run_module(release_history, {"path": str(path), "current": "2.0.0-b"})
    assert not failed and [e["to"] for e in result["entries"]] == ["1.0.0-a", "2.0.0-b"]
    assert result["previous_good"] == "1.0.0-a"


def test_a_negative_limit_is_refused_not_read_as_all_but_the_oldest(tmp_path, run_module):
    # Before: limit -1 returned entries[1:], every record but the oldest, as if it were a count of the newest.
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS)
    failed, result = run_module(release_history, {"path": str(path), "limit": -1})
    assert failed and result["msg"] == ("release_history: limit is -1; expected how many of the newest records to "
                                        "return (0 for all)")


def test_an_append_that_cannot_be_written_fails_with_one_message_naming_the_file(tmp_path, run_module, monkeypatch):
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS[:1])

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(release_history.os, "write", full)
    failed, result = run_module(release_history, {"path": str(path), "action": "append", "record": {"to": "x"}})
    assert failed and result["msg"] == "release_history: cannot append to %s: No space left on device" % path
    assert len(path.read_text().splitlines()) == 1


def test_a_short_write_writes_the_rest_of_the_record(tmp_path, run_module, monkeypatch):
    # Before: os.write's count was not looked at, so a short write left a torn record and reported success.
    path = tmp_path / "h.jsonl"
    write(path, DEPLOYS[:1])
    real, calls = os.write, []

    def short(fd, data):
        calls.append(len(data))
        return real(fd, data[:10] if len(calls) == 1 else data)

    monkeypatch.setattr(release_history.os, "write", short)
    failed, result = run_module(release_history, {"path": str(path), "action": "append", "record": {"to": "x"}})
    assert not failed and len(calls) == 2
    assert json.loads(path.read_text().splitlines()[1]) == result["record"]
