"""shipshape.ops.log_search: validation, each source (journal and compose through a fake run_command, files for
real), grouping of tracebacks, every filter, redaction, bounds."""

from __future__ import annotations

import datetime
import json
import os
import threading
import time

import pytest

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.shipshape.ops.plugins.modules import log_search

NOW = datetime.datetime(2026, 12, 2, 15, 0, 0, tzinfo=datetime.timezone.utc)
SECRET = "s3cret-Pa55word"

APP_LOG = [
    "2026-12-02 14:00:00,001 INFO sample_app: starting",
    "2026-12-02 14:10:00,000 WARNING sample_app: healthz: redis probe failed",
    '127.0.0.1 "GET /healthz HTTP/1.1" 200 120 3ms rid=abc-123',
    '127.0.0.1 "GET /healthz HTTP/1.1" 200 120 3ms rid=abc-1234',
    "2026-12-02 14:50:00,000 ERROR sample_app: unhandled error on GET /notes: boom",
    "Traceback (most recent call last):",
    '  File "/srv/app.py", line 10, in get',
    "    raise ValueError(url)",
    "ValueError: postgresql://app:%s@db:5432/app" % SECRET,
    "2026-12-02 14:55:00,000 INFO sample_app: password=%s rotated" % SECRET,
    json.dumps({"timestamp": "2026-12-02T14:56:00Z", "level": "ERROR", "message": "client_error",
                "request_id": "req-9", "user": {"id": 42}}),
    json.dumps({"timestamp": "2026-12-02T14:57:00Z", "level": "INFO", "message": "ok", "request_id": "req-10"}),
]


def args(**kw):
    base = {"source": "file", "unit": "", "paths": [], "project_dir": "", "service": "", "lines": 100,
            "scan_lines": 0, "since": "", "grep": "", "ignore_case": False, "request_id": "", "fields": {},
            "follow": False, "timeout": 30, "redact": []}
    base.update(kw)
    return base


@pytest.fixture
def app_log(tmp_path):
    path = tmp_path / "stderr.log"
    path.write_text("\n".join(APP_LOG) + "\n")
    return str(path)


class FakeModule:
    """Stands in for AnsibleModule: records argv, answers with canned output."""

    def __init__(self, out="", rc=0, err=""):
        self.calls = []
        self.out, self.rc, self.err = out, rc, err

    def run_command(self, argv, **kw):
        self.calls.append(argv)
        return self.rc, self.out, self.err


def search(module, **kw):
    return log_search.search(module, args(**kw), now=NOW)


# ----------------------------------------------------------------------------------------------
# Validation: one message naming the option, the value and what was expected
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"lines": 0}, "lines is 0; expected 1 to 10000"),
        ({"lines": 10001}, "lines is 10001; expected 1 to 10000"),
        ({"timeout": 301, "follow": True}, "timeout is 301; expected 1 to 300 seconds"),
        ({"since": "10 minutes"}, "since '10 minutes' is not a time or a duration"),
        ({"since": "2026-13-40"}, "since '2026-13-40' is not a time or a duration"),
        ({"grep": "(unclosed"}, "grep '(unclosed' is not a valid regular expression"),
        ({"request_id": "a b"}, "request_id 'a b' is not a request id"),
        ({"request_id": "$(id)"}, "request_id '$(id)' is not a request id"),
        ({"fields": {"a b": "x"}}, "fields key 'a b' is not a field name"),
        ({"fields": {"level": ["ERROR"]}}, "fields value of 'level' is a list"),
        ({"redact": ["x*"]}, "redact pattern 'x*' matches the empty string"),
        ({"redact": ["[x"]}, "redact pattern '[x' is not a valid regular expression"),
        ({"paths": ["relative.log"]}, "path 'relative.log' is not absolute"),
        ({"paths": []}, "paths is empty; source=file needs"),
        ({"source": "journal", "unit": "x; rm -rf /"}, "unit 'x; rm -rf /' is not a systemd unit name"),
        ({"source": "journal", "unit": "a\\b.service"}, "unit 'a\\b.service' is not a systemd unit name"),
        ({"source": "compose", "project_dir": "srv/app", "service": "app"}, "project_dir 'srv/app' is not absolute"),
        ({"source": "compose", "project_dir": "/srv/app", "service": "-app"}, "service '-app' is not a compose service"),
    ],
)
def test_bad_input_is_one_clear_message(app_log, kw, message):
    kw.setdefault("paths", [app_log])
    module = FakeModule()
    with pytest.raises(log_search.BadInput) as exc:
        search(module, **kw)
    assert str(exc.value).startswith(message), str(exc.value)
    assert module.calls == []  # nothing ran


