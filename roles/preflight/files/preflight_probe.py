#!/usr/bin/env python3
"""shipshape.ops.preflight probe: validate health checks, or run one and print its result as JSON.

Usage (the role runs it with `python3 -c <this file>` and the data on stdin, so secrets never show
up in a process list):

    python3 preflight_probe.py validate   < [check, ...]   -> {"problems": ["...", ...]}
    python3 preflight_probe.py run        < check          -> {"name", "kind", "status", "message",
                                                               "value", "duration_ms", "details"}

Python 3 standard library only. PostgreSQL checks use psycopg2 when the host has it, else psql.
Redis checks speak RESP over a socket, so they need neither redis-cli nor python3-redis.
A result never contains a password; messages have secrets masked.
"""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

OK, DEGRADED, FAILED = "ok", "degraded", "failed"

# Per kind: fields that must be present, and fields that may be. Defaults are applied in run().
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
}
NUMBER_FIELDS = {"port", "timeout", "retries", "delay", "max_ms", "warn", "crit",
                 "min_free_percent_warn", "min_free_percent_crit", "min_free_mb_warn", "min_free_mb_crit"}
BODY_MAX_CHARS = 1024


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
def validate(checks):
    """Return a list of human messages, one per problem, each naming the check and the field."""
    if not isinstance(checks, list):
        return ["preflight_checks must be a list of checks, got %s" % type(checks).__name__]
    problems, seen = [], set()
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
        seen.add(name)
        kind = check.get("kind")
        if kind not in KINDS:
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
        problems.extend("%s (%s): %s" % (label, kind, p) for p in validate_fields(check))
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
    if check.get("kind", "").startswith("redis") and not isinstance(check.get("db", 0), int):
        problems.append("field 'db' must be a Redis database number, got %r" % check["db"])
    status = check.get("status")
    if status is not None:
        codes = status if isinstance(status, list) else [status]
        if not codes or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            problems.append("field 'status' must be an HTTP status code or a list of them, got %r" % status)
    for field in ("json", "headers"):
        if field in check and not isinstance(check[field], dict):
            problems.append("field '%s' must be a dict, got %r" % (field, check[field]))
    if check.get("kind") == "http" and not str(check.get("url", "")).startswith(("http://", "https://")):
        problems.append("field 'url' must start with http:// or https://, got %r" % check.get("url"))
    return problems


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def thresholds(value, warn, crit, what):
    """Higher is worse: status and message for a measured value against warn/crit ceilings."""
    if crit is not None and value > crit:
        return FAILED, "%s %s > crit %s" % (what, value, crit)
    if warn is not None and value > warn:
        return DEGRADED, "%s %s > warn %s" % (what, value, warn)
    limits = ", ".join("%s %s" % (k, v) for k, v in (("warn", warn), ("crit", crit)) if v is not None)
    return OK, "%s %s%s" % (what, value, " (<= %s)" % limits if limits else "")


