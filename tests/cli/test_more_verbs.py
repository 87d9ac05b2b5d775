"""Issue 18 item 7 (and items 1, 2): every playbook a user runs has a verb: status, logs, provision, recover,
disaster-recovery; their values are validated before anything runs, as the other commands' are."""

from __future__ import annotations

import pytest
from cli_paths import LOCAL_INVENTORY, ROOT
from test_commands import RecordingRunner


@pytest.mark.parametrize("argv, playbook, variables", [
    (["status"], "status.yml", {}),
    (["status", "--ref", "main"], "status.yml", {"status_ref": "main"}),
    (["logs"], "logs.yml", {}),
    (["logs", "--since", "10m", "--grep", "errors", "--request-id", "3f2a9c1e-77b0", "--field", "level=ERROR",
      "--field", "ctx.user=42", "--lines", "200", "--follow", "--timeout", "60"], "logs.yml",
     {"logs_since": "10m", "logs_grep": "errors", "logs_request_id": "3f2a9c1e-77b0",
      "logs_fields": {"level": "ERROR", "ctx.user": "42"}, "logs_lines": 200, "logs_follow": True, "logs_timeout": 60}),
    (["logs", "--source", "file", "--path", "/var/log/app/stderr.log", "--since", "2026-12-02T15:00:00Z"], "logs.yml",
     {"logs_source": "file", "logs_paths": ["/var/log/app/stderr.log"], "logs_since": "2026-12-02T15:00:00Z"}),
    (["logs", "--source", "compose", "--service", "email-worker", "--grep", "timeout|refused"], "logs.yml",
     {"logs_source": "compose", "logs_service": "email-worker", "logs_grep": "timeout|refused"}),
    (["db-report"], "db_report.yml", {}),
    (["db-report", "--table", "bot_events", "--table", "crm.Customers", "--table", "bot-events", "--role", "app_reader",
      "--role", "app-reader", "--match", "50% of {{ x }}", "--slow", "20"], "db_report.yml",
     {"db_report_tables": ["bot_events", "crm.Customers", "bot-events"], "db_report_roles": ["app_reader", "app-reader"],
      "db_report_match": "50% of {{ x }}", "db_report_slow_limit": 20}),
    # A name with a '.', a space or a '"' in double quotes, as SQL writes it: passed on as given, the module reads it.
    (["db-report", "--table", 'crm."order.items"', "--table", '"Order Items"', "--table", '"say ""hi"""'],
     "db_report.yml", {"db_report_tables": ['crm."order.items"', '"Order Items"', '"say ""hi"""']}),
    (["provision"], "provision.yml", {}),
    (["recover", "outbox_requeue"], "recovery.yml", {"recovery_action": "outbox_requeue"}),
    (["recover", "archive_rows", "--confirm"], "recovery.yml", {"recovery_action": "archive_rows", "recovery_confirm": True}),
    (["disaster-recovery", "--backup-dir", "/srv/offhost", "--stop-after", "restore", "--ref", "v2.0.0"],
     "disaster_recovery.yml", {"disaster_recovery_backup_dir": "/srv/offhost", "disaster_recovery_stop_after": "restore",
                               "disaster_recovery_release_ref": "v2.0.0"}),
])
def test_verb_to_playbook(cli, argv, playbook, variables):
    runner = RecordingRunner()
    result = cli(*argv, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 0, result.stderr
    (call,) = runner.calls
    assert call["playbook"] == str(ROOT / "playbooks" / playbook)
    assert runner.extravars[0] == variables


def test_a_relative_backup_dir_becomes_absolute(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = RecordingRunner()
    result = cli("disaster-recovery", "--backup-dir", "offhost", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 0, result.stderr
    assert runner.extravars[0]["disaster_recovery_backup_dir"] == str(tmp_path / "offhost")


@pytest.mark.parametrize("argv, message", [
    (["logs", "--since=yesterday"], "shipshape logs: --since 'yesterday' is not a duration or a time"),
    (["logs", "--since=10m;id"], "shipshape logs: --since '10m;id' is not a duration or a time"),
    (["logs", "--grep=(unclosed"], "shipshape logs: --grep '(unclosed' is not a regular expression"),
    (["logs", "--request-id=$(id)"], "shipshape logs: --request-id '$(id)' is not a request id"),
    (["logs", "--field=noequals"], "shipshape logs: --field 'noequals' is not a field match"),
    (["logs", "--field={{ lookup('pipe','id') }}=1"], "is not a field match"),
    (["logs", "--lines=0"], "shipshape logs: --lines '0' is not in range: expected 1 to 10000"),
    (["logs", "--timeout=301"], "shipshape logs: --timeout '301' is not in range: expected 1 to 300"),
    (["logs", "--path=relative.log"], "shipshape logs: --path 'relative.log' is not an absolute path"),
    (["logs", "--path=/var/log/../../etc/shadow"], "is not an absolute path"),
    (["status", "--ref=main..dev"], "shipshape status: --ref 'main..dev' is not a valid git ref"),
    (["db-report", "--table=a.b.c"], "shipshape db-report: --table 'a.b.c' is not a table name: expected table or"),
    (["db-report", "--table=events;drop table x"], "--table 'events;drop table x' is not a table name"),
    (["db-report", '--table=crm."order.items'], """--table 'crm."order.items' is not a table name"""),
    (["db-report", '--table="a"b'], """--table '"a"b' is not a table name"""),
    (["db-report", '--table=""'], """--table '""' is not a table name"""),
    (["db-report", '--table="tab\there"'], "is not a table name"),
    (["db-report", '--table=crm."%s"' % ("x" * 64)], "each at most 63 bytes"),
    (["db-report", "--role=app reader"], "shipshape db-report: --role 'app reader' is not a role name"),
    (["db-report", "--role=-reader"], "shipshape db-report: --role '-reader' is not a role name"),
    (["db-report", "--match=a\nb"], "shipshape db-report: --match 'a\\nb' is not a short text"),
    (["db-report", "--slow=0"], "shipshape db-report: --slow '0' is not in range: expected 1 to 1000"),
    (["disaster-recovery", "--backup-dir=/srv/x", "--ref=a b"], "--ref 'a b' is not a valid git ref"),
])
def test_bad_values_are_refused_before_anything_runs(cli, state_dir, argv, message):
    runner = RecordingRunner()
    result = cli(*argv, "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and message in result.stderr, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1
    assert runner.calls == [] and not (state_dir / "runs").exists()


def test_an_unknown_recovery_procedure_is_a_usage_error(cli):
    runner = RecordingRunner()
    result = cli("recover", "flushall", "-i", str(LOCAL_INVENTORY), runner=runner)
    assert result.code == 3 and "invalid choice: 'flushall'" in result.stderr and runner.calls == []


def test_status_and_logs_results_are_shown_as_the_modules_report_them():
    from shipshape.report import describe_result

    status = {"report": ["release 2.0.0-ab12cd34 (current), running since 2026-12-02 10:00", "env keys: DATABASE_URL, SECRET_KEY"],
              "commits_report": ["2 commits to main: ab12 fix, cd34 feat"]}
    assert describe_result("status_result", status) == status["report"] + status["commits_report"]
    logs = {"matched": 7, "scanned": 900, "records": [{}, {}], "report": ["2026-12-02T10:00:01 app: GET /notes rid=r-1"]}
    assert describe_result("logs_result", logs) == ["logs: 7 matching of 900 lines read, the last 2 shown",
                                                    "2026-12-02T10:00:01 app: GET /notes rid=r-1"]
    db = {"msg": "sample_app: 2 tables", "report": ["sample_app: 2 tables, 3 indexes (1 unused, 0 invalid), 0 slow queries",
                                                    "unused index public.outbox_event_type_idx on outbox (0 scans, 8192 bytes)"]}
    assert describe_result("db_report_result", db) == db["report"]


def test_the_cli_offers_exactly_the_recovery_procedures_of_the_role():
    # The role's argument spec is the one list of procedures (the playbook relies on it); the CLI's choices follow it.
    import yaml
    from shipshape.cli import RECOVERY_ACTIONS
    spec = yaml.safe_load((ROOT / "roles/recovery/meta/argument_specs.yml").read_text())
    choices = spec["argument_specs"]["main"]["options"]["recovery_action"]["choices"]
    assert sorted(RECOVERY_ACTIONS) == sorted(choices)
