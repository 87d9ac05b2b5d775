"""Unusual and hostile input around the files a run writes, and the values it must keep secret: symbolic links
planted where reports or the history go, directories that cannot be used, a disk that fills up after the run,
a deploy's check pass and run sharing one run directory, Ansible's own `*_pass` variables, control characters
in what a task printed."""

from __future__ import annotations

import errno
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, PRODUCTION_INVENTORY, ROOT

import shipshape.commands
from shipshape.history import History
from shipshape.report import RunReport, to_junit

OK = str(PLAYBOOKS / "ok.yml")


def _runs(state_dir: Path) -> list[Path]:
    return sorted(p for p in (state_dir / "runs").iterdir() if not p.name.startswith("."))


def test_confirmed_deploy_keeps_the_runs_artifacts_where_the_report_says(cli, state_dir):
    # The check pass (ident "check") and the deploy (ident "main") share one run directory: the second move
    # used to land in artifacts/artifacts/main, and the report pointed at an artifacts/main/job_events that was not there.
    result = cli("deploy", "--ref", "v2.0.0", "-i", str(PRODUCTION_INVENTORY), interactive=True, stdin="y\n")
    assert result.code == 0, result.stderr
    (run_dir,) = _runs(state_dir)
    assert not (run_dir / "artifacts" / "artifacts").exists()
    report = json.loads((run_dir / "report.json").read_text())
    events = Path(report["artifacts"]["job_events"])
    assert events.is_dir() and list(events.glob("*.json")), events
    assert list((run_dir / "artifacts" / "check" / "job_events").glob("*.json"))


def test_a_symlink_in_the_report_dir_is_replaced_never_written_through(cli, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("report.json", "report.md", "junit.xml"):
        (reports / name).symlink_to(victim)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(reports), "-q")
    assert result.code == 0, result.stderr
    assert victim.read_text() == "keep me\n"
    assert victim.stat().st_mode & 0o777 == 0o644
    for name in ("report.json", "report.md", "junit.xml"):
        assert not (reports / name).is_symlink() and (reports / name).stat().st_mode & 0o777 == 0o600
    assert json.loads((reports / "report.json").read_text())["result"] == "success"


def test_a_symlinked_history_is_refused_and_its_target_untouched(cli, state_dir, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    victim.chmod(0o644)
    state_dir.mkdir(parents=True)
    (state_dir / "history.sqlite").symlink_to(victim)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q")
    assert result.code == 0  # the run happened; the history problem is said, not hidden
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert victim.read_text() == "keep me\n" and victim.stat().st_mode & 0o777 == 0o644
    listed = cli("history")
    assert listed.code == 3 and "symbolic link" in listed.stderr and "Traceback" not in listed.stderr


def test_a_state_dir_that_is_a_file_is_bad_input_before_anything_runs(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--state-dir", str(blocker), state=False)
    assert result.code == 3, result
    assert result.stderr.count("\n") == 1 and "--state-dir" in result.stderr and str(blocker) in result.stderr


def test_an_unusable_report_dir_is_bad_input_before_anything_runs(cli, state_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(blocker / "reports"))
    assert result.code == 3, result
    assert result.stderr.count("\n") == 1 and "--report-dir" in result.stderr
    assert not _runs(state_dir)  # nothing ran
    assert History(state_dir / "history.sqlite").runs() == []


def test_a_full_disk_after_the_run_is_said_and_the_run_still_recorded(cli, state_dir, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    real = shipshape.commands.write_reports

    def full(report, directories):
        if directories == [reports]:
            raise OSError(errno.ENOSPC, "No space left on device", str(reports / "report.json"))
        return real(report, directories)

    monkeypatch.setattr(shipshape.commands, "write_reports", full)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(reports), "-q")
    assert result.code == 0  # the run's own result
    assert "could not write the reports to" in result.stderr and "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    (row,) = History(state_dir / "history.sqlite").runs()
    assert row["result"] == "success"
    (run_dir,) = _runs(state_dir)
    assert (run_dir / "report.json").is_file()


def test_extra_vars_file_not_utf8_is_one_line(cli, tmp_path):
    vars_file = tmp_path / "vars.yml"
    vars_file.write_bytes(b"greeting: caf\xe9\n")
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-e", f"@{vars_file}")
    assert result.code == 3
    assert result.stderr.count("\n") == 1 and str(vars_file) in result.stderr and "UTF-8" in result.stderr


def test_ansibles_own_pass_variables_are_secrets(cli, state_dir):
    secrets = {"ansible_become_pass": "Become-Secret-17", "ansible_ssh_pass": "Ssh-Secret-23",
               "ansible_sudo_pass": "Sudo-Secret-29", "smtp_pass": "Smtp-Secret-31"}
    args = [a for name, value in secrets.items() for a in ("-e", f"{name}={value}")]
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--json", *args)
    assert result.code == 0, result.stderr
    (run_dir,) = _runs(state_dir)
    written = [result.stdout, result.stderr] + [p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()]
    for value in secrets.values():
        assert not any(value in text for text in written), value
    assert json.loads(result.stdout)["extravars"]["ansible_become_pass"] == "********"


def test_junit_parses_whatever_a_task_printed():
    # A command's stderr with terminal control sequences, a NUL or a backspace: XML 1.0 allows none of them.
    message = "tput: \x1b(B\x1b[m unknown \x00 term\x08 \x07"
    task = {"host": "web\x01", "play": "p", "task": "t\x0c", "status": "failed", "message": message,
            "action": "command", "task_path": "x.yml:1", "duration_s": 0.5}
    report = RunReport(run_id="r", command="deploy", playbook="p", inventory="i", limit=None, argv=[], user="u",
                       check=False, diff=False, started="s", ended="e", duration_s=1.0, result="failed", exit_code=1,
                       message=message, runner_status="failed", runner_rc=2, tasks=[task])
    root = ET.fromstring(to_junit(report))
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None and "unknown" in failure.get("message") and "\\x00" in failure.get("message")


def _vaulted_production_inventory(tmp_path: Path) -> tuple[Path, Path]:
    import subprocess
    import sys

    password = tmp_path / "vault-pass"
    password.write_text("right-password\n")
    inventory = tmp_path / "inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(PRODUCTION_INVENTORY.read_text())
    vault_file = inventory / "group_vars" / "all" / "vault.yml"
    vault_file.write_text("innocent_setting: Vaulted-Value-41\n")
    subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt", "--vault-password-file",
                    str(password), str(vault_file)], check=True, capture_output=True)
    return inventory, password


