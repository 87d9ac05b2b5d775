"""Shared fixtures: the repository root and an environment that points Ansible at this checkout."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".collections")
    env.setdefault("ANSIBLE_NOCOLOR", "1")
    return env


def run_ansible_module(env: dict[str, str], module: str, args: dict, check: bool = False,
                       interpreter: str | None = None) -> tuple[int, dict]:
    """Run one module on localhost as `ansible -m` does; return (rc, the module's result)."""
    cmd = ["ansible", "localhost", "-c", "local", "-m", module, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if interpreter:
        cmd += ["-e", f"ansible_python_interpreter={interpreter}"]
    env = dict(env, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    try:
        result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as exc:
        raise AssertionError(f"ansible did not return a result (rc={out.returncode}):\n{out.stdout}\n{out.stderr}") from exc
    return out.returncode, result
