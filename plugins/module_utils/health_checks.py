# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of shipshape.ops.health_check that need no host: the kinds and their fields, validation, masking,
the summary of a host's runs and the report over hosts. The module runs the probes on the host; its action plugin
validates and summarises on the controller with these same functions (no module run for pure computation)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ansible_collections.shipshape.ops.plugins.module_utils.names import is_unit_name
from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import mask_passwords

OK = "ok"
DEGRADED = "degraded"
FAILED = "failed"
# The value an app's own health document gives for "serving, with reduced function".
APP_DEGRADED = "degraded"

# Per kind: fields that must be present, and fields that may be.
COMMON = {"name", "kind", "delegate_to"}
CONNECTION_PG = {"host", "port", "password", "timeout"}
CONNECTION_REDIS = {"host", "port", "password", "username", "db", "timeout"}
KINDS = {
    "systemd": ({"unit"}, set()),
    "http": ({"url"}, {"method", "status", "json", "max_ms", "timeout", "retries", "delay",
                       "headers", "body", "validate_certs"}),
    "postgres": ({"db", "user"}, CONNECTION_PG | {"query"}),
    "redis": (set(), CONNECTION_REDIS),
    "redis_stream": ({"key"}, CONNECTION_REDIS | {"warn", "crit"}),
    "sql_count": ({"db", "user", "query"}, CONNECTION_PG | {"warn", "crit"}),
    "disk": ({"path"}, {"min_free_percent_warn", "min_free_percent_crit",
                        "min_free_mb_warn", "min_free_mb_crit"}),
    "release": ({"root"}, set()),
    "prometheus": ({"url", "metric"}, {"labels", "token", "headers", "warn", "crit", "window", "timeout",
                                       "validate_certs", "stat"}),
    "redis_stream_group": ({"key", "group"}, CONNECTION_REDIS | {"warn", "crit", "lag_warn", "lag_crit", "max_idle_ms"}),
    "compose_service": ({"project_dir", "service"}, {"project"}),
}
FIELDS = sorted(COMMON.union(*[req | opt for req, opt in KINDS.values()]))
NUMBER_FIELDS = {"port", "timeout", "retries", "delay", "max_ms", "warn", "crit", "window", "lag_warn", "lag_crit",
                 "max_idle_ms",
                 "min_free_percent_warn", "min_free_percent_crit", "min_free_mb_warn", "min_free_mb_crit"}
BODY_MAX_CHARS = 1024
ERROR_MAX_CHARS = 300


# A Prometheus metric name; a prometheus check reads at most this window.
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
MAX_WINDOW_S = 600
# value: the metric's samples summed; mean: <metric>_sum / <metric>_count of a histogram or summary (a latency).
PROMETHEUS_STATS = ("value", "mean")
ACTIONS = ["validate", "run", "summarize", "report", "check"]
# The actions that read nothing on a host: the action plugin does them on the controller.
CONTROLLER_ACTIONS = ("validate", "summarize", "report")
# The fields of a check that hold a secret: no_log in the argument spec, masked in messages, removed from results.
SECRET_FIELDS = ("password", "token")
# Secrets a URL carries in its query, such as ?token=, ?access_token=, ?api_key=, ?password=, ?signature= (masked in
# every message, as the fields are, and as the password of scheme://user:password@host is: url_credentials).
URL_SECRET_PARAM = re.compile(r"([?&][^=&#\s]*(?:token|key|secret|passw|pwd|auth|sig|credential)[^=&#\s]*=)[^&#\s]+",
                              re.IGNORECASE)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Request headers that carry a credential (Authorization, Cookie, X-Api-Key, X-Auth-Token...): their values are
# secrets as the password and token fields are, masked in every result, message and the module's invocation.
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|auth|session|signature|credential",
                           re.IGNORECASE)
HTTP_METHOD = re.compile(r"^[A-Za-z]{1,20}$")


def argument_spec():
    """The module's arguments (the action plugin validates the controller-side actions against the same)."""
    check_spec = dict((field, dict(type="raw")) for field in FIELDS)
    check_spec.update((field, dict(type="str", no_log=True)) for field in SECRET_FIELDS)
    check_spec["key"] = dict(type="raw", no_log=False)
    return dict(
        action=dict(type="str", choices=ACTIONS, default="run"),
        checks=dict(type="list", elements="dict", default=[], options=check_spec),
        label=dict(type="str", default="checks"),
        hosts=dict(type="list", elements="str", default=[]),
        delegate=dict(type="str"),
        runs=dict(type="list", elements="dict", default=[]),
        host=dict(type="str", default=""),
        results=dict(type="dict", default={}),
        fail_on=dict(type="str", choices=["failed", "degraded", "never"], default="failed"),
    )


