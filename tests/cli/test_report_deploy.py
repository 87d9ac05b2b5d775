"""The deploy's pre-deploy backup and keep-N, as the report shows them."""

from __future__ import annotations

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
