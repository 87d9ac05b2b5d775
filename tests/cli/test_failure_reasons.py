"""Issue 14 item 7: a generic failure message carries the failing command's own last error line."""

from __future__ import annotations

import json

import pytest
from cli_paths import LOCAL_INVENTORY, PLAYBOOKS

from shipshape.events import failure_message


def test_command_failure_says_why(cli, state_dir):
    result = cli("playbook", str(PLAYBOOKS / "cmdfail.yml"), "-i", str(LOCAL_INVENTORY))
    assert result.code == 1
    line = "ERROR: No matching distribution found for nosuchpkg"
    summary = [s for s in result.stderr.splitlines() if "failed (exit 1)" in s]
    assert summary and f"non-zero return code: {line}" in summary[0]
    (run_dir,) = (state_dir / "runs").iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert line in report["message"]
    assert line in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("res, expected", [
    ({"msg": "non-zero return code", "stderr_lines": ["fatal: couldn't find remote ref nosuch", ""],
      "stdout_lines": ["x"]}, "non-zero return code: fatal: couldn't find remote ref nosuch"),
    ({"msg": "non-zero return code", "stderr_lines": [], "stdout_lines": ["write: No space left on device", " "]},
     "non-zero return code: write: No space left on device"),
    ({"msg": "MODULE FAILURE\nSee stdout/stderr for the exact error", "module_stderr": "Traceback\nOSError: boom\n"},
     "MODULE FAILURE See stdout/stderr for the exact error: OSError: boom"),
    ({"msg": "All items completed", "results": [
        {"failed": True, "msg": "non-zero return code", "stderr": "E: Unable to locate package nosuch"}]},
     "non-zero return code: E: Unable to locate package nosuch"),
    ({"msg": "Release 'x' missing", "stderr": "noise"}, "Release 'x' missing"),  # a specific message stays
    ({"msg": "non-zero return code"}, "non-zero return code"),
])
def test_failure_message(res, expected):
    assert failure_message(res) == expected
