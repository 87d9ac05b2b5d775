"""shipshape.ops.notify: Slack, Telegram and JSON messages received by a local http.server; retries, masking,
check mode, and a failed notification that does not fail the task."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from ansible_collections.shipshape.ops.plugins.modules import notify

BOT_TOKEN = "123456:bot-token-do-not-leak"
HOOK_PATH = "/services/T000/B000/hook-secret-do-not-leak"


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records every POST; the path chooses the answer (/fail/<code>, /flaky: 503 twice then 200)."""

    received: list = []
    flaky = {"count": 0}

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        Receiver.received.append({"path": self.path, "body": body, "headers": dict(self.headers)})
        if self.path.startswith("/fail/"):
            code = int(self.path.split("/")[2])
            self._answer(code, {"ok": False, "description": "Unauthorized"} if code == 401 else {"error": "nope"})
        elif self.path == "/flaky":
            Receiver.flaky["count"] += 1
            self._answer(503 if Receiver.flaky["count"] <= 2 else 200, {"ok": Receiver.flaky["count"] > 2})
        elif self.path.startswith("/trickle/"):  # its status at once, then a byte every 0.2 s for 6 s
            self.send_response(int(self.path.split("/")[2]))
            self.end_headers()
            try:
                for dummy in range(30):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif self.path.startswith("/echo/"):  # a receiver that names the path it has no hook for
            self._answer(404, {"error": "no hook at %s" % self.path})
        elif self.path.startswith("/deep/"):  # an error whose body is JSON nested 4000 deep
            raw = b"[" * 4000 + b"]" * 4000
            self.send_response(int(self.path.split("/")[2]))
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        elif self.path == "/nan":  # a 429 whose Retry-After is not a number of seconds
            self.send_response(429)
            self.send_header("Retry-After", "nan")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
        else:
            self._answer(200, {"ok": True})

    def _answer(self, code, doc):
        raw = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()


@pytest.fixture(autouse=True)
def clear():
    Receiver.received.clear()
    Receiver.flaky["count"] = 0


def event(**kw):
    args = {"kind": "deploy", "result": "rolled_back", "app": "sample_app", "hosts": ["web1", "web2"],
            "summary": "health gate failed: GET /healthz answered 500", "details": {"release": "20261202-1500", "duration_s": 41.5},
            "report": "/var/lib/shipshape/reports/deploy.json", "retry_delay": 0}
    args.update(kw)
    return args


def no_secret_in(result):
    text = json.dumps(result)
    assert BOT_TOKEN not in text and "hook-secret" not in text, text


def test_slack_telegram_and_json_are_received(run_module, base_url):
    targets = [
        {"type": "slack", "url": base_url + HOOK_PATH},
        {"type": "telegram", "token": BOT_TOKEN, "chat_id": "-100123", "api_url": base_url + "/tg"},
        {"type": "json", "url": base_url + "/events", "name": "ops-json", "headers": {"Authorization": "Bearer s3cret-hdr"}},
    ]
    failed, result = run_module(notify, event(targets=targets))
    assert not failed and result["changed"] is False
    assert result["outcome"] == "failure"
    assert result["sent"] == ["slack#0", "telegram#1", "ops-json"] and result["not_sent"] == []
    by_path = {r["path"]: r for r in Receiver.received}

    slack = by_path[HOOK_PATH]["body"]
    assert "Deploy rolled_back: sample_app" in slack["text"]
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "section", "context"]
    fields = " ".join(f["text"] for f in slack["blocks"][2]["fields"])
    assert "web1, web2" in fields and "20261202-1500" in fields

    telegram = by_path["/tg/bot%s/sendMessage" % BOT_TOKEN]["body"]
    assert telegram["chat_id"] == "-100123"
    assert telegram["text"].splitlines()[1] == "health gate failed: GET /healthz answered 500"
    assert "Report: /var/lib/shipshape/reports/deploy.json" in telegram["text"]

    plain = by_path["/events"]
    assert plain["body"]["kind"] == "deploy" and plain["body"]["outcome"] == "failure"
    assert plain["body"]["details"] == {"release": "20261202-1500", "duration_s": 41.5}
    assert plain["headers"]["Authorization"] == "Bearer s3cret-hdr"
    no_secret_in(result)
    assert "s3cret-hdr" not in json.dumps(result)
    assert result["notifications"][0]["endpoint"] == base_url + "/***"


