"""The deploy's pre-deploy backup and keep-N, as the report shows them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from shipshape.report import RunReport, describe_result

DEPLOY = {"result": "success", "from": "1.0.0-a", "release": "2.0.0-b", "version": "2.0.0",
          "backup": {"id": "sample_app-20261202T150000Z", "hosts": ["db1"]}, "pruned": ["0.9.0-z", "1.1.0-f"]}


def test_a_deploy_shows_its_backup_set_and_what_keep_n_removed():
    lines = describe_result("deploy_result", DEPLOY)
    assert lines[0].startswith("deploy success: 1.0.0-a -> 2.0.0-b")
    assert "pre-deploy backup sample_app-20261202T150000Z on db1" in lines
    assert "pruned (keep-N): 0.9.0-z, 1.1.0-f" in lines


def test_a_deploy_without_backup_or_pruning_adds_no_lines():
    lines = describe_result("deploy_result", {**DEPLOY, "backup": {}, "pruned": []})
    assert not [line for line in lines if "backup" in line or "pruned" in line]


def test_the_pre_deploy_backup_id_is_among_the_run_s_backup_ids():
    results = SimpleNamespace(results={"app1": {"deploy_result": DEPLOY}, "app2": {"deploy_result": {**DEPLOY, "backup": {}}}})
    assert RunReport.backup_ids.fget(results) == ["sample_app-20261202T150000Z"]


def test_a_retried_rollback_says_which_release_runs_and_how_to_go_further():
    from shipshape.report import describe_result

    lines = describe_result("rollback_result", {
        "result": "unchanged", "from": "2.0.0-bbbb", "to": "2.0.0-bbbb",
        "message": "already rolled back: 1.0.0-aaaa runs since the rollback from 2.0.0-bbbb; "
                   "shipshape rollback --to <release> goes further back"})
    assert lines[0] == "rollback unchanged: 2.0.0-bbbb -> 2.0.0-bbbb"
    assert lines[1].startswith("already rolled back: 1.0.0-aaaa runs")


# --- a rolling deploy's batches, as deploy's batch_end sets them (the collection's own filter) ------------------

def batch(active, serial, limit=0):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "rolling.py"
    spec = importlib.util.spec_from_file_location("shipshape_rolling_filter", path)
    rolling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rolling)
    return rolling.rolling_losses(active, ["app1", "app2", "app3", "app4", "app5"], serial, limit)


def test_a_stopped_rolling_deploy_names_what_it_lost_and_the_hosts_it_did_not_deploy():
    lines = describe_result("deploy_batch_result", batch(["app4"], [2]))
    assert lines == ["rolling deploy stopped after batch 2 of 3: lost app3 unreachable (50.0% of the batch, more than "
                     "deploy_max_fail_percentage 0%); not deployed: app5"]


def test_a_batch_within_the_limit_says_the_rest_went_on():
    assert describe_result("deploy_batch_result", batch(["app4"], [2], 50)) == [
        "batch 2 of 3 lost app3 unreachable (50.0% of the batch, within deploy_max_fail_percentage 50%); the next batches went on"]
    assert describe_result("deploy_batch_result", batch(["app1", "app2"], [2])) == ["batch 1 of 3 (app1, app2): no host lost"]


def test_a_deploy_in_one_batch_that_lost_nothing_adds_no_line_to_the_report():
    from shipshape.report import to_markdown

    assert describe_result("deploy_batch_result", batch(["app1", "app2", "app3", "app4", "app5"], ["100%"])) == []
    from test_report import META

    one_batch = batch(["app1", "app2", "app3", "app4", "app5"], ["100%"])
    report = RunReport.from_summary({"results": {"app1": {"deploy_result": DEPLOY, "deploy_batch_result": one_batch}}},
                                    **META)
    markdown = to_markdown(report)
    assert "`deploy_result`" in markdown and "deploy_batch_result" not in markdown


def test_a_host_whose_deploy_failed_is_named_as_failed_and_the_rollout_s_end_names_stale_locks():
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "rolling.py"
    spec = importlib.util.spec_from_file_location("shipshape_rolling_filter", path)
    rolling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rolling)
    found = rolling.rolling_losses(["app2", "app3"], ["app1", "app2", "app3"], [1, 2], 0, ["", "app3"])
    assert describe_result("deploy_batch_result", found) == [
        "rolling deploy stopped after batch 2 of 2: lost app3 (50.0% of the batch, more than deploy_max_fail_percentage 0%)"]
    lines = describe_result("deploy_rollout_result", {
        "stopped": True, "failed": ["app3"], "unreachable": ["app4"], "stale_locks": ["app4"],
        "lock_path": "/srv/sample_app/.deploy.lock", "switch_back": True})
    assert lines[0].startswith("stale deploy lock on app4 (/srv/sample_app/.deploy.lock): lost after taking it;")
    assert "deploy_lock_break=true" in lines[0]
    assert lines[1].startswith("rollout stopped: the hosts it deployed were switched back")
    assert describe_result("deploy_rollout_result", {"stopped": False, "stale_locks": [], "switch_back": False}) == []


# --- a degraded release the gate let through (deploy_health_fail_on=failed) --------------------------------------

def test_a_degraded_release_that_passed_the_gate_is_a_warning_in_every_report(tmp_path):
    from shipshape.report import to_markdown

    warning = ("the gate let a degraded release through (deploy_health_fail_on=failed): healthz "
               "(status is 'degraded', expected 'ok' (the app reports itself degraded))")
    summary = {"hosts": [{"name": "app1", "ok": 40}], "failures": [], "warnings": ["an ansible warning"],
               "results": {"app1": {"deploy_result": {**DEPLOY, "warnings": [warning]}},
                           "app2": {"deploy_result": {**DEPLOY, "warnings": []}}}}
    report = RunReport.from_summary(
        summary, run_id="r1", command="deploy", playbook="deploy.yml", inventory="inv", limit=None, argv=[],
        user="u", check=False, diff=False, started="s", ended="e", duration_s=1.0, result="ok", exit_code=0,
        message="", runner_status="successful", runner_rc=0)
    assert report.warnings == [f"app1: {warning}", "an ansible warning"]
    markdown = to_markdown(report)
    assert "## Warnings" in markdown and f"- app1: {warning}" in markdown
    assert report.to_dict()["warnings"][0].startswith("app1: the gate let a degraded release through")


def test_a_report_without_warnings_has_no_warnings_section():
    from shipshape.report import to_markdown

    report = RunReport.from_summary(
        {"results": {"app1": {"deploy_result": DEPLOY}}}, run_id="r1", command="deploy", playbook="deploy.yml",
        inventory="inv", limit=None, argv=[], user="u", check=False, diff=False, started="s", ended="e",
        duration_s=1.0, result="ok", exit_code=0, message="", runner_status="successful", runner_rc=0)
    assert report.warnings == [] and "## Warnings" not in to_markdown(report)
