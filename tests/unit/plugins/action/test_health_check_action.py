"""The controller side of shipshape.ops.health_check: validate, summarize and report run on the controller with the
module's functions (no module run), give the module's answers, and never return a check's password or token;
action=run and action=check still run the module on the host."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible.errors import AnsibleActionFail
from ansible_collections.shipshape.ops.plugins.action import health_check as action

SECRET = "s3cret-Pa55word"


@pytest.fixture
def run_plugin(make_plugin):
    """Runs the plugin with ``args`` and checks that no module ran."""
    return lambda args: run_controller_side(make_plugin(action, args))


def run_controller_side(plugin):
    with mock.patch.object(plugin, "_execute_module", side_effect=AssertionError("no module run")) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={})
    assert not execute.called
    return result


def test_validate_names_each_problem_and_masks_the_password(run_plugin):
    checks = [{"name": "db", "kind": "postgres", "db": "app", "user": "app", "password": SECRET, "port": "x"},
              {"name": "api", "kind": "http", "url": "http://127.0.0.1/", "delegate_to": "nowhere"}]
    result = run_plugin({"action": "validate", "checks": checks, "hosts": ["app1"], "label": "deploy_health_checks"})
    assert result["failed"] is True
    assert result["msg"].startswith("deploy_health_checks are invalid: ")
    assert "check 'db' (postgres): field 'port' must be a number, got 'x'" in result["msg"]
    assert "check 'api': field 'delegate_to' is 'nowhere', which is not a host of this inventory" in result["msg"]
    assert SECRET not in repr(result)


def test_validate_returns_the_delegates_once_each(run_plugin):
    checks = [{"name": "a", "kind": "redis", "delegate_to": "db1"}, {"name": "b", "kind": "redis", "delegate_to": "db1"},
              {"name": "c", "kind": "systemd", "unit": "app.service"}]
    result = run_plugin({"action": "validate", "checks": checks, "hosts": ["db1", "app1"]})
    assert not result.get("failed") and result["delegates"] == ["db1"]


def test_summarize_puts_runs_together_and_fails_the_host_on_request(run_plugin):
    checks = [{"name": "unit", "kind": "systemd", "unit": "app.service"},
              {"name": "cache", "kind": "redis", "delegate_to": "db1", "password": SECRET}]
    local = {"checks": [{"name": "unit", "kind": "systemd", "status": "ok", "message": "active", "value": None,
                         "duration_ms": 3, "details": {}}], "started_at": "2026-12-04T07:00:00Z"}
    unreachable = {"item": "db1", "unreachable": True, "msg": "ssh: connect to db1 refused " + SECRET}
    result = run_plugin({"action": "summarize", "checks": checks, "runs": [local, unreachable], "host": "app1",
                         "fail_on": "failed"})
    assert result["fail"] is True and result["result"]["status"] == "failed"
    assert [c["status"] for c in result["result"]["checks"]] == ["ok", "failed"]
    assert "the probe did not run on db1: ssh: connect to db1 refused" in result["result"]["checks"][1]["message"]
    assert SECRET not in repr(result)
    assert result["report"][0] == "FAILED: 2 checks on app1: 1 ok, 0 degraded, 1 failed"


def test_report_over_hosts_names_a_host_without_result(run_plugin):
    result = run_plugin({"action": "report", "results": {"app1": {"status": "ok", "message": "fine", "checks": []}},
                         "hosts": ["app1", "app2"], "fail_on": "failed"})
    assert result["fail"] is True
    assert result["reasons"] == ["app2 has no result (unreachable, or invalid checks)"]


def test_an_unknown_argument_is_refused_like_the_module_does(run_plugin):
    with pytest.raises(AnsibleActionFail, match="Unsupported parameters"):
        run_plugin({"action": "validate", "checks": [], "nosuch": 1})


@pytest.mark.parametrize("what", ["run", "check"])
def test_run_and_check_execute_the_module_on_the_host(make_plugin, what):
    args = {"action": what, "checks": [{"name": "unit", "kind": "systemd", "unit": "app.service"}]}
    plugin = make_plugin(action, args)
    answer = {"changed": False, "checks": [], "delegate": None, "started_at": "t"}
    with mock.patch.object(plugin, "_execute_module", return_value=answer) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={"x": 1})
    execute.assert_called_once_with(module_name="shipshape.ops.health_check", module_args=args,
                                    task_vars={"x": 1})
    assert result == answer