def test_directory_and_missing_file_are_refused(tmp_path):
    with pytest.raises(log_search.BadInput, match="is not a regular file"):
        search(FakeModule(), paths=[str(tmp_path)])
    with pytest.raises(log_search.BadInput, match="cannot be read: No such file"):
        search(FakeModule(), paths=[str(tmp_path / "nope.log")])


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("10m", "2026-12-02T14:50:00"),
        ("2h", "2026-12-02T13:00:00"),
        ("1d", "2026-12-01T15:00:00"),
        ("30s", "2026-12-02T14:59:30"),
        ("2026-12-02", "2026-12-02T00:00:00"),
        ("2026-12-02T14:30:00Z", "2026-12-02T14:30:00"),
        ("2026-12-02 15:30+01:00", "2026-12-02T14:30:00"),
    ],
)
def test_since_durations_and_times(since, expected):
    assert log_search.parse_since(since, NOW).strftime("%Y-%m-%dT%H:%M:%S") == expected


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
def test_tail_of_a_file_keeps_a_traceback_whole(app_log):
    result = search(FakeModule(), paths=[app_log], lines=4)
    texts = [line["text"] for line in result["lines"]]
    assert texts[0].startswith("2026-12-02 14:50:00,000 ERROR") and texts[0].endswith("ValueError: postgresql://app:[REDACTED]@db:5432/app")
    assert texts[0].count("\n") == 4  # the log line, Traceback, two frame lines, the exception
    assert len(texts) == 4 and result["truncated"] is True  # more records than returned


def test_errors_preset_finds_error_lines_json_errors_and_tracebacks(app_log):
    result = search(FakeModule(), paths=[app_log], grep="errors")
    assert [line["text"].split("\n")[0][:40] for line in result["lines"]] == [
        "2026-12-02 14:50:00,000 ERROR sample_app",
        '{"timestamp": "2026-12-02T14:56:00Z", "l',
    ]
    assert result["matched"] == 2 and result["truncated"] is False
    assert result["lines"][1]["json"]["message"] == "client_error"


def test_tracebacks_and_warnings_presets(app_log):
    tracebacks = search(FakeModule(), paths=[app_log], grep="tracebacks")
    assert len(tracebacks["lines"]) == 1 and "Traceback (most recent call last):" in tracebacks["lines"][0]["text"]
    warnings = search(FakeModule(), paths=[app_log], grep="warnings")
    assert [line["text"] for line in warnings["lines"]] == [APP_LOG[1]]


def test_regex_and_ignore_case(app_log):
    assert search(FakeModule(), paths=[app_log], grep="ROTATED")["matched"] == 0
    assert search(FakeModule(), paths=[app_log], grep="ROTATED", ignore_case=True)["matched"] == 1


def test_request_id_is_an_exact_match_in_text_and_json(app_log):
    text = search(FakeModule(), paths=[app_log], request_id="abc-123")
    assert [line["text"] for line in text["lines"]] == [APP_LOG[2]]  # not rid=abc-1234
    js = search(FakeModule(), paths=[app_log], request_id="req-9")
    assert [line["json"]["request_id"] for line in js["lines"]] == ["req-9"]
    assert search(FakeModule(), paths=[app_log], request_id="req")["matched"] == 0


