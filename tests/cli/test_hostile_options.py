"""Hostile or empty option values: an unset shell variable (`-i "$INVENTORY"`) must not silently mean the default."""

from __future__ import annotations

import pytest
from cli_paths import LOCAL_INVENTORY, PLAYBOOKS

OK = str(PLAYBOOKS / "ok.yml")


@pytest.mark.parametrize("option", ["-i", "--inventory", "--state-dir", "--report-dir"])
def test_an_empty_path_option_is_bad_input_not_the_default(cli, tmp_path, monkeypatch, option):
    # -i "" ran against the built-in sandbox inventory, --state-dir "" wrote to ~/.local/state, --report-dir "" was
    # dropped: each silently, where the caller meant a path its shell variable did not hold.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    args = ["playbook", OK, "-q", option, ""]
    if option not in ("-i", "--inventory"):
        args += ["-i", str(LOCAL_INVENTORY)]
    result = cli(*args, state=option != "--state-dir")
    assert result.code == 3, result
    assert option.lstrip("-").split("-")[0] in result.stderr and "empty" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "xdg").exists()


def test_empty_state_dir_for_history_is_bad_input(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    for args in (["history", "--state-dir", ""], ["report", "last", "--state-dir", ""]):
        result = cli(*args, state=False)
        assert result.code == 3 and "--state-dir" in result.stderr and "empty" in result.stderr, (args, result)
