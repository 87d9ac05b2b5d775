"""Helpers for the testinfra tests of every scenario: run a playbook of the collection against the
scenario's own inventory, and speak HTTP to the app from inside the app container."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_playbook(playbook: str, *args: str, check: bool | None = None) -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/<playbook> against the scenario's inventory, as Molecule runs it."""
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".collections")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    cmd = [
        "ansible-playbook",
        "-i", os.environ["MOLECULE_INVENTORY_FILE"],
        str(ROOT / "playbooks" / playbook),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=900)
    # ansible-core 2.19 prints task errors on stderr: tests read both streams as one.
    proc.output = proc.stdout + proc.stderr
    if check is not None:
        ok = proc.returncode == 0
        assert ok == check, f"{' '.join(cmd)} exited {proc.returncode}\n{proc.output[-6000:]}"
    return proc


def http(host, method: str, path: str, body: dict | None = None, port: int = 8000,
         base: str | None = None) -> tuple[int, dict | str]:
    """One request from inside the host (the app listens there, or at `base`); returns (status, parsed body)."""
    data = "" if body is None else f"-H 'Content-Type: application/json' --data {shlex.quote(json.dumps(body))}"
    url = f"{base or f'http://127.0.0.1:{port}'}{path}"
    cmd = host.run(f"curl -s -m 10 -o /tmp/.body -w '%{{http_code}}' -X {method} {data} {url}; echo; cat /tmp/.body")
    status_line, _, payload = cmd.stdout.partition("\n")
    try:
        parsed: dict | str = json.loads(payload)
    except ValueError:
        parsed = payload
    return int(status_line or 0), parsed


@pytest.fixture()
def playbook():
    return run_playbook


@pytest.fixture()
def app(host):
    """The app host beside the db host a test runs on (app-<scenario> for db-<scenario>)."""
    import testinfra

    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    name = host.backend.get_hostname().replace("db-", "app-", 1)
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")
