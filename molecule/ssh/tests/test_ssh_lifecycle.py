"""The lifecycle over SSH as a user runs it: `shipshape` of this checkout, run by an unprivileged controller
user (prepare's wrapper), reaching the hosts as `deploy` with sudo and checked host keys. Converge provisioned
and deployed v1; these steps run in file order: deploy v2, backup, rollback, maintenance on and off, drill,
restore, health, then a changed host key, which must be refused before anything runs. The app host installs
from a wheelhouse directory (the inventory's host variable), v2 from a copy of it with one file more."""

from __future__ import annotations

import json
import os
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from conftest import http

testinfra_hosts = ["app_servers"]

CONTROLLER = Path("/var/tmp/shipshape-molecule-ssh")
HOME = CONTROLLER / "home"
KNOWN_HOSTS = HOME / ".ssh" / "known_hosts"
WHEELHOUSE = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "examples" / "sample_app" / "dist" / "wheelhouse"
SHARED = "/srv/sample_app/shared"
# Actions Ansible runs on the controller without a connection to the host.
CONTROLLER_ACTIONS = {"include_role", "include_tasks", "import_role", "import_tasks", "set_fact", "assert",
                      "debug", "fail", "meta", "include_vars", "validate_argument_spec"}
# Steps of a module that its action plugin does on the controller (health_check validates and summarises there).
CONTROLLER_TASKS = {("shipshape.ops.health_check", "Validate the kind and fields of each check"),
                    ("shipshape.ops.health_check", "Summarise the checks")}


