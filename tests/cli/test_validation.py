"""Issue 14 item 2: every value the CLI passes to a playbook variable is validated before anything runs."""

from __future__ import annotations

import pytest
from cli_paths import LOCAL_INVENTORY
from test_commands import RecordingRunner

HOSTILE = [
    "{{ lookup('pipe', 'touch /tmp/shipshape-pwned') }}",
    "$(touch /tmp/shipshape-pwned)",
    "`id`",
    "a b",
    "x;rm -rf /",
    "line\nbreak",
    "-rf",
    "../../etc",
    "a/../b",
    "",
]


@pytest.mark.parametrize("argv, option, what", [
    (["deploy", "--ref"], "--ref", "a valid git ref"),
    (["deploy", "--version"], "--version", "a valid version"),
    (["deploy", "--serial"], "--serial", "a batch size"),
    (["rollback", "--to"], "--to", "a valid release id"),
    (["restore", "--confirm", "sample_app", "--backup"], "--backup", "a valid backup id"),
    (["restore", "--confirm"], "--confirm", "a valid database name"),
])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_refused_before_anything_runs(cli, state_dir, argv, option, what, value):
    runner = RecordingRunner()
    # --opt=VALUE: argparse would take a value starting with '-' for an option
    result = cli(*argv[:-1], f"{argv[-1]}={value}", "-i", str(LOCAL_INVENTORY), runner=runner)
    command = argv[0]
    assert result.code == 3, (result.stdout, result.stderr)
    assert result.stderr == f"shipshape {command}: {option} {value!r} is not {what}: " + \
        result.stderr.split(f"is not {what}: ", 1)[1]
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert runner.calls == []
    assert not (state_dir / "runs").exists()
    assert not (state_dir / "history.sqlite").exists()


@pytest.mark.parametrize("ref, reason", [
    ("main..dev", "'..'"),
    ("HEAD@{1}", "'@{'"),
    ("feature/x.lock", ".lock"),
    ("feature/", "'/'"),
    ("/feature", "'/'"),
    ("a//b", "'//'"),
    ("tag.", "'.'"),
    (".hidden", "'.'"),
    ("a/.b", "'.'"),
    ("a~1", "~"),
    ("a^", "^"),
    ("a:b", ":"),
    ("a?", "?"),
    ("a*", "*"),
    ("a[b", "["),
    ("a\\b", "\\"),
    ("a\x7fb", "control"),
    ("-b", "'-'"),
    ("@", "'@'"),
])
def test_bad_git_refs(cli, ref, reason):
    runner = RecordingRunner()
    result = cli("deploy", f"--ref={ref}", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3
    assert reason in result.stderr and repr(ref) in result.stderr
    assert runner.calls == []


@pytest.mark.parametrize("argv, variables", [
    (["deploy", "--ref", "main"], {"systemd_release_git_ref": "main", "compose_release_tag": "main"}),
    (["deploy", "--ref", "feature/login-v2"],
     {"systemd_release_git_ref": "feature/login-v2", "compose_release_tag": "feature/login-v2"}),
    (["deploy", "--ref", "5b5edf38"], {"systemd_release_git_ref": "5b5edf38", "compose_release_tag": "5b5edf38"}),
    (["deploy", "--ref", "0123456789abcdef0123456789abcdef01234567"],
     {"systemd_release_git_ref": "0123456789abcdef0123456789abcdef01234567",
      "compose_release_tag": "0123456789abcdef0123456789abcdef01234567"}),
    (["deploy", "--version", "2.0.1+build_3-rc.1"],
     {"systemd_release_git_ref": "v2.0.1+build_3-rc.1", "compose_release_tag": "v2.0.1+build_3-rc.1"}),
    (["deploy", "--serial", "2", "--canary", "1"], {"deploy_serial": 2, "deploy_canary": 1}),
    (["deploy", "--serial", "30%"], {"deploy_serial": "30%"}),
    (["deploy", "--canary", "0"], {"deploy_canary": 0}),
    (["rollback", "--to", "1.0.0-5b5edf38"], {"rollback_to": "1.0.0-5b5edf38"}),
    (["rollback", "--to", "20261202T061530Z-1.0.0-abc1234"], {"rollback_to": "20261202T061530Z-1.0.0-abc1234"}),
    (["restore", "--backup", "sample_app-20261202T061530Z", "--confirm", "sample_app"],
     {"restore_backup_id": "sample_app-20261202T061530Z", "restore_confirm": "sample_app"}),
    (["restore", "--confirm", "_db$1"], {"restore_confirm": "_db$1"}),
    (["restore", "--confirm", "d" * 63], {"restore_confirm": "d" * 63}),
    (["restore", "--confirm", "sales-ottenok"], {"restore_confirm": "sales-ottenok"}),
])
def test_good_values_pass(cli, argv, variables):
    runner = RecordingRunner()
    result = cli(*argv, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 0, result.stderr
    assert runner.extravars[0] == variables


@pytest.mark.parametrize("name", ["d" * 64, "1db", "-db", "db name", "db=x", "Db.x", "dé"])
def test_database_names_that_do_not_fit(cli, name):
    runner = RecordingRunner()
    result = cli("restore", f"--confirm={name}", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and "is not a valid database name" in result.stderr
    assert runner.calls == []


@pytest.mark.parametrize("value", ["a" * 129, "a/b", "1.0..0"])
def test_long_or_path_like_ids(cli, value):
    runner = RecordingRunner()
    result = cli("rollback", "--to", value, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and "is not a valid release id" in result.stderr
    assert runner.calls == []


def test_long_version(cli):
    runner = RecordingRunner()
    assert cli("deploy", "--version", "1" * 65, "-i", str(LOCAL_INVENTORY), runner=runner).code == 3
    assert cli("deploy", "--version", "1" * 64, "-i", str(LOCAL_INVENTORY), runner=runner).code == 0


@pytest.mark.parametrize("value", ["monthly\nExecStartPre=/bin/touch /tmp/shipshape-pwned", "monthly; id", "$(id)",
                                   "{{ lookup('pipe', 'id') }}", "", "-1"])
def test_a_drill_schedule_that_is_not_a_calendar_expression_is_refused(cli, state_dir, value):
    runner = RecordingRunner()
    result = cli("drill", f"--schedule={value}", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3, (result.stdout, result.stderr)
    assert result.stderr.startswith(f"shipshape drill: --schedule {value!r} is not a systemd calendar expression: ")
    assert runner.calls == [] and not (state_dir / "runs").exists()


def test_one_drill_checks_one_name(cli):
    runner = RecordingRunner()
    result = cli("drill", "--name", "a", "--name", "b", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and "--name given 2 times" in result.stderr and runner.calls == []


@pytest.mark.parametrize("argv, option", [
    (["--serial=0"], "--serial"), (["--serial=101%"], "--serial"), (["--serial=0%"], "--serial"),
    (["--serial=1.5"], "--serial"), (["--canary=-1"], "--canary"),
])
def test_batch_sizes_out_of_range(cli, argv, option):
    runner = RecordingRunner()
    result = cli("deploy", *argv, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and f"shipshape deploy: {option} " in result.stderr
    assert runner.calls == []
