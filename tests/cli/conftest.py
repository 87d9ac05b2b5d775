"""Fixtures of the CLI tests: an App wired to the test playbooks, a private state directory, output capture."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_paths import DATA, HERE, LOCAL_INVENTORY, PLAYBOOKS, PRODUCTION_INVENTORY, ROOT  # noqa: F401

if str(ROOT / "src") not in sys.path:  # the package works from the checkout even when not installed
    sys.path.insert(0, str(ROOT / "src"))

from shipshape.cli import main  # noqa: E402
from shipshape.commands import App  # noqa: E402
from shipshape.runner import PlaybookRunner  # noqa: E402



def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sandbox: runs real commands against the sandbox containers (creates them when missing)"
    )


class FakeStream(io.StringIO):
    def __init__(self, tty: bool = False, text: str = "") -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture()
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture()
def test_runner() -> PlaybookRunner:
    """The real runner layer, pointed at the test playbooks."""
    return PlaybookRunner(ROOT, playbook_dir=PLAYBOOKS)


@pytest.fixture()
def cli(state_dir: Path, test_runner: PlaybookRunner):
    """Run `shipshape ARGS` in-process against the test playbooks; returns exit code and output."""

    def run(*args: str, stdin: str = "", interactive: bool = False, runner: PlaybookRunner | None = None,
            state: bool = True) -> Result:
        out, err = FakeStream(), FakeStream()
        app = App(runner=runner or test_runner, stdout=out, stderr=err, stdin=FakeStream(text=stdin),
                  interactive=interactive)
        argv = list(args)
        if state:
            argv += ["--state-dir", str(state_dir)]
        code = main(argv, app=app)
        return Result(code, out.getvalue(), err.getvalue())

    return run
