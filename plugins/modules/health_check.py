#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: health_check
short_description: Validate, run and summarise health checks (systemd, HTTP, PostgreSQL, Redis, streams, SQL counts, disk)
description:
  - The engine of the C(shipshape.ops.preflight) role, in three steps, or in one (O(action=check)).
  - O(action=validate) checks every item of O(checks) (known kind, required and known fields, number types,
    thresholds in order, C(delegate_to) a host of O(hosts)) and fails with one message per problem, each naming
    the check and the field. It returns the distinct C(delegate_to) hosts.
  - O(action=run) runs the checks that belong where the module runs (those without C(delegate_to), or with
    O(delegate), those whose C(delegate_to) is O(delegate)) and returns one result per check. A failing check
    is a result with status C(failed), not a module failure.
  - O(action=summarize) puts the results of the runs together in the order of O(checks) (a check whose run did
    not happen, such as on an unreachable delegate, becomes a failed check carrying that run's error) and returns
    the overall result, the report lines and whether O(fail_on) asks to fail the host.
  - O(action=check) is O(action=validate), O(action=run) and O(action=summarize) in one module run, for checks
    that are all the host's own; a check with C(delegate_to) is refused (those take the three steps, the delegated
    checks run on their hosts).
  - O(action=report) judges several hosts at once from their results (O(results), C(null) for a host without
    one, such as an unreachable host) and returns the report lines and whether O(fail_on) asks to fail the run,
    with every reason.
  - Reads only; runs the same in check mode. C(password) is a secret; it is masked in every message and never
    part of a result. So are the credentials a URL holds (C(user:password@), C(?token=) and similar query values).
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  action:
    description: What to do with O(checks).
    type: str
    choices: [validate, run, summarize, report, check]
    default: run
  checks:
    description:
      - The checks. Each has C(name) (unique) and C(kind); the other fields depend on the kind (see the
        shipshape.ops.preflight role's documentation). All fields are validated by O(action=validate), with
        messages naming the check and the field, so their types are not converted here.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Unique name of the check, shown in reports.
        type: raw
      kind:
        description:
          - One of C(systemd), C(http), C(postgres), C(redis), C(redis_stream), C(redis_stream_group), C(sql_count),
            C(disk), C(release), C(prometheus), C(compose_service).
        type: raw
      delegate_to:
        description: Inventory host the check runs from (see O(delegate)).
        type: raw
      unit:
        description: C(systemd) unit, one name (not a pattern).
        type: raw
      url:
        description:
          - C(http) or C(prometheus) URL (http:// or https://). Credentials in it (C(user:password@), C(?token=)) are
            masked in every message.
          - C(prometheus) reads at most 64 MiB of the page, until O(checks[].timeout) after the request started.
        type: raw
      method:
        description: C(http) method (GET).
        type: raw
      status:
        description: C(http) expected status code or list of codes (200).
        type: raw
      json:
        description:
          - C(http) dict of dotted.path to expected value, all must match.
          - At most 1 MiB of the body is read, and only until O(checks[].timeout) after the request started; a body that
            is larger (with O(checks[].json)) or does not end by then fails the check.
        type: raw
      max_ms:
        description: C(http) latency over which the check is degraded.
        type: raw
      timeout:
        description: Seconds to wait, more than 0 (http 10, postgres 10, redis 5).
        type: raw
      retries:
        description:
          - C(http) retries until ok, a whole number (0). The retries of one check end after retries x delay + timeout seconds, even
            when attempts are left (a service that accepts and never answers costs a timeout per attempt).
        type: raw
      delay:
        description: C(http) seconds between retries, 0 or more (2).
        type: raw
      headers:
        description:
          - C(http) request headers (dict).
          - Redirects are followed (at most 5, to http:// or https:// only); C(Authorization), C(Cookie) and
            C(Proxy-Authorization), and the C(prometheus) token, are sent only to the origin of O(checks[].url).
          - The value of a header whose name speaks of a credential (C(Authorization), C(Cookie), C(X-Api-Key),
            C(X-Auth-Token), or a name holding C(token), C(secret), C(password), C(session), C(signature)...) is
            masked as a password is, in the results, the messages and the module's invocation.
        type: raw
      body:
        description: C(http) request body (a string, or data sent as JSON).
        type: raw
      validate_certs:
        description: C(http) verify the TLS certificate (true).
        type: raw
      host:
        description: PostgreSQL or Redis host (localhost).
        type: raw
      port:
        description: PostgreSQL (5432) or Redis (6379) port.
        type: raw
      user:
        description: PostgreSQL user.
        type: raw
      username:
        description: Redis ACL user.
        type: raw
      password:
        description: PostgreSQL or Redis password; a secret, masked in messages and never returned.
        type: str
      db:
        description: PostgreSQL database name, or Redis database number (0).
        type: raw
      query:
        description: C(postgres) query (SELECT 1), or the C(sql_count) query returning one integer.
        type: raw
      key:
        description: C(redis_stream) stream key.
        type: raw
      metric:
        description: C(prometheus) metric name; the samples whose labels include O(checks[].labels) are summed.
        type: raw
      labels:
        description: C(prometheus) dict of label values the samples must have.
        type: raw
      token:
        description: C(prometheus) bearer token sent in the C(Authorization) header; a secret, masked and never returned.
        type: str
      window:
        description:
          - C(prometheus) seconds (1 to 600) between two scrapes; the check then judges the increase over the window
            (a counter that went down was reset and counts whole) instead of the value.
          - With O(checks[].stat=mean), the mean of the observations made during the window.
        type: raw
      stat:
        description:
          - C(prometheus) what is judged. C(value) (default) is the metric's samples summed. C(mean) is the mean of a
            histogram or summary (a latency such as C(adapter_latency_seconds)), its C(_sum) divided by its C(_count),
            since the process started or, with O(checks[].window), over the window; a window without observations
            is ok.
        type: raw
      group:
        description: C(redis_stream_group) consumer group of O(checks[].key).
        type: raw
      lag_warn:
        description: C(redis_stream_group) ceiling on the group's lag (Redis 7+); above it the check is degraded.
        type: raw
      lag_crit:
        description: C(redis_stream_group) ceiling on the group's lag; above it the check is failed.
        type: raw
      max_idle_ms:
        description:
          - C(redis_stream_group) degraded when every consumer has been idle longer than this; failed when the group
            has no consumers.
        type: raw
      project_dir:
        description: C(compose_service) the compose project's directory (absolute).
        type: raw
      service:
        description: C(compose_service) the service; ok when its containers run (healthy where they have a healthcheck).
        type: raw
      project:
        description: C(compose_service) the compose project name (else compose's default for the directory).
        type: raw
      root:
        description:
          - C(release) the app's root directory (systemd_release_root). ok when the service runs the release
            C(current) names, degraded when C(current) names another (a switch that did not finish).
        type: raw
      warn:
        description:
          - C(redis_stream), C(sql_count) and C(prometheus) ceiling; above it the check is degraded.
          - C(redis_stream_group) ceiling on pending entries.
        type: raw
      crit:
        description: The same ceilings as O(checks[].warn); above it the check is failed.
        type: raw
      path:
        description: C(disk) absolute path on the filesystem to measure.
        type: raw
      min_free_percent_warn:
        description: C(disk) floor in percent free; below it the check is degraded.
        type: raw
      min_free_percent_crit:
        description: C(disk) floor in percent free; below it the check is failed.
        type: raw
      min_free_mb_warn:
        description: C(disk) floor in MB free; below it the check is degraded.
        type: raw
      min_free_mb_crit:
        description: C(disk) floor in MB free; below it the check is failed.
        type: raw
  label:
    description: How O(action=validate) names O(checks) in its failure message.
    type: str
    default: checks
  hosts:
    description:
      - With O(action=validate), the inventory's hosts; a check whose C(delegate_to) is not one of them is
        a problem. Empty means not checked.
      - With O(action=report), every host of the play, in order; a host missing from O(results) has no result.
    type: list
    elements: str
    default: []
  delegate:
    description:
      - With O(action=run), run the checks whose C(delegate_to) is this host. Without it, the checks that
        have no C(delegate_to).
    type: str
  runs:
    description:
      - With O(action=summarize), the registered results of the O(action=run) tasks (a loop's C(results)
        items included, with their C(item) the delegate host). A run that is unreachable or failed makes each
        of its checks a failed check with the run's error.
    type: list
    elements: dict
    default: []
  host:
    description: With O(action=summarize) or O(action=check), the inventory host the result is for.
    type: str
    default: ""
  results:
    description:
      - With O(action=report), each host's result (RV(result) of O(action=summarize)); a host of O(hosts) that
        is missing, or C(null), has none (unreachable, or invalid checks).
    type: dict
    default: {}
  fail_on:
    description:
      - With O(action=summarize) or O(action=check), when RV(fail) is true. C(failed) when the overall status is failed,
        C(degraded) also when it is degraded, C(never) never.
      - With O(action=report), the same for the checks of all hosts; a host without a result always counts.
    type: str
    choices: [failed, degraded, never]
    default: failed
attributes:
  check_mode:
    support: full
    details: The checks only read, so they run in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - PostgreSQL checks use psycopg2 when the host has it, else C(psql). Redis checks speak the protocol over a
    socket and need no client.
"""

EXAMPLES = r"""
- name: Validate, run and summarise checks that are all this host's own, in one run
  shipshape.ops.health_check:
    action: check
    checks:
      - {name: api, kind: http, url: "http://127.0.0.1:8000/healthz", json: {status: ok}}
      - {name: app, kind: systemd, unit: sample_app.service}
    host: "{{ inventory_hostname }}"
    fail_on: failed
  register: summary

# With delegated checks (delegate_to), three steps:
- name: Validate the checks
  shipshape.ops.health_check:
    action: validate
    checks: "{{ preflight_checks }}"
    hosts: "{{ groups['all'] }}"
    label: "preflight_checks of {{ inventory_hostname }}"
  register: validation

- name: Run the checks of this host
  shipshape.ops.health_check:
    checks: "{{ preflight_checks }}"
  register: local

- name: Run the delegated checks on their hosts
  shipshape.ops.health_check:
    checks: "{{ preflight_checks }}"
    delegate: "{{ item }}"
  delegate_to: "{{ item }}"
  loop: "{{ validation.delegates }}"
  register: delegated
  ignore_unreachable: true
  failed_when: false

- name: Summarise
  shipshape.ops.health_check:
    action: summarize
    checks: "{{ preflight_checks }}"
    runs: "{{ [local] + delegated.results }}"
    host: "{{ inventory_hostname }}"
    fail_on: degraded
  register: summary

- name: Judge the whole inventory
  shipshape.ops.health_check:
    action: report
    results: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'preflight_result'))) }}"
    hosts: "{{ ansible_play_hosts_all }}"
    fail_on: failed
  run_once: true
  register: health
