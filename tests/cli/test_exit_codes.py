"""Every exit code, through the real runner layer and small playbooks against localhost."""

from __future__ import annotations

import json
import re

import pytest
from cli_paths import LOCAL_INVENTORY, PLAYBOOKS


def play(cli, name, *extra):
    return cli("playbook", str(PLAYBOOKS / name), "-i", str(LOCAL_INVENTORY), *extra)


def test_0_success_with_reports_and_history(cli, state_dir, tmp_path):
    result = play(cli, "ok.yml", "--report-dir", str(tmp_path / "reports"))
    assert result.code == 0, result.stderr
    assert "deploy success: 1.0.0-5b5edf38 -> 2.0.0-3a4bd4ba" in result.stdout
    assert "reports: " in result.stdout
    (run_dir,) = (state_dir / "runs").iterdir()
    for name in ("report.json", "report.md", "junit.xml"):
        assert (run_dir / name).is_file() and (tmp_path / "reports" / name).is_file()
    assert (run_dir / "artifacts" / "main" / "job_events").is_dir()
    assert not (run_dir / "env").exists()  # nothing of the run's input is kept in env/
    history = cli("history", "--json")
    (row,) = json.loads(history.stdout)
    assert row["run_id"] == run_dir.name and row["result"] == "success" and row["release_ids"] == ["2.0.0-3a4bd4ba"]
    shown = cli("report", run_dir.name[:17])
    assert shown.code == 0 and "# shipshape playbook: success" in shown.stdout
    assert json.loads(cli("report", "last", "--json").stdout)["schema_version"] == 1


def test_1_task_failed(cli):
    result = play(cli, "fail.yml")
    assert result.code == 1
    assert "failed (exit 1): local1: Release 'nosuch' does not exist on local1" in result.stderr
    assert "the run's artifacts are in" in result.stderr


def test_2_unreachable(cli):
    result = play(cli, "unreachable.yml")
    assert result.code == 2, result.stderr
    assert "unreachable (exit 2): dead: " in result.stderr


@pytest.fixture
def stopped_container():
    """The inventory's `gone`: a container of the test image, stopped (as a host that went away mid-run)."""
    import shutil
    import subprocess

    if not shutil.which("docker"):
        pytest.skip("no docker here")
    name = "shipshape-events-gone"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", name, "shipshape/base:bookworm", "sleep", "600"], check=True,
                   capture_output=True)
    subprocess.run(["docker", "stop", "-t", "0", name], check=True, capture_output=True)
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def test_2_a_stopped_docker_container_is_unreachable(cli, stopped_container):
    # The docker connection reports it as a module whose output was not JSON; it is a lost connection.
    result = play(cli, "docker_gone.yml")
    assert result.code == 2, result.stderr
    assert "unreachable (exit 2): gone: unreachable: docker: Container " in result.stderr
    assert "is not running" in result.stderr and "deserialization" not in result.stderr


SYNTAX_ERROR = """---
- name: Not a valid play
  hosts: app_servers
  tasks:
    - name: Bad module
      no_such_module_anywhere:
        x: 1
"""


def test_3_bad_input(cli, tmp_path):
    # Written here, not kept in playbooks/: ansible-lint would rightly refuse it.
    (tmp_path / "syntax.yml").write_text(SYNTAX_ERROR)
    cases = [
        (["playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(tmp_path / "nope.yml")], "inventory not found"),
        (["playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "-e", "{oops"], "cannot parse extra vars"),
        (["playbook", str(tmp_path / "missing.yml"), "-i", str(LOCAL_INVENTORY)], "not found"),
        (["restore", "-i", str(LOCAL_INVENTORY)], "--confirm DB is required"),
        (["deploy", "--version", "1", "--ref", "v1"], "not allowed with"),
        (["maintenance", "sideways"], "invalid choice"),
        (["nosuchcommand"], "invalid choice"),
        (["playbook", str(tmp_path / "syntax.yml"), "-i", str(LOCAL_INVENTORY)], "no_such_module_anywhere"),
    ]
    for argv, expected in cases:
        result = cli(*argv)
        assert result.code == 3, (argv, result.stdout, result.stderr)
        assert expected in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout


def test_3_drill_without_its_playbook(cli):
    result = cli("drill", "-i", str(LOCAL_INVENTORY))  # the test playbook dir has no drill.yml
    assert result.code == 3 and "playbook drill.yml not found" in result.stderr


def test_4_lock_held(cli, tmp_path):
    result = play(cli, "lock.yml", "-e", f"lock_path={tmp_path / 'app.lock'}")
    assert result.code == 4, result.stderr
    assert re.search(r"locked \(exit 4\): [\w.-]+: Refused: the lock", result.stderr), result.stderr


@pytest.mark.parametrize("how", ["limit", "limit-before-confirming", "pattern"])
def test_5_no_hosts(cli, how):
    if how == "limit":
        result = play(cli, "ok.yml", "--limit", "nosuchhost")
        assert "no hosts matched --limit nosuchhost" in result.stderr
    elif how == "limit-before-confirming":  # deploy reads the inventory before it runs anything
        result = cli("deploy", "-i", str(LOCAL_INVENTORY), "--limit", "nosuchhost")
        assert "no hosts matched --limit nosuchhost among 'app_servers'" in result.stderr
    else:
        result = play(cli, "nohosts.yml")
        assert "no hosts matched" in result.stderr
    assert result.code == 5


def test_json_output_is_the_report(cli):
    result = play(cli, "fail.yml", "--json")
    data = json.loads(result.stdout)
    assert data["exit_code"] == 1 and data["result"] == "failed" and result.code == 1
    assert data["failures"] == ["local1: Release 'nosuch' does not exist on local1"]


def test_quiet(cli):
    result = play(cli, "ok.yml", "--quiet")
    assert result.code == 0 and result.stdout == ""


def test_history_drills_and_table(cli, state_dir):
    from test_report import report_of

    from shipshape.history import History
    from shipshape.report import RunReport

    history = History(state_dir / "history.sqlite")
    assert "no drills recorded yet" in cli("history", "--drills").stdout
    base = report_of("rescued", command="drill").to_dict()
    for index, seconds in enumerate([7.5, 9.0, 6.0]):
        base.update(run_id=f"2026112{index}T000000Z-cccccc", started=f"2026-11-2{index}T00:00:00+00:00")
        base["results"]["local1"]["restore_drill_result"]["recovery_s"] = seconds
        history.record(RunReport.from_dict(base), state_dir)
    shown = cli("history", "--drills")
    assert shown.code == 0
    assert "+1.5s" in shown.stdout and "-3.0s" in shown.stdout and "▁" in shown.stdout and "█" in shown.stdout
    assert "last 6.0s, best 6.0s, worst 9.0s" in shown.stdout
    rows = json.loads(cli("history", "--drills", "--json").stdout)
    assert [r["delta_s"] for r in rows] == [None, 1.5, -3.0]
    table = cli("history")
    assert table.code == 0 and "20261122T000000Z-cccccc" in table.stdout and "drill" in table.stdout
    assert cli("report", "nosuchrun").code == 3
