"""Every role documents its interface: argument specs that agree with defaults/main.yml."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())


def load(path: Path):
    with path.open() as fh:
        return yaml.safe_load(fh) or {}


def test_there_are_roles():
    assert ROLES, "no roles found under roles/"


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs_with_descriptions(role):
    spec_file = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    assert spec_file.is_file(), f"{role}: meta/argument_specs.yml is missing"
    main = load(spec_file)["argument_specs"]["main"]
    assert main.get("short_description"), f"{role}: short_description is empty"
    for name, option in main.get("options", {}).items():
        assert option.get("type"), f"{role}: option {name} has no type"
        assert option.get("description"), f"{role}: option {name} has no description"
        if option["type"] == "list":
            assert option.get("elements"), f"{role}: list option {name} has no elements"


@pytest.mark.parametrize("role", ROLES)
def test_specs_and_defaults_agree(role):
    defaults_file = ROOT / "roles" / role / "defaults" / "main.yml"
    defaults = load(defaults_file) if defaults_file.is_file() else {}
    options = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    for name, value in defaults.items():
        assert name.startswith(f"{role}_"), f"{role}: default {name} is not prefixed with the role name"
        assert name in options, f"{role}: default {name} is not documented in argument_specs.yml"
        assert options[name].get("default") == value, (
            f"{role}: {name} defaults to {value!r} in defaults/main.yml but {options[name].get('default')!r} in the specs"
        )
    for name, option in options.items():
        if not option.get("required"):
            assert name in defaults, f"{role}: optional option {name} has no value in defaults/main.yml"


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_shows_the_role(role, ansible_env):
    out = subprocess.run(
        ["ansible-doc", "-t", "role", f"shipshape.ops.{role}"],
        capture_output=True, text=True, env=ansible_env, check=False,
    )
    assert out.returncode == 0, out.stderr
    options = load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    for name in options:
        assert name in out.stdout, f"ansible-doc does not show {name}"


def included_entry_points():
    """(role, tasks_from) for every include_role/import_role with a tasks_from in the roles and playbooks; a role name
    built from a variable ("{{ deploy_strategy }}_release") stands for every role it can name, and a tasks_from built
    from one for each task file it quotes."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key in ("ansible.builtin.include_role", "ansible.builtin.import_role"):
                call = node.get(key)
                if isinstance(call, dict) and call.get("tasks_from"):
                    pattern = re.escape(str(call["name"]).removeprefix("shipshape.ops."))
                    pattern = re.sub(r"\\{\\{.*?\\}\\}", ".+", pattern)
                    entries = [call["tasks_from"]]
                    if "{{" in entries[0]:  # a choice among quoted task files
                        entries = re.findall(r"'([a-z_]+)'", entries[0])
                    for role in ROLES:
                        if re.fullmatch(pattern, role):
                            found.update((role, entry) for entry in entries
                                         if (ROOT / "roles" / role / "tasks" / f"{entry}.yml").is_file())
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for path in [*ROOT.glob("roles/*/tasks/*.yml"), *ROOT.glob("playbooks/*.yml")]:
        walk(load(path))
    return sorted(found)


def test_every_entry_point_another_role_or_playbook_calls_has_argument_specs():
    entry_points = included_entry_points()
    assert ("systemd_release", "mark_failed") in entry_points and ("compose_release", "switch") in entry_points
    missing = [
        f"{role}: tasks_from {entry}" for role, entry in entry_points
        if entry not in load(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]
    ]
    assert not missing, "entry points without argument specs: " + ", ".join(missing)