"""

RETURN = r"""
problems:
  description: One message per problem (empty when the checks are valid).
  returned: action=validate
  type: list
  elements: str
  sample: ["check 'api' (http): field 'url' is required"]
delegates:
  description: The distinct C(delegate_to) hosts of the checks, in order of first use.
  returned: action=validate
  type: list
  elements: str
  sample: [db]
checks:
  description: One result per check run here (O(action=run)); never holds a password.
  returned: action=run
  type: list
  elements: dict
  sample:
    - {name: dlq, kind: redis_stream, status: degraded, message: "events:dead length 14 > warn 10", value: 14,
       duration_ms: 3, details: {ran_on: db}}
delegate:
  description: The O(delegate) this run was for (null for the checks of the host itself).
  returned: action=run
  type: str
started_at:
  description: When the run started, UTC ISO 8601.
  returned: action=run
  type: str
  sample: "2026-12-02T08:44:54Z"
result:
  description:
    - The overall result, the shape of the preflight role's C(preflight_result).
    - C(status) is the worst status of the checks (C(ok) when there are none); C(checked_at) is when the first
      run started.
  returned: action=summarize or action=check
  type: dict
  sample:
    host: app
    status: degraded
    message: "3 checks on app: 2 ok, 1 degraded, 0 failed"
    counts: {ok: 2, degraded: 1, failed: 0}
    checked_at: "2026-12-02T08:44:54Z"
    checks: []
