"""Each command builds the right playbook run (with the runner replaced), and production asks first."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from cli_paths import LOCAL_INVENTORY, PRODUCTION_INVENTORY, ROOT

from shipshape.events import EventCollector
from shipshape.runner import PlaybookRunner, RunSpec


class RecordingRunner(PlaybookRunner):
    """The runner layer with ansible_runner.run replaced: records the kwargs, plays no events."""

    def __init__(self):
        self.calls: list[dict] = []
        self.extravars: list[dict] = []

        def fake_run(**kwargs):
            self.calls.append(kwargs)
            words = kwargs.get("cmdline", "").split()
            path = next((w[1:] for w in words if w.startswith("@")), None)
            if path and "extravars" in path:
                import yaml

                class Loader(yaml.SafeLoader):
                    pass
                Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
                with open(path) as handle:
                    self.extravars.append(yaml.load(handle, Loader=Loader))
            else:
                self.extravars.append({})
            kwargs["event_handler"]({"event": "playbook_on_stats", "event_data": {}})

            class Result:
                status, rc, stats = "successful", 0, {}
            return Result()

        super().__init__(ROOT, run=fake_run)


@pytest.mark.parametrize("argv, playbook, variables", [
    (["deploy", "--version", "2.0.0"], "deploy.yml",
     {"systemd_release_git_ref": "v2.0.0", "compose_release_tag": "v2.0.0"}),
    (["deploy", "--ref", "main"], "deploy.yml", {"systemd_release_git_ref": "main", "compose_release_tag": "main"}),
    (["deploy"], "deploy.yml", {}),
    (["rollback", "--to", "1.0.0-5b5edf38"], "rollback.yml", {"rollback_to": "1.0.0-5b5edf38"}),
    (["backup"], "backup.yml", {}),
    (["restore", "--backup", "b1", "--confirm", "sample_app"], "restore.yml",
     {"restore_backup_id": "b1", "restore_confirm": "sample_app"}),
    (["maintenance", "on"], "maintenance.yml", {"maintenance_state": "maintenance"}),
    (["maintenance", "off"], "maintenance.yml", {"maintenance_state": "live"}),
    (["maintenance", "read-only"], "maintenance.yml", {"maintenance_state": "read_only"}),
    (["maintenance", "status"], "maintenance.yml", {"maintenance_state": "status"}),
    (["migrate", "status"], "migrate.yml", {"migrate_action": "status"}),
    (["migrate", "apply"], "migrate.yml", {"migrate_action": "apply"}),
    (["health"], "health.yml", {}),
    (["drill", "--name", "ledger"], "drill.yml", {"restore_drill_backup_name": "ledger"}),
    (["drill", "--schedule", "*-*-01 04:00:00", "--name", "sample_app", "--name", "ledger"], "drill_schedule.yml",
     {"restore_drill_schedule_enabled": True, "restore_drill_schedule": "*-*-01 04:00:00",
      "restore_drill_schedule_names": ["sample_app", "ledger"]}),
    (["drill", "--schedule", "monthly"], "drill_schedule.yml",
     {"restore_drill_schedule_enabled": True, "restore_drill_schedule": "monthly", "restore_drill_schedule_names": []}),
    (["drill", "--unschedule"], "drill_schedule.yml",
     {"restore_drill_schedule_enabled": False, "restore_drill_schedule_names": []}),
])
def test_command_to_playbook(cli, argv, playbook, variables):
    runner = RecordingRunner()
    result = cli(*argv, "-i", str(LOCAL_INVENTORY), "-e", "extra=1", "--check", "--forks", "3", "--limit", "local1",
                 runner=runner)
    assert result.code == 0, result.stderr
    (call,) = runner.calls
    assert call["playbook"] == str(ROOT / "playbooks" / playbook)
    assert call["inventory"] == str(LOCAL_INVENTORY)
    assert call["limit"] == "local1" and call["forks"] == 3 and "--check" in call["cmdline"]
    assert call["envvars"]["ANSIBLE_CONFIG"] == str(ROOT / "ansible.cfg")
    assert call["envvars"]["ANSIBLE_COLLECTIONS_PATH"] == str(ROOT / ".collections")
    assert call["suppress_env_files"] is True and "extravars" not in call
    assert runner.extravars[0] == {"extra": "1", **variables}


def test_default_inventory_is_the_sandbox(cli):
    runner = RecordingRunner()
    assert cli("health", runner=runner).code == 0
    assert runner.calls[0]["inventory"] == str(ROOT / "inventories" / "sandbox" / "hosts.yml")


def test_extravars_file_is_deleted_after_the_run(cli):
    runner = RecordingRunner()
    cli("health", "-i", str(LOCAL_INVENTORY), "-e", "db_password=x1234", runner=runner)
    path = runner.calls[0]["cmdline"].split("@", 1)[1].split()[0]
    import os
    assert not os.path.exists(path)


def test_production_without_a_terminal_refuses(cli):
    runner = RecordingRunner()
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), runner=runner)
    assert result.code == 3 and "production (prod1) needs confirmation" in result.stderr
    assert runner.calls == []


def test_production_with_yes_runs(cli):
    runner = RecordingRunner()
    result = cli("rollback", "-y", "-i", str(PRODUCTION_INVENTORY), runner=runner)
    assert result.code == 0 and len(runner.calls) == 1


def test_production_deploy_shows_the_check_pass_and_asks(cli, test_runner):
    # The test playbook dir has a deploy.yml stand-in with the role's "Show what will change" task.
    declined = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), interactive=True, stdin="n\n")
    assert declined.code == 3
    assert "prod1: 1.0.0-5b5edf38 (1.0.0) -> 2.0.0-3a4bd4ba (2.0.0). Commits: 3a4bd4b Add notes" in declined.stdout
    assert "Proceed? [y/N]" in declined.stdout and "not confirmed" in declined.stderr
    accepted = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), interactive=True, stdin="y\n")
    assert accepted.code == 0, accepted.stderr
    assert "deploy success: 1.0.0-5b5edf38 -> 2.0.0-3a4bd4ba" in accepted.stdout


def test_production_restore_and_rollback_say_what_will_change(cli):
    runner = RecordingRunner()
    result = cli("restore", "--confirm", "sample_app", "-i", str(PRODUCTION_INVENTORY), interactive=True,
                 stdin="yes\n", runner=runner)
    assert result.code == 0
    assert "prod1: restore the newest verified backup into sample_app" in result.stdout
    assert "(the current database is kept as sample_app_before_<time>)" in result.stdout
    # A name too long for '_before_' and the stamp within 63 bytes: the kept one is shortened, and the line says so.
    long_name = "d" * 50
    result = cli("restore", "--confirm", long_name, "-i", str(PRODUCTION_INVENTORY), interactive=True,
                 stdin="yes\n", runner=runner)
    assert result.code == 0
    assert f"kept as {long_name}_before_<time>, shortened to 63 bytes)" in result.stdout
    result = cli("rollback", "--to", "r1", "-i", str(PRODUCTION_INVENTORY), interactive=True, stdin="\n",
                 runner=runner)
    assert result.code == 3 and "prod1: roll back to r1" in result.stdout


def test_build_kwargs_is_plain_data(tmp_path):
    runner = PlaybookRunner(ROOT)
    spec = RunSpec(command="health", playbook="health.yml", inventory=LOCAL_INVENTORY, diff=True, verbosity=2)
    kwargs = runner.build_kwargs(spec, tmp_path, EventCollector(), tmp_path / "ev.json")
    assert kwargs["cmdline"] == f"-e @{tmp_path / 'ev.json'} --diff"
    assert kwargs["verbosity"] == 2 and kwargs["ident"] == "main" and kwargs["quiet"] is True
    assert kwargs["settings"] == {"suppress_output_file": True}


def test_the_venv_of_the_cli_comes_first_on_path_when_started_by_full_path(monkeypatch):
    """A systemd timer runs /opt/shipshape/.venv/bin/shipshape with PATH=/usr/bin:/bin: ansible-playbook must still
    be the venv's, not one from the system or none at all."""
    bindir = str(Path(sys.executable).parent)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert PlaybookRunner(ROOT).envvars()["PATH"].split(os.pathsep) == [bindir, "/usr/bin", "/bin"]
    monkeypatch.setenv("PATH", os.pathsep.join([bindir, "/usr/bin"]))
    assert "PATH" not in PlaybookRunner(ROOT).envvars()
