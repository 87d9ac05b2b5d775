"""The collection builds into a tarball that installs offline and runs a playbook."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory, ansible_env):
    work = tmp_path_factory.mktemp("collection")
    build = subprocess.run(
        ["ansible-galaxy", "collection", "build", "--force", "--output-path", str(work), str(ROOT)],
        capture_output=True, text=True, env=ansible_env, check=False,
    )
    assert build.returncode == 0, build.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    tarball = work / f"shipshape-ops-{version}.tar.gz"
    assert tarball.is_file()
    dest = work / "installed"
    install = subprocess.run(
        ["ansible-galaxy", "collection", "install", "--offline", "--force", "-p", str(dest), str(tarball)],
        capture_output=True, text=True, env=ansible_env, check=False,
    )
    assert install.returncode == 0, install.stderr + install.stdout
    return tarball, dest


def test_tarball_leaves_out_local_state(installed):
    tarball, _ = installed
    with tarfile.open(tarball) as tf:
        names = tf.getnames()
    assert "roles/postgresql_server/tasks/main.yml" in names
    assert not [n for n in names if n.startswith((".venv", ".collections", ".cache", ".git/"))]


def test_installed_collection_runs_a_playbook(installed, ansible_env, tmp_path):
    _, dest = installed
    env = dict(ansible_env)
    # The installed copy first (Ansible takes the first path that holds a collection), then the
    # collections it depends on.
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{dest}:{ROOT / '.collections'}"
    env["ANSIBLE_CONFIG"] = str(tmp_path / "ansible.cfg")
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    # A bad sandbox_state must be refused by the playbook's own check, naming the variable.
    run = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "shipshape.ops.sandbox", "-e", "sandbox_state=sideways"],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "sandbox_state must be 'present' or 'absent', got 'sideways'" in run.stdout