def secrets(checks):
    """The checks' passwords, tokens and credential headers' values, to be masked wherever a result could show
    them."""
    found = set()
    for check in checks if isinstance(checks, list) else []:
        if isinstance(check, dict):
            found.update(str(check[f]) for f in SECRET_FIELDS if check.get(f))
            headers = check.get("headers")
            if isinstance(headers, dict):
                found.update(str(value) for name, value in headers.items()
                             if value not in (None, "") and SECRET_HEADER.search(str(name)))
    return found


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def given(check):
    """The fields a check sets: the argument spec fills every absent suboption with None."""
    if not isinstance(check, dict):
        return check
    return dict((k, v) for k, v in check.items() if v is not None)


def utc_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
def validate(checks, hosts=None):
    """Return a list of human messages, one per problem, each naming the check and the field."""
    if not isinstance(checks, list):
        return ["checks must be a list of checks, got %s" % type(checks).__name__]
    checks = [given(c) for c in checks]
    problems = []
    if hosts:
        for check in checks:
            if isinstance(check, dict) and "delegate_to" in check and check["delegate_to"] not in hosts:
                problems.append("check '%s': field 'delegate_to' is '%s', which is not a host of this inventory"
                                % (check.get("name", "?"), check["delegate_to"]))
    seen = set()
    for index, check in enumerate(checks):
        if not isinstance(check, dict):
            problems.append("check #%d is not a dict (got %r)" % (index + 1, check))
            continue
        name = check.get("name")
        label = "check %r" % name if name else "check #%d" % (index + 1)
        if not name or not isinstance(name, str):
            problems.append("%s: field 'name' is required (a non-empty string)" % label)
        elif name in seen:
            problems.append("%s: field 'name' is used by another check; names must be unique" % label)
        seen.add(name if isinstance(name, str) else None)
        kind = check.get("kind")
        if not isinstance(kind, str) or kind not in KINDS:
            problems.append("%s: field 'kind' is %r, expected one of %s" % (label, kind, ", ".join(KINDS)))
            continue
        required, optional = KINDS[kind]
        for field in sorted(required):
            if check.get(field) in (None, ""):
                problems.append("%s (%s): field '%s' is required" % (label, kind, field))
        for field in sorted(set(check) - required - optional - COMMON):
            problems.append("%s (%s): field '%s' is not known for this kind (known: %s)"
                            % (label, kind, field, ", ".join(sorted(required | optional))))
        for field in sorted(NUMBER_FIELDS & set(check)):
            if not is_number(check[field]):
                problems.append("%s (%s): field '%s' must be a number, got %r" % (label, kind, field, check[field]))
        if "delegate_to" in check and not isinstance(check["delegate_to"], str):
            problems.append("%s (%s): field 'delegate_to' must be a host name, got %r"
                            % (label, kind, check["delegate_to"]))
        # A refused value is shown, but never a URL's credentials or the check's password/token in it.
        problems.extend("%s (%s): %s" % (label, kind, mask(p, check)) for p in validate_fields(check))
    return problems


