"""The drill's textfile metrics: one labelled series per backup name in one file; a drill rewrites only its own
name's lines and never takes another name's last success (issue 16)."""

from __future__ import annotations

import pytest

from ansible_collections.shipshape.ops.plugins.modules import drill_metrics

P = "shipshape_restore_drill"


def write(run_module, path, **args):
    params = {"path": str(path), "passed": True, "phases": {"fetch": 0.1, "restore": 2.5, "verify": None}}
    params.update(args)
    failed, result = run_module(drill_metrics, params)
    assert not failed, result
    return result, path.read_text()


def value(text, metric, backup, extra=""):
    line = f'{P}_{metric}{{backup="{backup}",database="{backup}"{extra}}} '
    found = [x for x in text.splitlines() if x.startswith(line)]
    assert len(found) <= 1, found
    return found[0][len(line):] if found else None


def test_two_names_share_one_file(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, name="sample_app", database="sample_app", now=1000, values={"recovery_seconds": 4.5})
    result, text = write(run_module, path, name="ledger", database="ledger", now=2000, values={"recovery_seconds": 7})
    assert result["names"] == ["ledger", "sample_app"]
    assert value(text, "last_success_timestamp_seconds", "sample_app") == "1000"
    assert value(text, "last_success_timestamp_seconds", "ledger") == "2000"
    assert value(text, "recovery_seconds", "sample_app") == "4.5"
    assert value(text, "recovery_seconds", "ledger") == "7"
    assert value(text, "phase_seconds", "ledger", ',phase="restore"') == "2.5"
    assert value(text, "phase_seconds", "ledger", ',phase="verify"') is None  # a phase that did not run
    # one HELP and TYPE per metric, whatever the number of names
    assert text.count(f"# TYPE {P}_success gauge") == 1


def test_a_failed_drill_keeps_its_own_last_success_never_anothers(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, name="sample_app", database="sample_app", now=1000)
    # ledger never passed: its last success is 0, not sample_app's
    result, text = write(run_module, path, name="ledger", database="ledger", now=2000, passed=False)
    assert result["last_success"] == 0
    assert value(text, "last_success_timestamp_seconds", "ledger") == "0"
    assert value(text, "success", "ledger") == "0"
    # sample_app fails later: its own previous success is kept, and ledger's lines are untouched
    dummy, text = write(run_module, path, name="sample_app", database="sample_app", now=3000, passed=False)
    assert value(text, "last_success_timestamp_seconds", "sample_app") == "1000"
    assert value(text, "last_run_timestamp_seconds", "sample_app") == "3000"
    assert value(text, "last_run_timestamp_seconds", "ledger") == "2000"


def test_a_rerun_replaces_its_lines_instead_of_adding(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, name="a", database="a", now=1, values={"recovery_seconds": 1})
    dummy, text = write(run_module, path, name="a", database="a", now=2, values={"recovery_seconds": None})
    assert value(text, "recovery_seconds", "a") is None
    assert value(text, "last_run_timestamp_seconds", "a") == "2"


def test_the_old_one_database_format_is_dropped(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    path.write_text(f'{P}_last_success_timestamp_seconds{{database="other"}} 99\n{P}_success{{database="other"}} 1\n')
    result, text = write(run_module, path, name="a", database="a", now=5, passed=False)
    assert result["last_success"] == 0 and 'database="other"' not in text


@pytest.mark.parametrize("args, expected", [
    ({"name": "", "backup_id": "ledger-20261202T101500Z", "database": "ledger_db"}, "ledger"),
    ({"name": "", "backup_id": "", "database": "ledger_db"}, "ledger_db"),
    ({"name": "x", "backup_id": "ledger-20261202T101500Z"}, "x"),
])
def test_the_name_label(tmp_path, run_module, args, expected):
    result, dummy = write(run_module, tmp_path / "m.prom", now=1, **args)
    assert result["name"] == expected


def test_label_values_are_escaped(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, name='we"ird\\name', database="d", now=1)
    dummy, text = write(run_module, path, name="b", database="b", now=2)
    assert f'{P}_success{{backup="we\\"ird\\\\name",database="d"}} 1' in text
    assert '{backup="b",' in text


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    failed, result = run_module(drill_metrics, {"path": str(path), "passed": True, "name": "a"}, check_mode=True)
    assert not failed and result["changed"] and not path.exists()


@pytest.mark.parametrize("args, message", [
    ({"path": "relative.prom"}, "path must be an absolute path"),
    ({"prefix": "bad prefix"}, "prefix must be a Prometheus metric name"),
    ({"values": {"recovery_seconds": "fast"}}, "values.recovery_seconds must be a number or null"),
    ({"values": {"bad name": 1}}, "is not a metric name"),
])
def test_bad_options_are_refused(tmp_path, run_module, args, message):
    params = {"path": str(tmp_path / "m.prom"), "passed": True}
    params.update(args)
    failed, result = run_module(drill_metrics, params)
    assert failed and message in result["msg"]