def test_a_wrong_or_missing_vault_password_is_one_line_for_confirmed_commands(cli, state_dir, tmp_path):
    # deploy reads the inventory in-process (is a host production?): Ansible's vault error was a traceback.
    inventory, _password = _vaulted_production_inventory(tmp_path)
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password\n")
    for options in ([], ["--vault-password-file", str(wrong)]):
        result = cli("deploy", "--ref", "v2.0.0", "-y", "-i", str(inventory), *options)
        assert result.code == 3, result
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert str(inventory) in result.stderr and "vault" in result.stderr.lower()
    assert not (state_dir / "runs").exists() or not _runs(state_dir)


def test_vault_password_files_that_are_not_there_are_bad_input_before_anything_runs(cli, state_dir, tmp_path):
    missing = str(tmp_path / "nope")
    for command in (["deploy", "--ref", "v2.0.0", "-y", "-i", str(PRODUCTION_INVENTORY)], ["playbook", OK, "-i", str(LOCAL_INVENTORY)]):
        for option in (["--vault-password-file", missing], ["--vault-id", f"prod@{missing}"], ["--vault-id", missing]):
            result = cli(*command, *option)
            assert result.code == 3, (command, option, result)
            assert result.stderr.count("\n") == 1 and missing in result.stderr and "Traceback" not in result.stderr
    assert not (state_dir / "runs").exists() or not _runs(state_dir)
    assert History(state_dir / "history.sqlite").runs() == []


def test_forks_and_last_out_of_range_are_bad_input(cli, state_dir):
    for forks in ("0", "-3"):
        result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--forks", forks)
        assert result.code == 3 and "--forks" in result.stderr and "1 to 10000" in result.stderr, result
    assert not (state_dir / "runs").exists() or not _runs(state_dir)
    for last in ("0", "-1"):
        result = cli("history", "-n", last)
        assert result.code == 3 and "--last" in result.stderr, result


def test_vaulted_extra_vars_files_are_used_and_redacted(cli, state_dir, tmp_path):
    # ansible-playbook -e @vault.yml --vault-password-file F: a whole encrypted file, and inline !vault values.
    # Both were refused ("not a str", "could not determine a constructor for the tag '!vault'").
    import subprocess
    import sys

    tool = str(Path(sys.executable).with_name("ansible-vault"))
    password = tmp_path / "vault-pass"
    password.write_text("right-password\n")
    whole = tmp_path / "whole.yml"
    whole.write_text("innocent_setting: Whole-File-Secret-61\n")
    subprocess.run([tool, "encrypt", "--vault-password-file", str(password), str(whole)], check=True, capture_output=True)
    inline = subprocess.run([tool, "encrypt_string", "--vault-password-file", str(password), "--name", "inline_setting",
                             "Inline-Secret-67"], check=True, capture_output=True, text=True).stdout
    mixed = tmp_path / "mixed.yml"
    mixed.write_text(inline + 'db_password: "{{ innocent_setting }}"\n')
    out = tmp_path / "out"
    out.mkdir()
    result = cli("playbook", str(PLAYBOOKS / "vaulted.yml"), "-i", str(LOCAL_INVENTORY), "--vault-password-file",
                 str(password), "-e", f"@{whole}", "-e", f"@{mixed}", "-e", f"out_dir={out}", "--json")
    assert result.code == 0, result.stderr
    assert (out / "vaulted.txt").read_text() == "Whole-File-Secret-61 Inline-Secret-67\n"
    (run_dir,) = _runs(state_dir)
    written = [result.stdout, result.stderr] + [p.read_text(errors="replace") for p in run_dir.rglob("*") if p.is_file()]
    for secret in ("Whole-File-Secret-61", "Inline-Secret-67"):
        assert not any(secret in text for text in written), secret
    assert not list(state_dir.glob("runs/.*.work"))


