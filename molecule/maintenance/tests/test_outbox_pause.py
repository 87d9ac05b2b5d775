"""Outbox pause and resume, as the Loyalty runbook asks when webhooks fail en masse ("pause delivery, find the cause,
then resume"): `shipshape recover outbox_pause` sets the app's pause flag (a Redis key on the db host), the app's outbox
worker then delivers nothing, and `outbox_resume` clears it, after which the rows that waited are delivered."""

from __future__ import annotations

import json

from conftest import http, run_playbook

testinfra_hosts = ["app_servers"]

KEY = "sample_app:outbox:paused"


def worker(host) -> dict:
    """One pass of the sample app's outbox worker, with the service's environment, as its unit would run it."""
    cmd = host.run("set -a && . /srv/sample_app/shared/app.env && cd /srv/sample_app/current "
                   "&& venv/bin/python -m sample_app.outbox_worker --once")
    assert cmd.rc == 0, cmd.stderr
    return json.loads(cmd.stdout.strip().splitlines()[-1])


def pending(host) -> int:
    status, body = http(host, "GET", "/healthz")
    assert status == 200, body
    return body["queue"]["pending"]


def recover(action: str, *extra: str, check: bool | None = True):
    return run_playbook("recovery.yml", "-e", f"recovery_action={action}", "-e", f"recovery_outbox_pause_key={KEY}",
                        *extra, check=check)


def test_a_paused_outbox_delivers_nothing_until_it_is_resumed(host):
    for i in range(2):
        assert http(host, "POST", "/notes", {"body": f"waits for delivery {i}"})[0] == 201
    waiting = pending(host)
    assert waiting >= 2

    proc = recover("outbox_pause", "-e", json.dumps({"recovery_outbox_pause_reason": "merchant webhooks answer 502"}))
    said = " ".join(proc.output.split())
    assert f"Outbox delivery is paused ({KEY} set by " in said and "merchant webhooks answer 502" in said, said[-2000:]
    paused = worker(host)
    assert (paused["paused"], paused["delivered"]) == (True, 0), paused
    assert paused["paused_by"].endswith(": merchant webhooks answer 502"), paused
    assert pending(host) == waiting

    # Paused again (a retried CI step): nothing changes, and who paused it first is kept.
    again = recover("outbox_pause", "-e", json.dumps({"recovery_outbox_pause_reason": "someone else"}))
    assert "it already did, nothing was changed" in " ".join(again.output.split())
    assert worker(host)["paused_by"] == paused["paused_by"]

    proc = recover("outbox_resume")
    assert f"Outbox delivery runs ({KEY} absent)." in " ".join(proc.output.split()), proc.output[-2000:]
    resumed = worker(host)
    assert (resumed["paused"], resumed["delivered"]) == (False, waiting), resumed
    assert pending(host) == 0
    assert "it already did, nothing was changed" in " ".join(recover("outbox_resume").output.split())


def test_a_pause_without_its_key_is_refused_naming_it(host):
    proc = run_playbook("recovery.yml", "-e", "recovery_action=outbox_pause", check=False)
    said = " ".join(proc.output.split())
    assert proc.returncode != 0
    assert "recovery_action=outbox_pause needs recovery_outbox_pause_key (the app's pause flag, a Redis key); it is empty." \
        in said, said[-2000:]