@pytest.mark.parametrize(
    "result_word, send_on, told",
    [
        ("failed", None, True),
        ("rolled_back", None, True),
        ("degraded", None, True),
        ("success", None, False),
        ("unchanged", None, False),
        ("success", ["failure", "success"], True),
        ("passed", ["success"], True),
        ("failed", ["success"], False),
        ("something_new", None, True),
    ],
)
def test_which_outcomes_are_told(run_module, base_url, result_word, send_on, told):
    target = {"type": "json", "url": base_url + "/events"}
    if send_on:
        target["send_on"] = send_on
    failed, result = run_module(notify, event(result=result_word, targets=[target]))
    assert not failed
    assert (result["sent"] == ["json#0"]) is told
    assert (result["skipped"] == ["json#0"]) is not told
    assert len(Receiver.received) == (1 if told else 0)


def test_module_wide_send_on_and_a_target_override(run_module, base_url):
    targets = [{"type": "json", "url": base_url + "/a"},
               {"type": "json", "url": base_url + "/b", "send_on": ["failure"]}]
    failed, result = run_module(notify, event(result="success", send_on=["failure", "success"], targets=targets))
    assert not failed and result["sent"] == ["json#0"] and result["skipped"] == ["json#1"]


def test_check_mode_builds_but_sends_nothing(run_module, base_url):
    targets = [{"type": "slack", "url": base_url + HOOK_PATH},
               {"type": "telegram", "token": BOT_TOKEN, "chat_id": "42", "api_url": base_url + "/tg"}]
    failed, result = run_module(notify, event(targets=targets), check_mode=True)
    assert not failed and Receiver.received == []
    assert [n["status"] for n in result["notifications"]] == ["would_send", "would_send"]
    assert result["notifications"][0]["body"]["blocks"][0]["type"] == "header"
    assert result["notifications"][1]["body"]["chat_id"] == "42"
    no_secret_in(result)


def test_a_refused_notification_is_reported_not_failed(run_module, base_url):
    targets = [{"type": "telegram", "token": BOT_TOKEN, "chat_id": "42", "api_url": base_url + "/fail/401"},
               {"type": "json", "url": base_url + "/ok"}]
    failed, result = run_module(notify, event(targets=targets))
    assert not failed
    assert result["sent"] == ["json#1"]
    (bad,) = result["not_sent"]
    assert bad["name"] == "telegram#0" and "401" in bad["error"] and "Unauthorized" in bad["error"]
    assert len([r for r in Receiver.received if r["path"].startswith("/fail/")]) == 1  # a 401 is not retried
    assert "not told" in json.dumps(result.get("warnings", []))  # 2.19 warnings are structured
    no_secret_in(result)


def test_fail_on_error_fails_the_task(run_module, base_url):
    failed, result = run_module(notify, event(fail_on_error=True, targets=[
        {"type": "slack", "url": base_url + "/fail/500" + HOOK_PATH}]))
    assert failed and "not told" in result["msg"] and "500" in result["msg"]
    assert len(Receiver.received) == 3  # 1 + retries (2)
    no_secret_in(result)


def test_retries_are_bounded_and_recover(run_module, base_url):
    failed, result = run_module(notify, event(targets=[{"type": "json", "url": base_url + "/flaky"}]))
    assert not failed and result["sent"] == ["json#0"]
    assert result["notifications"][0]["attempts"] == 3 and len(Receiver.received) == 3


def test_no_retries_when_asked(run_module, base_url):
    failed, result = run_module(notify, event(retries=0, targets=[{"type": "json", "url": base_url + "/flaky"}]))
    assert not failed and result["not_sent"] and len(Receiver.received) == 1


def test_a_redirect_is_not_followed(run_module, base_url):
    failed, result = run_module(notify, event(targets=[{"type": "json", "url": base_url + "/redirect"}]))
    assert not failed and result["not_sent"] and "302" in result["not_sent"][0]["error"]


