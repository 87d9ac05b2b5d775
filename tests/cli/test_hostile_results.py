"""A result fact of an unexpected shape (a role's error path, a playbook's own set_fact of the same name) must not
cost the run its reports and history row: it is shown as plain data, never a traceback after the run."""

from __future__ import annotations

import io

from cli_paths import LOCAL_INVENTORY
from rich.console import Console

from shipshape.history import History
from shipshape.report import RunReport, render_terminal, to_markdown

ODD = {"status_result": {"report": "one string, not a list"}, "logs_result": {"matched": "many", "records": 5},
       "restore_result": {"backup_id": "b1", "row_counts": [1, 2]},
       "restore_drill_result": {"summary": "ok", "recovery_s": 3, "phases_s": ["dump", 1]},
       "preflight_result": {"status": "ok", "checks": "all good"}}


def test_odd_result_shapes_render_in_every_report():
    report = RunReport(run_id="r", command="playbook", playbook="p", inventory="i", limit=None, argv=[], user="u",
                       check=False, diff=False, started="s", ended="e", duration_s=1.0, result="success", exit_code=0,
                       message="", runner_status="successful", runner_rc=0, results={"web1": ODD})
    markdown = to_markdown(report)
    assert "one string, not a list" in markdown and "web1" in markdown
    out = io.StringIO()
    render_terminal(report, Console(file=out, width=200))
    assert "one string, not a list" in out.getvalue()


def test_a_run_with_an_odd_result_is_reported_and_recorded(cli, state_dir, tmp_path):
    playbook = tmp_path / "odd.yml"
    playbook.write_text("- hosts: app_servers\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.set_fact:\n        status_result: {report: one string}\n")
    result = cli("playbook", str(playbook), "-i", str(LOCAL_INVENTORY))
    assert result.code == 0 and "Traceback" not in result.stderr, result
    assert "one string" in result.stdout
    (row,) = History(state_dir / "history.sqlite").runs()
    assert row["result"] == "success"


def test_result_facts_that_are_not_mappings_give_no_ids():
    # release_ids, backup_ids and drill_recovery_s called .get on each: a string deploy_result raised AttributeError in
    # to_json and in the history, after the run.
    results = {"web1": {"deploy_result": "deployed", "rollback_result": ["x"], "backup_result": "made",
                        "restore_result": 3, "restore_drill_result": "ok"},
               "web2": {"deploy_result": {"release": "2.0.0-abc"}, "backup_result": {"id": "app-20261201T000000Z"},
                        "restore_drill_result": {"recovery_s": "n/a"}}}
    report = RunReport(run_id="r", command="playbook", playbook="p", inventory="i", limit=None, argv=[], user="u",
                       check=False, diff=False, started="s", ended="e", duration_s=1.0, result="success", exit_code=0,
                       message="", runner_status="successful", runner_rc=0, results=results)
    data = report.to_dict()
    assert data["release_ids"] == ["2.0.0-abc"] and data["backup_ids"] == ["app-20261201T000000Z"]
    assert data["drill_recovery_s"] is None
