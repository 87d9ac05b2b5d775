"""Real commands against the sandbox (pytest -m sandbox). The sandbox is created when missing; without a Docker
engine these tests fail and say so (they never skip silently)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_paths import ROOT

pytestmark = pytest.mark.sandbox

CONTAINERS = ("shipshape-sandbox-app", "shipshape-sandbox-db")
DIST = ROOT / "examples" / "sample_app" / "dist"
LOCK_WAIT_S = 600  # another engineer's deploy (or a benchmark) may hold the sandbox's deploy lock


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".collections")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def running(name: str) -> bool:
    done = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", name], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() == "true"


@pytest.fixture(scope="session")
def sandbox() -> None:
    ensure_sandbox()


def ensure_sandbox() -> None:
    if shutil.which("docker") is None:
        pytest.fail("the sandbox tests need Docker: no `docker` command (scripts/bootstrap installs and starts one)")
    info = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail("the sandbox tests need a Docker engine that answers; `docker info` failed: "
                    + (info.stderr.strip().splitlines() or ["no output"])[-1])
    env = ansible_env()
    # make_releases.py is idempotent: it runs again when a part the sandbox deploys from is missing (an older dist).
    if not all((DIST / part).exists() for part in ("sample_app.git", "wheelhouse.tar", "releases.json")):
        subprocess.run([sys.executable, str(ROOT / "examples" / "sample_app" / "make_releases.py"), str(DIST)],
                       cwd=ROOT, env=env, check=True)
    if not all(running(name) for name in CONTAINERS):
        done = subprocess.run(["ansible-playbook", "playbooks/sandbox.yml"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"creating the sandbox failed (ansible-playbook playbooks/sandbox.yml, rc {done.returncode}): "
                        + done.stdout[-2000:])


def shipshape(state: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shipshape", *args, "--state-dir", str(state)], cwd=ROOT,
                          env=ansible_env(), capture_output=True, text=True, timeout=timeout)


def shipshape_when_free(state: Path, *args: str) -> subprocess.CompletedProcess:
    """The sandbox may be shared: another deploy may hold the lock (exit 4), or the containers may be
    re-created under us (exit 2). Wait and try again, as a person would, within LOCK_WAIT_S."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        done = shipshape(state, *args)
        if done.returncode not in (2, 4) or time.monotonic() > deadline:
            return done
        time.sleep(10)
        ensure_sandbox()


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sandbox-state")


