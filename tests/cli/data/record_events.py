"""Record the event streams the unit tests read: python tests/cli/data/record_events.py (from the checkout).

Runs the test playbooks through ansible_runner.run against tests/cli/inventories/local.yml and saves every
event (as the event handler receives it) to tests/cli/data/<name>.events.json."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import ansible_runner

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
PLAYBOOKS = {"ok": "ok.yml", "fail": "fail.yml", "unreachable": "unreachable.yml", "rescued": "rescued.yml",
             "docker_gone": "docker_gone.yml"}
#: docker_gone's host: a container of the test image, stopped before the run (docker and the image are needed).
GONE = "shipshape-events-gone"


def record(name: str, playbook: str) -> None:
    events: list[dict] = []

    def handler(event: dict) -> bool:
        events.append(event)
        return True

    with tempfile.TemporaryDirectory() as tmp:
        ansible_runner.run(
            private_data_dir=tmp, playbook=str(HERE.parent / "playbooks" / playbook),
            inventory=str(HERE.parent / "inventories" / "local.yml"), quiet=True, event_handler=handler,
            envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                     "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".collections")},
            suppress_env_files=True,
        )
    (HERE / f"{name}.events.json").write_text(json.dumps(events, indent=1) + "\n")
    print(f"{name}: {len(events)} events")


def record_docker_gone() -> None:
    subprocess.run(["docker", "rm", "-f", GONE], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", GONE, "shipshape/base:bookworm", "sleep", "600"], check=True,
                   capture_output=True)
    subprocess.run(["docker", "stop", "-t", "0", GONE], check=True, capture_output=True)
    try:
        record("docker_gone", PLAYBOOKS["docker_gone"])
    finally:
        subprocess.run(["docker", "rm", "-f", GONE], capture_output=True, check=False)


if __name__ == "__main__":
    for name in sys.argv[1:] or PLAYBOOKS:
        if name == "docker_gone":
            record_docker_gone()
        else:
            record(name, PLAYBOOKS[name])
