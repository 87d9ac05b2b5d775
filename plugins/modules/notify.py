#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: notify
short_description: Tell people about a deploy, rollback, backup, restore, drill or recovery (Slack, Telegram, JSON)
description:
  - Sends one event (what ran, how it ended, on which app and hosts, a summary and details) to a list of targets,
    each a Slack incoming webhook, a Telegram bot (Bot API C(sendMessage)) or any URL that takes a plain JSON POST.
  - A target is sent the event when the event's outcome is in its O(targets[].send_on) (by default O(send_on), failures only).
    The outcome is C(success) for the results C(success), C(succeeded), C(passed), C(ok), C(unchanged), C(skipped),
    C(check) and C(recovered); every other result (C(failed), C(refused), C(rolled_back), C(unhealthy), C(degraded), ...) is a
    C(failure), so an unknown result is told rather than hidden.
  - A notification never turns a good run into a failed one. A target that cannot be reached, answers an error or is
    misconfigured (a URL that is not http:// or https://, has no valid port or holds a space, a header value of
    several lines, a Telegram target without token or chat id) is listed in
    RV(not_sent) with the reason and a warning; the task fails only with O(fail_on_error=true).
  - Secrets never leave the module. Webhook URLs (a Slack webhook's path is its secret) and bot tokens are shown as
    C(scheme://host/***), and every message that could carry them is masked.
  - Sending is not a change on any host, so the module never reports C(changed).
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  kind:
    description: What ran.
    type: str
    required: true
    choices: [deploy, rollback, backup, restore, drill, recovery, disaster_recovery]
  result:
    description: How it ended, as the role's C(<role>_result.result) says (C(success), C(failed), C(rolled_back), ...).
      Empty, it is judged from O(host_results) (a failure on any host wins). One of the two is required.
    type: str
    default: ""
  host_results:
    description:
      - Each host's C(<role>_result). Its C(result) key is the host's result; a result without one (some roles set
        theirs only when they finish) is C(success), or C(refused) / C(failed) when it says so (C(refused=true),
        C(failed=true)). A host mapped to nothing (never reached, unreachable) is C(no_result), a failure.
      - Fills C(details.per_host) of the message, and O(hosts) and O(summary) when they are empty.
    type: dict
    default: {}
  failed_hosts:
    description: Hosts that failed in the play (the role passes them). A host listed here whose result is not already
      a failure counts as C(failed), since it failed after setting its result.
    type: list
    elements: str
    default: []
  app:
    description: The application (or database) concerned.
    type: str
    default: ""
  hosts:
    description: The hosts concerned.
    type: list
    elements: str
    default: []
  summary:
    description: One or two sentences for a human; the first line of every message.
    type: str
    default: ""
  details:
    description: Facts worth a glance (release, version, duration, failing check). Shown as fields, sent whole in JSON.
    type: dict
    default: {}
  report:
    description: Path or URL of the full report, shown in the message.
    type: str
    default: ""
  targets:
    description: Where to send the event. An empty list sends nothing.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name for the target in the result and in errors (default C(<type>#<index>)).
        type: str
      type:
        description: C(slack) (incoming webhook, C(text) + C(blocks), with & < > escaped so that nothing in the event
          is read as a mention or a link), C(telegram) (Bot API C(sendMessage), plain text) or C(json) (the event as one
          JSON document).
        type: str
        required: true
        choices: [slack, telegram, json]
      url:
        description: The webhook URL (slack, json). For telegram, the whole C(sendMessage) URL, used when no
          O(targets[].token) is given.
        type: str
      token:
        description: The Telegram bot token.
        type: str
      chat_id:
        description: The Telegram chat (a number or C(@channel)).
        type: str
      api_url:
        description: Telegram only. Base of the Bot API; the request goes to C(<api_url>/bot<token>/sendMessage).
        type: str
        default: https://api.telegram.org
      headers:
        description: Extra HTTP headers (an C(Authorization) header for a JSON receiver). Their values are secrets.
        type: dict
      send_on:
        description: Outcomes this target is told about; default O(send_on); C([]) tells it nothing. (Not C(on), which
          YAML reads as C(true).)
        type: list
        elements: str
        choices: [failure, success]
  send_on:
    description: Outcomes a target without its own O(targets[].send_on) is told about.
    type: list
    elements: str
    choices: [failure, success]
    default: [failure]
  timeout:
    description: Seconds to wait for each request (1 to 120).
    type: int
    default: 10
  retries:
    description: Further attempts after a failed request (0 to 5), on a connection error, a 429 or a 5xx answer.
    type: int
    default: 2
  retry_delay:
    description: Seconds between attempts (0 to 60); a 429's C(Retry-After) (up to 60 s) wins.
    type: float
    default: 2
  validate_certs:
    description: Verify the receivers' TLS certificates.
    type: bool
    default: true
  fail_on_error:
    description: Fail the task when a target could not be told. Off by default, so a notification never fails the
      run it reports on.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The messages are built and returned in the C(body) of each RV(notifications) entry; nothing is sent.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Run it once, on the controller (C(run_once), C(delegate_to=localhost)); the role C(shipshape.ops.notify) does.
"""

EXAMPLES = r"""
- name: Tell the team a deploy failed
  shipshape.ops.notify:
    kind: deploy
    result: "{{ deploy_result.result }}"
    app: sample_app
    hosts: "{{ ansible_play_hosts_all }}"
    summary: "{{ deploy_result.message }}"
    details:
      release: "{{ deploy_result.release }}"
    targets:
      - type: slack
        url: "{{ vault_slack_webhook_url }}"
      - type: telegram
        token: "{{ vault_telegram_bot_token }}"
        chat_id: "-1001234567890"
        send_on: [failure, success]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
outcome:
  description: C(success) or C(failure), from O(result).
  returned: always
  type: str
  sample: failure
sent:
  description: Names of the targets that accepted the message.
  returned: always
  type: list
  elements: str
  sample: ["slack#0"]
not_sent:
  description: Targets that could not be told, each with the reason (secrets masked). (Not C(failed), which Ansible
    reads as the task's own failure.)
  returned: always
  type: list
  elements: dict
  sample: [{"name": "telegram#1", "error": "POST https://api.telegram.org/*** answered 401: Unauthorized"}]
skipped:
  description: Names of the targets not told because the outcome is not in their O(targets[].send_on).
  returned: always
  type: list
  elements: str
notifications:
  description: One entry per target, with its masked endpoint, status (C(sent), C(failed), C(skipped),
    C(would_send) in check mode), attempts, HTTP status and, in check mode, the body that would be sent.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "slack#0", "type": "slack", "endpoint": "https://hooks.slack.com/***", "status": "sent",
            "attempts": 1, "http_status": 200}]
"""

import http.client
import json
import math
import re
import time
import traceback
import urllib.error
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

SUCCESS_RESULTS = {"success", "succeeded", "passed", "ok", "unchanged", "skipped", "check", "recovered"}
KNOWN_FAILURES = {"failure", "failed", "error", "refused", "rolled_back", "unhealthy", "degraded", "aborted", "stopped",
                  "no_result"}
TITLES = {"deploy": "Deploy", "rollback": "Rollback", "backup": "Backup", "restore": "Restore",
          "drill": "Restore drill", "recovery": "Recovery", "disaster_recovery": "Disaster recovery"}
RETRY_STATUSES = {429, 500, 502, 503, 504}
TELEGRAM_MAX = 4096  # sendMessage's limit on text
SLACK_SECTION_MAX = 3000  # a section block's text
SLACK_FIELDS_MAX = 10
FIELD_MAX = 300
URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>*][^\s'\"<>]*")
# What http.client refuses in a request line or a header (it raises, naming the whole secret value).
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
HEADER_VALUE_BREAK = re.compile(r"[\r\n\x00]")


def outcome_of(result):
    return "success" if result.strip().lower() in SUCCESS_RESULTS else "failure"


def shown_endpoint(url):
    """scheme://host[:port]/*** : enough to tell targets apart, never the path (a Slack webhook's secret)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if not parts.scheme or not parts.hostname:
        return "***"
    try:
        port = parts.port
    except ValueError:  # out of range or not a number: shown without it
        port = None
    host = ("[%s]" % parts.hostname if ":" in parts.hostname else parts.hostname) + (":%d" % port if port else "")
    return "%s://%s/***" % (parts.scheme, host)


def masker(secrets):
    secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def mask(text):
        text = str(text)
        for secret in secrets:
            text = text.replace(secret, "***")
        return URL_RE.sub(lambda m: shown_endpoint(m.group(0)), text)

    return mask


def url_secrets(url):
    """A webhook URL's path and query, which is all a receiver echoes back in an error ('no hook at /services/...')."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    return [parts.path, parts.query, parts.path + "?" + parts.query if parts.query else ""]


def short(value, limit=FIELD_MAX):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def title_of(event):
    mark = "\u2705" if event["outcome"] == "success" else "\u274c"
    where = event["app"] or ", ".join(event["hosts"]) or "shipshape"
    return "%s %s %s: %s" % (mark, TITLES[event["kind"]], event["result"], where)


def text_lines(event):
    lines = [title_of(event)]
    if event["summary"]:
        lines.append(event["summary"])
    if event["hosts"]:
        lines.append("Hosts: " + ", ".join(event["hosts"]))
    for key, value in event["details"].items():
        lines.append("%s: %s" % (key, short(value)))
    if event["report"]:
        lines.append("Report: " + event["report"])
    return lines


def slack_text(value, limit=FIELD_MAX):
    """Text for Slack's text and mrkdwn, which read <!channel>, <@user> and <url|label>: & < > escaped as Slack
    asks, so a host's message (an app's output) is shown, never obeyed."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return short(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), limit)


def slack_body(event):
    fallback = title_of(event) + (" - " + event["summary"] if event["summary"] else "")
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": short(title_of(event), 150), "emoji": True}}]
    if event["summary"]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": slack_text(event["summary"], SLACK_SECTION_MAX)}})
    fields = []
    if event["hosts"]:
        fields.append({"type": "mrkdwn", "text": "*Hosts*\n" + slack_text(", ".join(event["hosts"]))})
    for key, value in event["details"].items():
        fields.append({"type": "mrkdwn", "text": "*%s*\n%s" % (slack_text(key), slack_text(value))})
    if fields:
        blocks.append({"type": "section", "fields": fields[:SLACK_FIELDS_MAX]})
    context = "shipshape %s at %s" % (event["kind"], event["at"])
    if event["report"]:
        context += " - report: " + event["report"]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": slack_text(context)}]})
    return {"text": slack_text(fallback, SLACK_SECTION_MAX), "blocks": blocks}


def telegram_body(event, chat_id):
    # Plain text (no parse_mode): nothing in a summary or a detail can break Telegram's markup parser.
    return {"chat_id": chat_id, "text": short("\n".join(text_lines(event)), TELEGRAM_MAX),
            "disable_web_page_preview": True}


def json_body(event):
    return dict(event, source="shipshape")


def check_url(url, what):
    """None when the URL is an http(s) URL with a host, else why not (without the URL's secret part)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "%s is not a URL" % what
    if parts.scheme not in ("http", "https"):
        return "%s must be an http:// or https:// URL, got '%s'" % (
            what, (parts.scheme + "://***") if parts.scheme else "***")
    if not parts.hostname:
        return "%s has no host ('%s')" % (what, shown_endpoint(url))
    try:
        parts.port  # pylint: disable=pointless-statement
    except ValueError:
        return "%s has no valid port ('%s'); expected a number from 1 to 65535" % (what, shown_endpoint(url))
    if CONTROL_OR_SPACE.search(url):
        return "%s holds a space or a control character ('%s'); expected a URL with them percent-encoded" % (
            what, shown_endpoint(url))
    return None


def check_headers(headers, what):
    """None when every extra header can be sent as it is, else why not (naming the header, never its value)."""
    for name, value in headers.items():
        if not HEADER_NAME.match(name):
            return "%s header '%s' is not an HTTP header name" % (what, name.encode("unicode_escape").decode())
        if HEADER_VALUE_BREAK.search(value):
            return "%s header '%s' holds a line break or a NUL; expected a value of one line" % (what, name)
    return None


def prepare(target, index, event):
    """(name, endpoint URL, body, headers, error): the request for one target, or why it cannot be sent."""
    kind = target["type"]
    name = target.get("name") or "%s#%d" % (kind, index)
    what = "targets[%d] (%s)" % (index, name)
    headers = {"Content-Type": "application/json"}
    extra = {str(k): str(v) for k, v in (target.get("headers") or {}).items()}
    headers.update(extra)
    header_error = check_headers(extra, what)
    if kind == "telegram":
        if not target.get("chat_id"):
            return name, "", None, headers, "%s: a telegram target needs chat_id" % what
        if not target.get("token") and target.get("url"):  # a whole sendMessage URL, as the drill's webhook took
            error = check_url(target["url"], what + " url") or header_error
            return name, target["url"], telegram_body(event, target["chat_id"]), headers, error
        if not target.get("token"):
            return name, "", None, headers, "%s: a telegram target needs token (the bot token) or url" % what
        base = (target.get("api_url") or "https://api.telegram.org").rstrip("/")
        url = "%s/bot%s/sendMessage" % (base, target["token"])
        error = check_url(base, what + " api_url") or check_url(url, what + " token") or header_error
        return name, url, telegram_body(event, target["chat_id"]), headers, error
    url = target.get("url") or ""
    if not url:
        return name, "", None, headers, "%s: a %s target needs url" % (what, kind)
    error = check_url(url, what + " url") or header_error
    body = slack_body(event) if kind == "slack" else json_body(event)
    return name, url, body, headers, error


def post(url, body, headers, params):
    """(http_status, attempts, error): POST with bounded retries on connection errors, 429 and 5xx."""
    data = json.dumps(body).encode()
    attempts, status, error = 0, None, None
    while attempts <= params["retries"]:
        attempts += 1
        delay = params["retry_delay"]
        started = time.monotonic()
        try:
            response = open_url(url, data=data, headers=headers, method="POST", timeout=params["timeout"],
                                validate_certs=params["validate_certs"], follow_redirects="none")
            with response:  # the status says it all: the body is not read (one trickled forever would hang)
                status = response.status
            if 200 <= status < 300:
                return status, attempts, None
            error = "answered %s" % status
        except urllib.error.HTTPError as err:
            status = err.code
            raw = read_some(err, 4096, started + params["timeout"]) if hasattr(err, "read") else b""
            error = "answered %s%s" % (status, reason_in(raw))
            if status == 429:
                delay = retry_after(err, raw, delay)
            if status not in RETRY_STATUSES:
                return status, attempts, error
        except (urllib.error.URLError, OSError, UrlConnectionError, SSLValidationError) as err:
            status, error = None, "no answer (%s)" % getattr(err, "reason", err)
        except (ValueError, http.client.InvalidURL) as err:
            # A request http.client refuses to build: its text holds the URL's secret path or a header's value.
            return None, attempts, "could not be sent (%s)" % type(err).__name__
        except http.client.HTTPException as err:  # an answer that is not HTTP, or cut short
            status, error = None, "no answer (%s)" % type(err).__name__
        if attempts <= params["retries"]:
            time.sleep(delay)
    return status, attempts, error


def read_some(response, limit, deadline):
    """At most LIMIT bytes of a body, and only until DEADLINE: a body trickled a byte at a time never trips the
    socket's timeout."""
    read = getattr(response, "read1", None) or response.read
    data = b""
    while len(data) < limit and time.monotonic() < deadline:
        chunk = read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def reason_in(raw):
    """Telegram and many receivers say why in a JSON body ('description', 'error', 'message'); Slack in plain text."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit ([[[[...)
        return (": " + short(text, 200)) if text else ""
    if isinstance(doc, dict):
        for key in ("description", "error", "message"):
            if doc.get(key):
                return ": " + short(str(doc[key]), 200)
    return ""


def retry_after(err, raw, default):
    seconds = None
    try:
        seconds = float(err.headers.get("Retry-After")) if err.headers else None
    except (TypeError, ValueError):
        seconds = None
    if seconds is None:
        try:
            seconds = float(json.loads(raw.decode()).get("parameters", {}).get("retry_after"))
        except (ValueError, TypeError, AttributeError, RecursionError):
            seconds = None
    if seconds is None or not math.isfinite(seconds):  # "nan" or "inf" is no number of seconds
        seconds = default
    return min(max(seconds, 0), 60)


def word_of(host_result):
    if not host_result:
        return "no_result"
    if host_result.get("result"):
        return str(host_result["result"])
    if host_result.get("refused") is True:
        return "refused"
    if host_result.get("failed") is True:
        return "failed"
    return "success"


def judge(params):
    """(result, hosts, summary, details): the event's own, or judged from each host's result."""
    result, hosts, summary = params["result"], params["hosts"], params["summary"]
    details = dict(params["details"])
    per_host = {}
    for host in sorted(params["host_results"]):
        value = params["host_results"][host]
        per_host[host] = value if isinstance(value, dict) else {}
    if not per_host:
        return result, hosts, summary, details
    words = {h: word_of(r) for h, r in per_host.items()}
    for host in params["failed_hosts"]:
        if host in words and outcome_of(words[host]) == "success":
            words[host] = "failed"
    failures = [h for h in per_host if outcome_of(words[h]) == "failure"]
    if not result:
        result = words[failures[0]] if failures else ("success" if "success" in words.values() else words[sorted(words)[0]])
    if not hosts:
        hosts = list(per_host)
    if not summary and failures:
        shown = ["%s: %s%s" % (h, words[h], (" (%s)" % short(str(per_host[h]["message"]), 200))
                               if per_host[h].get("message") else "") for h in failures[:5]]
        summary = "; ".join(shown) + ("; and %d more" % (len(failures) - 5) if len(failures) > 5 else "")
    details["per_host"] = words
    return result, hosts, summary, details


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kind=dict(type="str", required=True, choices=list(TITLES)),
            result=dict(type="str", default=""),
            host_results=dict(type="dict", default={}),
            failed_hosts=dict(type="list", elements="str", default=[]),
            app=dict(type="str", default=""),
            hosts=dict(type="list", elements="str", default=[]),
            summary=dict(type="str", default=""),
            details=dict(type="dict", default={}),
            report=dict(type="str", default=""),
            targets=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str"),
                type=dict(type="str", required=True, choices=["slack", "telegram", "json"]),
                url=dict(type="str", no_log=True),
                token=dict(type="str", no_log=True),
                chat_id=dict(type="str"),
                api_url=dict(type="str", default="https://api.telegram.org"),
                headers=dict(type="dict", no_log=True),
                send_on=dict(type="list", elements="str", choices=["failure", "success"]),
            )),
            send_on=dict(type="list", elements="str", choices=["failure", "success"], default=["failure"]),
            timeout=dict(type="int", default=10),
            retries=dict(type="int", default=2),
            retry_delay=dict(type="float", default=2),
            validate_certs=dict(type="bool", default=True),
            fail_on_error=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for option, low, high in (("timeout", 1, 120), ("retries", 0, 5), ("retry_delay", 0, 60)):
        if not low <= params[option] <= high:
            module.fail_json(msg="%s is %g; expected a number from %s to %s" % (option, params[option], low, high))

    secrets = []
    for target in params["targets"]:
        secrets += [target.get("url") or "", target.get("token") or ""]
        secrets += url_secrets(target.get("url") or "")
        secrets += [str(v) for v in (target.get("headers") or {}).values()]
    mask = masker(secrets)

    result, hosts, summary, details = judge(params)
    if not result:
        module.fail_json(msg="notify: result is empty and host_results names no host; expected one of the two "
                             "(the role's <role>_result.result, or each host's <role>_result)")
    if result.strip().lower() not in SUCCESS_RESULTS | KNOWN_FAILURES:
        module.warn("notify: result '%s' is not a known result; it is told as a failure" % short(result, 60))
    event = {
        "kind": params["kind"], "result": result, "outcome": outcome_of(result), "app": params["app"],
        "hosts": hosts, "summary": summary, "details": details,
        "report": params["report"], "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

    notifications, sent, failed, skipped = [], [], [], []
    for index, target in enumerate(params["targets"]):
        try:
            name, url, body, headers, error = prepare(target, index, event)
        except Exception as exc:  # pylint: disable=broad-except
            module.fail_json(msg=mask("notify: building the message for targets[%d] failed: %s" % (index, exc)),
                             exception=mask(traceback.format_exc()))
        entry = {"name": name, "type": target["type"], "endpoint": shown_endpoint(url) if url else "",
                 "status": "", "attempts": 0, "http_status": None}
        # An empty send_on is given (a muted target), not absent: only None takes the module's default.
        wanted = params["send_on"] if target.get("send_on") is None else target["send_on"]
        if event["outcome"] not in wanted:
            entry["status"] = "skipped"
            skipped.append(name)
        elif error:
            entry.update(status="failed", error=mask(error))
            failed.append({"name": name, "error": entry["error"]})
        elif module.check_mode:
            entry.update(status="would_send", body=body)
        else:
            status, attempts, error = post(url, body, headers, params)
            entry.update(attempts=attempts, http_status=status)
            if error:
                entry.update(status="failed", error=mask("POST %s %s" % (shown_endpoint(url), error)))
                failed.append({"name": name, "error": entry["error"]})
            else:
                entry["status"] = "sent"
                sent.append(name)
        notifications.append(entry)

    outcome = dict(changed=False, outcome=event["outcome"], sent=sent, not_sent=failed, skipped=skipped,
                   notifications=notifications)
    if failed:
        msg = "notify: %d of %d target(s) not told: %s" % (
            len(failed), len(params["targets"]), "; ".join(f["error"] for f in failed))
        if params["fail_on_error"]:
            module.fail_json(msg=msg, **outcome)
        module.warn(msg)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
