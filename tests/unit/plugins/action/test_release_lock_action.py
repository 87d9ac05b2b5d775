"""The controller side of shipshape.ops.release_lock: a holder on this controller whose process is gone is
provably dead; the run says so, and with break_stale=true breaks that holder's lock, and only that one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from unittest import mock

import pytest

from ansible_collections.shipshape.ops.plugins.action import release_lock as action


def a_dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_process_alive():
    assert action.process_alive(os.getpid(), action.process_start(os.getpid()))
    assert not action.process_alive(a_dead_pid())
    assert not action.process_alive(os.getpid(), "1"), "a reused pid (other start time) is not the holder"
    assert action.process_alive("not-a-pid") and action.process_alive(0), "no proof, no death"


def refused(holder, msg="Refused: the lock /l is held by x. Wait for that run to finish."):
    return {"failed": True, "lock_held": True, "holder": holder, "refusal": "Refused: the lock /l is held by x.",
            "msg": msg}


@pytest.mark.parametrize("break_stale", [False, True])
def test_a_dead_holder_on_this_controller(break_stale, make_plugin):
    holder = {"token": "dead", "controller": socket.gethostname(), "controller_pid": a_dead_pid()}
    plugin = make_plugin(action, {"path": "/l", "token": "new", "break_stale": break_stale, "break_var": "restore_lock_break"})
    calls = []

    def execute(module_name, module_args, task_vars):
        calls.append(module_args)
        if module_args.get("holder_state") == "dead" and module_args.get("break_stale"):
            return {"acquired": True, "broken": True, "holder": {"token": "new"}}
        if module_args.get("holder_state") == "dead":
            return refused(holder, msg="Refused ... That run is gone (worded by the module).")
        return refused(holder)

    with mock.patch.object(plugin, "_execute_module", side_effect=execute), \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={})
    assert calls[0]["controller"] == socket.gethostname() and calls[0]["controller_pid"] == os.getppid()
    assert len(calls) == 2 and calls[1]["holder_state"] == "dead" and calls[1]["holder_token"] == "dead"
    if break_stale:
        assert calls[1]["break_stale"] is True and calls[1]["holder_state"] == "dead"
        assert result["broken"] and not result.get("failed") and result["dead_holder"] == holder
    else:
        assert calls[1]["break_stale"] is False
        assert result["failed"] and result["holder_dead"] is True
        # The module words the final failure (ansible-core prints the module's message as the task's error).
        assert result["msg"] == "Refused ... That run is gone (worded by the module)."


@pytest.mark.parametrize("where", ["alive-here", "other-controller"])
def test_a_holder_not_proved_dead_is_never_broken(where, make_plugin):
    holder = {"token": "held", "controller": socket.gethostname(), "controller_pid": os.getpid(),
              "controller_pid_start": action.process_start(os.getpid())}
    if where == "other-controller":
        holder = dict(holder, controller="ci-runner-7", controller_pid=a_dead_pid())
    plugin = make_plugin(action, {"path": "/l", "token": "new", "break_stale": True})
    with mock.patch.object(plugin, "_execute_module", return_value=refused(holder)) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        result = plugin.run(task_vars={})
    assert result["failed"]
    assert all(c.kwargs["module_args"].get("holder_state") != "dead" for c in execute.call_args_list)
    if where == "alive-here":
        assert execute.call_count == 2 and execute.call_args.kwargs["module_args"]["holder_state"] == "alive"
        assert result["holder_dead"] is False
    else:
        assert execute.call_count == 1 and "holder_dead" not in result


def test_the_owner_defaults_to_the_controllers_user_and_host(monkeypatch, make_plugin):
    monkeypatch.setenv("SHIPSHAPE_USER", "ci-bot")
    plugin = make_plugin(action, {"path": "/l", "token": "new"})
    with mock.patch.object(plugin, "_execute_module", return_value={"acquired": True}) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        plugin.run(task_vars={})
    assert execute.call_args.kwargs["module_args"]["owner"] == "ci-bot@%s" % socket.gethostname()
    plugin = make_plugin(action, {"path": "/l", "token": "new", "owner": "alice@laptop"})
    with mock.patch.object(plugin, "_execute_module", return_value={"acquired": True}) as execute, \
            mock.patch.object(action.ActionBase, "run", return_value={}):
        plugin.run(task_vars={})
    assert execute.call_args.kwargs["module_args"]["owner"] == "alice@laptop"
