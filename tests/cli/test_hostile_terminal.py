"""What hosts print reaches the operator's terminal: a log line, a command's stderr, a task or host name may carry
terminal control sequences (OSC 0 retitles the window, OSC 52 writes the clipboard, 8-bit CSI). The CLI shows them as
text (\\x1b), never sends them to the terminal: progress, summary, messages, history and `report`."""

from __future__ import annotations

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS

PLAYBOOK = r"""
- name: "Play \e]0;play-title\e\\"
  hosts: app_servers
  gather_facts: false
  tasks:
    - name: "Task \e]0;task-title\e\\"
      ansible.builtin.set_fact:
        status_result:
          report: ["release \e]52;c;ZXZpbA==\a here \x9b31m red"]
      changed_when: true
    - name: Fail with what a host printed
      ansible.builtin.fail:
        msg: "log line \e]0;pwned\e\\ then \e]52;c;ZXZpbA==\e\\ and \x9b2J"
"""


def test_control_sequences_from_hosts_never_reach_the_terminal(cli, tmp_path, monkeypatch):
    playbook = tmp_path / "hostile.yml"
    playbook.write_text(PLAYBOOK)
    monkeypatch.setenv("SHIPSHAPE_USER", "ops\x1b]0;user-title\x1b\\")
    result = cli("playbook", str(playbook), "-i", str(LOCAL_INVENTORY))
    assert result.code == 1, result
    listed = cli("history")
    shown = cli("report", "last")
    for output in (result.stdout, result.stderr, listed.stdout, listed.stderr, shown.stdout, shown.stderr):
        assert "\x1b]" not in output and "\x9b" not in output and "\x07" not in output, repr(output)
    # Still there to read, as text.
    assert "pwned" in result.stderr and "\\x1b]0;pwned" in result.stderr
    assert "\\x1b]52;c;ZXZpbA==" in result.stdout


def test_rich_markup_in_a_user_or_inventory_name_is_text_in_the_history(cli, tmp_path, monkeypatch):
    # rich read '[/oops]' in a history cell as a closing tag: `shipshape history` ended in a MarkupError traceback.
    inventory = tmp_path / "[bold]inv.yml"
    inventory.write_text(LOCAL_INVENTORY.read_text())
    monkeypatch.setenv("SHIPSHAPE_USER", "[/oops][red]ops")
    assert cli("playbook", str(PLAYBOOKS / "ok.yml"), "-i", str(inventory), "-q").code == 0
    listed = cli("history")
    assert listed.code == 0 and "Traceback" not in listed.stderr, listed
    assert "[/oops][red]ops" in listed.stdout and "[bold]inv.yml" in listed.stdout
