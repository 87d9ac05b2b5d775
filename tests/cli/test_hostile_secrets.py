"""Secrets the CLI is handed in files of the user's (--become-password-file, --vault-password-file, --vault-id
label@file): a task that prints them must not put them on the terminal, in the reports or in the kept artifacts."""

from __future__ import annotations

import json
from pathlib import Path

from cli_paths import LOCAL_INVENTORY

ECHO = """\
- name: Echo the password files
  hosts: app_servers
  gather_facts: false
  tasks:
    - name: Print them
      ansible.builtin.debug:
        msg: "become {{ lookup('file', become_path) }} vault {{ lookup('file', vault_path) }} id {{ lookup('file', id_path) }}"
    - name: Fail on one
      ansible.builtin.fail:
        msg: "cannot sudo with {{ lookup('file', become_path) }}"
"""


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_the_content_of_password_files_is_redacted_everywhere(cli, state_dir, tmp_path):
    playbook = tmp_path / "echo.yml"
    playbook.write_text(ECHO)
    become, vault, vault_id = tmp_path / "become.txt", tmp_path / "vault.txt", tmp_path / "id.txt"
    secrets = {become: "Become-File-Secret-41", vault: "Vault-File-Secret-43", vault_id: "Id-File-Secret-47"}
    for path, secret in secrets.items():
        path.write_text(secret + "\n")
        path.chmod(0o600)
    reports = tmp_path / "reports"
    result = cli("playbook", str(playbook), "-i", str(LOCAL_INVENTORY), "--become-password-file", str(become),
                 "--vault-password-file", str(vault), "--vault-id", f"other@{vault_id}", "--report-dir", str(reports),
                 "-e", f"become_path={become} vault_path={vault} id_path={vault_id}")
    assert result.code == 1, result
    report = json.loads((reports / "report.json").read_text())
    assert "cannot sudo with ********" in report["message"], report["message"]
    for secret in secrets.values():
        assert secret not in result.stdout + result.stderr
        assert files_containing(state_dir, secret) == []
        assert files_containing(reports, secret) == []


def test_the_vault_password_typed_at_ask_vault_pass_is_redacted(cli, state_dir, tmp_path, monkeypatch):
    # -K's typed password was redacted, -J's was not: a task that printed it (the same string in a file it read) showed
    # it on the terminal and in the reports.
    password = "Typed-Vault-Secret-61"
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: password)
    holder = tmp_path / "notes.txt"
    holder.write_text(password + "\n")
    playbook = tmp_path / "echo.yml"
    playbook.write_text("- hosts: app_servers\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.debug:\n        msg: \"{{ lookup('file', holder) }}\"\n")
    result = cli("-J", "playbook", str(playbook), "-i", str(LOCAL_INVENTORY), "-e", f"holder={holder}", "--json",
                 interactive=True)
    assert result.code == 0, result
    assert password not in result.stdout + result.stderr
    assert files_containing(state_dir, password) == []


def test_the_output_of_a_vault_client_script_is_redacted(cli, state_dir, tmp_path):
    # A --vault-password-file with an execute bit is a client script: its output, the password, was never redacted.
    password = "Script-Vault-Secret-67"
    script = tmp_path / "vault-client"
    script.write_text(f"#!/bin/sh\necho {password}\n")
    script.chmod(0o700)
    holder = tmp_path / "notes.txt"
    holder.write_text(password + "\n")
    playbook = tmp_path / "echo.yml"
    playbook.write_text("- hosts: app_servers\n  gather_facts: false\n  tasks:\n"
                        "    - ansible.builtin.debug:\n        msg: \"{{ lookup('file', holder) }}\"\n")
    result = cli("playbook", str(playbook), "-i", str(LOCAL_INVENTORY), "--vault-password-file", str(script),
                 "-e", f"holder={holder}")
    assert result.code == 0, result
    assert password not in result.stdout + result.stderr
    assert files_containing(state_dir, password) == []
