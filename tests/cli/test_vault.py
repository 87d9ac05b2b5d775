"""Issue 17 item 4 and issue 14 item 5: vault options on every playbook command, passed to ansible-playbook;
values that came out of a vault are redacted whatever their names, like values reached through `{{ }}`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_paths import PLAYBOOKS

FILE_SECRET = "Vau1ted-file-planted-ZZ"
INLINE_SECRET = "Vau1ted-inline-planted-YY"
PASSWORD = "test-vault-password"


def ansible_vault(*args: str, stdin: str | None = None) -> str:
    tool = Path(sys.executable).with_name("ansible-vault")
    proc = subprocess.run([str(tool), *args], input=stdin, capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture
def vaulted_inventory(tmp_path: Path) -> tuple[Path, Path]:
    """An inventory whose group_vars hold an encrypted vars file and an inline !vault value; names that do
    not look secret, so only their vault origin can tell."""
    password_file = tmp_path / "vault-pass"
    password_file.write_text(PASSWORD + "\n")
    inventory = tmp_path / "inventory"
    group_vars = inventory / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (inventory / "hosts.yml").write_text(
        "all:\n  children:\n    app_servers:\n      hosts:\n        local1:\n"
        "          ansible_connection: local\n"
        "          ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n")
    vault_file = group_vars / "vault.yml"
    vault_file.write_text(f"innocent_setting: {FILE_SECRET}\n")
    ansible_vault("encrypt", "--vault-password-file", str(password_file), str(vault_file))
    inline = ansible_vault("encrypt_string", "--vault-password-file", str(password_file), "--name",
                           "inline_setting", INLINE_SECRET)
    (group_vars / "main.yml").write_text(inline + 'db_password: "{{ innocent_setting }}"\n')
    assert FILE_SECRET not in vault_file.read_text()
    return inventory, password_file


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def assert_nowhere(result, *roots: Path) -> None:
    for needle in (FILE_SECRET, INLINE_SECRET):
        assert needle not in result.stdout + result.stderr
        for root in roots:
            assert files_containing(root, needle) == []


@pytest.mark.parametrize("how", ["password-file", "vault-id"])
def test_vaulted_values_are_used_and_redacted(cli, state_dir, tmp_path, vaulted_inventory, how):
    inventory, password_file = vaulted_inventory
    out = tmp_path / "out"
    out.mkdir()
    option = ["--vault-password-file", str(password_file)] if how == "password-file" else \
        ["--vault-id", f"prod@{password_file}"]
    reports = tmp_path / "reports"
    result = cli("playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(inventory), *option,
                 "-e", f"out_dir={out}", "--report-dir", str(reports))
    assert result.code == 0, result.stdout + result.stderr
    # The run had the decrypted values...
    assert (out / "vaulted.txt").read_text() == f"{FILE_SECRET} {INLINE_SECRET}\n"
    # ...and they are nowhere in what it showed or kept.
    assert_nowhere(result, state_dir, reports)
    # The events of the tasks that showed them were kept, masked.
    assert files_containing(state_dir / "runs", "file ******** inline ******** through ********")


def test_without_the_vault_password_the_run_stops_saying_so(cli, state_dir, tmp_path, vaulted_inventory):
    inventory, _password_file = vaulted_inventory
    result = cli("playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(inventory), "-e", f"out_dir={tmp_path}")
    assert result.code != 0
    assert "vault" in result.stderr.lower() + result.stdout.lower()
    assert not (tmp_path / "vaulted.txt").exists()


def test_ask_vault_pass_needs_a_terminal(cli, state_dir, tmp_path, vaulted_inventory):
    inventory, _password_file = vaulted_inventory
    result = cli("playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(inventory), "--ask-vault-pass",
                 "-e", f"out_dir={tmp_path}")
    assert result.code == 3 and "--ask-vault-pass needs a terminal" in result.stderr
    assert not (state_dir / "runs").exists()


def test_ask_vault_pass_hands_the_password_over_privately(cli, state_dir, tmp_path, vaulted_inventory,
                                                           monkeypatch):
    inventory, _password_file = vaulted_inventory
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: PASSWORD)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("-J", "playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(inventory), "-e", f"out_dir={out}",
                 interactive=True)
    assert result.code == 0, result.stdout + result.stderr
    assert (out / "vaulted.txt").read_text() == f"{FILE_SECRET} {INLINE_SECRET}\n"
    assert files_containing(state_dir, PASSWORD) == []
    assert list((state_dir / "runs").glob(".*.work")) == []
    assert_nowhere(result, state_dir)


def test_a_prompting_vault_id_is_refused(cli, state_dir, vaulted_inventory):
    inventory, _password_file = vaulted_inventory
    result = cli("playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(inventory), "--vault-id", "prod@prompt")
    assert result.code == 3 and "--vault-id prod@prompt" in result.stderr


def test_the_example_inventory_opens_with_its_example_password(cli, state_dir, tmp_path):
    """inventories/example: its vault opens through the CLI's option (list hosts only: the hosts are fictional)."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(root / "inventories/example"),
         "--vault-password-file", str(root / "inventories/example/vault-password.example.txt"),
         "--host", "db1.example.com"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "example-db-password" in proc.stdout
