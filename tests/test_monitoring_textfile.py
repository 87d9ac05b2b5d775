"""prometheus_textfile through ansible-playbook, as docs/monitoring.md shows a role calling it: a failed deploy
keeps the last success time (a Jinja none reaches the module as no value), and two apps share one file."""

from __future__ import annotations

import json
import subprocess

PLAY = """
- name: Record deploys
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Record the deploy for Prometheus
      shipshape.ops.prometheus_textfile:
        path: "{{ metrics_file }}"
        prefix: shipshape_deploy_
        labels:
          app: "{{ app }}"
        metrics:
          - name: shipshape_deploy_success
            help: Whether the last deploy succeeded (1) or failed (0).
            value: "{{ 1 if deploy_result.result in ['success', 'unchanged'] else 0 }}"
          - name: shipshape_deploy_last_run_timestamp_seconds
            help: Unix time of the last deploy.
            value: "{{ now_s }}"
          - name: shipshape_deploy_last_success_timestamp_seconds
            help: Unix time of the last successful deploy (0 none yet).
            value: "{{ now_s if deploy_result.result in ['success', 'unchanged'] else none }}"
            keep: true
            default: 0
          - name: shipshape_deploy_duration_seconds
            help: Duration of the last deploy.
            value: "{{ deploy_result.duration_s | default(none) }}"
      changed_when: false
"""


def series(path):
    return dict(line.rsplit(" ", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def deploy(tmp_path, env, app, result, now_s, duration=None, check=False):
    (tmp_path / "play.yml").write_text(PLAY)
    deploy_result = {"result": result}
    if duration is not None:
        deploy_result["duration_s"] = duration
    extra = {"metrics_file": str(tmp_path / "textfile" / "shipshape_deploy.prom"), "app": app, "now_s": now_s,
             "deploy_result": deploy_result}
    cmd = ["ansible-playbook", str(tmp_path / "play.yml"), "-e", json.dumps(extra)] + (["--check"] if check else [])
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp_path / "textfile" / "shipshape_deploy.prom"


def test_a_failed_deploy_keeps_the_last_success(tmp_path, ansible_env):
    path = deploy(tmp_path, ansible_env, "sample_app", "success", 1000, duration=41.5)
    assert series(path) == {
        'shipshape_deploy_success{app="sample_app"}': "1",
        'shipshape_deploy_last_run_timestamp_seconds{app="sample_app"}': "1000",
        'shipshape_deploy_last_success_timestamp_seconds{app="sample_app"}': "1000",
        'shipshape_deploy_duration_seconds{app="sample_app"}': "41.5",
    }
    deploy(tmp_path, ansible_env, "other_app", "failed", 1500)
    deploy(tmp_path, ansible_env, "sample_app", "rolled_back", 2000)  # no duration: its old series goes
    got = series(path)
    assert got['shipshape_deploy_success{app="sample_app"}'] == "0"
    assert got['shipshape_deploy_last_run_timestamp_seconds{app="sample_app"}'] == "2000"
    assert got['shipshape_deploy_last_success_timestamp_seconds{app="sample_app"}'] == "1000"
    assert 'shipshape_deploy_duration_seconds{app="sample_app"}' not in got
    assert got['shipshape_deploy_last_success_timestamp_seconds{app="other_app"}'] == "0"
    assert got['shipshape_deploy_success{app="other_app"}'] == "0"
    before = path.read_text()
    deploy(tmp_path, ansible_env, "sample_app", "success", 3000, check=True)
    assert path.read_text() == before
