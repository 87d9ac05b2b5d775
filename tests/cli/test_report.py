"""The report layer on recorded event streams (tests/cli/data/*.events.json)."""

from __future__ import annotations

import copy
import json
import re
import xml.etree.ElementTree as ET

import pytest
from cli_paths import DATA

from shipshape.events import EventCollector, failure_message
from shipshape.report import RunReport, describe_result, to_json, to_junit, to_markdown, write_reports

META = dict(run_id="20261125T000000Z-abcdef", command="deploy", playbook="deploy.yml", inventory="hosts.yml",
            limit=None, argv=["shipshape", "deploy"], user="tester", check=False, diff=False,
            started="2026-11-25T00:00:00+00:00", ended="2026-11-25T00:00:10+00:00", duration_s=10.0,
            result="success", exit_code=0, message="", runner_status="successful", runner_rc=0)


def collect(name: str) -> EventCollector:
    collector = EventCollector()
    for event in json.loads((DATA / f"{name}.events.json").read_text()):
        assert collector(copy.deepcopy(event)) is True  # the handler always returns True
    return collector


def report_of(name: str, **meta) -> RunReport:
    return RunReport.from_summary(collect(name).summary(), **{**META, **meta})


def test_ok_stream_counts_and_results():
    report = report_of("ok")
    (host,) = report.hosts
    assert (host.name, host.ok, host.changed, host.failed, host.skipped) == ("local1", 3, 1, 0, 1)
    statuses = {t["task"]: t["status"] for t in report.tasks}
    assert statuses == {"Say hello": "ok", "Change something": "changed", "Skip something": "skipped",
                        "Report the deploy": "ok"}
    assert all(t["duration_s"] >= 0 and t["started"] for t in report.tasks if t["status"] != "skipped")
    assert report.results["local1"]["deploy_result"]["release"] == "2.0.0-3a4bd4ba"
    assert report.release_ids == ["2.0.0-3a4bd4ba"]
    line = describe_result("deploy_result", report.results["local1"]["deploy_result"])[0]
    assert line.startswith("deploy success: 1.0.0-5b5edf38 -> 2.0.0-3a4bd4ba (version 2.0.0)")


def test_failure_message_is_one_line_from_the_failed_task():
    collector = collect("fail")
    assert collector.failure_messages() == ["local1: Release 'nosuch' does not exist on local1"]
    report = RunReport.from_summary(collector.summary(), **META)
    assert report.hosts[0].failed == 1


def test_unreachable_stream():
    collector = collect("unreachable")
    assert collector.stats["dark"] == {"dead": 1}
    (message,) = collector.failure_messages()
    assert message.startswith("dead: ") and "port 1" in message and "\n" not in message


def test_a_stopped_docker_container_is_unreachable_not_a_failed_module():
    # The docker connection reports it as a module whose output was not JSON (recorded on a stopped container).
    collector = collect("docker_gone")
    assert collector.stats["dark"] == {"gone": 1} and not any(collector.stats["failures"].values())
    (message,) = collector.failure_messages()
    assert re.fullmatch(r"gone: unreachable: docker: Container [0-9a-f]+ is not running", message), message
    report = report_of("docker_gone", result="unreachable", exit_code=2)
    (host,) = report.hosts
    assert (host.name, host.failed, host.unreachable) == ("gone", 0, 1)
    assert [t["status"] for t in report.tasks] == ["unreachable"]
    assert "deserialization" not in to_markdown(report)


def test_rescued_failure_is_not_a_failure_and_drill_results_are_read():
    report = report_of("rescued", command="drill")
    statuses = {t["task"]: t["status"] for t in report.tasks}
    assert statuses["Health gate"] == "rescued"
    assert report.failures == []
    assert report.changes == ["local1: 1.0.0-5b5edf38 (1.0.0) -> 2.0.0-3a4bd4ba (2.0.0). Commits: 3a4bd4b Add notes"]
    assert report.drill_recovery_s == 7.5
    assert report.backup_ids == ["sample_app-20261125T080000Z"]
    drill = describe_result("restore_drill_result", report.results["local1"]["restore_drill_result"])
    assert "recovery time 7.5 s" in drill[1] and any("rows notes" in x for x in drill)
    health = describe_result("preflight_result", report.results["local1"]["preflight_result"])
    assert health[0].startswith("health degraded") and "dlq" in health[2]


def test_json_round_trip_and_schema_version():
    report = report_of("ok")
    data = json.loads(to_json(report))
    assert data["schema_version"] == 1
    for key in ("run_id", "command", "hosts", "tasks", "results", "exit_code", "result", "artifacts", "changes"):
        assert key in data
    again = RunReport.from_dict(data)
    assert again.to_dict() == report.to_dict()
    with pytest.raises(ValueError):
        RunReport.from_dict({**data, "schema_version": 99})


def test_markdown_has_hosts_results_and_failures():
    text = to_markdown(report_of("fail", result="failed", exit_code=1, message="local1: nope"))
    assert "# shipshape deploy: failed" in text
    assert "| local1 | 1 | 0 | 1 | 0 | 0 |" in text
    assert "## Failed tasks" in text and "does not exist on local1" in text


def test_junit_a_testcase_per_host_and_task_failures_as_failure(tmp_path):
    report = report_of("unreachable", result="unreachable", exit_code=2)
    paths = write_reports(report, [tmp_path / "a", tmp_path / "b"])
    assert set(paths) == {"report.json", "report.md", "junit.xml"}
    assert (tmp_path / "b" / "junit.xml").is_file()
    root = ET.parse(paths["junit.xml"]).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(report.tasks) == 1
    failure = cases[0].find("failure")
    assert cases[0].get("classname") == "dead" and failure is not None and failure.get("type") == "unreachable"
    ok = ET.fromstring(to_junit(report_of("ok")).split("\n", 1)[1])
    assert len(ok.findall(".//testcase")) == 4 and len(ok.findall(".//failure")) == 0
    assert len(ok.findall(".//skipped")) == 1


def test_failure_message_of_loops_and_prefixes():
    assert failure_message({"msg": "All items completed", "results": [
        {"failed": False, "msg": ""}, {"failed": True, "msg": "second item broke"}]}) == "second item broke"
    assert failure_message({"msg": "Task failed: Action failed: boom\n  here"}) == "boom here"
    assert failure_message({"rc": 2, "stderr": "line one\nlast line"}) == "last line"


@pytest.mark.parametrize("value, expected", [
    ({"backup_id": "b1", "parts": ["postgres", "redis"], "database": "sample_app", "replaced": "sample_app_before_1"},
     "restored postgres, redis of b1 into sample_app (previous kept as sample_app_before_1)"),
    ({"backup_id": "app-b2", "parts": ["files"], "database": "", "files": ["/srv/sample_app/shared/uploads"]},
     "restored files of app-b2; files back in /srv/sample_app/shared/uploads"),
])
def test_the_restore_line_names_what_came_back(value, expected):
    assert describe_result("restore_result", value)[0] == expected


def test_the_restore_lines_name_the_grants_settings_and_roles_put_back():
    value = {"backup_id": "b1", "parts": ["postgres"], "database": "rich", "row_counts": {"notes": 2},
             "roles_created": ["rich_reader"], "database_privileges": ["rich_reader:CONNECT"],
             "database_settings": ["search_path", "rich_reader:statement_timeout"]}
    assert describe_result("restore_result", value)[1:] == [
        "row counts: notes 2", "roles created from the backup: rich_reader", "database privileges: rich_reader:CONNECT",
        "database settings: search_path, rich_reader:statement_timeout"]
