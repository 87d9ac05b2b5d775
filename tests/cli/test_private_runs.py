"""Issue 14 item 5: what a run saw stays private. Reports, history and artifacts are 0600 files in 0700
directories; a run stopped by a signal leaves no unredacted work directory, and one killed outright (SIGKILL)
has its work directory removed by the next run."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, ROOT

SECRET = "S3cr3t-signal-planted-KQ"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_reports_history_and_artifacts_are_private(cli, state_dir, tmp_path):
    reports = tmp_path / "ci-reports"
    old = os.umask(0o022)
    try:
        result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "--report-dir", str(reports))
    finally:
        os.umask(old)
    assert result.code == 0, result.stderr
    run_dirs = [p for p in (state_dir / "runs").iterdir() if not p.name.startswith(".")]
    assert len(run_dirs) == 1
    for directory in (state_dir, state_dir / "runs", run_dirs[0], reports):
        assert mode(directory) == 0o700, directory
    for name in ("report.json", "report.md", "junit.xml"):
        assert mode(run_dirs[0] / name) == 0o600
        assert mode(reports / name) == 0o600
    assert mode(state_dir / "history.sqlite") == 0o600
    assert mode(run_dirs[0] / "artifacts" / "main" / "stdout") == 0o600
    # No work directory is left beside the run.
    assert list((state_dir / "runs").glob(".*.work")) == []


def start(state_dir: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.Popen(
        [sys.executable, "-m", "shipshape", "playbook", str(PLAYBOOKS / "slow.yml"), "-i", str(LOCAL_INVENTORY),
         "--state-dir", str(state_dir), "-q", "-e", f"db_password={SECRET}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_the_wait(state_dir: Path, process: subprocess.Popen) -> Path:
    """The work directory, once ansible-runner has written the event of the task that waits."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        for work in (state_dir / "runs").glob(".*.work") if (state_dir / "runs").is_dir() else []:
            events = list(work.rglob("job_events/*.json"))
            if any(b"Wait to be stopped" in e.read_bytes() for e in events):
                return work
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the run never reached the waiting task")


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_a_run_stopped_by_sigterm_leaves_no_work_directory(state_dir):
    process = start(state_dir)
    work = wait_for_the_wait(state_dir, process)
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert not work.exists()
    assert files_containing(state_dir, SECRET) == []


def test_a_killed_run_is_cleaned_by_the_next_one(cli, state_dir):
    process = start(state_dir)
    work = wait_for_the_wait(state_dir, process)
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its ansible-playbook, as a CI job's kill does
    process.communicate(timeout=60)
    # SIGKILL cannot be handled: the work directory (private, 0700) is still there...
    assert work.exists() and mode(work) == 0o700
    # ...until the next run of the CLI on the same state directory.
    result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY))
    assert result.code == 0, result.stderr
    assert not work.exists()
    assert files_containing(state_dir, SECRET) == []