def test_an_unreachable_receiver_is_masked(run_module):
    url = "http://127.0.0.1:9" + HOOK_PATH  # discard port: nothing listens
    failed, result = run_module(notify, event(retries=1, timeout=2, targets=[{"type": "slack", "url": url}]))
    assert not failed
    assert "no answer" in result["not_sent"][0]["error"] and "http://127.0.0.1:9/***" in result["not_sent"][0]["error"]
    no_secret_in(result)


@pytest.mark.parametrize(
    "target, expected",
    [
        ({"type": "slack", "url": "file:///etc/passwd"}, "targets[0] (slack#0) url must be an http:// or https:// URL, got 'file://***'"),
        ({"type": "json", "url": "ftp://example.com" + HOOK_PATH}, "got 'ftp://***'"),
        ({"type": "json", "url": "hooks.slack.com" + HOOK_PATH}, "got '***'"),
        ({"type": "json"}, "targets[0] (json#0): a json target needs url"),
        ({"type": "telegram", "chat_id": "1"}, "needs token (the bot token) or url"),
        ({"type": "telegram", "token": BOT_TOKEN}, "needs chat_id"),
        ({"type": "telegram", "token": BOT_TOKEN, "chat_id": "1", "api_url": "gopher://x"}, "api_url must be an http://"),
    ],
    ids=["file", "ftp", "no-scheme", "no-url", "no-token", "no-chat", "bad-api-url"],
)
def test_bad_targets_are_named_and_reported(run_module, target, expected):
    failed, result = run_module(notify, event(targets=[target]))
    assert not failed and result["sent"] == []
    assert expected in result["not_sent"][0]["error"]
    no_secret_in(result)
    failed, result = run_module(notify, event(targets=[target], fail_on_error=True))
    assert failed and expected in result["msg"]


@pytest.mark.parametrize("option, value", [("timeout", 0), ("retries", 6), ("retry_delay", -1)])
def test_bounds(run_module, option, value):
    failed, result = run_module(notify, event(**{option: value}))
    assert failed and result["msg"].startswith("%s is %s; expected" % (option, value))


def test_an_unknown_kind_is_refused(run_module):
    failed, result = run_module(notify, event(kind="party"))
    assert failed and "kind" in result["msg"] and "party" in result["msg"]


def test_long_texts_fit_the_services_limits(run_module, base_url):
    targets = [{"type": "slack", "url": base_url + "/s"},
               {"type": "telegram", "token": BOT_TOKEN, "chat_id": "1", "api_url": base_url + "/tg"}]
    details = {"k%d" % i: "v" * 5000 for i in range(20)}
    failed, result = run_module(notify, event(summary="x" * 10000, details=details, targets=targets), check_mode=True)
    slack, telegram = (n["body"] for n in result["notifications"])
    assert len(slack["text"]) <= 3000 and len(slack["blocks"][1]["text"]["text"]) <= 3000
    assert len(slack["blocks"][2]["fields"]) == 10
    assert len(telegram["text"]) <= 4096


@pytest.mark.parametrize(
    "host_results, result, summary_has",
    [
        ({"web1": {"result": "success"}, "web2": {"result": "rolled_back", "message": "GET /healthz answered 500"}},
         "rolled_back", "web2: rolled_back (GET /healthz answered 500)"),
        ({"web1": {"result": "success"}, "web2": {}}, "no_result", "web2: no_result"),
        ({"web1": {"result": "unchanged"}, "web2": {"result": "success"}}, "success", None),
        ({"web1": {"result": "unchanged"}}, "unchanged", None),
    ],
    ids=["one-rolled-back", "one-unreachable", "all-good", "nothing-to-do"],
)
def test_the_result_is_judged_from_each_host(run_module, base_url, host_results, result, summary_has):
    args = event(result="", summary="", hosts=[], host_results=host_results, send_on=["failure", "success"],
                 targets=[{"type": "json", "url": base_url + "/events"}])
    failed, out = run_module(notify, args)
    assert not failed and out["sent"] == ["json#0"]
    body = Receiver.received[0]["body"]
    assert body["result"] == result and body["hosts"] == sorted(host_results)
    assert body["details"]["per_host"] == {h: r.get("result", "no_result") for h, r in host_results.items()}
    if summary_has:
        assert summary_has in body["summary"] and body["outcome"] == "failure"
    else:
        assert body["summary"] == "" and body["outcome"] == "success"


