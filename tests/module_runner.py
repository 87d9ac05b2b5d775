"""Run one module of the collection on localhost as `ansible -m` does (a plain module, not conftest: the
tests in tests/cli have a conftest of their own, and `from conftest import` would be ambiguous)."""

from __future__ import annotations

import json
import subprocess


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