report:
  description:
    - The result as lines for a person, the overall line first, then one per check (O(action=summarize)).
    - With O(action=report), per host its overall line, then one line per check that is not ok.
  returned: action=summarize, action=check or action=report
  type: list
  elements: str
fail:
  description: Whether O(fail_on) asks to fail the host (O(action=summarize), O(action=check)) or the run (O(action=report)).
  returned: action=summarize, action=check or action=report
  type: bool
fail_message:
  description: One sentence naming every check that is not ok, with its message ("" when all are ok).
  returned: action=summarize or action=check
  type: str
  sample: "Preflight on db is degraded: dlq degraded (events:dead length 14 > warn 10)."
by_host:
  description: With O(action=report), O(results) for every host of O(hosts) (then any other), C(null) for a host without one.
  returned: action=report
  type: dict
reasons:
  description:
    - Why the run fails, one per check whose status O(fail_on) counts, C(host/check status (message)), and one
      per host without a result, C(host has no result (unreachable, or invalid checks)).
  returned: action=report
  type: list
  elements: str
"""

import decimal
import json
import math
import os
import re
import shutil
import socket
import time
import urllib.error
from urllib.parse import urljoin, urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url
from ansible_collections.shipshape.ops.plugins.module_utils import redis_client, release_files
from ansible_collections.shipshape.ops.plugins.module_utils.health_checks import (
    APP_DEGRADED, BODY_MAX_CHARS, DEGRADED, ERROR_MAX_CHARS, FAILED, OK,
    argument_spec, controller_action, given, mask, secrets, summarize, utc_now, validate,
)


# How much of an answer a probe reads: a health document is small; a metrics page can be large.
HTTP_BODY_MAX = 1 << 20
METRICS_BODY_MAX = 64 << 20
READ_CHUNK = 64 * 1024
# Redirects the probes follow themselves, so that credentials stay with the check's own origin.
REDIRECT_CODES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def origin(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(scheme)


def open_following(check, url, data=None, headers=None, method="GET"):
    """open_url, following up to MAX_REDIRECTS redirects as urllib does, except that the Authorization, Cookie and
    Proxy-Authorization headers (a prometheus token, an http check's header) go only to the origin of the check's
    URL: urllib sent them to any host a redirect named, and in clear text after a redirect from https to http."""
    headers, home, hops = dict(headers or {}), origin(url), 0
    while True:
        sent = headers if origin(url) == home else dict(
            (k, v) for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS)
        try:
            return open_url(url, data=data, headers=sent, method=method, timeout=check.get("timeout", 10),
                            validate_certs=bool(check.get("validate_certs", True)), follow_redirects="none")
        except urllib.error.HTTPError as err:
            location = err.headers.get("Location") if err.headers else None
            may = method in ("GET", "HEAD") or (method == "POST" and err.code in (301, 302, 303))
            if err.code not in REDIRECT_CODES or not location or not may or hops == MAX_REDIRECTS:
                raise
            hops += 1
            err.close()
            target = urljoin(url, location.strip())
            if urlsplit(target).scheme.lower() not in ("http", "https"):
                raise urllib.error.URLError("redirected to a URL that is not http:// or https:// (%s)"
                                            % (urlsplit(target).scheme or "no scheme"))
            if method == "POST":  # as urllib: the redirected request is a GET without the body
                method, data = "GET", None
                headers = dict((k, v) for k, v in headers.items() if k.lower() not in ("content-type", "content-length"))
            url = target


def read_bounded(response, limit, deadline):
    """(body, why it stopped early: None, "large" or "late"). A body trickled a byte at a time never trips the
    socket's timeout, and an endless one would fill the memory: the read stops at LIMIT bytes and at DEADLINE."""
    read = getattr(response, "read1", None) or response.read
    chunks, size = [], 0
    while True:
        if time.monotonic() > deadline:
            return b"".join(chunks), "late"
        chunk = read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks), None
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks)[:limit], "large"


