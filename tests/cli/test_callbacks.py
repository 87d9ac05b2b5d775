"""The CLI enables the collection's prefork callback (cheaper workers) without dropping the user's own callbacks."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_paths import LOCAL_INVENTORY, ROOT

from shipshape.runner import PREFORK_CALLBACK, PlaybookRunner


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """A directory without an ansible.cfg, no user config, no variable set."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ANSIBLE_CALLBACKS_ENABLED", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    return work


@pytest.fixture()
def installed(tmp_path):
    """A collection root as pip or ansible-galaxy installs it: no .collections, so the user's config is read."""
    root = tmp_path / "installed"
    (root / "playbooks").mkdir(parents=True)
    return PlaybookRunner(root)


def callbacks(runner):
    return runner.envvars(LOCAL_INVENTORY)["ANSIBLE_CALLBACKS_ENABLED"].split(",")


def test_checkout_runs_with_the_callback_once(elsewhere):
    # The checkout's ansible.cfg lists it already; the CLI does not add it twice.
    assert callbacks(PlaybookRunner(ROOT)) == [PREFORK_CALLBACK]


def test_the_users_environment_keeps_its_callbacks(elsewhere, monkeypatch, installed):
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "ansible.posix.profile_tasks, community.general.mail")
    expected = ["ansible.posix.profile_tasks", "community.general.mail", PREFORK_CALLBACK]
    assert callbacks(installed) == expected
    assert callbacks(PlaybookRunner(ROOT)) == expected


@pytest.mark.parametrize("where", ["cwd", "home", "env"])
def test_an_installed_cli_keeps_the_callbacks_of_the_users_config(elsewhere, monkeypatch, installed, where):
    text = "[defaults]\ncallbacks_enabled = ansible.posix.timer,ansible.posix.profile_tasks ; timings\n"
    if where == "cwd":
        (elsewhere / "ansible.cfg").write_text(text)
    elif where == "home":
        (Path.home() / ".ansible.cfg").write_text(text)
    else:
        (elsewhere / "mine.cfg").write_text(text)
        monkeypatch.setenv("ANSIBLE_CONFIG", str(elsewhere / "mine.cfg"))
    assert callbacks(installed) == ["ansible.posix.timer", "ansible.posix.profile_tasks", PREFORK_CALLBACK]


def test_an_installed_cli_without_config_enables_only_its_own(elsewhere, installed):
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("a system-wide ansible.cfg decides here")
    assert callbacks(installed) == [PREFORK_CALLBACK]


def test_a_callback_the_user_listed_as_ours_is_not_doubled(elsewhere, monkeypatch, installed):
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", f"{PREFORK_CALLBACK},ansible.posix.timer")
    assert callbacks(installed) == [PREFORK_CALLBACK, "ansible.posix.timer"]