def in_container(name: str, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
    return subprocess.run(["docker", "exec", *flags, name, *argv], capture_output=True, text=True, timeout=120)


# From the app container to the db container by name, as the app connects: PostgreSQL's port answers, and Redis
# answers PING and keeps a value (RESP by hand: the app host has no redis-cli).
NETWORK_PROBE = r"""
import socket, sys
host = sys.argv[1]
socket.create_connection((host, 5432), timeout=5).close()
r = socket.create_connection((host, 6379), timeout=5)
r.sendall(b"PING\r\nSET shipshape:sandbox-test ok\r\nGET shipshape:sandbox-test\r\n")
data = b""
while data.count(b"\r\n") < 4:
    data += r.recv(256)
print(" ".join(data.decode().split()))
"""

# Sockets in LISTEN state (0A) on 0.0.0.0, read from /proc (the db image has no ss or netstat).
LISTENING_PROBE = r"""
ports = set()
for line in open("/proc/net/tcp").read().splitlines()[1:]:
    local, state = line.split()[1], line.split()[3]
    address, port = local.split(":")
    if state == "0A" and address == "00000000":
        ports.add(int(port, 16))
print(" ".join(str(p) for p in sorted(ports)))
"""


def test_the_sandbox_is_two_systemd_hosts_with_postgresql_and_redis_across_the_network(sandbox):
    # What the demo and every command here stand on (Molecule's former `sandbox` scenario, on the real sandbox).
    app, db = CONTAINERS
    for name in CONTAINERS:
        assert in_container(name, "cat", "/proc/1/comm").stdout.strip() == "systemd", name
        assert in_container(name, "systemctl", "is-system-running").stdout.strip() in ("running", "degraded"), name
    for unit in ("postgresql@15-main.service", "redis-server.service"):
        assert in_container(db, "systemctl", "is-active", unit).stdout.strip() == "active", unit
        assert in_container(db, "systemctl", "is-enabled", unit).stdout.strip() == "enabled", unit
    listening = in_container(db, "python3", "-c", LISTENING_PROBE).stdout.split()
    assert {"5432", "6379"} <= set(listening), listening
    # Over TCP with the app's password, as the app connects: pg_hba and the role.
    query = in_container(db, "psql", "-h", "127.0.0.1", "-U", "sample_app", "-d", "sample_app", "-tAc",
                         "SELECT current_user || ':' || current_database() || ':' || 6*7",
                         env={"PGPASSWORD": "sandbox-db-password"})
    assert query.returncode == 0 and query.stdout.strip() == "sample_app:sample_app:42", query.stderr
    probe = in_container(app, "python3", "-c", NETWORK_PROBE, db)
    assert probe.returncode == 0 and probe.stdout.strip() == "+PONG +OK $2 ok", (probe.stdout, probe.stderr)


def test_deploy(sandbox, state):
    # v2.0.0 deploys from any state the sandbox may be in (fresh, or already on v2: then nothing changes).
    done = shipshape_when_free(state, "deploy", "--ref", "v2.0.0", "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    runs = sorted((state / "runs").iterdir())
    report = json.loads((runs[-1] / "report.json").read_text())
    assert report["command"] == "deploy" and report["exit_code"] == 0
    result = report["results"]["app"]["deploy_result"]
    assert result["result"] in ("success", "unchanged")
    assert result["release"].startswith("2.0.0-") and report["release_ids"] == [result["release"]]
    assert "reports: " in done.stdout and f"app: deploy {result['result']}: " in done.stdout


def test_health(sandbox, state):
    # After the deploy above, every check of the sandbox passes.
    done = shipshape(state, "health", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    report = json.loads(done.stdout)
    assert report["command"] == "health" and report["schema_version"] == 1
    assert {h["name"] for h in report["hosts"]} == {"app", "db"}
    for host in ("app", "db"):
        result = report["results"][host]["preflight_result"]
        assert result["status"] == "ok" and result["checks"]
    # The sandbox's database password (group_vars, a secret by name) never reaches the reports.
    assert "sandbox-db-password" not in done.stdout
    assert not [p for p in state.rglob("*") if p.is_file() and b"sandbox-db-password" in p.read_bytes()]


def test_rollback_to_an_unknown_release_is_one_line(sandbox, state):
    done = shipshape_when_free(state, "rollback", "--to", "nosuch", "--yes")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("shipshape rollback:")]
    assert "rollback_to: release 'nosuch' does not exist on app (releases there:" in line
    assert "Traceback" not in done.stderr


def test_history(sandbox, state):
    done = shipshape(state, "history", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    commands = [r["command"] for r in rows]
    assert "health" in commands and "deploy" in commands and "rollback" in commands
    deploy = next(r for r in rows if r["command"] == "deploy")
    assert deploy["release_ids"] and deploy["release_ids"][0].startswith("2.0.0-")
    assert deploy["inventory"].endswith("inventories/sandbox/hosts.yml") and deploy["user"]
    rollback = next(r for r in rows if r["command"] == "rollback")
    assert rollback["exit_code"] == 1 and "does not exist on app" in rollback["message"]
    table = shipshape(state, "history")
    assert table.returncode == 0 and "deploy" in table.stdout and "health" in table.stdout
    shown = shipshape(state, "report", deploy["run_id"])
    assert shown.returncode == 0 and shown.stdout.startswith("# shipshape deploy: ")
    assert json.loads(shipshape(state, "report", deploy["run_id"], "--json").stdout)["run_id"] == deploy["run_id"]