def thresholds(value, warn, crit, what):
    """Higher is worse: status and message for a measured value against warn/crit ceilings."""
    if isinstance(value, float) and math.isnan(value) and (warn is not None or crit is not None):
        # Every comparison with NaN is false: without this, a value nobody could measure is within any ceiling.
        return FAILED, "%s is NaN, not a number warn/crit can judge" % what
    if crit is not None and value > crit:
        return FAILED, "%s %s > crit %s" % (what, value, crit)
    if warn is not None and value > warn:
        return DEGRADED, "%s %s > warn %s" % (what, value, warn)
    limits = ", ".join("%s %s" % (k, v) for k, v in (("warn", warn), ("crit", crit)) if v is not None)
    return OK, "%s %s%s" % (what, value, " (<= %s)" % limits if limits else "")


def dig(document, path):
    """Follow a dotted path (list indexes are numbers) through parsed JSON; KeyError when absent."""
    node = document
    for part in path.split("."):
        if isinstance(node, list) and part.lstrip("-").isdigit():
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(path)
    return node


# ----------------------------------------------------------------------------------------------
# Kinds: each returns (status, message, value, details)
# ----------------------------------------------------------------------------------------------
def check_systemd(module, check):
    unit = check["unit"]
    rc, out, err = module.run_command(
        ["systemctl", "show", "--property=LoadState,ActiveState,SubState", "--", unit])
    if rc != 0:
        return FAILED, "systemctl show %s failed: %s" % (unit, err.strip()), None, {}
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    details = {"load_state": props.get("LoadState"), "active_state": props.get("ActiveState"),
               "sub_state": props.get("SubState")}
    state = "%s (%s)" % (details["active_state"], details["sub_state"])
    if details["load_state"] == "not-found":
        return FAILED, "unit %s is not installed" % unit, state, details
    if details["active_state"] == "active":
        return OK, "%s is %s" % (unit, state), state, details
    return FAILED, "%s is %s" % (unit, state), state, details


