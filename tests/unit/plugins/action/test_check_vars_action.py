"""The controller side of shipshape.ops.check_vars: the values are the task's variables, templated, checked on the
controller with no module run; explicit values are checked instead when given."""

from __future__ import annotations

from unittest import mock

from ansible_collections.shipshape.ops.plugins.action import check_vars as action


def run(plugin, task_vars):
    plugin._templar = mock.MagicMock()
    plugin._templar.template.side_effect = lambda data: data
    with mock.patch.object(plugin, "_execute_module", side_effect=AssertionError("no module run")) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars=task_vars)
    assert not execute.called
    return result


def test_the_task_variables_are_checked_and_a_refusal_names_the_variable(make_plugin):
    plugin = make_plugin(action, {"rules": {"x_root": "abs_path", "x_keep": {"kind": "int", "min": 2}}})
    result = run(plugin, {"x_root": "/srv/../etc", "x_keep": 3, "other": "not read"})
    assert result["failed"] is True
    assert result["msg"].startswith("x_root '/srv/../etc' must be an absolute path")
    assert result["checked"] == ["x_root", "x_keep"]
    template_arg = plugin._templar.template.call_args[0][0]
    assert template_arg == {"x_root": "/srv/../etc", "x_keep": 3}


def test_good_values_pass_without_change(make_plugin):
    result = run(make_plugin(action, {"rules": {"x_root": "abs_path"}}), {"x_root": "/srv/app"})
    assert not result.get("failed") and result["changed"] is False and result["problems"] == []


def test_explicit_values_are_checked_instead_of_the_task_variables(make_plugin):
    plugin = make_plugin(action, {"rules": {"x_root": "abs_path"}, "values": {"x_root": "relative"}})
    result = run(plugin, {"x_root": "/srv/app"})
    assert result["failed"] is True and "x_root 'relative'" in result["msg"]
