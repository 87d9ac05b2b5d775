"""The production confirmation against unusual inventories and extra vars: a host is production however its inventory
spells it, and a hosts variable Ansible would render (any Jinja markup) is never taken as a plain pattern."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_paths import PRODUCTION_INVENTORY


def _runs(state_dir: Path) -> list[Path]:
    runs = state_dir / "runs"
    return sorted(p for p in runs.iterdir() if not p.name.startswith(".")) if runs.is_dir() else []


def _inventory(tmp_path: Path, environment: str) -> Path:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n"
        "  children:\n"
        "    app_servers:\n"
        f"      vars: {{shipshape_environment: {environment}}}\n"
        "      hosts:\n"
        "        web1: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
        "    db_servers:\n"
        "      hosts:\n"
        "        web1: {}\n"
    )
    return inventory


@pytest.mark.parametrize("environment", ["Production", "PRODUCTION", "' production '", "'{{ env_name }}'"])
def test_production_spelled_otherwise_still_asks(cli, state_dir, tmp_path, environment):
    # "Production" (or a template only Ansible renders) read as "not production": the deploy ran without a question.
    inventory = _inventory(tmp_path, environment)
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(inventory), "-q")
    assert result.code == 3 and "needs confirmation" in result.stderr and "web1" in result.stderr, result
    assert _runs(state_dir) == []


def test_other_environments_do_not_ask(cli, tmp_path):
    assert cli("deploy", "--ref", "v2.0.0", "-i", str(_inventory(tmp_path, "staging")), "-q").code == 0


@pytest.mark.parametrize("hosts", ['{"deploy_hosts": "{# a Jinja comment #}prod_web"}',
                                   '{"deploy_hosts": "prod_{# x #}web"}'])
def test_a_hosts_variable_with_any_jinja_markup_asks(cli, state_dir, tmp_path, hosts):
    # Ansible renders '{# ... #}' (a comment) away: the play ran on prod_web while the check matched nothing.
    inventory = tmp_path / "moved.yml"
    inventory.write_text(
        "all:\n"
        "  children:\n"
        "    app_servers:\n"
        "      hosts:\n"
        "        staging1: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
        "    prod_web:\n"
        "      vars: {shipshape_environment: production}\n"
        "      hosts:\n"
        "        prod9: {ansible_connection: local, ansible_python_interpreter: '{{ ansible_playbook_python }}'}\n"
    )
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(inventory), "-e", hosts, "-q")
    assert result.code == 3 and "needs confirmation" in result.stderr, result
    assert _runs(state_dir) == []


def test_the_production_inventory_still_asks(cli):
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), "-q")
    assert result.code == 3 and "needs confirmation" in result.stderr