def http_once(check):
    method = check.get("method", "GET").upper()
    headers = dict(check.get("headers") or {})
    body = check.get("body")
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    data = body.encode() if isinstance(body, str) else body
    started = time.monotonic()
    timeout = check.get("timeout", 10)
    try:
        response = open_following(check, check["url"], data=data, headers=headers, method=method)
        with response:
            code = response.status
            raw, cut = read_bounded(response, HTTP_BODY_MAX, started + timeout)
    except urllib.error.HTTPError as err:  # 4xx/5xx still carry a status and a body
        code = err.code
        raw, cut = read_bounded(err, HTTP_BODY_MAX, started + timeout)
    except (urllib.error.URLError, OSError, UrlConnectionError, SSLValidationError) as err:
        reason = getattr(err, "reason", err)
        latency = round((time.monotonic() - started) * 1000)
        return FAILED, "%s %s: no answer (%s)" % (method, check["url"], reason), None, {"latency_ms": latency}
    latency = round((time.monotonic() - started) * 1000)
    text = raw.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's limit: judged as text
        document = None
    shown = text if document is None else document
    if len(json.dumps(shown)) > BODY_MAX_CHARS:
        shown = text[:BODY_MAX_CHARS] + "..."
    details = {"url": mask(check["url"], check), "status_code": code, "latency_ms": latency, "body": shown}

    expected = check.get("status", 200)
    expected = expected if isinstance(expected, list) else [expected]
    if code not in expected:
        return FAILED, "%s %s answered %s, expected %s" % (
            method, check["url"], code, " or ".join(map(str, expected))), latency, details
    if cut == "late":
        return FAILED, "%s %s answered %s but its body did not end within the timeout (%g s)" % (
            method, check["url"], code, timeout), latency, details
    if cut == "large" and check.get("json"):
        return FAILED, "%s %s answered %s but its body is larger than %d bytes, more than a json check reads" % (
            method, check["url"], code, HTTP_BODY_MAX), latency, details
    mismatches, degraded = [], []
    for path, want in (check.get("json") or {}).items():
        try:
            got = dig(document, path)
        except (KeyError, IndexError, TypeError):
            mismatches.append("%s is missing (expected %r)" % (path, want))
            continue
        if got == APP_DEGRADED:
            degraded.append("%s is %r, expected %r" % (path, got, want))
        elif got != want:
            mismatches.append("%s is %r, expected %r" % (path, got, want))
    if mismatches:
        return FAILED, "%s %s answered %s but %s" % (method, check["url"], code, "; ".join(mismatches + degraded)), latency, details
    if degraded:
        # The app says it serves with reduced function: degraded, which health_fail_on and the deploy gate judge.
        return DEGRADED, "%s %s answered %s but %s (the app reports itself degraded)" % (
            method, check["url"], code, "; ".join(degraded)), latency, details
    if check.get("max_ms") is not None and latency > check["max_ms"]:
        return DEGRADED, "%s %s answered %s in %d ms > max %s ms" % (
            method, check["url"], code, latency, check["max_ms"]), latency, details
    return OK, "%s %s answered %s in %d ms" % (method, check["url"], code, latency), latency, details


def http_deadline_s(check):
    """How long the retries of one http check may take: retries x delay (what the gate waits for a service that
    refuses at once) plus one timeout. Without it, a service that accepts and never answers (socket activation in
    front of a process that cannot start) costs a whole timeout per attempt: 21 attempts x 10 s, per check."""
    return int(check.get("retries", 0)) * float(check.get("delay", 2)) + float(check.get("timeout", 10))


def check_http(module, check):
    attempts = int(check.get("retries", 0)) + 1
    delay = float(check.get("delay", 2))
    budget = http_deadline_s(check)
    deadline = time.monotonic() + budget
    for attempt in range(1, attempts + 1):
        status, message, value, details = http_once(check)
        details["attempts"] = attempt
        out_of_time = attempt < attempts and time.monotonic() + delay >= deadline
        if status == OK or attempt == attempts or out_of_time:
            if out_of_time:
                message += " (attempt %d of %d; no time for another within %g s, the retries' deadline: retries " \
                           "x delay + timeout)" % (attempt, attempts, budget)
            elif attempt > 1:
                message += " (attempt %d of %d)" % (attempt, attempts)
            return status, message, value, details
        time.sleep(delay)


def sql_scalar(module, check, query):
    """Run a query and return the first column of the first row, as text or a Python value."""
    host, port = check.get("host", "localhost"), int(check.get("port", 5432))
    # Whole seconds for libpq, never 0 (int(0.5) was 0: connect_timeout and statement_timeout 0 wait for ever).
    timeout_s = float(check.get("timeout", 10))
    timeout = max(1, math.ceil(timeout_s))
    statement_ms = max(1, int(timeout_s * 1000))
    try:
        import psycopg2  # pylint: disable=import-outside-toplevel
    except ImportError:
        psycopg2 = None
    if psycopg2 is not None:
        conn = psycopg2.connect(host=host, port=port, dbname=check["db"], user=check["user"],
                                password=check.get("password") or None, connect_timeout=timeout,
                                options="-c statement_timeout=%d" % statement_ms)
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                row = cur.fetchone() if cur.description else None
        finally:
            conn.close()
        return None if row is None else row[0]
    psql = shutil.which("psql")
    if psql is None:
        raise RuntimeError("neither python3-psycopg2 nor psql is installed on %s; "
                           "run the check with delegate_to a host that has them" % socket.gethostname())
    env = {"PGCONNECT_TIMEOUT": str(timeout), "PGOPTIONS": "-c statement_timeout=%d" % statement_ms}
    if check.get("password"):
        env["PGPASSWORD"] = str(check["password"])
    rc, out, err = module.run_command(
        [psql, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(host), "-p", str(port),
         "-U", str(check["user"]), "-d", str(check["db"]), "-c", query],
        environ_update=env)
    if rc != 0:
        raise RuntimeError(err.strip() or "psql exited with %d" % rc)
    lines = out.splitlines()
    return lines[0].split("|", 1)[0] if lines else None


