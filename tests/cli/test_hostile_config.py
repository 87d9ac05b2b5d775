"""The user's ansible.cfg read as Ansible reads it: an inline '; comment' is no part of a value."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_paths import LOCAL_INVENTORY, ROOT

from shipshape.config import collections_paths
from shipshape.runner import PlaybookRunner


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.mark.parametrize("value, expected", [("True ; keep it on", "True"), ("False ; lab only", "False")])
def test_an_inline_comment_is_not_part_of_host_key_checking(elsewhere, value, expected):
    # Ansible strips '; comments' (inline_comment_prefixes=(';',)); we passed 'True ; keep it on' on, which Ansible's
    # boolean() reads as False: a config that turned checking on turned it off.
    (elsewhere / "ansible.cfg").write_text(f"[defaults]\nhost_key_checking = {value}\n")
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == expected


def test_an_inline_comment_is_not_part_of_collections_path(elsewhere):
    (elsewhere / "ansible.cfg").write_text("[defaults]\ncollections_path = /opt/collections ; site-wide\n")
    assert collections_paths()[0] == Path("/opt/collections")


def test_an_ansible_cfg_in_a_world_writable_directory_is_ignored_as_ansible_does(elsewhere, monkeypatch):
    # Run from /tmp (or any world-writable directory), a planted ./ansible.cfg turned host key checking off and moved
    # the collections path, where Ansible itself ignores that file.
    shared = elsewhere / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\ncollections_path = /planted\n")
    monkeypatch.chdir(shared)
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("a system-wide ansible.cfg decides here")
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "True"
    assert Path("/planted") not in collections_paths()


def test_ansible_config_naming_a_directory_means_its_ansible_cfg(elsewhere, monkeypatch):
    mine = elsewhere / "conf"
    mine.mkdir()
    (mine / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(mine))
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "False"
