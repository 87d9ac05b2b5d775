"""inventories/example: the production-shaped inventory that docs/servers.md starts from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "inventories" / "example"
VAULT_PASSWORD = EXAMPLE / "vault-password.example.txt"


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def test_graph_has_two_app_hosts_and_a_db_host(ansible_env):
    result = run(["ansible-inventory", "-i", str(EXAMPLE), "--vault-password-file", str(VAULT_PASSWORD), "--graph"],
                 ansible_env)
    assert result.returncode == 0, result.stderr
    lines = [line.strip(" |-") for line in result.stdout.splitlines()]
    assert lines.count("app1.example.com") == 1 and lines.count("app2.example.com") == 1
    assert "db1.example.com" in lines
    # The password file sits beside the inventory but is never read as a host.
    assert not [line for line in lines if "vault-password" in line]


def test_hosts_are_reached_over_ssh_as_a_sudo_user(ansible_env):
    result = run(["ansible-inventory", "-i", str(EXAMPLE), "--vault-password-file", str(VAULT_PASSWORD),
                  "--host", "app1.example.com"], ansible_env)
    assert result.returncode == 0, result.stderr
    host = json.loads(result.stdout)
    assert host["ansible_user"] == "deploy"
    assert host["ansible_become"] is True
    assert "ansible_connection" not in host  # ssh, Ansible's default
    assert host["shipshape_environment"] == "production"


def test_the_controller_does_not_become_root(ansible_env):
    # The implicit localhost reads `all`'s variables: become set there would make controller-side tasks sudo.
    result = run(["ansible", "-i", str(EXAMPLE), "--vault-password-file", str(VAULT_PASSWORD), "localhost", "-c", "local",
                  "-m", "ansible.builtin.debug", "-a", "msg=become={{ ansible_become | default('unset') }}"], ansible_env)
    assert result.returncode == 0, result.stderr
    assert "become=unset" in result.stdout, result.stdout


def test_secrets_are_vaulted(ansible_env):
    vault = (EXAMPLE / "group_vars" / "all" / "vault.yml").read_text()
    assert vault.startswith("$ANSIBLE_VAULT;")
    assert "example-db-password" not in vault
    without = run(["ansible-inventory", "-i", str(EXAMPLE), "--host", "db1.example.com"], ansible_env)
    assert without.returncode != 0
    assert "vault" in (without.stderr + without.stdout).lower()


def test_host_keys_are_checked_with_the_collection_config(ansible_env):
    dump = run(["ansible-config", "dump", "--format", "json"], ansible_env)
    assert dump.returncode == 0, dump.stderr
    settings = {item["name"]: item for item in json.loads(dump.stdout) if isinstance(item, dict) and "name" in item}
    assert settings["HOST_KEY_CHECKING"]["value"] is True
    assert settings["HOST_KEY_CHECKING"]["origin"] == "default"  # the collection's ansible.cfg leaves it alone


@pytest.mark.parametrize("playbook", ["deploy", "rollback", "backup", "restore", "drill", "health", "maintenance"])
def test_playbooks_target_the_example_hosts(ansible_env, playbook):
    result = run(["ansible-playbook", "-i", str(EXAMPLE), "--vault-password-file", str(VAULT_PASSWORD),
                  "--list-hosts", f"playbooks/{playbook}.yml"], ansible_env)
    assert result.returncode == 0, result.stderr
    assert "example.com" in result.stdout
