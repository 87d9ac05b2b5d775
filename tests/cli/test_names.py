"""Backup names (issue 16): --name on backup, restore, drill and history, validated at the boundary; several names
and none chosen is exit 3 listing them; the drill history trends per name."""

from __future__ import annotations

import json

import pytest
from cli_paths import LOCAL_INVENTORY, PLAYBOOKS, ROOT
from test_commands import RecordingRunner
from test_report import report_of

from shipshape.history import History, backup_name_of
from shipshape.report import RunReport
from shipshape.runner import PlaybookRunner


@pytest.mark.parametrize("argv, playbook, variables", [
    (["drill", "--name", "ledger"], "drill.yml", {"restore_drill_backup_name": "ledger"}),
    (["restore", "--name", "ledger", "--confirm", "ledger"], "restore.yml",
     {"restore_backup_name": "ledger", "restore_confirm": "ledger"}),
    (["restore", "--name", "sample_app", "--backup", "sample_app-20261202T061530Z", "--confirm", "sample_app"],
     "restore.yml", {"restore_backup_name": "sample_app", "restore_backup_id": "sample_app-20261202T061530Z",
                     "restore_confirm": "sample_app"}),
    (["backup", "--name", "ledger"], "backup.yml", {"backup_select_name": "ledger"}),
    (["drill"], "drill.yml", {}),
])
def test_name_becomes_the_roles_variable(cli, argv, playbook, variables):
    runner = RecordingRunner()
    result = cli(*argv, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 0, result.stderr
    (call,) = runner.calls
    assert call["playbook"].endswith("/playbooks/" + playbook)
    assert runner.extravars[0] == variables


def test_the_name_is_passed_unsafe(cli):
    """Data only (`!unsafe`), as every value the CLI sets: ansible-core would otherwise template it."""
    texts = []

    def fake_run(**kwargs):
        path = next(w[1:] for w in kwargs["cmdline"].split() if w.startswith("@") and "extravars" in w)
        texts.append(open(path).read())
        kwargs["event_handler"]({"event": "playbook_on_stats", "event_data": {}})

        class Result:
            status, rc, stats = "successful", 0, {}
        return Result()

    runner = PlaybookRunner(ROOT, run=fake_run)
    assert cli("drill", "--name", "ledger", "-i", str(LOCAL_INVENTORY), runner=runner).code == 0
    assert "restore_drill_backup_name: !unsafe" in texts[0] and "ledger" in texts[0]


@pytest.mark.parametrize("command", ["drill", "backup", "history"])
@pytest.mark.parametrize("name, reason", [
    ("../../etc", "without '/' or '..'"),
    ("a/b", "without '/' or '..'"),
    ("a..b", "'..'"),
    ("-rf", "starting with a letter or digit"),
    ("{{ lookup('pipe', 'id') }}", "A-Z a-z 0-9"),
    ("x" * 101, "1 to 100"),
    ("", "1 to 100"),
])
def test_bad_names_are_refused_before_anything_runs(cli, state_dir, command, name, reason):
    runner = RecordingRunner()
    extra = ["-i", str(LOCAL_INVENTORY)] if command != "history" else []
    result = cli(command, f"--name={name}", *extra, runner=runner)
    assert result.code == 3
    assert f"shipshape {command}: --name {name!r} is not a valid backup name" in result.stderr
    assert reason in result.stderr
    assert runner.calls == [] and not (state_dir / "runs").exists()


def test_restore_name_is_validated_too(cli):
    runner = RecordingRunner()
    result = cli("restore", "--name", "a/b", "--confirm", "sample_app", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and "is not a valid backup name" in result.stderr and runner.calls == []


def test_several_names_and_none_chosen_is_exit_3_listing_them(cli, tmp_path):
    """Through the real runner and the real backup_sets module."""
    names_dir = tmp_path / "backups"
    for name in ("sample_app", "ledger"):
        (names_dir / f"{name}-20261202T101500Z").mkdir(parents=True)
    result = cli("playbook", str(PLAYBOOKS / "names.yml"), "-i", str(LOCAL_INVENTORY), "-e", f"names_dir={names_dir}")
    assert result.code == 3, result.stderr
    line = [x for x in result.stderr.splitlines() if x.startswith("shipshape playbook: error (exit 3)")]
    assert line, result.stderr
    assert (f"local1: several backups in {names_dir}: ledger, sample_app; choose one with --name "
            "(restore_drill_backup_name)") in line[0]


def test_one_chosen_name_runs(cli, tmp_path):
    names_dir = tmp_path / "backups"
    for name in ("sample_app", "ledger"):
        (names_dir / f"{name}-20261202T101500Z").mkdir(parents=True)
    result = cli("playbook", str(PLAYBOOKS / "names.yml"), "-i", str(LOCAL_INVENTORY), "-e", f"names_dir={names_dir}",
                 "-e", "names_choice=ledger", "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["backup_ids"] == ["ledger-20261202T101500Z"]


def record_drill(history, state_dir, run_id, started, backup_id, seconds):
    data = report_of("rescued", command="drill").to_dict()
    data.update(run_id=run_id, started=started)
    data["results"]["local1"]["restore_drill_result"]["recovery_s"] = seconds
    data["results"]["local1"]["restore_drill_result"]["backup"] = {"id": backup_id}
    history.record(RunReport.from_dict(data), state_dir)


def test_drill_history_trends_per_name(cli, state_dir):
    history = History(state_dir / "history.sqlite")
    for index, (name, seconds) in enumerate([("sample_app", 7.5), ("ledger", 30.0), ("sample_app", 9.0),
                                             ("ledger", 28.0), ("sample_app", 6.0)]):
        record_drill(history, state_dir, f"2026112{index}T000000Z-cccccc", f"2026-11-2{index}T00:00:00+00:00",
                     f"{name}-2026112{index}T000000Z", seconds)
    rows = json.loads(cli("history", "--drills", "--json").stdout)
    by_name = {n: [(r["drill_recovery_s"], r["delta_s"]) for r in rows if r["name"] == n] for n in ("sample_app", "ledger")}
    # the change is against the previous drill of the same database, never the other one's
    assert by_name["sample_app"] == [(7.5, None), (9.0, 1.5), (6.0, -3.0)]
    assert by_name["ledger"] == [(30.0, None), (28.0, -2.0)]
    shown = cli("history", "--drills")
    assert shown.code == 0
    assert "sample_app: recovery time" in shown.stdout and "last 6.0s, best 6.0s, worst 9.0s" in shown.stdout
    assert "ledger: recovery time" in shown.stdout and "last 28.0s, best 28.0s, worst 30.0s" in shown.stdout
    only = json.loads(cli("history", "--drills", "--name", "ledger", "--json").stdout)
    assert [r["drill_recovery_s"] for r in only] == [30.0, 28.0] and {r["name"] for r in only} == {"ledger"}
    table = cli("history", "--drills", "--name", "ledger")
    assert "sample_app" not in table.stdout and "ledger: recovery time" in table.stdout
    runs = json.loads(cli("history", "--name", "sample_app", "--json").stdout)
    assert len(runs) == 3 and all(r["backup_names"] == ["sample_app"] for r in runs)
    assert "no drills of other recorded yet" in cli("history", "--drills", "--name", "other").stdout


@pytest.mark.parametrize("backup_id, name", [
    ("sample_app-20261202T061530Z", "sample_app"),
    ("app-2-20261202T061530Z", "app-2"),
    ("tampered-1", ""),
    ("", ""),
])
def test_backup_name_of(backup_id, name):
    assert backup_name_of(backup_id) == name