def shipshape(*args: str) -> tuple[int, dict, str]:
    """Run `shipshape ARGS --json` as the controller user: (exit code, the run's report, stderr)."""
    proc = subprocess.run([str(CONTROLLER / "shipshape"), *args, "--json"], capture_output=True, text=True,
                          timeout=900, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    return proc.returncode, report, proc.stderr[-4000:] + proc.stdout[-2000:]


def ok(*args: str) -> dict:
    code, report, output = shipshape(*args)
    assert code == 0, f"shipshape {' '.join(args)} exited {code}: {report.get('message')}\n{output}"
    return report


def version(host) -> str:
    status, body = http(host, "GET", "/version")
    assert status == 200, body
    return body["version"]


def test_the_controller_user_is_not_root():
    # Converge ran provision and deploy as this user: its state and the release cache are its own files.
    for path in (HOME / ".local" / "state" / "shipshape", HOME / ".cache" / "shipshape"):
        assert path.is_dir(), path
        if os.geteuid() == 0:
            assert path.stat().st_uid == 65534, f"{path} is not owned by nobody"


def test_v1_was_deployed_over_ssh(host):
    assert version(host) == "1.0.0"
    # The service runs as its own user; the files were put there by `deploy` through sudo.
    assert host.file("/srv/sample_app/current").is_symlink
    assert host.run("getent passwd deploy").rc == 0


def wheels_key(directory: Path) -> str:
    """What names a wheelhouse directory on the host: the sha1 of the JSON list of its files' '<name> <sha1>', sorted."""
    lines = sorted(f"{p.name} {hashlib.sha1(p.read_bytes()).hexdigest()}" for p in directory.iterdir() if p.is_file())
    return hashlib.sha1(json.dumps(lines).encode()).hexdigest()


def release_venv(host, version_prefix: str) -> str:
    (release,) = [r for r in host.file("/srv/sample_app/releases").listdir() if r.startswith(version_prefix)]
    return host.file(f"/srv/sample_app/releases/{release}/venv").linked_to


def test_deploy_v2_from_other_wheels_builds_another_venv(host):
    # The same pins, one file more in the wheelhouse: v2 must not reuse v1's venv (built from other wheels).
    wheels_v2 = CONTROLLER / "wheelhouse-v2"
    shutil.rmtree(wheels_v2, ignore_errors=True)
    shutil.copytree(WHEELHOUSE, wheels_v2)
    (wheels_v2 / "NOTES.txt").write_text("wheels rebuilt for v2\n")
    for path in (wheels_v2, *wheels_v2.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    report = ok("deploy", "--version", "2.0.0", "-e", f"systemd_release_wheelhouse={wheels_v2}")
    assert version(host) == "2.0.0"
    assert any("2.0.0" in r for r in report["release_ids"]), report["release_ids"]
    # Each directory was copied once, to a directory named by its content, and marked complete.
    for directory in (WHEELHOUSE, wheels_v2):
        key = wheels_key(directory)
        marker = host.file(f"{SHARED}/wheelhouse-{key[:16]}/.shipshape-unpacked")
        assert marker.content_string == f"{directory.name} sha1:{key}\n"
    assert host.file(f"{SHARED}/wheelhouse-{wheels_key(wheels_v2)[:16]}/NOTES.txt").exists
    v1_venv, v2_venv = release_venv(host, "1.0.0-"), release_venv(host, "2.0.0-")
    assert v1_venv != v2_venv and v2_venv.startswith(f"{SHARED}/venvs/"), (v1_venv, v2_venv)
    assert host.file(f"{v2_venv}/.shipshape-complete").exists


def test_backup_becomes_postgres(host):
    # pg_dump runs with become_user: postgres (an unprivileged user reached through sudo: pipelining).
    report = ok("backup")
    assert report["backup_ids"], report["results"]


def test_rollback(host):
    ok("rollback")
    assert version(host) == "1.0.0"


def test_maintenance_on_and_off(host):
    ok("maintenance", "on")
    assert http(host, "GET", "/notes") == (503, {"error": "maintenance"})
    ok("maintenance", "off")
    assert http(host, "GET", "/notes")[0] == 200


def test_drill():
    report = ok("drill")
    assert report["drill_recovery_s"] is not None, report["results"]


def test_restore(host):
    ok("restore", "--confirm", "sample_app")
    assert http(host, "GET", "/notes")[0] == 200


def test_health():
    report = ok("health")
    assert {h["name"] for h in report["hosts"]} == {"app-ssh", "db-ssh"}
    assert all(h["unreachable"] == 0 and h["failed"] == 0 for h in report["hosts"]), report["hosts"]


def test_a_changed_host_key_is_refused():
    """The app host's known_hosts entry replaced by another key (as after a man in the middle): health stops on
    that host with SSH's own message, before any task runs there; the CLI did not turn checking off."""
    original = KNOWN_HOSTS.read_text()
    network = '{{(index .NetworkSettings.Networks "molecule-shipshape-ssh").IPAddress}}'
    address = subprocess.run(["docker", "inspect", "-f", network, "app-ssh"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert re.search(rf"^{re.escape(address)} ", original, re.M), original
    wrong = HOME.parent / "wrong_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    wrong_line = f"{address} " + " ".join(Path(f"{wrong}.pub").read_text().split()[:2])
    kept = [line for line in original.splitlines() if not line.startswith(f"{address} ")]
    # A master connection that ControlPersist keeps from the runs before would be reused without a new key
    # exchange: drop its sockets, as a changed key is met on a new connection.
    for socket in (HOME / ".ansible" / "cp").glob("*"):
        socket.unlink()
    try:
        KNOWN_HOSTS.write_text("\n".join(kept + [wrong_line]) + "\n")
        code, report, output = shipshape("health")
    finally:
        KNOWN_HOSTS.write_text(original)
        for path in (wrong, Path(f"{wrong}.pub")):
            path.unlink(missing_ok=True)
    assert code == 2, f"exit {code}, expected 2 (unreachable)\n{output}"
    app = next(h for h in report["hosts"] if h["name"] == "app-ssh")
    assert app["unreachable"] == 1 and app["changed"] == 0 and app["failed"] == 0, app
    # Nothing ran on the host: the only results before the refusal are Ansible's own steps on the controller
    # (include_role, set_fact...), and the host left the play at the first task that needed a connection.
    tasks = [t for t in report["tasks"] if t["host"] == "app-ssh"]
    assert tasks and tasks[-1]["status"] == "unreachable", tasks
    remote = [t for t in tasks[:-1] if t["action"].rsplit(".", 1)[-1] not in CONTROLLER_ACTIONS
              and (t["action"], t["task"]) not in CONTROLLER_TASKS]
    assert remote == [], remote
    message = report["message"]
    assert "HOST IDENTIFICATION HAS CHANGED" in message and "Host key verification failed" in message, message
    assert any(f.startswith("app-ssh: unreachable: ") for f in report["failures"]), report["failures"]
    # The other host was checked as usual.
    db = next(h for h in report["hosts"] if h["name"] == "db-ssh")
    assert db["unreachable"] == 0 and db["ok"] > 0, db