def pg_target(check):
    return "%s@%s:%s/%s" % (check["user"], check.get("host", "localhost"), check.get("port", 5432), check["db"])


def check_postgres(module, check):
    query = check.get("query", "SELECT 1")
    try:
        value = sql_scalar(module, check, query)
    except Exception as err:  # pylint: disable=broad-except
        # any error means "does not answer"
        return FAILED, "PostgreSQL %s does not answer %r: %s" % (pg_target(check), query, mask(err, check)), None, {}
    value = value if value is None or isinstance(value, (int, float, str, bool)) else str(value)
    return OK, "PostgreSQL %s answers %r with %s" % (pg_target(check), query, value), value, {}


def check_sql_count(module, check):
    raw = None
    try:
        raw = sql_scalar(module, check, check["query"])
        # psycopg2 gives numeric as Decimal: int() would cut 3.7 to 3 (within warn 3), where psql's '3.7' fails.
        if isinstance(raw, bool) or (isinstance(raw, (float, decimal.Decimal)) and raw != int(raw)):
            raise ValueError(raw)
        value = int(raw)
    except (TypeError, ValueError, OverflowError):
        return FAILED, "query %r on %s returned %r, not an integer" % (check["query"], pg_target(check), raw), None, {}
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "PostgreSQL %s does not answer %r: %s" % (pg_target(check), check["query"], mask(err, check)), None, {}
    status, message = thresholds(value, check.get("warn"), check.get("crit"), check["name"])
    return status, message, value, {}


def redis_call(check, *commands):
    """Send commands with the collection's RESP client (AUTH and SELECT first when configured); the replies."""
    params = dict(host=check.get("host", "localhost"), port=int(check.get("port", 6379)), db=int(check.get("db", 0)),
                  username=str(check.get("username") or ""), password=str(check.get("password") or ""), tls=False,
                  ca_cert="", validate_certs=True, timeout=float(check.get("timeout", 5)))
    client = redis_client.RespClient(params)
    try:
        return [client.command(*command) for command in commands]
    finally:
        client.close()


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def pairs(flat):
    """A RESP2 flat [key, value, ...] reply as a dict with text keys."""
    return dict((text(flat[i]), flat[i + 1]) for i in range(0, len(flat) - 1, 2))


def redis_target(check):
    return "%s:%s" % (check.get("host", "localhost"), check.get("port", 6379))


def check_redis(module, check):
    try:
        (reply,) = redis_call(check, ["PING"])
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "Redis %s does not answer PING: %s" % (redis_target(check), mask(err, check)), None, {}
    reply = text(reply)
    if reply != "PONG":
        return FAILED, "Redis %s answered PING with %r" % (redis_target(check), reply), reply, {}
    return OK, "Redis %s answers PONG" % redis_target(check), reply, {}


def check_redis_stream(module, check):
    try:
        (length,) = redis_call(check, ["XLEN", check["key"]])
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "Redis %s cannot read %s: %s" % (redis_target(check), check["key"], mask(err, check)), None, {}
    status, message = thresholds(length, check.get("warn"), check.get("crit"), "%s length" % check["key"])
    return status, message, length, {}


def check_disk(module, check):
    try:
        st = os.statvfs(check["path"])
    except OSError as err:
        return FAILED, "cannot stat %s: %s" % (check["path"], err.strerror), None, {}
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize  # what non-root users can still write, as df shows
    free_mb = round(free / 1048576)
    free_percent = round(100.0 * free / (used + free), 1) if used + free else 0.0
    details = {"free_mb": free_mb, "free_percent": free_percent}
    for unit, value in (("percent", free_percent), ("mb", free_mb)):
        crit, warn = check.get("min_free_%s_crit" % unit), check.get("min_free_%s_warn" % unit)
        label = "%s free %s%s" % (check["path"], value, "%" if unit == "percent" else " MB")
        if crit is not None and value < crit:
            return FAILED, "%s < crit %s" % (label, crit), free_percent, details
        if warn is not None and value < warn:
            return DEGRADED, "%s < warn %s" % (label, warn), free_percent, details
    return OK, "%s free %s%% (%s MB)" % (check["path"], free_percent, free_mb), free_percent, details


