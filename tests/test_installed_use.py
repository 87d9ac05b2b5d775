"""Issue 17 item 1: installed use. The CLI built as a wheel and the collection built as a tarball, each
installed on its own (pip --target, ansible-galaxy collection install), run a playbook of the collection from an
unrelated directory, with the user's own ansible.cfg and collections path, not the checkout's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("installed")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"))
    # The CLI: a wheel, installed into a directory of its own (no dependencies: the venv has them). Built
    # from a copy of the sources: setuptools writes build/ and *.egg-info beside them.
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(work / "dist"), str(source)], capture_output=True, text=True, check=False)
    assert wheel.returncode == 0, wheel.stderr
    (built,) = list((work / "dist").glob("shipshape-*.whl"))
    site = work / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                              str(built)], capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr
    # The collection: a tarball, installed offline into the user's collections path.
    build = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                            str(work), str(ROOT)], capture_output=True, text=True, env=env, check=False)
    assert build.returncode == 0, build.stderr
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    collections = work / "collections"
    install = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force",
                              "--no-deps", "-p", str(collections), str(work / f"shipshape-ops-{version}.tar.gz")],
                             capture_output=True, text=True, env=env, check=False)
    assert install.returncode == 0, install.stderr + install.stdout
    # Its dependencies (community.postgresql, ...), as a user would have them installed: not shipshape.ops.
    deps = work / "deps" / "ansible_collections"
    deps.mkdir(parents=True)
    for namespace in ("ansible", "community"):
        (deps / namespace).symlink_to(ROOT / ".collections" / "ansible_collections" / namespace)
    return site, collections, work / "deps"


def test_the_installed_cli_runs_the_installed_collection_from_anywhere(installed, tmp_path):
    site, collections, deps = installed
    project = tmp_path / "ops-repo"  # the user's own ops repository: inventory and ansible.cfg
    project.mkdir()
    (project / "ansible.cfg").write_text(
        f"[defaults]\ninterpreter_python = auto_silent\ncollections_path = {collections}:{deps}\n")
    (project / "hosts.yml").write_text(
        "all:\n  hosts:\n    local1:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "SHIPSHAPE_", "MOLECULE_")) and key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    where = subprocess.run([sys.executable, "-c", "import shipshape; print(shipshape.__file__)"],
                           capture_output=True, text=True, env=env, cwd=project, check=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel's copy, not the checkout's

    state = tmp_path / "state"
    run = subprocess.run([sys.executable, "-m", "shipshape", "-i", "hosts.yml", "health", "--json",
                          "--state-dir", str(state)],
                         capture_output=True, text=True, env=env, cwd=project, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    installed_root = collections / "ansible_collections" / "shipshape" / "ops"
    assert report["playbook"] == str(installed_root / "playbooks" / "health.yml")
    assert report["results"]["local1"]["preflight_result"]["status"] == "ok"
    # It ran with the user's ansible.cfg, not the checkout's: the checkout's is nowhere in the run.
    command = json.loads((Path(report["artifacts"]["run_dir"]) / "artifacts" / "main" / "command").read_text())
    assert "ANSIBLE_CONFIG" not in command.get("env", {}) or \
        command["env"]["ANSIBLE_CONFIG"] != str(ROOT / "ansible.cfg")


def test_without_the_collection_the_cli_says_where_it_looked(installed, tmp_path):
    site, _collections, _deps = installed
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("ANSIBLE_", "SHIPSHAPE_", "MOLECULE_")) and key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "empty")
    env["HOME"] = str(tmp_path)
    run = subprocess.run([sys.executable, "-m", "shipshape", "health"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=False)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cannot find the shipshape.ops collection" in run.stderr and str(tmp_path / "empty") in run.stderr
