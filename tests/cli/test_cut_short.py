"""A rolling deploy whose whole batch is lost (issue 19): Ansible ends the playbook there, so the deploy's last play
("Finish the rollout") never starts and cannot name what the run left. The CLI says it from the events instead: the
plays that did not run, the hosts never started, and the lock a lost host took and still holds.

The Deploy and Finish plays are playbooks/deploy.yml's own (serial, rescue, batch_end, rollout_end), with stand-ins
for the deploy role inside the block, as tests/test_rolling_batches.py builds them; the lock is the real
shipshape.ops.release_lock, on this machine; a host is lost when its connection turns to SSH on a closed port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cli_paths import ROOT
from shipshape.runner import PlaybookRunner

HOSTS = ["app1", "app2", "app3"]


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    plays = yaml.safe_load((ROOT / "playbooks" / "deploy.yml").read_text())
    deploy = next(p for p in plays if p["name"] == "Deploy")
    finish = next(p for p in plays if p["name"] == "Finish the rollout")
    (block,) = [t for t in deploy["tasks"] if "block" in t]
    lock = str(tmp_path / "locks" / "{{ inventory_hostname }}.lock")
    block["block"] = [
        {"name": "The deploy's batch check",
         "ansible.builtin.include_role": {"name": "shipshape.ops.deploy", "tasks_from": "batches"}},
        {"name": "Take the lock", "shipshape.ops.release_lock": {"path": lock, "token": "run-1", "what": "deploy"},
         "register": "__deploy_lock_taken"},
        {"name": "Connect", "ansible.builtin.ping": {},
         "vars": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9,
                  "ansible_ssh_common_args": "-o ConnectTimeout=5 -o StrictHostKeyChecking=no "
                                             "-o UserKnownHostsFile=/dev/null"},
         "when": "inventory_hostname in (lost | default([]))"},
        {"name": "Release the lock",
         "shipshape.ops.release_lock": {"path": lock, "token": "run-1", "state": "absent"},
         "register": "__deploy_lock_released"},
    ]
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "deploy.yml").write_text(yaml.safe_dump([deploy, finish], sort_keys=False))
    (tmp_path / "locks").mkdir()
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"vars": {"shipshape_environment": "test"}, "children": {
        "app_servers": {"hosts": {h: {"ansible_connection": "local",
                                      "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
                                  for h in HOSTS}}}}}))
    return tmp_path


def deploy(cli, fleet: Path, *args: str):
    runner = PlaybookRunner(ROOT, playbook_dir=fleet / "playbooks")
    result = cli("deploy", "-i", str(fleet / "hosts.yml"), "--json", *args, runner=runner)
    return result, json.loads(result.stdout)


def test_a_canary_lost_with_its_lock_is_named_and_the_hosts_never_started_too(cli, fleet):
    result, report = deploy(cli, fleet, "--canary", "1", "-e", '{"lost": ["app1"]}')
    assert result.code == 2, (result.code, report["message"], result.stderr)  # unreachable
    assert report["message"].startswith("app1: unreachable:"), report["message"]
    warnings = report["warnings"]
    assert warnings[0].startswith("the run ended before its play(s) 'Finish the rollout': every host of a batch "
                                  "was lost (app1 unreachable)"), warnings
    assert "not started (the run stopped before them): app2, app3" in warnings
    stale = [w for w in warnings if w.startswith("stale lock on app1")]
    assert stale and str(fleet / "locks" / "app1.lock") in stale[0], warnings
    assert (fleet / "locks" / "app1.lock").exists()  # what the warning says: still held
    assert {h["name"] for h in report["hosts"]} == {"app1"}
    # The report the run leaves says the same.
    md = Path(report["artifacts"]["report_md"]).read_text()
    assert "not started (the run stopped before them): app2, app3" in md


def test_a_canary_lost_before_it_took_its_lock_names_no_lock(cli, fleet):
    # every connection goes to a closed port: app1 is lost at its first task, before the lock; nothing is held
    result, report = deploy(cli, fleet, "--canary", "1",
                            "-e", '{"ansible_port": 9, "ansible_connection": "ssh", "ansible_host": "127.0.0.1"}')
    assert result.code == 2, (result.code, report["message"], result.stderr)
    assert not any(w.startswith("stale lock") for w in report["warnings"]), report["warnings"]
    assert "not started (the run stopped before them): app2, app3" in report["warnings"]
    assert not (fleet / "locks" / "app1.lock").exists()


def test_when_the_last_play_runs_it_says_what_happened_and_the_cli_adds_nothing(cli, fleet):
    # batches [app1], [app2, app3]: app2 is lost, app3 is not, so the batch lives on and the Finish play runs
    result, report = deploy(cli, fleet, "--canary", "1", "--serial", "2", "-e", '{"lost": ["app2"]}')
    assert result.code == 2, (result.code, report["message"], result.stderr)
    assert not any(w.startswith(("the run ended before", "not started", "stale lock")) for w in report["warnings"])
    rollout = next(facts["deploy_rollout_result"] for facts in report["results"].values()
                   if "deploy_rollout_result" in facts)
    assert rollout["unreachable"] == ["app2"] and rollout["stale_locks"] == ["app2"], rollout
