"""The history layer: SQLite rows per run, lookup, drills and their trend."""

from __future__ import annotations

from test_report import META, report_of

from shipshape.history import History, sparkline
from shipshape.report import RunReport


def test_record_and_list(tmp_path):
    history = History(tmp_path / "history.sqlite")
    assert history.runs() == []
    history.record(report_of("ok", run_id="20261125T000001Z-aaaaaa"), tmp_path / "run1")
    history.record(report_of("fail", run_id="20261125T000002Z-bbbbbb", started="2026-11-25T00:00:02+00:00",
                             result="failed", exit_code=1, message="local1: nope"), tmp_path / "run2")
    rows = history.runs()
    assert [r["run_id"] for r in rows] == ["20261125T000002Z-bbbbbb", "20261125T000001Z-aaaaaa"]
    assert rows[1]["release_ids"] == ["2.0.0-3a4bd4ba"] and rows[1]["result"] == "success"
    assert rows[0]["exit_code"] == 1 and rows[0]["message"] == "local1: nope"
    assert rows[0]["user"] == "tester" and rows[0]["command"] == "deploy" and rows[0]["inventory"] == "hosts.yml"
    assert history.find("last")["run_id"] == "20261125T000002Z-bbbbbb"
    assert history.find("20261125T000001")["run_id"] == "20261125T000001Z-aaaaaa"
    assert history.find("2026") is None  # ambiguous prefix
    assert history.find("nosuch") is None


def test_drills_trend(tmp_path):
    history = History(tmp_path / "history.sqlite")
    base = report_of("rescued", command="drill")
    for index, seconds in enumerate([7.5, 9.0, 6.0]):
        data = base.to_dict()
        data.update(run_id=f"2026112{index}T000000Z-cccccc", started=f"2026-11-2{index}T00:00:00+00:00")
        data["results"]["local1"]["restore_drill_result"]["recovery_s"] = seconds
        history.record(RunReport.from_dict(data), tmp_path)
    history.record(report_of("ok", run_id="20261130T000000Z-dddddd"), tmp_path)  # not a drill
    drills = history.drills()
    assert [d["drill_recovery_s"] for d in drills] == [7.5, 9.0, 6.0]
    assert [d["delta_s"] for d in drills] == [None, 1.5, -3.0]
    assert drills[0]["backup_ids"] == ["sample_app-20261125T080000Z"]


def test_sparkline():
    assert sparkline([]) == ""
    assert sparkline([1.0, None, 2.0]) == "▁ █"
    assert len(sparkline([3, 3, 3])) == 3


def test_meta_fixture_is_complete():
    assert set(META) <= set(RunReport.__dataclass_fields__)
