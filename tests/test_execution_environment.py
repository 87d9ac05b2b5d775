"""Issue 17 item 9: the execution environment is built and proven. scripts/build-ee builds execution-environment.yml
with ansible-builder on the local Debian 12 base, offline; a playbook of the collection then runs inside the image the
way AWX and Automation Controller run one: ansible-runner's container mode, the private data dir mounted at /runner.
docs/execution-environment.md."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IMAGE = "shipshape/ee:latest"


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=60, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _docker_answers(),
                                reason="no Docker engine answers (docker info fails): the EE image cannot be built")


def _clean_env() -> dict[str, str]:
    # Nothing of the checkout's Ansible set-up may help: the image has to bring it all.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def ee_image() -> str:
    # Cold: about a minute and a half here; when the image for these inputs exists, a second or two.
    build = subprocess.run([str(ROOT / "scripts" / "build-ee")], capture_output=True, text=True, env=_clean_env(),
                           check=False, timeout=900)
    assert build.returncode == 0, build.stdout + build.stderr[-6000:]
    return IMAGE


def _in_image(image: str, *command: str) -> subprocess.CompletedProcess:
    # As the image's own user (1000), through its entrypoint, with no network: what a job gets, minus the job.
    return subprocess.run(["docker", "run", "--rm", "--network", "none", image, *command],
                          capture_output=True, text=True, check=False, timeout=120)


def test_the_image_holds_the_collection_its_dependencies_and_libraries(ee_image):
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    listed = _in_image(ee_image, "ansible-galaxy", "collection", "list", "--format", "json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    installed = json.loads(listed.stdout)["/usr/share/ansible/collections/ansible_collections"]
    assert installed["shipshape.ops"]["version"] == version
    for entry in ee["dependencies"]["galaxy"]["collections"]:
        name = entry["name"].removeprefix("collections/").replace("/", ".")
        assert installed[name]["version"] == entry["version"], name

    libs = _in_image(ee_image, "python3", "-c",
                     "import sys, psycopg, redis, docker, ansible_runner; "
                     "print(sys.executable, psycopg.__version__, psycopg.pq.__impl__, redis.__version__)")
    assert libs.returncode == 0, libs.stdout + libs.stderr
    assert libs.stdout.split() == ["/opt/ee/bin/python3", "3.3.9", "binary", "8.1.0"]
    ssh = _in_image(ee_image, "ssh", "-V")  # bindep's openssh-client, installed by apt from the build context
    assert ssh.returncode == 0 and "OpenSSH" in ssh.stderr, ssh.stderr
    # The build-time switches to the build context are gone from the image.
    leftovers = _in_image(ee_image, "sh", "-c", "ls /output /opt/ee/pip.conf 2>&1; cat /etc/apt/sources.list")
    assert "file:/output" not in leftovers.stdout and "No such file" in leftovers.stdout, leftovers.stdout


def test_a_playbook_of_the_collection_runs_in_the_image_through_ansible_runner(ee_image, tmp_path):
    private = tmp_path / "job"  # AWX's private data dir: inventory, env, artifacts; /runner in the container
    (private / "inventory").mkdir(parents=True)
    (private / "env").mkdir()
    (private / "inventory" / "hosts").write_text(
        'localhost ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"\n')
    (private / "env" / "extravars").write_text(yaml.safe_dump({
        "preflight_checks": [
            {"name": "root-disk", "kind": "disk", "path": "/", "min_free_mb_crit": 1},
            {"name": "nothing-listens", "kind": "http", "url": "http://127.0.0.1:9/healthz", "timeout": 2},
        ],
        "health_fail_on": "never",  # the failed check is the point: the run reports it and succeeds
        "health_report_path": "/runner/health-report.json",
    }))
    run = subprocess.run(
        [str(BIN / "ansible-runner"), "run", str(private), "-p", "shipshape.ops.health", "--ident", "health",
         "--container-image", ee_image, "--process-isolation", "--process-isolation-executable", "docker"],
        capture_output=True, text=True, env=_clean_env(), cwd=tmp_path, check=False, timeout=300)
    artifacts = private / "artifacts" / "health"
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr
    assert (artifacts / "status").read_text() == "successful"
    command = json.loads((artifacts / "command").read_text())["command"]
    assert command[:2] == ["docker", "run"] and ee_image in command  # container mode, not the host's Ansible

    events = sorted((json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")),
                    key=lambda e: e["counter"])
    # The tasks of the collection's module and action plugin, by name.
    ok = {e["event_data"]["task"]: e["event_data"] for e in events
          if e["event"] == "runner_on_ok" and e["event_data"].get("resolved_action") == "shipshape.ops.health_check"}
    # The play and its role come from the collection installed in the image.
    for task in ("Validate, run and summarise the checks", "Judge the inventory"):
        assert ok[task]["task_path"].startswith("/usr/share/ansible/collections/ansible_collections/shipshape/ops/"), task
    # action=check: the action plugin hands over to the module, which ran on the host (here: the container).
    probe = ok["Validate, run and summarise the checks"]["res"]
    assert probe["invocation"]["module_args"]["action"] == "check"
    checks = {c["name"]: c for c in probe["result"]["checks"]}
    # action=report: the action plugin alone, on the controller (no module invocation).
    assert "invocation" not in ok["Judge the inventory"]["res"]
    assert ok["Judge the inventory"]["res"]["by_host"]["localhost"]["counts"] == {"ok": 1, "degraded": 0, "failed": 1}

    assert checks["root-disk"]["status"] == "ok" and 0 < checks["root-disk"]["value"] <= 100
    assert checks["nothing-listens"]["status"] == "failed"
    assert "Connection refused" in checks["nothing-listens"]["message"]
    ran_on = checks["root-disk"]["details"]["ran_on"]
    assert re.fullmatch(r"[0-9a-f]{12}", ran_on) and ran_on != socket.gethostname()  # a container's hostname

    # The playbook's own report, written in the container to /runner: the private data dir on this side.
    report = json.loads((private / "health-report.json").read_text())
    assert report["localhost"]["status"] == "failed"
    assert [c["status"] for c in report["localhost"]["checks"]] == ["ok", "failed"]
