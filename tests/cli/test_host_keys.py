"""Issue 17 item 3: the CLI keeps host key checking on for real inventories unless the user turned it off."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_paths import LOCAL_INVENTORY, ROOT

from shipshape.runner import PlaybookRunner


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """Run from a directory without an ansible.cfg, with no user config and no variable set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    return tmp_path


def test_user_inventory_checks_host_keys(elsewhere):
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("a system-wide ansible.cfg decides here")
    env = PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def test_user_env_false_stays_false(elsewhere, monkeypatch):
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "False"


@pytest.mark.parametrize("where", ["cwd", "home", "env"])
def test_user_config_decides(elsewhere, monkeypatch, where):
    text = "[defaults]\nhost_key_checking = False\n"
    if where == "cwd":
        (elsewhere / "ansible.cfg").write_text(text)
    elif where == "home":
        (elsewhere / ".ansible.cfg").write_text(text)
    else:
        (elsewhere / "mine.cfg").write_text(text)
        monkeypatch.setenv("ANSIBLE_CONFIG", str(elsewhere / "mine.cfg"))
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "False"


def test_collection_config_is_not_the_users(elsewhere, monkeypatch):
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("a system-wide ansible.cfg decides here")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "True"


def test_sandbox_keeps_docker_behaviour(elsewhere):
    runner = PlaybookRunner(ROOT)
    assert runner.envvars(runner.sandbox_inventory)["ANSIBLE_HOST_KEY_CHECKING"] == "False"


def test_kwargs_carry_the_setting(elsewhere, cli):
    from test_commands import RecordingRunner

    runner = RecordingRunner()
    assert cli("health", "-i", str(LOCAL_INVENTORY), runner=runner).code == 0
    if not Path("/etc/ansible/ansible.cfg").exists():
        assert runner.calls[0]["envvars"]["ANSIBLE_HOST_KEY_CHECKING"] == "True"
