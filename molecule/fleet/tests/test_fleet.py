"""A fleet of three app hosts as a release engineer drives it with `shipshape`: one release id on every host, a
canary deployed and gated alone, a batch that loses a host (its gate fails; its container stops mid-run) stopping
the batches after it, the locks, the run's report and history, the hosts' own deploy histories, and a rollback
across every host. The tests run in file order; each starts from the state the one before it left."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

from conftest import ROOT, http

testinfra_hosts = ["app1-fleet"]

APPS = ["app1-fleet", "app2-fleet", "app3-fleet"]
ROOT_DIR = "/srv/sample_app"
LOCK = f"{ROOT_DIR}/.deploy.lock"


def app(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def history(name: str) -> list[dict]:
    text = app(name).file(f"{ROOT_DIR}/deploy-history.jsonl").content_string
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def current(name: str) -> str:
    return Path(app(name).file(f"{ROOT_DIR}/current").linked_to).name


def serving(name: str) -> tuple[str, str]:
    status, body = http(app(name), "GET", "/version")
    assert status == 200, (name, body)
    return body["version"], body["release_id"]


def locked(name: str) -> bool:
    return app(name).file(LOCK).exists


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """`shipshape ARGS -y --json` against the scenario's inventory, with its own state directory (run history)."""
    state = tmp_path_factory.mktemp("state")
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = str(Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.cfg")
    env["ANSIBLE_COLLECTIONS_PATH"] = str(ROOT / ".collections")

    def run(*args: str, background: bool = False):
        cmd = ["shipshape", *args, "-i", os.environ["MOLECULE_INVENTORY_FILE"], "-y", "--json",
               "--state-dir", str(state)]
        if background:  # its output to files: a pipe nobody reads would fill and stop it
            out, err = (open(state / name, "w+", encoding="utf-8") for name in ("stdout", "stderr"))
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
            proc.output = lambda: (out.seek(0) or out.read(), err.seek(0) or err.read())
            return proc
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
        return finish(proc.returncode, proc.stdout, proc.stderr)

    def finish(code, stdout, stderr):
        try:
            report = json.loads(stdout)
        except ValueError:
            report = {}
        return code, report, (stderr or "")[-4000:]

    def runs():
        proc = subprocess.run(["shipshape", "history", "--json", "--state-dir", str(state)], capture_output=True,
                              text=True, env=env, timeout=60, check=True)
        return json.loads(proc.stdout)

    run.finish = finish
    run.runs = runs
    return run


def gate_failing_on(tmp_path: Path, *names: str) -> str:
    """Extra vars whose health gate fails on these hosts: their gate asks a port nothing listens on. Their candidate
    check passes, so they switch, fail the gate and switch back by themselves."""
    spec = {"deploy_health_retries": 2, "deploy_health_checks": [
        {"name": "healthz", "kind": "http", "status": 200, "json": {"status": "ok"},
         "url": "http://127.0.0.1:{{ 8009 if inventory_hostname in %s else 8000 }}/healthz" % json.dumps(list(names))}]}
    path = tmp_path / "gate.json"
    path.write_text(json.dumps(spec))
    return f"@{path}"


def gate_degraded_on(tmp_path: Path, *names: str) -> str:
    """Extra vars whose health gate fails on these hosts with deploy_health_fail_on=degraded: their healthz answers,
    but slower than a max_ms of 0, so the check is degraded (any answer takes longer than 0 ms). The other hosts'
    gate allows 5 s; no smoke checks, whose max_ms would make a slow answer under load fail the gate too."""
    spec = {"deploy_health_retries": 2, "deploy_health_fail_on": "degraded", "deploy_smoke_checks": [],
            "deploy_health_checks": [
                {"name": "healthz", "kind": "http", "status": 200, "json": {"status": "ok"},
                 "url": "http://127.0.0.1:8000/healthz",
                 "max_ms": "{{ 0 if inventory_hostname in %s else 5000 }}" % json.dumps(list(names))}]}
    path = tmp_path / "gate-degraded.json"
    path.write_text(json.dumps(spec))
    return f"@{path}"


def report_lines(report: dict) -> list[str]:
    """What the terminal and report.md say of the roles' results."""
    from shipshape.report import describe_result

    return [line for facts in report.get("results", {}).values() for fact, value in facts.items()
            for line in describe_result(fact, value)]


def host_results(report: dict, fact: str) -> dict[str, dict]:
    return {host: facts[fact] for host, facts in report.get("results", {}).items() if fact in facts}


# converge: v2 rolled out with --canary 1 over v1 on every host.
def test_one_release_id_on_every_host_and_the_canary_went_first():
    served = {name: serving(name) for name in APPS}
    assert {version for version, _ in served.values()} == {"2.0.0"}, served
    assert len({release for _, release in served.values()}) == 1, served  # one release id across the fleet
    assert {current(name) for name in APPS} == {served["app1-fleet"][1]}
    deploys = {name: [e for e in history(name) if e["kind"] == "deploy" and e["result"] == "success"][-1]
               for name in APPS}
    # the canary first, alone: the other two began after it had finished, and together (one batch)
    ends = {name: time.mktime(time.strptime(deploys[name]["at"], "%Y-%m-%dT%H:%M:%SZ")) for name in APPS}
    starts = {name: ends[name] - deploys[name]["duration_s"] for name in APPS}
    for name in APPS[1:]:
        assert starts[name] >= ends["app1-fleet"] - 1, (deploys, name)
    assert starts["app3-fleet"] < ends["app2-fleet"] and starts["app2-fleet"] < ends["app3-fleet"], deploys


def test_a_rollback_across_every_host(cli):
    v2 = current("app1-fleet")
    code, report, err = cli("rollback")
    assert code == 0, (code, report.get("message"), err)
    served = {name: serving(name) for name in APPS}
    assert {version for version, _ in served.values()} == {"1.0.0"}, served
    assert len({release for _, release in served.values()}) == 1, served
    for name in APPS:
        last = history(name)[-1]
        assert (last["kind"], last["result"], last["from"]) == ("rollback", "success", v2), (name, last)
    assert set(host_results(report, "rollback_result")) == set(APPS)


def test_with_rollback_on_batch_failure_the_hosts_deployed_are_switched_back(cli, tmp_path):
    # v2 over v1, one host per batch; app3 (batch 3) fails its gate: app1 and app2 go back to v1 too
    v1 = current("app1-fleet")
    code, report, err = cli("deploy", "--version", "2.0.0", "--canary", "1", "--serial", "1",
                            "-e", gate_failing_on(tmp_path, "app3-fleet"), "-e", "deploy_rollback_on_batch_failure=true")
    assert code == 1, (code, report.get("message"), err)
    assert {name: serving(name) for name in APPS} == {name: ("1.0.0", v1) for name in APPS}
    for name in ("app1-fleet", "app2-fleet"):
        # the switch back is a rollback: its intent (started) is recorded before it switches, its outcome after
        deployed, intent, switched_back = history(name)[-3:]
        assert (deployed["kind"], deployed["result"], deployed["from"]) == ("deploy", "success", v1), (name, deployed)
        assert (intent["kind"], intent["result"], intent["to"]) == ("rollback", "started", v1), (name, intent)
        assert (switched_back["kind"], switched_back["result"], switched_back["to"]) == ("rollback", "success", v1)
        assert "rollout stopped after batch 3" in switched_back["message"], switched_back
    assert history("app3-fleet")[-1]["result"] == "rolled_back"
    rollout = next(iter(host_results(report, "deploy_rollout_result").values()))
    assert rollout["switch_back"] is True and rollout["failed"] == ["app3-fleet"]
    assert set(host_results(report, "rollback_result")) == {"app1-fleet", "app2-fleet"}
    assert not any(locked(name) for name in APPS)


def test_a_gate_failure_in_the_second_batch_stops_the_rest_and_the_first_keeps_the_new_release(cli, tmp_path):
    # app2's gate finds its release degraded, and deploy_health_fail_on=degraded makes that a failure: it switches
    # back by itself. (The test before this one fails a gate outright.)
    v1 = current("app1-fleet")
    records = len(history("app3-fleet"))
    code, report, err = cli("deploy", "--version", "2.0.0", "--canary", "1", "--serial", "1",
                            "-e", gate_degraded_on(tmp_path, "app2-fleet"))
    assert code == 1, (code, report.get("message"), err)
    # the canary (batch 1) keeps serving the new release; app2 switched back by itself; app3 was never deployed
    assert serving("app1-fleet")[0] == "2.0.0"
    assert serving("app2-fleet") == ("1.0.0", v1) and serving("app3-fleet") == ("1.0.0", v1)
    assert history("app2-fleet")[-1]["result"] == "rolled_back"
    assert len(history("app3-fleet")) == records  # not a record: it was never touched
    assert not any(locked(name) for name in APPS)  # every lock released
    # the report names what happened on each host, and the batch that stopped the rest
    deploys = host_results(report, "deploy_result")
    assert deploys["app1-fleet"]["result"] == "success" and deploys["app2-fleet"]["result"] == "rolled_back"
    assert "app3-fleet" not in deploys
    batches = host_results(report, "deploy_batch_result")
    assert batches["app1-fleet"]["batch"] == 1 and batches["app1-fleet"]["stop"] is False
    stopped = batches["app2-fleet"]
    assert (stopped["batch"], stopped["lost"], stopped["failed"], stopped["later"], stopped["stop"]) == (
        2, ["app2-fleet"], ["app2-fleet"], ["app3-fleet"], True)
    assert any("app2-fleet" in line and "health gate: healthz degraded" in line
               and "deploy_health_fail_on=degraded fails a degraded release" in line
               for line in report["failures"]), report["failures"]
    assert "app1-fleet" not in " ".join(report["failures"])
    hosts = {h["name"]: h for h in report["hosts"]}
    assert hosts["app2-fleet"]["failed"] >= 1 and hosts["app1-fleet"]["failed"] == 0
    # and the run history keeps it
    last = cli.runs()[0]
    assert (last["command"], last["exit_code"], last["result"]) == ("deploy", 1, "failed")
    assert json.loads(Path(last["run_dir"], "report.json").read_text())["results"] == report["results"]


def test_a_host_that_stops_mid_run_is_named_unreachable_with_its_stale_lock(cli):
    # batches [app1], [app2, app3]: app3's container stops while app3 holds its deploy lock
    proc = cli("deploy", "--version", "1.0.0", "--canary", "1", "--serial", "2", background=True)
    deadline = time.monotonic() + 600
    try:
        while not locked("app3-fleet"):
            assert proc.poll() is None, proc.output()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        subprocess.run(["docker", "stop", "-t", "0", "app3-fleet"], check=True, capture_output=True)
        code, report, err = cli.finish(proc.wait(timeout=600), *proc.output())
    finally:
        subprocess.run(["docker", "start", "app3-fleet"], check=True, capture_output=True)
    assert code == 2, (code, report.get("message"), err)
    hosts = {h["name"]: h for h in report["hosts"]}
    assert hosts["app3-fleet"]["unreachable"] >= 1 and hosts["app2-fleet"]["failed"] == 0
    assert any("app3-fleet" in line and "not running" in line for line in report["failures"]), report["failures"]
    # a stopped docker container fails its tasks (SSH would make it unreachable): lost all the same
    batch = host_results(report, "deploy_batch_result")["app2-fleet"]
    assert (batch["batch"], batch["lost"], batch["stop"]) == (2, ["app3-fleet"], True)
    rollout = next(iter(host_results(report, "deploy_rollout_result").values()))
    assert rollout["stale_locks"] == ["app3-fleet"]
    assert any("stale deploy lock on app3-fleet" in line for line in report_lines(report)), report_lines(report)
    assert serving("app1-fleet")[0] == "1.0.0"
    assert history("app2-fleet")[-1]["kind"] == "deploy"  # app2, in the same batch, finished its deploy
    # back up, app3 still holds the lock the lost run took
    for _ in range(60):
        if app("app3-fleet").run("systemctl is-system-running").stdout.strip() in ("running", "degraded"):
            break
        time.sleep(1)
    assert locked("app3-fleet")


def test_the_stale_lock_refuses_the_next_deploy_until_it_is_broken(cli):
    code, report, err = cli("deploy", "--version", "1.0.0")
    assert code == 4 and locked("app3-fleet"), (code, report.get("message"), err)  # 4: a held lock
    # the message names the host and how to break its lock (the run that took it is gone)
    assert report["message"].startswith("app3-fleet: Refused: the lock"), report["message"]
    assert "-e deploy_lock_break=true" in report["message"], report["message"]
    code, report, err = cli("deploy", "--version", "1.0.0", "-e", "deploy_lock_break=true")
    assert code == 0, (code, report.get("message"), err)
    served = {name: serving(name) for name in APPS}
    assert set(served.values()) == {served["app1-fleet"]} and served["app1-fleet"][0] == "1.0.0", served
    assert not any(locked(name) for name in APPS)
