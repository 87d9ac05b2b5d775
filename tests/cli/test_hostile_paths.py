"""Unusual and hostile input around the files a run writes, and the values it must keep secret: symbolic links
planted where reports or the history go, directories that cannot be used, a disk that fills up after the run,
a deploy's check pass and run sharing one run directory, Ansible's own `*_pass` variables, control characters
in what a task printed."""

from __future__ import annotations

import errno
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, PRODUCTION_INVENTORY

import shipshape.commands
from shipshape.history import History
from shipshape.report import RunReport, to_junit

OK = str(PLAYBOOKS / "ok.yml")


def _runs(state_dir: Path) -> list[Path]:
    return sorted(p for p in (state_dir / "runs").iterdir() if not p.name.startswith("."))


def test_confirmed_deploy_keeps_the_runs_artifacts_where_the_report_says(cli, state_dir):
    # The check pass (ident "check") and the deploy (ident "main") share one run directory: the second move
    # used to land in artifacts/artifacts/main, and the report pointed at an artifacts/main/job_events that was not there.
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), interactive=True, stdin="y\n")
    assert result.code == 0, result.stderr
    (run_dir,) = _runs(state_dir)
    assert not (run_dir / "artifacts" / "artifacts").exists()
    report = json.loads((run_dir / "report.json").read_text())
    events = Path(report["artifacts"]["job_events"])
    assert events.is_dir() and list(events.glob("*.json")), events
    assert list((run_dir / "artifacts" / "check" / "job_events").glob("*.json"))


def test_a_symlink_in_the_report_dir_is_replaced_never_written_through(cli, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("report.json", "report.md", "junit.xml"):
        (reports / name).symlink_to(victim)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(reports), "-q")
    assert result.code == 0, result.stderr
    assert victim.read_text() == "keep me\n"
    assert victim.stat().st_mode & 0o777 == 0o644
    for name in ("report.json", "report.md", "junit.xml"):
        assert not (reports / name).is_symlink() and (reports / name).stat().st_mode & 0o777 == 0o600
    assert json.loads((reports / "report.json").read_text())["result"] == "success"


def test_a_symlinked_history_is_refused_and_its_target_untouched(cli, state_dir, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    state_dir.mkdir(parents=True)
    (state_dir / "history.sqlite").symlink_to(victim)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q")
    assert result.code == 0  # the run happened; the history problem is said, not hidden
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert victim.read_text() == "keep me\n" and victim.stat().st_mode & 0o777 == 0o644
    listed = cli("history")
    assert listed.code == 3 and "symbolic link" in listed.stderr and "Traceback" not in listed.stderr