def test_a_wrong_vault_password_for_an_extra_vars_file_is_one_line(cli, state_dir, tmp_path):
    import subprocess
    import sys

    password, wrong = tmp_path / "vault-pass", tmp_path / "wrong"
    password.write_text("right-password\n")
    wrong.write_text("wrong-password\n")
    whole = tmp_path / "whole.yml"
    whole.write_text("innocent_setting: Whole-File-Secret-61\n")
    subprocess.run([str(Path(sys.executable).with_name("ansible-vault")), "encrypt", "--vault-password-file",
                    str(password), str(whole)], check=True, capture_output=True)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--vault-password-file", str(wrong), "-e", f"@{whole}")
    assert result.code == 3 and result.stderr.count("\n") == 1 and str(whole) in result.stderr, result
    assert not (state_dir / "runs").exists() or not _runs(state_dir)


def test_unsafe_values_of_an_extra_vars_file_stay_literal(cli, tmp_path):
    # ansible-playbook keeps a `!unsafe` value as data; the CLI refused the tag.
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("value: !unsafe \"{{ lookup('pipe', 'echo templated') }}\"\nuser_value: \"{{ 'tem' ~ 'plated' }}\"\n")
    result = cli("playbook", str(PLAYBOOKS / "literal.yml"), "-i", str(LOCAL_INVENTORY), "-e", f"@{vars_file}",
                 "-e", f"out_dir={tmp_path}")
    assert result.code == 0, result.stderr
    assert (tmp_path / "value.txt").read_text() == "{{ lookup('pipe', 'echo templated') }}"
    assert (tmp_path / "user_value.txt").read_text() == "templated"  # a plain value keeps Ansible's meaning


def test_limit_values_ansible_playbook_would_misread_are_bad_input(cli, state_dir):
    for value in ("--version", "-x", "local1\nall", "", " "):
        result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), f"--limit={value}")
        assert result.code == 3, (value, result)
        assert "--limit" in result.stderr and "host pattern" in result.stderr and "Traceback" not in result.stderr
    assert not (state_dir / "runs").exists() or not _runs(state_dir)
    # Patterns Ansible takes are unchanged: groups, intersections, exclusions, IPv6 hosts.
    for value in ("local1", "all:!nosuch", "app_servers:&all", "local*"):
        assert cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--limit", value, "-q").code == 0, value


def test_a_report_cut_short_is_one_line(cli, state_dir):
    assert cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q").code == 0
    (run_dir,) = _runs(state_dir)
    for broken in ('{"schema_version": 1, "run_id": "x", "comm', "[]", '{"schema_version": 1}'):
        (run_dir / "report.json").write_text(broken)
        result = cli("report", "last")
        assert result.code == 3 and result.stderr.count("\n") == 1 and "cannot be read" in result.stderr, result


def test_a_relative_state_dir_is_recorded_absolute(cli, tmp_path, monkeypatch, test_runner):
    from conftest import FakeStream

    from shipshape.cli import main
    from shipshape.commands import App

    def run(*argv: str):
        out, err = FakeStream(), FakeStream()
        code = main(list(argv), app=App(runner=test_runner, stdout=out, stderr=err, stdin=FakeStream(), interactive=False))
        return code, out.getvalue(), err.getvalue()

    (tmp_path / "ci").mkdir()
    monkeypatch.chdir(tmp_path / "ci")
    code, _out, err = run("playbook", OK, "-i", str(LOCAL_INVENTORY), "-q", "--state-dir", "state")
    assert code == 0, err
    state = tmp_path / "ci" / "state"
    (row,) = History(state / "history.sqlite").runs()
    assert Path(row["run_dir"]).is_absolute() and Path(row["run_dir"]).is_dir()
    monkeypatch.chdir(tmp_path)  # elsewhere: `report last` finds the run it lists
    code, out, err = run("report", "last", "--json", "--state-dir", str(state))
    assert code == 0, err
    assert Path(json.loads(out)["artifacts"]["run_dir"]).is_absolute()