def check_redis_stream_group(module, check):
    """A consumer group: its pending entries (warn/crit), its lag (lag_warn/lag_crit) and whether anyone consumes."""
    key, group = str(check["key"]), str(check["group"])
    try:
        (groups,) = redis_call(check, ["XINFO", "GROUPS", key])
        found = [pairs(g) for g in groups or [] if text(pairs(g).get("name")) == group]
        consumers = [pairs(c) for c in redis_call(check, ["XINFO", "CONSUMERS", key, group])[0]] if found else []
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "Redis %s cannot read the groups of %s: %s" % (redis_target(check), key, mask(err, check)), None, {}
    if not found:
        return FAILED, "stream %s has no consumer group %s" % (key, group), None, {}
    info = found[0]
    pending, lag = int(info.get("pending") or 0), info.get("lag")
    details = {"pending": pending, "lag": lag, "consumers": len(consumers),
               "idle_ms": min([int(c.get("idle") or 0) for c in consumers]) if consumers else None}
    worst = [thresholds(pending, check.get("warn"), check.get("crit"), "%s/%s pending" % (key, group))]
    if lag is not None:
        worst.append(thresholds(int(lag), check.get("lag_warn"), check.get("lag_crit"), "%s/%s lag" % (key, group)))
    if check.get("max_idle_ms") is not None:
        if not consumers:
            worst.append((FAILED, "%s/%s has no consumers" % (key, group)))
        elif details["idle_ms"] > check["max_idle_ms"]:
            worst.append((DEGRADED, "%s/%s: every consumer idle for more than %s ms (least idle %s ms)"
                          % (key, group, check["max_idle_ms"], details["idle_ms"])))
    status = FAILED if any(w[0] == FAILED for w in worst) else DEGRADED if any(w[0] == DEGRADED for w in worst) else OK
    message = "; ".join(w[1] for w in worst if w[0] == status) if status != OK else \
        "%s/%s pending %s, lag %s, %d consumers" % (key, group, pending, lag, len(consumers))
    return status, message, pending, details


# One sample line of the Prometheus text format: name{labels} value [timestamp].
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(body, metric, labels):
    """The sum of the samples of metric whose labels include the wanted ones; None when there is none."""
    total, seen = 0.0, False
    for line in body.splitlines():
        match = SAMPLE.match(line.strip())
        if not match or match.group(1) != metric:
            continue
        have = dict((k, v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
                    for k, v in LABEL.findall(match.group(2) or ""))
        if all(have.get(k) == str(v) for k, v in labels.items()):
            total += float(match.group(3))
            seen = True
    return total if seen else None


def scrape(check):
    headers = dict(check.get("headers") or {})
    if check.get("token"):
        headers["Authorization"] = "Bearer %s" % check["token"]
    started, timeout = time.monotonic(), check.get("timeout", 10)
    with open_following(check, check["url"], headers=headers) as response:
        raw, cut = read_bounded(response, METRICS_BODY_MAX, started + timeout)
    if cut == "late":
        raise RuntimeError("the page did not end within the timeout (%g s)" % timeout)
    if cut == "large":
        raise RuntimeError("the page is larger than %d bytes" % METRICS_BODY_MAX)
    return raw.decode("utf-8", "replace")


def increase(first, second):
    """A counter's increase between two scrapes; one that went down was reset (the process restarted): all new."""
    return second - first if second >= first else second


def check_prometheus(module, check):
    """A metric's value (summed over the matching series), or its increase over `window` seconds, against warn/crit;
    with stat=mean, a histogram's or summary's mean (_sum / _count), overall or over the window."""
    labels = dict(check.get("labels") or {})
    mean = check.get("stat") == "mean"
    names = [check["metric"] + "_sum", check["metric"] + "_count"] if mean else [check["metric"]]
    label_text = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    series = "%s{%s}" % (check["metric"], label_text)

    def read():
        body = scrape(check)
        return [parse_metrics(body, name, labels) for name in names]

    try:
        first = read()
        if None in first:
            return FAILED, "%s has no sample of %s{%s}" % (check["url"], names[first.index(None)], label_text), None, {}
        details = {"series": series}
        if check.get("window"):
            time.sleep(check["window"])
            second = read()
            if None in second:
                return (FAILED, "%s has no sample of %s{%s} any more" % (check["url"], names[second.index(None)], label_text),
                        None, details)
            deltas = [increase(a, b) for a, b in zip(first, second)]
            details.update(window_s=check["window"])
        else:
            second, deltas = first, first
    except urllib.error.HTTPError as err:
        return FAILED, "cannot read %s: HTTP %s %s" % (check["url"], err.code, mask(err.reason, check)), None, {}
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "cannot read %s: %s" % (check["url"], mask(getattr(err, "reason", err), check)), None, {}
    over = " over %ss" % check["window"] if check.get("window") else ""
    if mean:
        total, count = deltas
        details.update(sum=second[0], count=second[1], observations=count)
        if count <= 0:
            return OK, "%s: no observations%s" % (series, over), None, details
        value = round(total / count, 6)
        details.update(mean=value)
        what = "%s mean%s" % (series, over)
    else:
        value = deltas[0]
        details.update(value=second[0])
        if check.get("window"):
            details.update(increase=value)
        what = "%s increase%s" % (series, over) if check.get("window") else series
    status, message = thresholds(value, check.get("warn"), check.get("crit"), what)
    return status, message, value, details


def check_compose_service(module, check):
    """A compose service: ok when its containers run (and are healthy where they have a healthcheck)."""
    argv = ["docker", "compose", "--project-directory", check["project_dir"]]
    if check.get("project"):
        argv += ["--project-name", str(check["project"])]
    rc, out, err = module.run_command(argv + ["ps", "--all", "--format", "json", "--", str(check["service"])])
    if rc != 0:
        return FAILED, "docker compose ps %s failed: %s" % (check["service"], " ".join(err.split())[:ERROR_MAX_CHARS]), None, {}
    out = out.strip()
    try:  # compose 2.21+ prints one JSON object per line; older versions one JSON array
        rows = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line.strip()]
    except ValueError:
        return FAILED, "docker compose ps printed no JSON: %r" % out[:ERROR_MAX_CHARS], None, {}
    states = ["%s %s%s" % (r.get("Name"), r.get("State"), (" (%s)" % r["Health"]) if r.get("Health") else "") for r in rows]
    details = {"containers": states}
    if not rows:
        return FAILED, "compose service %s has no container" % check["service"], None, details
    value = ", ".join(states)
    if any(r.get("State") != "running" or r.get("Health") == "unhealthy" for r in rows):
        return FAILED, "compose service %s: %s" % (check["service"], value), value, details
    if any(r.get("Health") == "starting" for r in rows):
        return DEGRADED, "compose service %s: %s" % (check["service"], value), value, details
    return OK, "compose service %s: %s" % (check["service"], value), value, details


