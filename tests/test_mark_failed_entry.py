"""mark_failed, the entry point both release strategies expose, writes a marker at a path built from the release id:
a hostile id is refused by name and nothing is written outside the app root."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PLAYBOOK = """
- name: Mark a release failed, as deploy and rollback do
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Mark it
      ansible.builtin.include_role:
        name: "shipshape.ops.{{ release_strategy }}_release"
        tasks_from: mark_failed
"""


def mark_failed(tmp_path, ansible_env, strategy, target):
    root = tmp_path / "srv" / "app"
    (root / "releases" / "1.0.0").mkdir(parents=True)
    (root / "failed").mkdir()
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {"release_strategy": strategy, "ansible_python_interpreter": sys.executable, f"{strategy}_release_app_name": "app", f"{strategy}_release_root": str(root),
             f"{strategy}_release_target": target, f"{strategy}_release_failed_reason": "gate failed"}
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yml"), "-e", json.dumps(extra)],
                          capture_output=True, text=True, env=ansible_env, cwd=tmp_path, check=False)
    return root, proc


@pytest.mark.parametrize("strategy, target, expected", [
    ("systemd", "../../pwn", "systemd_release_target '../../pwn' must be one path component"),
    ("compose", "../pwn", "compose_release_target '../pwn' must be a docker tag"),
])
def test_a_hostile_release_id_is_refused_naming_it_and_no_marker_is_written(tmp_path, ansible_env, strategy, target,
                                                                               expected):
    (tmp_path / "pwn").mkdir()
    (tmp_path / "srv" / "pwn").mkdir(parents=True)
    root, proc = mark_failed(tmp_path, ansible_env, strategy, target)
    assert proc.returncode != 0
    assert expected in proc.stdout, proc.stdout[-2000:]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == ["play.yml"]


@pytest.mark.parametrize("strategy, marker", [
    ("systemd", "releases/1.0.0/.shipshape-failed"),
    ("compose", "failed/1.0.0.json"),
])
def test_a_release_id_is_marked_failed_with_its_reason(tmp_path, ansible_env, strategy, marker):
    root, proc = mark_failed(tmp_path, ansible_env, strategy, "1.0.0")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert json.loads((root / marker).read_text())["reason"] == "gate failed"
