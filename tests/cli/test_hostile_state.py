"""Hostile or damaged state: a symbolic link planted where shipshape's own directories go, a history database that is
not one, a stored report that does not have a report's shape. Each is one line on stderr (exit 3) or a refusal, never
a traceback, and nothing outside the state directory changes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS

OK = str(PLAYBOOKS / "ok.yml")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_symlinked_runs_directory_is_refused_and_its_target_untouched(cli, state_dir, tmp_path):
    # runs/ is shipshape's own, made 0700 (adopted): through a planted link, the chmod and every run directory landed
    # in the link's target (/etc, a shared directory).
    victim = tmp_path / "victim"
    victim.mkdir()
    victim.chmod(0o755)
    state_dir.mkdir()
    (state_dir / "runs").symlink_to(victim)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q")
    assert result.code == 3 and "symbolic link" in result.stderr and "--state-dir" in result.stderr, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert mode(victim) == 0o755 and list(victim.iterdir()) == []


def test_a_history_that_is_not_a_database_is_one_line(cli, state_dir):
    state_dir.mkdir()
    (state_dir / "history.sqlite").write_bytes(b"this is not an SQLite database, it was overwritten" * 100)
    for args in (["history"], ["history", "--drills"], ["report", "last"]):
        result = cli(*args)
        assert result.code == 3, (args, result)
        assert "history.sqlite" in result.stderr and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    # A run still happens, and says it could not be recorded.
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q")
    assert result.code == 0 and "could not record the run in the history" in result.stderr


def test_a_stored_report_of_another_shape_is_one_line(cli, state_dir):
    assert cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q").code == 0
    (run_dir,) = [p for p in (state_dir / "runs").iterdir() if not p.name.startswith(".")]
    path = run_dir / "report.json"
    data = json.loads(path.read_text())
    for tasks in ([{"status": "failed"}], ["not a task"], {"a": 1}):
        path.write_text(json.dumps({**data, "tasks": tasks}))
        result = cli("report", "last")
        assert result.code == 3 and "cannot be read" in result.stderr and "Traceback" not in result.stderr, (tasks, result)


def test_a_run_that_is_a_path_is_refused_and_reads_nothing_outside_the_runs(cli, state_dir, tmp_path):
    # `report RUN` read <state>/runs/RUN/report.json when no history row matched: '../..' reached any report.json.
    planted = tmp_path / "elsewhere"
    planted.mkdir()
    (planted / "report.json").write_text(json.dumps({"planted": "outside the state directory"}))
    assert cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q").code == 0
    for run in (f"../../{planted.name}", str(planted), "..", "a/b"):
        result = cli("report", run, "--json")
        assert result.code == 3 and "run id" in result.stderr and "planted" not in result.stdout, (run, result)
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert cli("report", "last", "--json").code == 0
