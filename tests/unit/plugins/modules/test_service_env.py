"""The service_env module: only the named variables of a running service's environment, read with argv."""

from __future__ import annotations

import builtins
import io
import json

import pytest

from ansible_collections.shipshape.ops.plugins.modules import service_env


class FakeModule:
    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def run_command(self, argv):
        self.calls.append(argv)
        return self.answers.pop(0)


def test_pick_keeps_only_the_named_variables():
    entries = ["DATABASE_URL=postgresql://u:secret@db/x", "MAINTENANCE_MODE=1", "READ_ONLY_MODE=", "PATH=/bin", "NOEQUALS"]
    assert service_env.pick(entries, ["MAINTENANCE_MODE", "READ_ONLY_MODE"]) == {"MAINTENANCE_MODE": "1", "READ_ONLY_MODE": ""}


def test_systemd_reads_the_main_process_environment_and_nothing_else(monkeypatch):
    module = FakeModule([(0, "4242\n", "")])
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/4242/environ":
            return io.BytesIO(b"SECRET=hunter2\0MAINTENANCE_MODE=1\0READ_ONLY_MODE=0\0")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    result = service_env.read_systemd(module, "app.service", ["MAINTENANCE_MODE", "READ_ONLY_MODE"])
    assert result == {"running": True, "env": {"MAINTENANCE_MODE": "1", "READ_ONLY_MODE": "0"}, "pid": 4242}
    assert module.calls == [["systemctl", "show", "--property", "MainPID", "--value", "--", "app.service"]]
    assert "hunter2" not in json.dumps(result)


def test_a_stopped_service_is_not_running():
    result = service_env.read_systemd(FakeModule([(0, "0\n", "")]), "app.service", ["X"])
    assert result == {"running": False, "env": {}, "pid": 0}


def test_compose_reads_the_first_running_container_with_argv():
    module = FakeModule([(0, "abc123\ndef456\n", ""), (0, json.dumps(["SECRET=x", "READ_ONLY_MODE=1"]), "")])
    result = service_env.read_compose(module, "/srv/app", "app", ["MAINTENANCE_MODE", "READ_ONLY_MODE"])
    assert result == {"running": True, "env": {"READ_ONLY_MODE": "1"}, "container": "abc123"}
    assert module.calls[0] == ["docker", "compose", "--project-directory", "/srv/app", "ps", "--quiet", "--status",
                               "running", "--", "app"]
    assert module.calls[1] == ["docker", "inspect", "--format", "{{json .Config.Env}}", "--", "abc123"]


def test_compose_without_a_running_container_is_not_running():
    result = service_env.read_compose(FakeModule([(0, "", "")]), "/srv/app", "app", ["X"])
    assert result == {"running": False, "env": {}, "container": ""}


@pytest.mark.parametrize("args, expected", [
    ({"service": "app.service", "names": ["MAINTENANCE_MODE|.*"]}, "names item 'MAINTENANCE_MODE|.*' must be"),
    ({"service": "app.service", "names": ["A\nB"]}, "names item 'A\nB' must be"),
    ({"service": "$(touch /tmp/x)", "names": ["A"]}, "service '$(touch /tmp/x)' must be a systemd unit name"),
    ({"service": "-H", "names": ["A"]}, "service '-H' must be a systemd unit name"),
    ({"compose_service": "app; id", "compose_project_dir": "/srv/app", "names": ["A"]},
     "compose_service 'app; id' must be a compose service name"),
])
def test_refuses_bad_names_naming_the_option_and_value(run_module, args, expected):
    failed, result = run_module(service_env, args)
    assert failed and expected in result["msg"]
