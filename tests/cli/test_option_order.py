"""Issue 17 item 8: the common options work before or after the command."""

from __future__ import annotations

import pytest
from cli_paths import LOCAL_INVENTORY
from test_commands import RecordingRunner

from shipshape.cli import reorder

COMMANDS = {"health", "deploy", "history", "report"}


@pytest.mark.parametrize("before", [True, False])
def test_inventory_limit_extra_vars_in_either_order(cli, state_dir, before):
    runner = RecordingRunner()
    options = ["-i", str(LOCAL_INVENTORY), "-l", "local1", "-e", "extra=1", "--check", "-vv", "--forks=3",
               "--state-dir", str(state_dir)]
    argv = [*options, "health"] if before else ["health", *options]
    result = cli(*argv, runner=runner, state=False)
    assert result.code == 0, result.stderr
    (call,) = runner.calls
    assert call["inventory"] == str(LOCAL_INVENTORY) and call["limit"] == "local1" and call["forks"] == 3
    assert "--check" in call["cmdline"] and call["verbosity"] == 2
    assert runner.extravars[0] == {"extra": "1"}
    assert (state_dir / "runs").is_dir()


@pytest.mark.parametrize("argv, expected", [
    (["-i", "inv", "health"], ["health", "-i", "inv"]),
    (["-iinv", "--limit=web", "health", "-C"], ["health", "-iinv", "--limit=web", "-C"]),
    (["-i", "health", "health"], ["health", "-i", "health"]),  # an inventory named like a command
    (["health", "-i", "inv"], ["health", "-i", "inv"]),
    (["--json", "--state-dir", "s", "history"], ["history", "--json", "--state-dir", "s"]),
    (["--version"], ["--version"]),
    (["--bogus", "health"], ["--bogus", "health"]),
])
def test_reorder(argv, expected):
    assert reorder(argv, COMMANDS) == expected


def test_unknown_option_before_the_command_is_a_usage_error(cli):
    result = cli("--bogus", "health", runner=RecordingRunner())
    assert result.code == 3 and "--bogus" in result.stderr


def test_history_json_before_the_command(cli, state_dir):
    result = cli("--json", "--state-dir", str(state_dir), "history", state=False)
    assert result.code == 0 and result.stdout.strip() == "[]"