def test_a_full_disk_while_the_secrets_are_handed_over_leaves_none_behind(cli, state_dir, monkeypatch):
    import shipshape.runner

    password = "Sud0-planted-password-ZZ"
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: password)
    real = shipshape.runner.write_private

    def full(path, text):
        if path.name == "become-password":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, text)

    monkeypatch.setattr(shipshape.runner, "write_private", full)
    result = cli("-K", "playbook", OK, "-i", str(LOCAL_INVENTORY), "-e", "db_password=Planted-Db-Secret-73",
                 interactive=True)
    assert result.code == 3 and "No space left on device" in result.stderr and "Traceback" not in result.stderr
    assert list((state_dir / "runs").glob(".*.work")) == []  # the extra vars file with the db password went too
    assert not [p for p in state_dir.rglob("*") if p.is_file() and b"Planted-Db-Secret-73" in p.read_bytes()]


def test_an_interrupted_run_does_not_point_at_an_empty_directory(cli, state_dir, monkeypatch):
    import shipshape.runner

    def stopped(**_kwargs):
        raise KeyboardInterrupt

    runner = shipshape.runner.PlaybookRunner(ROOT, playbook_dir=PLAYBOOKS, run=stopped)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 130
    assert "nothing of it was kept" in result.stderr and "artifacts are in" not in result.stderr
    assert _runs(state_dir) == [] and list((state_dir / "runs").glob(".*.work")) == []


def test_several_inventories_are_refused_not_silently_cut_to_the_last(cli, state_dir):
    result = cli("deploy", "--ref", "v2.0.0", "-y", "-i", str(PRODUCTION_INVENTORY), "-i", str(LOCAL_INVENTORY))
    assert result.code == 3 and "given 2 times" in result.stderr and str(PRODUCTION_INVENTORY) in result.stderr, result
    assert not (state_dir / "runs").exists() or not _runs(state_dir)
    assert cli("playbook", OK, f"--inventory={LOCAL_INVENTORY}", "-q").code == 0
    assert cli("-i", str(LOCAL_INVENTORY), "playbook", OK, "-q").code == 0


def test_directories_that_were_there_keep_their_mode(cli, state_dir, tmp_path):
    # `--report-dir /tmp` (or the CI workspace, `--state-dir .`) made the directory 0700: as root, /tmp then breaks
    # every other user. The files written there are still 0600; the directories shipshape makes are still 0700.
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    workspace.chmod(0o755)
    result = cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(shared), "--state-dir",
                 str(workspace), "-q", state=False)
    assert result.code == 0, result.stderr
    assert (shared.stat().st_mode & 0o7777) == 0o1777
    assert (workspace.stat().st_mode & 0o7777) == 0o755
    assert (shared / "report.json").stat().st_mode & 0o777 == 0o600
    assert (workspace / "history.sqlite").stat().st_mode & 0o777 == 0o600
    assert (workspace / "runs").stat().st_mode & 0o777 == 0o700
    nested = tmp_path / "new" / "deeper" / "reports"  # made here: every level 0700
    assert cli("playbook", OK, "-i", str(LOCAL_INVENTORY), "--report-dir", str(nested), "-q").code == 0
    for directory in (nested, nested.parent, nested.parent.parent):
        assert directory.stat().st_mode & 0o777 == 0o700, directory


def _moved_production_inventory(tmp_path: Path) -> Path:
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
    return inventory


def test_hosts_moved_with_an_extra_var_are_checked_for_production(cli, state_dir, tmp_path):
    # docs/cli.md: the targeted hosts are the playbook's, "or the deploy_hosts/rollback_hosts/restore_hosts extra var".
    # The check looked at app_servers only: -e deploy_hosts=prod_web deployed production without asking.
    inventory = _moved_production_inventory(tmp_path)
    for hosts in ("deploy_hosts=prod_web", "deploy_hosts=prod*", "deploy_hosts={{ 'prod_web' }}",
                  '{"deploy_hosts": ["prod_web"]}'):
        result = cli("deploy", "--ref", "v2.0.0", "-i", str(inventory), "-e", hosts)
        assert result.code == 3 and "needs confirmation" in result.stderr, (hosts, result)
        if "{{" not in hosts:
            assert "prod9" in result.stderr
    assert not (state_dir / "runs").exists() or not _runs(state_dir)
    # Moved to hosts that are not production: no question, as before.
    assert cli("deploy", "--ref", "v2.0.0", "-i", str(inventory), "-e", "deploy_hosts=app_servers", "-q").code == 0
