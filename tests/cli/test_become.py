"""Issue 17 item 6: hosts whose sudo asks for a password. `-K/--ask-become-pass` asks on the terminal and hands
the password to ansible-playbook as a 0600 file of the run's private work directory (removed when the run
ends, never on a command line, redacted everywhere); `--become-password-file` passes the user's own file."""

from __future__ import annotations

import json

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS

PASSWORD = "Sud0-planted-password-KK"


def files_containing(root, needle):
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def command_of(state_dir):
    (command,) = list(state_dir.rglob("artifacts/main/command"))
    return json.loads(command.read_text())["command"]


def test_ask_become_pass_hands_the_password_over_privately(cli, state_dir, monkeypatch):
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: asked.append(prompt) or PASSWORD)
    result = cli("-K", "playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), interactive=True)
    assert result.code == 0, result.stdout + result.stderr
    assert asked == ["BECOME password: "]
    words = command_of(state_dir)
    handed = words[words.index("--become-password-file") + 1]
    assert handed.endswith("become-password") and ".work" in handed
    assert files_containing(state_dir, PASSWORD) == []
    assert list((state_dir / "runs").glob(".*.work")) == []


def test_become_password_file_is_passed_on(cli, state_dir, tmp_path):
    secret = tmp_path / "become-pass"
    secret.write_text(PASSWORD + "\n")
    result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "--become-password-file",
                 str(secret))
    assert result.code == 0, result.stdout + result.stderr
    words = command_of(state_dir)
    assert words[words.index("--become-password-file") + 1] == str(secret)
    assert files_containing(state_dir, PASSWORD) == []


def test_a_missing_become_password_file_is_bad_input(cli, state_dir, tmp_path):
    result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "--become-password-file",
                 str(tmp_path / "nope"))
    assert result.code == 3 and "--become-password-file" in result.stderr and "no such file" in result.stderr
    assert not (state_dir / "runs").exists()


def test_ask_become_pass_needs_a_terminal(cli, state_dir):
    result = cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(LOCAL_INVENTORY), "-K")
    assert result.code == 3 and "--ask-become-pass needs a terminal" in result.stderr