def test_no_result_at_all_is_refused(run_module):
    failed, result = run_module(notify, event(result="", targets=[]))
    assert failed and "result is empty and host_results names no host" in result["msg"]


@pytest.mark.parametrize(
    "host_result, failed_hosts, word",
    [
        ({"id": "20261202T0300", "created": True}, [], "success"),  # backup_result: set only when the backup finished
        ({"action": "outbox_requeue", "refused": True}, [], "refused"),
        ({"failed": True, "msg": "x"}, [], "failed"),
        ({"result": "recovered"}, [], "recovered"),
        ({"result": "success"}, ["web1"], "failed"),  # it failed after setting its result
        ({"result": "rolled_back"}, ["web1"], "rolled_back"),
        (None, [], "no_result"),
    ],
    ids=["no-result-key", "refused", "failed-flag", "recovered", "failed-later", "failure-kept", "nothing"],
)
def test_each_hosts_word(run_module, base_url, host_result, failed_hosts, word):
    failed, out = run_module(notify, event(result="", summary="", hosts=[], host_results={"web1": host_result},
                                           failed_hosts=failed_hosts, send_on=["failure", "success"],
                                           targets=[{"type": "json", "url": base_url + "/e"}]))
    assert not failed
    body = Receiver.received[0]["body"]
    assert body["details"]["per_host"] == {"web1": word} and body["result"] == word


def test_telegram_by_its_whole_url(run_module, base_url):
    url = "%s/bot%s/sendMessage" % (base_url, BOT_TOKEN)
    failed, result = run_module(notify, event(targets=[{"type": "telegram", "url": url, "chat_id": "7"}]))
    assert not failed and result["sent"] == ["telegram#0"]
    assert Receiver.received[0]["path"] == "/bot%s/sendMessage" % BOT_TOKEN
    assert Receiver.received[0]["body"]["chat_id"] == "7"
    no_secret_in(result)


@pytest.mark.parametrize(
    "target, expected",
    [
        ({"type": "slack", "url": "https://hooks.slack.com:99999" + HOOK_PATH},
         "targets[0] (slack#0) url has no valid port"),
        ({"type": "json", "url": "https://hooks.slack.com:8o8o" + HOOK_PATH}, "url has no valid port"),
        ({"type": "json", "url": "http://127.0.0.1:9" + HOOK_PATH + " extra"}, "url holds a space or a control character"),
        ({"type": "json", "url": "http://127.0.0.1:9" + HOOK_PATH + "\r\nX-Evil: 1"},
         "url holds a space or a control character"),
        ({"type": "json", "url": "http://127.0.0.1:9/", "headers": {"Authorization": "Bearer hook-secret\r\nX-Evil: 1"}},
         "targets[0] (json#0) header 'Authorization' holds a line break"),
        ({"type": "json", "url": "http://127.0.0.1:9/", "headers": {"X-Evil\r\nInjected": "hook-secret"}},
         "header 'X-Evil\\r\\nInjected' is not an HTTP header name"),
        ({"type": "telegram", "token": BOT_TOKEN + " x", "chat_id": "1", "api_url": "http://127.0.0.1:9"},
         "targets[0] (telegram#0) token holds a space or a control character"),
        ({"type": "json", "url": "http://127.0.0.1:9" + HOOK_PATH, "headers": {"X-Team": "\u20ac hook-secret"}},
         "could not be sent (UnicodeEncodeError)"),
    ],
    ids=["port-out-of-range", "port-not-a-number", "space-in-url", "crlf-in-url", "crlf-in-header", "crlf-in-header-name",
         "space-in-token", "header-not-latin-1"],
)
def test_a_malformed_url_or_header_is_reported_not_a_traceback(run_module, target, expected):
    # These used to escape as a ValueError or http.client.InvalidURL: a module traceback (failing the run the
    # notification is about) that could print the webhook's secret path or the header's value.
    failed, result = run_module(notify, event(targets=[target]))
    assert not failed, result
    assert result["sent"] == [] and expected in result["not_sent"][0]["error"], result
    assert "X-Evil: 1" not in json.dumps(result)
    no_secret_in(result)
    assert Receiver.received == []