def validate_fields(check):
    problems = []
    warn, crit = check.get("warn"), check.get("crit")
    if is_number(warn) and is_number(crit) and warn > crit:
        problems.append("field 'warn' (%s) must not be above 'crit' (%s)" % (warn, crit))
    for unit in ("percent", "mb"):
        warn, crit = check.get("min_free_%s_warn" % unit), check.get("min_free_%s_crit" % unit)
        if is_number(warn) and is_number(crit) and warn < crit:
            problems.append("field 'min_free_%s_warn' (%s) must not be below 'min_free_%s_crit' (%s)"
                            % (unit, warn, unit, crit))
    if check["kind"].startswith("redis") and not isinstance(check.get("db", 0), int):
        problems.append("field 'db' must be a Redis database number, got %r" % check["db"])
    status = check.get("status")
    if status is not None:
        codes = status if isinstance(status, list) else [status]
        if not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            problems.append("field 'status' must be an HTTP status code or a list of them, got %r" % status)
    for field in ("json", "headers"):
        if field in check and not isinstance(check[field], dict):
            problems.append("field '%s' must be a dict, got %r" % (field, check[field]))
    if check["kind"] == "http" and not str(check.get("url", "")).startswith(("http://", "https://")):
        problems.append("field 'url' must start with http:// or https://, got %r" % check.get("url"))
    problems.extend(validate_probe_fields(check))
    if check["kind"] == "prometheus":
        if not str(check.get("url", "")).startswith(("http://", "https://")):
            problems.append("field 'url' must start with http:// or https://, got %r" % check.get("url"))
        if not METRIC_NAME.match(str(check.get("metric", ""))):
            problems.append("field 'metric' must be a Prometheus metric name, got %r" % check.get("metric"))
        if "labels" in check and not isinstance(check["labels"], dict):
            problems.append("field 'labels' must be a dict of label: value, got %r" % check["labels"])
        if check.get("stat", "value") not in PROMETHEUS_STATS:
            problems.append("field 'stat' must be one of %s, got %r" % (", ".join(PROMETHEUS_STATS), check.get("stat")))
        window = check.get("window")
        if is_number(window) and not 0 < window <= MAX_WINDOW_S:
            problems.append("field 'window' must be between 1 and %d seconds, got %r" % (MAX_WINDOW_S, window))
    lag_warn, lag_crit = check.get("lag_warn"), check.get("lag_crit")
    if is_number(lag_warn) and is_number(lag_crit) and lag_warn > lag_crit:
        problems.append("field 'lag_warn' (%s) must not be above 'lag_crit' (%s)" % (lag_warn, lag_crit))
    if check["kind"] == "compose_service" and not str(check.get("project_dir", "")).startswith("/"):
        problems.append("field 'project_dir' must be an absolute directory, got %r" % check.get("project_dir"))
    if check["kind"] == "systemd" and check.get("unit") not in (None, "") and not is_unit_name(check["unit"]):
        # systemctl show takes a glob and shows every unit it matches: the check would judge only the last one.
        problems.append("field 'unit' must be one systemd unit name (no pattern), got %r" % check["unit"])
    if check["kind"] == "disk" and "path" in check and not (isinstance(check["path"], str) and check["path"].startswith("/")):
        # statvfs of a relative path measures the module's working directory, not the disk meant.
        problems.append("field 'path' must be an absolute path on the filesystem to measure, got %r" % check["path"])
    if check["kind"] == "release" and not (isinstance(check.get("root"), str) and check["root"].startswith("/")):
        problems.append("field 'root' must be the app's absolute root directory, got %r" % check.get("root"))
    return problems


def validate_probe_fields(check):
    """Values the probes cannot use as they are: a timeout of 0 (libpq waits for ever), retries of -1 (no attempt
    at all), a header or URL that http.client refuses (its error would print the header's secret value)."""
    problems = []
    if is_number(check.get("timeout")) and check["timeout"] <= 0:
        problems.append("field 'timeout' must be more than 0 seconds, got %r" % check["timeout"])
    retries = check.get("retries")
    if is_number(retries) and (retries < 0 or retries != int(retries)):
        problems.append("field 'retries' must be a whole number from 0, got %r" % retries)
    if is_number(check.get("delay")) and check["delay"] < 0:
        problems.append("field 'delay' must be 0 or more seconds, got %r" % check["delay"])
    if "method" in check and not (isinstance(check["method"], str) and HTTP_METHOD.match(check["method"])):
        problems.append("field 'method' must be an HTTP method such as GET or HEAD, got %r" % (check["method"],))
    if "validate_certs" in check and not isinstance(check["validate_certs"], bool):
        # bool('false') is True: the text a template left would verify when the check says not to, or the reverse.
        problems.append("field 'validate_certs' must be true or false, got %r" % check["validate_certs"])
    port = check.get("port")
    if is_number(port) and (port != int(port) or not 1 <= port <= 65535):
        problems.append("field 'port' must be a port number from 1 to 65535, got %r" % port)
    for name, value in (check.get("headers") or {}).items() if isinstance(check.get("headers"), dict) else []:
        if not HEADER_NAME.match(str(name)):
            problems.append("field 'headers': %r is not an HTTP header name" % (name,))
        elif isinstance(value, (dict, list, bool)) or value is None or re.search(r"[\r\n\x00]", str(value)):
            problems.append("field 'headers': header '%s' must be one line of text (its value is not shown)" % name)
    url = check.get("url")
    if check["kind"] in ("http", "prometheus") and isinstance(url, str) and url.startswith(("http://", "https://")):
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # http://[::1
            problems.append("field 'url' is not a valid URL (%s), got %r" % (exc, mask(url, check)))
        else:
            try:
                parts.port  # pylint: disable=pointless-statement
            except ValueError:
                problems.append("field 'url' has no valid port (a number from 1 to 65535), got %r" % mask(url, check))
        if re.search(r"[\x00-\x20\x7f]", url):
            problems.append("field 'url' holds a space or a control character (percent-encode it), got %r"
                            % mask(url, check))
    return problems