def test_fields_match_json_lines_only(app_log):
    result = search(FakeModule(), paths=[app_log], fields={"level": "ERROR"})
    assert [line["json"]["message"] for line in result["lines"]] == ["client_error"]
    nested = search(FakeModule(), paths=[app_log], fields={"user.id": 42, "level": "ERROR"})
    assert nested["matched"] == 1
    assert search(FakeModule(), paths=[app_log], fields={"user.id": 43})["matched"] == 0


def test_since_on_a_file_reads_times_from_lines(app_log):
    result = search(FakeModule(), paths=[app_log], since="8m")  # from 14:52
    assert [line["text"][:30] for line in result["lines"]] == [
        "2026-12-02 14:55:00,000 INFO s",
        '{"timestamp": "2026-12-02T14:5',
        '{"timestamp": "2026-12-02T14:5',
    ]
    # Lines without their own time belong to the line before: the access lines to 14:10.
    assert search(FakeModule(), paths=[app_log], since="2026-12-02T14:05:00Z", request_id="abc-123")["matched"] == 1
    assert search(FakeModule(), paths=[app_log], since="2026-12-02T14:20:00Z", request_id="abc-123")["matched"] == 0


def test_since_on_a_file_without_times_warns(tmp_path):
    path = tmp_path / "plain.log"
    path.write_text("one\ntwo\n")
    result = search(FakeModule(), paths=[str(path)], since="1h")
    assert result["matched"] == 0
    assert "starts with a time" in result["warnings_seen"][0]


def test_secrets_are_redacted_in_text_and_json(app_log, tmp_path):
    path = tmp_path / "json.log"
    path.write_text(json.dumps({"level": "ERROR", "dsn": "redis://:%s@cache:6379/0" % SECRET,
                                "note": "token=%s" % SECRET}) + "\n")
    result = search(FakeModule(), paths=[app_log, str(path)], redact=[r"password=\S+", r"token=\S+"])
    dumped = json.dumps(result)
    assert SECRET not in dumped
    assert "password=%s" % SECRET not in dumped and "[REDACTED] rotated" in dumped
    assert result["lines"][-1]["json"]["dsn"] == "redis://:[REDACTED]@cache:6379/0"


def test_a_pattern_over_a_json_key_and_its_value_redacts_the_parsed_json_too(tmp_path):
    # The text was redacted but the parsed json was redacted value by value, where '"password": "..."' never
    # matches: the secret the text hid was returned in lines[].json.
    path = tmp_path / "json.log"
    path.write_text(json.dumps({"level": "ERROR", "message": "login failed", "password": SECRET, "pin": 987654,
                                "user": {"name": "ann", "api_key": SECRET}}) + "\n")
    result = search(FakeModule(), paths=[str(path)], redact=[r'"(?:password|api_key)":\s*"[^"]*"', r'"pin":\s*\d+'])
    assert SECRET not in json.dumps(result) and "987654" not in json.dumps(result), result
    doc = result["lines"][0]["json"]
    assert doc["password"] == "[REDACTED]" and doc["pin"] == "[REDACTED]" and doc["user"]["api_key"] == "[REDACTED]"
    assert doc["message"] == "login failed" and doc["user"]["name"] == "ann"  # a match of a key alone hides nothing


