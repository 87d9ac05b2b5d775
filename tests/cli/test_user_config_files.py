"""The user's ansible.cfg as Ansible reads it: UTF-8 with undecodable bytes kept (a Latin-1 comment does not stop
Ansible), so it must not stop the CLI with a UnicodeDecodeError traceback either."""

from __future__ import annotations

import pytest
from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, ROOT

from shipshape.config import collections_paths
from shipshape.runner import PlaybookRunner

LATIN1 = b"[defaults]\n# r\xe9seau de production\nhost_key_checking = False\ncollections_path = /opt/r\xe9seau/collections\n"


@pytest.fixture()
def latin1_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ANSIBLE_HOST_KEY_CHECKING", raising=False)
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
    monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATHS", raising=False)
    config = tmp_path / "mine.cfg"
    config.write_bytes(LATIN1)
    monkeypatch.setenv("ANSIBLE_CONFIG", str(config))
    return config


def test_a_latin1_ansible_cfg_still_decides_host_key_checking(latin1_config):
    assert PlaybookRunner(ROOT).envvars(LOCAL_INVENTORY)["ANSIBLE_HOST_KEY_CHECKING"] == "False"


def test_a_latin1_ansible_cfg_still_names_the_collections_path(latin1_config):
    first = collections_paths()[0]
    assert str(first).startswith("/opt/r") and str(first).endswith("/collections")


def test_a_run_with_a_latin1_ansible_cfg(latin1_config, cli):
    result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "-q")
    assert result.code == 0, result.stderr