def check_release(module, check):
    """ok when the service runs the release `current` names; degraded when a switch did not finish."""
    links = {}
    for name in ("current", release_files.RUNNING_MARKER):
        try:
            links[name] = os.path.basename(os.readlink(os.path.join(check["root"], name)).rstrip("/"))
        except FileNotFoundError:
            links[name] = None
        except OSError as err:
            return FAILED, "%s/%s is not a release link: %s" % (check["root"], name, err.strerror), None, {}
    current, running = links["current"], links[release_files.RUNNING_MARKER]
    details = {"current": current, "running": running}
    if current is None:
        return FAILED, "%s has no current release" % check["root"], None, details
    if running is None:
        return OK, "current is %s (the service has not started since it was deployed)" % current, current, details
    if running != current:
        return (DEGRADED, "current is %s but the service runs %s: a switch did not finish (the next deploy of %s "
                "restarts and gates it)" % (current, running, current), running, details)
    return OK, "the service runs %s, the current release" % current, current, details


RUNNERS = {
    "systemd": check_systemd, "http": check_http, "postgres": check_postgres, "redis": check_redis,
    "redis_stream": check_redis_stream, "sql_count": check_sql_count, "disk": check_disk, "release": check_release,
    "prometheus": check_prometheus, "redis_stream_group": check_redis_stream_group, "compose_service": check_compose_service,
}


def run_one(module, check):
    """Run one (valid) check: a broken probe is a failed check, not a crash."""
    started = time.monotonic()
    try:
        status, message, value, details = RUNNERS[check["kind"]](module, check)
    except Exception as err:  # pylint: disable=broad-except
        status, message, value, details = FAILED, "probe error: %s" % mask(err, check), None, {}
    details["ran_on"] = socket.gethostname()
    return {
        "name": check["name"], "kind": check["kind"], "status": status, "message": mask(message, check),
        "value": value, "duration_ms": round((time.monotonic() - started) * 1000), "details": details,
    }


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    # Passwords and tokens are no_log in the argument spec; credential headers are values of a dict, so their
    # values are added here, before anything is returned (the invocation included).
    module.no_log_values.update(secrets(params["checks"]))
    if params["action"] not in ("run", "check"):
        failed, result = controller_action(params)
        if failed:
            module.fail_json(**result)
        module.exit_json(**result)

    checks = params["checks"]
    problems = validate(checks)
    if params["action"] == "check":
        # One run does it all only where it can run every check: a delegated one runs on its own host.
        problems.extend("check %r: field 'delegate_to' is '%s'; action=check runs only the checks of this host "
                        "(delegated checks take action=validate, run and summarize)" % (c.get("name"), c["delegate_to"])
                        for c in checks if isinstance(c, dict) and c.get("delegate_to") is not None)
    if problems:
        module.fail_json(msg="%s are invalid: %s" % (params["label"], "; ".join(problems)), problems=problems)
    started_at = utc_now()
    delegate = None if params["action"] == "check" else params["delegate"]
    mine = [given(c) for c in checks if c.get("delegate_to") == delegate]
    results = [run_one(module, check) for check in mine]
    if params["action"] == "check":
        run = dict(checks=results, delegate=None, started_at=started_at)
        module.exit_json(**summarize(checks, [run], params["host"], params["fail_on"]))
    module.exit_json(changed=False, checks=results, delegate=delegate, started_at=started_at)


if __name__ == "__main__":
    main()