def mask(text, check):
    """One line, with the check's password hidden (client libraries may echo connection strings)."""
    secret = check.get("password")
    text = " ".join(str(text).split())
    if secret:
        text = text.replace(str(secret), "********")
    return text


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
def check_systemd(check):
    unit = check["unit"]
    out = subprocess.run(
        ["systemctl", "show", "--property=LoadState,ActiveState,SubState", "--", unit],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        return FAILED, "systemctl show %s failed: %s" % (unit, out.stderr.strip()), None, {}
    props = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
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
    request = urllib.request.Request(check["url"], data=data, method=method, headers=headers)
    context = None
    if check["url"].startswith("https://") and not check.get("validate_certs", True):
        context = ssl._create_unverified_context()  # noqa: S323 - the check asked for it
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=check.get("timeout", 10), context=context) as response:
            code, raw = response.status, response.read()
    except urllib.error.HTTPError as err:  # 4xx/5xx still carry a status and a body
        code, raw = err.code, err.read()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        latency = round((time.monotonic() - started) * 1000)
        return FAILED, "%s %s: no answer (%s)" % (method, check["url"], reason), None, {"latency_ms": latency}
    latency = round((time.monotonic() - started) * 1000)
    text = raw.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    shown = text if document is None else document
    if len(json.dumps(shown)) > BODY_MAX_CHARS:
        shown = text[:BODY_MAX_CHARS] + "..."
    details = {"url": check["url"], "status_code": code, "latency_ms": latency, "body": shown}

    expected = check.get("status", 200)
    expected = expected if isinstance(expected, list) else [expected]
    if code not in expected:
        return FAILED, "%s %s answered %s, expected %s" % (
            method, check["url"], code, " or ".join(map(str, expected))), latency, details
    mismatches = []
    for path, want in (check.get("json") or {}).items():
        try:
            got = dig(document, path)
        except (KeyError, IndexError, TypeError):
            mismatches.append("%s is missing (expected %r)" % (path, want))
            continue
        if got != want:
            mismatches.append("%s is %r, expected %r" % (path, got, want))
    if mismatches:
        return FAILED, "%s %s answered %s but %s" % (method, check["url"], code, "; ".join(mismatches)), latency, details
    if check.get("max_ms") is not None and latency > check["max_ms"]:
        return DEGRADED, "%s %s answered %s in %d ms > max %s ms" % (
            method, check["url"], code, latency, check["max_ms"]), latency, details
    return OK, "%s %s answered %s in %d ms" % (method, check["url"], code, latency), latency, details


def check_http(check):
    attempts = int(check.get("retries", 0)) + 1
    for attempt in range(1, attempts + 1):
        status, message, value, details = http_once(check)
        details["attempts"] = attempt
        if status == OK or attempt == attempts:
            if attempt > 1:
                message += " (attempt %d of %d)" % (attempt, attempts)
            return status, message, value, details
        time.sleep(check.get("delay", 2))


def sql_scalar(check, query):
    """Run a query and return the first column of the first row, as text or a Python value."""
    params = {"host": check.get("host", "localhost"), "port": int(check.get("port", 5432)),
              "dbname": check["db"], "user": check["user"], "timeout": int(check.get("timeout", 10))}
    try:
        import psycopg2  # pylint: disable=import-outside-toplevel
    except ImportError:
        psycopg2 = None
    if psycopg2 is not None:
        conn = psycopg2.connect(host=params["host"], port=params["port"], dbname=params["dbname"],
                                user=params["user"], password=check.get("password") or None,
                                connect_timeout=params["timeout"])
        try:
            with conn.cursor() as cur:
                cur.execute(query)
                row = cur.fetchone() if cur.description else None
        finally:
            conn.close()
        return None if row is None else row[0]
    if shutil.which("psql") is None:
        raise RuntimeError("neither python3-psycopg2 nor psql is installed on %s; "
                           "run the check with delegate_to a host that has them" % socket.gethostname())
    env = dict(os.environ, PGCONNECT_TIMEOUT=str(params["timeout"]))
    if check.get("password"):
        env["PGPASSWORD"] = str(check["password"])
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", params["host"], "-p", str(params["port"]),
         "-U", params["user"], "-d", params["dbname"], "-c", query],
        capture_output=True, text=True, env=env, check=False, timeout=params["timeout"] + 5,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or "psql exited with %d" % out.returncode)
    lines = out.stdout.splitlines()
    return lines[0].split("|", 1)[0] if lines else None


def pg_target(check):
    return "%s@%s:%s/%s" % (check["user"], check.get("host", "localhost"), check.get("port", 5432), check["db"])


def check_postgres(check):
    query = check.get("query", "SELECT 1")
    try:
        value = sql_scalar(check, query)
    except Exception as err:  # pylint: disable=broad-except - any error means "does not answer"
        return FAILED, "PostgreSQL %s does not answer %r: %s" % (pg_target(check), query, mask(err, check)), None, {}
    value = value if value is None or isinstance(value, (int, float, str, bool)) else str(value)
    return OK, "PostgreSQL %s answers %r with %s" % (pg_target(check), query, value), value, {}


