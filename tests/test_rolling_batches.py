"""Rolling deploys: the batches playbooks/deploy.yml's Deploy play makes of five hosts, from -e deploy_serial and
deploy_canary, the refusal when the inventory asks for batches the play cannot see (issue 19 item 2), and a batch
that loses hosts, failed or unreachable, stopping the batches after it (issue 19 item 1)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOSTS = ["app1", "app2", "app3", "app4", "app5"]


@pytest.fixture
def play(tmp_path):
    """The Deploy play and the play that finishes the rollout, as playbooks/deploy.yml has them (hosts, serial,
    failure keywords, rescue, batch_end, rollout_end), with stand-ins for the deploy role inside the block."""
    plays = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    deploy = next(p for p in plays if p["name"] == "Deploy")
    finish = next(p for p in plays if p["name"] == "Finish the rollout")
    assert plays[-1] is finish
    assert "max_fail_percentage" not in deploy  # batch_end counts the lost hosts instead
    (batch_end,) = [t for t in deploy["tasks"] if t.get("ansible.builtin.include_role", {}).get("tasks_from") == "batch_end"]
    assert deploy["tasks"][-1] == batch_end  # the last task of every batch
    (block,) = [t for t in deploy["tasks"] if "block" in t]
    assert block["block"][0]["ansible.builtin.include_role"] == {"name": "shipshape.ops.deploy"}
    assert "rescue" in block  # a failed deploy stays in its batch until batch_end has counted it
    block["block"] = [
        {"name": "The deploy's batch check",
         "ansible.builtin.include_role": {"name": "shipshape.ops.deploy", "tasks_from": "batches"}},
        # as the deploy's lock task registers it: a host lost after this holds its lock
        {"name": "Take the lock", "ansible.builtin.set_fact": {"__deploy_lock_taken": {"acquired": True}},
         "when": "inventory_hostname in (holds_lock | default([]))"},
        {"name": "Connect", "ansible.builtin.ping": {}},
        {"name": "A host's gate fails", "ansible.builtin.fail": {"msg": "gate failed on {{ inventory_hostname }}"},
         "when": "inventory_hostname in (gate_fails | default([]))"},
        {"name": "Deployed", "ansible.builtin.debug": {"msg": "batch {{ ansible_play_batch | join(',') }}"},
         "run_once": True},
        {"name": "Release the lock", "ansible.builtin.set_fact": {"__deploy_lock_released": {"failed": False}},
         "when": "inventory_hostname in (holds_lock | default([]))"},
    ]
    finish["tasks"].append({"name": "Rollout", "ansible.builtin.debug": {"msg": "rollout {{ deploy_rollout_result | to_json }}"},
                            "run_once": True})
    (tmp_path / "play.yml").write_text(yaml.safe_dump([deploy, finish], sort_keys=False))
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "app_servers").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"app_servers": {
        "hosts": {h: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable} for h in HOSTS}}}))
    return tmp_path


def run(play, ansible_env, *extra):
    env = {**ansible_env, "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}  # one line per message
    return subprocess.run(["ansible-playbook", "-i", str(play / "inventory"), str(play / "play.yml"), *extra],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def batches(stdout):
    return [found.split(",") for found in re.findall(r"msg\"?: \"?batch ([\w,]+)", stdout)]


def rollout(stdout):
    """deploy_rollout_result, as the last play printed it (None when that play did not run)."""
    found = re.search(r'"msg": "rollout (\{.*\})"', stdout)
    return None if found is None else json.loads(json.loads(f'"{found.group(1)}"'))


@pytest.mark.parametrize("extra, expected", [
    ([], [HOSTS]),
    (["-e", "deploy_serial=2"], [["app1", "app2"], ["app3", "app4"], ["app5"]]),
    # the canary is deployed (and gated) alone; then the rest at once, or deploy_serial at a time
    (["-e", "deploy_canary=1"], [["app1"], ["app2", "app3", "app4", "app5"]]),
    (["-e", "deploy_canary=1", "-e", "deploy_serial=2"], [["app1"], ["app2", "app3"], ["app4", "app5"]]),
    (["-e", "deploy_serial=40%"], [["app1", "app2"], ["app3", "app4"], ["app5"]]),
])
def test_batches_from_extra_vars(play, ansible_env, extra, expected):
    result = run(play, ansible_env, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert batches(result.stdout) == expected


@pytest.mark.parametrize("inventory_vars", [{"deploy_serial": 1}, {"deploy_canary": 1}])
def test_batches_asked_for_in_the_inventory_are_refused(play, ansible_env, inventory_vars):
    # A play's serial is read before any host: set only in group_vars, it would deploy every host at once.
    (play / "inventory" / "group_vars" / "app_servers" / "main.yml").write_text(yaml.safe_dump(inventory_vars))
    result = run(play, ansible_env)
    assert result.returncode == 2, result.stdout + result.stderr
    name, value = next(iter(inventory_vars.items()))
    assert f"{name} '{value}'" in result.stdout
    assert "set them with -e (shipshape deploy --serial/--canary), not in the inventory" in result.stdout
    assert batches(result.stdout) == []
    # the same values given with -e make the batches they ask for
    flags = [arg for key, val in inventory_vars.items() for arg in ("-e", f"{key}={val}")]
    result = run(play, ansible_env, *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert batches(result.stdout)[0] == ["app1"]


@pytest.mark.parametrize("flag, name", [
    ("deploy_serial=0", "deploy_serial '0'"), ("deploy_serial=x", "deploy_serial 'x'"),
    ("deploy_serial=101%", "deploy_serial '101%'"), ("deploy_canary=-1", "deploy_canary '-1'"),
])
def test_bad_batch_sizes_are_refused_before_any_host(play, ansible_env, flag, name):
    result = run(play, ansible_env, "-e", flag)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert name in output and re.search(r"must be (a whole number|0 \(no canary\))", output), output
    assert batches(result.stdout) == []


# --- a batch that loses hosts ---------------------------------------------------------------------------------

def test_a_failed_host_stops_the_batches_after_its_own(play, ansible_env):
    result = run(play, ansible_env, "-e", "deploy_serial=2", "-e", '{"gate_fails": ["app3"]}')
    assert result.returncode == 2, result.stdout + result.stderr
    # app4, in app3's batch, finishes its deploy (app3 is rescued, kept in the batch until it is counted); app5's
    # batch never starts
    assert batches(result.stdout) == [["app1", "app2"], ["app3", "app4"]]
    said = " ".join(result.stdout.split())  # the callback wraps long messages
    assert "Batch 2 (app3, app4) lost app3: 50.0% of its hosts, more than deploy_max_fail_percentage 0% allows" in said
    assert re.search(r"app4 +: ok=\d+ +changed=0 +unreachable=0 +failed=0", result.stdout), result.stdout
    # app3 fails at the end, with its own message
    assert re.search(r"app3 +: ok=\d+ +changed=0 +unreachable=0 +failed=1 +skipped=\d+ +rescued=1", result.stdout), result.stdout
    assert "gate failed on app3" in result.stdout.split("PLAY [Finish the rollout]")[1]
    assert rollout(result.stdout) == {"stopped": True, "stopped_after": rollout(result.stdout)["stopped_after"],
                                      "failed": ["app3"], "unreachable": [], "stale_locks": [],
                                      "lock_path": rollout(result.stdout)["lock_path"], "switch_back": False}
    assert rollout(result.stdout)["stopped_after"]["later"] == ["app5"]


def test_a_canary_that_fails_alone_is_counted_and_stops_the_rest(play, ansible_env):
    # A batch that failed entirely: without the play's rescue Ansible ends the run there, with no count, no report
    # of the batch and no later play.
    result = run(play, ansible_env, "-e", "deploy_canary=1", "-e", '{"gate_fails": ["app1"]}')
    assert result.returncode == 2, result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    assert "Batch 1 (app1) lost app1: 100.0% of its hosts" in said, result.stdout
    assert batches(result.stdout) == []  # app1 failed before it, the other four never started
    found = rollout(result.stdout)
    assert found["stopped"] is True and found["failed"] == ["app1"]
    assert found["stopped_after"]["later"] == ["app2", "app3", "app4", "app5"]
    assert re.search(r"app1 +: ok=\d+ +changed=0 +unreachable=0 +failed=1", result.stdout), result.stdout


@pytest.mark.parametrize("where", ["extra vars", "inventory"])
def test_deploy_max_fail_percentage_lets_the_rest_go_on(play, ansible_env, where):
    extra = ["-e", "deploy_serial=2", "-e", '{"gate_fails": ["app3"]}']
    if where == "extra vars":
        extra += ["-e", "deploy_max_fail_percentage=50"]
    else:  # a play keyword would not see it; batch_end does
        (play / "inventory" / "group_vars" / "app_servers" / "main.yml").write_text(
            yaml.safe_dump({"deploy_max_fail_percentage": 50}))
    result = run(play, ansible_env, *extra)
    assert result.returncode == 2, result.stdout + result.stderr  # app3 failed all the same
    assert batches(result.stdout) == [["app1", "app2"], ["app3", "app4"], ["app5"]]
    assert "more than deploy_max_fail_percentage" not in result.stdout


def test_an_unreachable_host_counts_like_a_failed_one(play, ansible_env):
    # Ansible's own max_fail_percentage counts failed hosts only.
    (play / "inventory" / "host_vars").mkdir()
    (play / "inventory" / "host_vars" / "app3.yml").write_text(yaml.safe_dump(
        {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody",
         "ansible_ssh_common_args": "-o ConnectTimeout=5 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}))
    result = run(play, ansible_env, "-e", "deploy_serial=2")
    assert result.returncode == 4, result.stdout + result.stderr
    assert batches(result.stdout) == [["app1", "app2"], ["app4"]]
    assert "Batch 2 (app3, app4) lost app3" in " ".join(result.stdout.split())
    assert re.search(r"app3 +: ok=\d+ +changed=0 +unreachable=1 +failed=0", result.stdout), result.stdout
    assert "app5 " not in result.stdout.split("PLAY RECAP")[0].split("PLAY [Finish the rollout]")[0]  # never started
    found = rollout(result.stdout)
    assert found["unreachable"] == ["app3"] and found["stale_locks"] == [] and found["stopped"] is True


def test_a_host_lost_while_it_holds_its_lock_is_named(play, ansible_env):
    (play / "inventory" / "host_vars").mkdir()
    (play / "inventory" / "host_vars" / "app3.yml").write_text(yaml.safe_dump(
        {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_user": "nobody",
         "ansible_ssh_common_args": "-o ConnectTimeout=5 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}))
    result = run(play, ansible_env, "-e", "deploy_serial=2", "-e", '{"holds_lock": ["app3", "app4"]}')
    assert result.returncode == 4, result.stdout + result.stderr
    found = rollout(result.stdout)
    assert found["stale_locks"] == ["app3"] and found["unreachable"] == ["app3"], found  # app4 released its own
    said = " ".join(result.stdout.split())
    assert "app3 could not be reached to release the deploy lock (/srv/" in said, result.stdout


@pytest.mark.parametrize("value", ["101", "-1", "half", "5.5"])
def test_a_bad_max_fail_percentage_is_refused_before_any_host(play, ansible_env, value):
    result = run(play, ansible_env, "-e", f"deploy_max_fail_percentage={value}")
    assert result.returncode == 2
    said = " ".join(result.stdout.split())
    assert f"deploy_max_fail_percentage '{value}' must be a whole percentage from 0" in said, result.stdout
    assert batches(result.stdout) == []