def test_a_429_whose_retry_after_is_not_a_number_waits_the_retry_delay(run_module, base_url):
    failed, result = run_module(notify, event(retries=1, targets=[{"type": "json", "url": base_url + "/nan"}]))
    assert not failed, result
    assert result["notifications"][0]["attempts"] == 2 and "answered 429" in result["not_sent"][0]["error"]


@pytest.mark.parametrize(("code", "sent"), [(200, True), (400, False)])
def test_an_answer_whose_body_never_ends_takes_no_longer_than_the_timeout(run_module, base_url, code, sent):
    # read(4096) of a body trickled a byte at a time never trips the socket's timeout: 4096 x 0.2 s.
    started = time.monotonic()
    failed, result = run_module(notify, event(timeout=1, retries=0,
                                              targets=[{"type": "json", "url": base_url + "/trickle/%d" % code}]))
    assert time.monotonic() - started < 4, result
    assert not failed and (result["sent"] == ["json#0"]) is sent, result
    if not sent:
        assert "answered 400" in result["not_sent"][0]["error"]


@pytest.mark.parametrize("kind", ["slack", "telegram"])
def test_a_receiver_echoing_the_secret_path_is_masked(run_module, base_url, kind):
    target = {"type": kind, "url": base_url + "/echo" + (HOOK_PATH if kind == "slack" else "/bot%s/sendMessage" % BOT_TOKEN)}
    if kind == "telegram":
        target["chat_id"] = "7"
    failed, result = run_module(notify, event(targets=[target]))
    assert not failed and "answered 404: no hook at ***" in result["not_sent"][0]["error"], result
    no_secret_in(result)


def test_an_ipv6_receiver_is_shown_with_its_brackets(run_module):
    # 'http://::1:9/***' read as host ::1:9 on the default port; the address needs its brackets.
    failed, result = run_module(notify, event(retries=0, timeout=2,
                                              targets=[{"type": "slack", "url": "http://[::1]:9" + HOOK_PATH}]))
    assert not failed and result["notifications"][0]["endpoint"] == "http://[::1]:9/***", result
    assert result["not_sent"][0]["error"].startswith("POST http://[::1]:9/*** no answer"), result
    no_secret_in(result)


def test_slack_control_sequences_in_the_event_are_shown_not_obeyed(run_module, base_url):
    # Slack reads <!channel>, <@U123> and <url|text> in text and mrkdwn: a host's message (an app's output) in the
    # summary could page the whole channel or show a disguised link.
    hostile = "<!channel> fix at <http://evil.example|the runbook> & <@U0123>"
    failed, result = run_module(notify, event(summary=hostile, details={"why": hostile}, report="<!here>",
                                              targets=[{"type": "slack", "url": base_url + HOOK_PATH}]))
    assert not failed and result["sent"] == ["slack#0"], result
    body = json.dumps(Receiver.received[0]["body"])
    assert "<" not in body and ">" not in body, body
    assert "&lt;!channel&gt; fix at &lt;http://evil.example|the runbook&gt; &amp; &lt;@U0123&gt;" in body


@pytest.mark.parametrize("code", [400, 429])
def test_an_error_body_nested_too_deep_is_reported_not_a_traceback(run_module, base_url, code):
    # json.loads of the body (for its reason, or a 429's retry_after) raised RecursionError out of the module.
    failed, result = run_module(notify, event(retries=1, targets=[{"type": "json", "url": base_url + "/deep/%d" % code}]))
    assert not failed and result["sent"] == [] and "answered %d" % code in result["not_sent"][0]["error"], result


def test_a_target_whose_send_on_is_empty_is_told_nothing(run_module, base_url):
    # 'send_on: []' (a target muted) was read as absent: the target got the module's default, the failures.
    targets = [{"type": "json", "url": base_url + "/muted", "send_on": []}, {"type": "json", "url": base_url + "/a"}]
    failed, result = run_module(notify, event(targets=targets))
    assert not failed and result["sent"] == ["json#1"] and result["skipped"] == ["json#0"], result
    assert [r["path"] for r in Receiver.received] == ["/a"]