def mask(text, check):
    """One line, with the check's password and token hidden (client libraries may echo connection strings), and
    the credentials a URL carries (user:password@, ?token=)."""
    hidden = secrets([check])
    text = str(text)
    for secret in hidden:
        text = text.replace(secret, "********")
    text = " ".join(text.split())
    # Made one line, a secret holding two spaces or a tab reads as its one-line form: hide that too.
    for secret in (" ".join(s.split()) for s in hidden):
        if secret:
            text = text.replace(secret, "********")
    text = mask_passwords(text, "********")
    return URL_SECRET_PARAM.sub(r"\1********", text)


# ----------------------------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------------------------
def shorten(text, limit=ERROR_MAX_CHARS):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def run_error(run):
    """Why a run produced no result for its checks."""
    if not run:
        return "it did not run"
    for field in ("module_stderr", "stderr", "msg"):
        if run.get(field):
            return shorten(run[field])
    return "no output"


def summarize(checks, runs, host, fail_on):
    checks = [given(c) for c in checks]
    by_delegate, started = {}, []
    for run in runs:
        key = run.get("item", run.get("delegate"))
        by_delegate[key] = run
        if run.get("started_at"):
            started.append(run["started_at"])
    done = []
    for check in checks:
        delegate = check.get("delegate_to")
        run = by_delegate.get(delegate)
        found = [r for r in (run or {}).get("checks") or [] if r.get("name") == check["name"]]
        if found:
            done.append(found[0])
            continue
        done.append({
            "name": check["name"], "kind": check["kind"], "status": FAILED, "value": None, "duration_ms": None,
            "message": mask("the probe did not run on %s: %s" % (delegate or host, run_error(run)), check),
            "details": {},
        })
    counts = dict((s, sum(1 for c in done if c["status"] == s)) for s in (OK, DEGRADED, FAILED))
    status = FAILED if counts[FAILED] else DEGRADED if counts[DEGRADED] else OK
    if not done:
        message = "no checks configured for %s" % host
    else:
        message = "%d check%s on %s: %d ok, %d degraded, %d failed" % (
            len(done), "" if len(done) == 1 else "s", host, counts[OK], counts[DEGRADED], counts[FAILED])
    result = {"host": host, "status": status, "message": message, "checks": done, "counts": counts,
              "checked_at": min(started) if started else utc_now()}
    report = ["%s: %s" % (status.upper(), message)]
    report.extend("%-8s %s: %s" % (c["status"], c["name"], c["message"]) for c in done)
    bad = ["%s %s (%s)" % (c["name"], c["status"], c["message"]) for c in done if c["status"] != OK]
    fail = (fail_on == FAILED and status == FAILED) or (fail_on == DEGRADED and status in (DEGRADED, FAILED))
    fail_message = "Preflight on %s is %s: %s." % (host, status, ", ".join(bad)) if bad else ""
    return dict(changed=False, result=result, report=report, fail=fail, fail_message=fail_message)


def report(results, hosts, fail_on):
    bad = {FAILED: [FAILED], DEGRADED: [FAILED, DEGRADED]}.get(fail_on, [FAILED])
    results = dict([(host, results.get(host)) for host in hosts]
                   + [(host, result) for host, result in results.items() if host not in hosts])
    lines, reasons = [], []
    for host, result in results.items():
        if not isinstance(result, dict):
            lines.append("%-8s %s" % (FAILED, "no result from %s" % host))
            reasons.append("%s has no result (unreachable, or invalid checks)" % host)
            continue
        lines.append("%-8s %s" % (result.get("status"), result.get("message")))
        for check in result.get("checks") or []:
            if check.get("status") != OK:
                lines.append("         - %s %s: %s" % (check.get("name"), check.get("status"), check.get("message")))
            if check.get("status") in bad:
                reasons.append("%s/%s %s (%s)" % (host, check.get("name"), check.get("status"), check.get("message")))
    return dict(changed=False, by_host=results, report=lines, reasons=reasons,
                fail=fail_on != "never" and bool(reasons))


def controller_action(params):
    """validate, summarize or report with the module's arguments: (failed, result)."""
    action, checks = params["action"], params["checks"]
    if action == "report":
        return False, report(params["results"], params["hosts"], params["fail_on"])
    problems = validate(checks, params["hosts"] if action == "validate" else None)
    if problems:
        return True, dict(msg="%s are invalid: %s" % (params["label"], "; ".join(problems)), problems=problems)
    if action == "validate":
        delegates = []
        for check in checks:
            if check.get("delegate_to") is not None and check["delegate_to"] not in delegates:
                delegates.append(check["delegate_to"])
        return False, dict(changed=False, problems=[], delegates=delegates)
    return False, summarize(checks, params["runs"], params["host"], params["fail_on"])