def test_url_credentials_holding_an_at_sign_are_redacted_whole(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("connect postgresql://app:p@%s@db:5432/app failed\n" % SECRET)
    (line,) = search(FakeModule(), paths=[str(path)])["lines"]
    assert line["text"] == "connect postgresql://app:[REDACTED]@db:5432/app failed", line


def test_a_large_file_is_read_from_its_end_only(tmp_path, monkeypatch):
    path = tmp_path / "big.log"
    with open(path, "w") as fh:
        for i in range(200000):
            fh.write("2026-12-02 14:00:00,000 INFO line %06d %s\n" % (i, "x" * 40))
    reads = []
    real_open = open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def read(self, n=-1):
            data = self.fh.read(n)
            reads.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(log_search, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    result = search(FakeModule(), paths=[str(path)], lines=10)
    assert [line["text"][-47:-41] for line in result["lines"]][-1] == "199999"
    assert len(result["lines"]) == 10 and result["scanned"] == 2 * 10 + 100
    assert sum(reads) <= 64 * 1024 and os.path.getsize(path) > 10 * 1024 * 1024


def test_lines_are_bounded_and_truncated_says_so(app_log):
    result = search(FakeModule(), paths=[app_log], grep="healthz", lines=1)
    assert result["matched"] == 3 and len(result["lines"]) == 1 and result["truncated"] is True
    assert result["lines"][0]["text"] == APP_LOG[3]


def test_follow_a_file_returns_lines_written_meanwhile(tmp_path):
    path = tmp_path / "live.log"
    path.write_text("2026-12-02 14:00:00,000 INFO before\n")

    def writer():
        time.sleep(0.6)
        with open(path, "a") as fh:
            fh.write("2026-12-02 14:59:00,000 ERROR during rid=f-1\n")

    thread = threading.Thread(target=writer)
    thread.start()
    started = time.monotonic()
    result = search(FakeModule(), paths=[str(path)], follow=True, timeout=2, request_id="f-1")
    thread.join()
    assert 1.9 <= time.monotonic() - started < 4
    assert [line["text"] for line in result["lines"]] == ["2026-12-02 14:59:00,000 ERROR during rid=f-1"]


# ----------------------------------------------------------------------------------------------
# Journal and compose: argv lists, their output parsed
# ----------------------------------------------------------------------------------------------
def journal_entry(ts, message):
    return json.dumps({"__REALTIME_TIMESTAMP": str(ts), "MESSAGE": message, "_SYSTEMD_UNIT": "sample_app.service"})


def test_journal_argv_and_parsing():
    out = "\n".join([
        journal_entry(1796223600000000, "starting"),
        journal_entry(1796223601000000, '127.0.0.1 "GET /healthz HTTP/1.1" 200 120 3ms rid=abc-123'),
        journal_entry(1796223602000000, [104, 105, 255]),  # not UTF-8: journald gives bytes
    ])
    module = FakeModule(out)
    result = search(module, source="journal", unit="sample_app.service", since="10m", request_id="abc-123")
    assert module.calls == [["journalctl", "--unit", "sample_app.service", "--output", "json", "--no-pager",
                             "--lines", "5000", "--since", "@%d" % int(NOW.timestamp() - 600)]]
    assert result["lines"] == [{"ts": "2026-12-02T15:00:01.000000Z", "source": "sample_app.service",
                                "text": '127.0.0.1 "GET /healthz HTTP/1.1" 200 120 3ms rid=abc-123'}]
    assert result["scanned"] == 3
    assert search(FakeModule(out), source="journal", unit="u.service")["lines"][2]["text"] == "hi\ufffd"


def test_journal_follow_is_bounded_by_timeout():
    module = FakeModule(journal_entry(1796223600000000, "x"), rc=124)
    result = search(module, source="journal", unit="sample_app.service", follow=True, timeout=60, lines=5)
    assert module.calls[0][:3] == ["timeout", "--kill-after=5", "60"] and module.calls[0][-1] == "--follow"
    assert result["matched"] == 1


def test_journal_failure_names_the_command():
    with pytest.raises(log_search.BadInput, match=r"journalctl --unit failed \(rc=1\): Permission denied"):
        search(FakeModule("", rc=1, err="Permission denied"), source="journal", unit="u.service")


def test_compose_argv_and_parsing():
    out = "\n".join([
        'app-app-1  | 2026-12-02T14:59:00.123456789Z {"level": "ERROR", "message": "boom", "request_id": "r-1"}',
        "app-app-1  | 2026-12-02T14:59:01.000000000Z plain line",
    ])
    module = FakeModule(out)
    result = search(module, source="compose", project_dir="/srv/app", service="app", fields={"level": "ERROR"})
    assert module.calls == [["docker", "compose", "--project-directory", "/srv/app", "logs", "--no-color",
                             "--timestamps", "--tail", "5000", "--", "app"]]
    assert result["lines"] == [{"ts": "2026-12-02T14:59:00.123456Z", "source": "app-app-1",
                                "text": '{"level": "ERROR", "message": "boom", "request_id": "r-1"}',
                                "json": {"level": "ERROR", "message": "boom", "request_id": "r-1"}}]
    assert result["report"] == ['2026-12-02T14:59:00.123456Z app-app-1 {"level": "ERROR", "message": "boom", '
                                '"request_id": "r-1"}']


# ----------------------------------------------------------------------------------------------
# Through AnsibleModule
# ----------------------------------------------------------------------------------------------
def test_module_runs_and_changes_nothing_in_check_mode(run_module, app_log):
    failed, result = run_module(log_search, {"source": "file", "paths": [app_log], "request_id": "abc-123"},
                                check_mode=True)
    assert not failed and result["changed"] is False and result["matched"] == 1


def test_module_fails_with_one_message(run_module, app_log):
    failed, result = run_module(log_search, {"source": "file", "paths": [app_log], "since": "yesterday"})
    assert failed and result["msg"].startswith("log_search: since 'yesterday' is not a time or a duration")


def test_module_journal_through_run_command(run_module, monkeypatch):
    seen = []

    def fake(self, argv, **kw):
        seen.append(argv)
        return 0, journal_entry(1796223600000000, "ERROR x"), ""

    monkeypatch.setattr(AnsibleModule, "run_command", fake)
    failed, result = run_module(log_search, {"source": "journal", "unit": "sample_app.service", "grep": "errors"})
    assert not failed and result["matched"] == 1 and seen[0][0] == "journalctl"


def test_a_line_with_an_impossible_time_is_a_line_without_one(tmp_path):
    # A zone of +99:00, or a year 1 or 9999 pushed past the calendar by its zone, raised ValueError or
    # OverflowError out of the search: one odd line in a log made the whole task fail.
    path = tmp_path / "app.log"
    path.write_text("\n".join([
        "2026-12-02 14:30:00 INFO first",
        "2026-12-02 14:31:00+99:00 ERROR odd zone",
        "0001-01-01 00:00:00+01:00 ERROR year one",
        '{"ts": "9999-12-31T23:59:59-01:00", "level": "ERROR", "message": "far future"}',
        "2026-12-02 14:40:00 ERROR last",
    ]) + "\n")
    result = search(FakeModule(), paths=[str(path)], since="1h", grep="ERROR")
    ends = ["odd zone", "year one", 'future"}', "ERROR last"]
    assert [line["text"].endswith(end) for line, end in zip(result["lines"], ends)] == [True] * 4, result["lines"]
    # The odd lines belong to the line before, as a line without a time does.
    assert [line["ts"] for line in result["lines"]][:3] == ["2026-12-02T14:30:00.000000Z"] * 3


def test_compose_line_with_an_impossible_time_is_kept_without_one():
    out = "api-1  | 2026-13-45T25:00:00.000000000Z boom ERROR\napi-1  | 0001-01-01T00:00:00+01:00 ERROR old\n"
    result = search(FakeModule(out), source="compose", project_dir="/srv/app", service="api", grep="ERROR")
    assert [line["text"] for line in result["lines"]] == ["boom ERROR", "ERROR old"]
    assert [line["ts"] for line in result["lines"]] == ["", ""]


@pytest.mark.parametrize("since", ["999999w", "0001-01-01T00:00:00+01:00", "2026-12-02T15:00:00+99:00"])
def test_a_since_beyond_the_calendar_is_one_clear_message(app_log, since):
    # These raised OverflowError (not caught by the module: a traceback) or were taken for a valid time.
    with pytest.raises(log_search.BadInput) as exc:
        search(FakeModule(), paths=[app_log], since=since)
    assert str(exc.value).startswith("since '%s' is not a time or a duration" % since), str(exc.value)


def test_a_journal_entry_with_an_impossible_timestamp_is_kept_without_a_time():
    out = "\n".join([journal_entry("99999999999999999999999", "ERROR far"), journal_entry(1796223600000000, "ERROR ok")])
    result = search(FakeModule(out), source="journal", unit="sample_app.service", grep="ERROR")
    expected = [("", "ERROR far"), ("2026-12-02T15:00:00.000000Z", "ERROR ok")]
    assert [(line["ts"], line["text"]) for line in result["lines"]] == expected


def test_a_failed_command_is_told_without_the_credentials_it_printed():
    err = "Cannot connect to the Docker daemon at tcp://ops:%s@docker:2376. Is the docker daemon running?" % SECRET
    with pytest.raises(log_search.BadInput) as exc:
        search(FakeModule("", rc=1, err=err), source="compose", project_dir="/srv/app", service="api",
               redact=["ops:[^@]+"])
    assert "docker compose failed (rc=1): Cannot connect" in str(exc.value) and SECRET not in str(exc.value)


def test_a_path_with_a_nul_byte_is_told_as_such():
    with pytest.raises(log_search.BadInput) as exc:
        search(FakeModule(), paths=["/var/log/app\x00.log"])
    assert str(exc.value) == "path '/var/log/app\\x00.log' holds a NUL byte; expected an absolute path like /var/log/app/stderr.log"


@pytest.mark.parametrize("follow", [False, True])
def test_a_log_swapped_for_a_fifo_after_its_check_does_not_hang_the_search(tmp_path, monkeypatch, follow):
    # check_file() stats the path, then it is opened: a FIFO put in its place meanwhile (the app's user owns its
    # log directory) made open() wait for a writer for ever. The opened file itself is now checked.
    path = tmp_path / "stderr.log"
    path.write_text("2026-12-02 14:00:00 ERROR before\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real_check = log_search.check_file

    def check_then_swap(name):
        real_check(name)
        os.replace(fifo, path)  # the swap lands between the check and the open

    monkeypatch.setattr(log_search, "check_file", check_then_swap)
    outcome = {}

    def run():
        try:
            outcome["result"] = search(FakeModule(), paths=[str(path)], follow=follow, timeout=1)
        except log_search.BadInput as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():  # unblock the old code's open() so that the test run can end
        with open(path, "wb"):
            pass
        thread.join(5)
        pytest.fail("the search hung on a FIFO")
    assert outcome.get("error") == "path '%s' is not a regular file; expected a log file" % path, outcome


@pytest.mark.parametrize("depth", [100000, 600])
def test_a_deeply_nested_json_line_is_searched_as_text(tmp_path, depth):
    # json.loads (100000 levels) or the redaction of the parsed value (600) raised RecursionError, which no handler
    # took: one line an attacker got logged (a request body) made every search of the file a traceback.
    path = tmp_path / "app.log"
    deep = '{"level": "ERROR", "a": ' + '{"b": ' * depth + '"postgres://u:%s@db/x"' % SECRET + '}' * depth + '}'
    path.write_text(deep + "\n2026-12-02 14:00:00 ERROR plain\n")
    result = search(FakeModule(), paths=[str(path)], grep="ERROR")
    assert [("json" in line, line["text"][-11:]) for line in result["lines"]] == [(False, "}" * 11), (False, "ERROR plain")]
    assert SECRET not in json.dumps(result)
    assert search(FakeModule(), paths=[str(path)], fields={"level": "ERROR"})["matched"] == 0