def check_sql_count(check):
    try:
        raw = sql_scalar(check, check["query"])
        value = int(raw)
    except (TypeError, ValueError):
        return FAILED, "query %r on %s returned %r, not an integer" % (check["query"], pg_target(check), raw), None, {}
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "PostgreSQL %s does not answer %r: %s" % (pg_target(check), check["query"], mask(err, check)), None, {}
    status, message = thresholds(value, check.get("warn"), check.get("crit"), check["name"])
    return status, message, value, {}


class RedisError(Exception):
    """An error reply from the server."""


def redis_call(check, *commands):
    """Send commands over RESP and return the replies (AUTH and SELECT first when configured)."""
    host, port = check.get("host", "localhost"), int(check.get("port", 6379))
    prelude = []
    if check.get("password"):
        prelude.append(["AUTH"] + ([check["username"]] if check.get("username") else []) + [str(check["password"])])
    if check.get("db"):
        prelude.append(["SELECT", str(check["db"])])
    payload = b""
    for command in prelude + list(commands):
        parts = [str(p).encode() for p in command]
        payload += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=check.get("timeout", 5)) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        replies = [read_reply(reader) for _ in prelude + list(commands)]
    for reply in replies:
        if isinstance(reply, RedisError):
            raise reply
    return replies[len(prelude):]


def read_reply(reader):
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed by the server")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n").decode("utf-8", "replace")
    if kind == b"+":
        return rest
    if kind == b"-":
        return RedisError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        return None if rest == "-1" else reader.read(int(rest) + 2)[:-2].decode("utf-8", "replace")
    raise ConnectionError("unexpected reply %r" % line[:40])


def redis_target(check):
    return "%s:%s" % (check.get("host", "localhost"), check.get("port", 6379))


def check_redis(check):
    try:
        (reply,) = redis_call(check, ["PING"])
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "Redis %s does not answer PING: %s" % (redis_target(check), mask(err, check)), None, {}
    if reply != "PONG":
        return FAILED, "Redis %s answered PING with %r" % (redis_target(check), reply), reply, {}
    return OK, "Redis %s answers PONG" % redis_target(check), reply, {}


def check_redis_stream(check):
    try:
        (length,) = redis_call(check, ["XLEN", check["key"]])
    except Exception as err:  # pylint: disable=broad-except
        return FAILED, "Redis %s cannot read %s: %s" % (redis_target(check), check["key"], mask(err, check)), None, {}
    status, message = thresholds(length, check.get("warn"), check.get("crit"), "%s length" % check["key"])
    return status, message, length, {}


def check_disk(check):
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


RUNNERS = {
    "systemd": check_systemd, "http": check_http, "postgres": check_postgres, "redis": check_redis,
    "redis_stream": check_redis_stream, "sql_count": check_sql_count, "disk": check_disk,
}


def run(check):
    started = time.monotonic()
    try:
        status, message, value, details = RUNNERS[check["kind"]](check)
    except Exception as err:  # pylint: disable=broad-except - a broken probe is a failed check, not a crash
        status, message, value, details = FAILED, "probe error: %s" % mask(err, check), None, {}
    details["ran_on"] = socket.gethostname()
    return {
        "name": check["name"], "kind": check["kind"], "status": status, "message": mask(message, check),
        "value": value, "duration_ms": round((time.monotonic() - started) * 1000), "details": details,
    }


def main(argv):
    mode = argv[1] if len(argv) > 1 else "run"
    data = json.load(sys.stdin)
    if mode == "validate":
        result = {"problems": validate(data)}
    elif mode == "run":
        result = run(data)
    else:
        result = {"problems": ["unknown mode %r" % mode]}
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
