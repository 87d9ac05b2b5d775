#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: log_search
short_description: Tail and search an app's logs (journal, log files, compose services)
description:
  - Reads the last lines of one log source and keeps those that match the filters, as an operator does with
    C(journalctl -u), C(tail | grep) or C(docker compose logs).
  - O(source=journal) runs C(journalctl --unit UNIT --output json --no-pager) with C(--lines) and C(--since);
    O(source=file) reads the tail of each of O(paths) (absolute paths of regular files) backwards in blocks, never
    the whole file; O(source=compose) runs C(docker compose --project-directory DIR logs --no-color --timestamps)
    for O(service). Every command is an argument list; nothing runs through a shell.
  - Lines are grouped into records first, a Python traceback (with the log line that announced it) being one
    record, so a search for errors or tracebacks returns them whole.
  - Filters (all must match) are O(grep), O(request_id) and O(fields); O(since) limits by time. The last O(lines)
    matching records are returned.
  - Every returned line goes through O(redact) and through a built-in redaction of credentials in URLs
    (C(scheme://user:password@host)); parsed JSON is redacted the same way, value by value, and a value is hidden
    whole when a pattern matches its key and it as the line shows them (for example C("password":\s*"[^"]*")).
  - Reads only; runs the same in check mode.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  source:
    description: Where the logs come from.
    type: str
    choices: [journal, file, compose]
    default: journal
  unit:
    description: With O(source=journal), the systemd unit (for example C(sample_app.service)).
    type: str
    default: ""
  paths:
    description: With O(source=file), the log files (absolute paths of regular files).
    type: list
    elements: str
    default: []
  project_dir:
    description: With O(source=compose), the compose project directory.
    type: str
    default: ""
  service:
    description: With O(source=compose), the compose service.
    type: str
    default: ""
  lines:
    description: How many matching records to return at most (the last ones), 1 to 10000.
    type: int
    default: 100
  scan_lines:
    description:
      - How many lines to read from the end of each source before filtering, 1 to 1000000. When a filter is set
        and this is 0, 20 times O(lines) (at least 5000) are read; without filters, twice O(lines) and 100 more (so
        that the oldest records returned, a traceback, are whole).
    type: int
    default: 0
  since:
    description:
      - Only lines from this time on. A duration back from now (C(30s), C(10m), C(2h), C(1d), C(1w)) or an ISO 8601
        time (C(2026-12-02), C(2026-12-02T15:00:00Z), C(2026-12-02 15:00:00+01:00); without a zone, UTC).
      - For files, the time is read from the start of each line (C(YYYY-MM-DD HH:MM:SS) or ISO 8601); lines without
        one belong to the line before.
    type: str
    default: ""
  grep:
    description:
      - A Python regular expression searched in each record, or a preset. C(errors) matches the words ERROR,
        CRITICAL, FATAL (any case) and Python tracebacks; C(tracebacks) keeps only records holding a Python traceback;
        C(warnings) matches WARNING and WARN (any case).
    type: str
    default: ""
  ignore_case:
    description: Match O(grep) (a regular expression, not a preset) without regard to case.
    type: bool
    default: false
  request_id:
    description:
      - Keep records about this request id. A JSON line matches when one of its fields C(request_id), C(requestId),
        C(request-id), C(req_id), C(rid) or C(x_request_id) equals it; a text line when it holds the id as a whole word.
    type: str
    default: ""
  fields:
    description:
      - Keep JSON lines whose fields have these values (C(key) or C(dotted.key) to expected value, compared as text;
        all must match). Lines that are not JSON never match.
    type: dict
    default: {}
  follow:
    description: Keep reading new lines for O(timeout) seconds, then return (as C(tail -f) bounded by a timeout).
    type: bool
    default: false
  timeout:
    description: With O(follow), how many seconds to follow, 1 to 300.
    type: int
    default: 30
  redact:
    description:
      - Regular expressions whose matches are replaced by C([REDACTED]) in every returned line (for example
        C(password=\\S+)); the credentials of URLs are always redacted.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: Reads only, the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - O(source=journal) needs C(journalctl); O(source=compose) needs the docker CLI with the compose plugin (the task's
    C(environment) reaches it, for example C(DOCKER_HOST)). O(follow) uses C(timeout) from coreutils for both.
"""

EXAMPLES = r"""
- name: Errors of the last hour, tracebacks whole
  shipshape.ops.log_search:
    source: journal
    unit: sample_app.service
    since: 1h
    grep: errors

- name: One request in the app's own log file
  shipshape.ops.log_search:
    source: file
    paths: [/var/log/sales_ottenok/stderr.log]
    request_id: 3f2a9c1e-77b0-4a51-9d55-0c2f1a7e9b10
    redact: ['password=\S+']

- name: JSON errors of a compose service
  shipshape.ops.log_search:
    source: compose
    project_dir: /srv/zen_ops
    service: api
    since: 1h
    fields: {level: ERROR}
"""

RETURN = r"""
lines:
  description: The matching records, oldest first, at most O(lines). C(json) is present when the record is a JSON object
    (nested at most 100 deep; a deeper one is searched and returned as text).
  returned: always
  type: list
  elements: dict
  sample: [{"ts": "2026-12-02T15:00:01.123456Z", "source": "sample_app.service", "text": "GET /healthz 200 rid=abc-123"}]
matched:
  description: How many records matched (can be more than were returned).
  returned: always
  type: int
scanned:
  description: How many lines were read.
  returned: always
  type: int
truncated:
  description: True when more records matched than were returned, or the scan stopped before the start of a source.
  returned: always
  type: bool
report:
  description: The returned records as display lines (C(ts source text); a record of several lines gives several).
  returned: always
  type: list
  elements: str
warnings_seen:
  description: Sources that could not be read fully (a missing unit, an unreadable file), one message each.
  returned: always
  type: list
  elements: str
"""

import datetime
import json
import os
import re
import stat
import time
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.checksums import Refused, open_regular
from ansible_collections.shipshape.ops.plugins.module_utils.names import is_compose_service, is_unit_name
from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import mask_passwords

MAX_LINES = 10000
MAX_SCAN = 1000000
MAX_TIMEOUT = 300
BLOCK = 64 * 1024
# A bound on what one file's tail read may hold in memory, whatever scan_lines says.
MAX_TAIL_BYTES = 256 * 1024 * 1024
# A JSON line nested deeper than this is searched as text (no log line needs more; recursion has a limit).
MAX_JSON_DEPTH = 100

REDACTED = "[REDACTED]"

TRACEBACK_START = "Traceback (most recent call last):"
CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
PRESETS = {
    "errors": r"(?i:\b(?:error|critical|fatal)\b)|Traceback \(most recent call last\)",
    "tracebacks": r"Traceback \(most recent call last\)",
    "warnings": r"(?i:\bwarn(?:ing)?\b)",
}
REQUEST_ID_FIELDS = ("request_id", "requestId", "request-id", "req_id", "rid", "x_request_id")
REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,199}$")
FIELD_KEY = re.compile(r"^[A-Za-z0-9_@$-]+(\.[A-Za-z0-9_@$-]+)*$")
DURATION = re.compile(r"^(\d{1,6})\s*(s|m|h|d|w)$")
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# A time at the start of a text line: 2026-12-02 15:00:00[,123|.123456][Z|+01:00] or the T form.
LINE_TIME = re.compile(r"^\[?(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s?(Z|[+-]\d{2}:?\d{2})?")
# docker compose logs --no-color --timestamps: "<container>  | <RFC 3339 time> <text>".
COMPOSE_LINE = re.compile(r"^(\S+)\s+\|\s(\d{4}-\d{2}-\d{2}T\S+)\s?(.*)$")


class BadInput(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------
def parse_zone(zone):
    if not zone or zone == "Z":
        return datetime.timezone.utc
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    return datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))


def parse_since(value, now):
    """SINCE as an aware UTC datetime, or BadInput."""
    value = value.strip()
    match = DURATION.match(value)
    if match:
        try:
            return now - datetime.timedelta(seconds=int(match.group(1)) * UNITS_S[match.group(2)])
        except OverflowError:  # 999999w: before year 1
            pass
    m = re.match(r"^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2})?)(?:\.\d{1,9})?)?\s?(Z|[+-]\d{2}:?\d{2})?$", value)
    if m:
        clock = m.group(2) or "00:00:00"
        if len(clock) == 5:
            clock += ":00"
        since = stamp_of(m.group(1), clock, None, m.group(3))
        if since is not None:
            return since
    raise BadInput("since '%s' is not a time or a duration: expected a duration like 30s, 10m, 2h, 1d or 1w, or an "
                   "ISO 8601 time like 2026-12-02T15:00:00Z" % value)


def compile_grep(grep, ignore_case):
    if not grep:
        return None
    if grep in PRESETS:
        return re.compile(PRESETS[grep])
    try:
        return re.compile(grep, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise BadInput("grep '%s' is not a valid regular expression (%s); expected a Python regular expression or "
                       "one of the presets %s" % (grep, exc, ", ".join(sorted(PRESETS))))


def compile_redact(patterns):
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise BadInput("redact pattern '%s' is not a valid regular expression (%s)" % (pattern, exc))
        if compiled[-1].search(""):
            raise BadInput("redact pattern '%s' matches the empty string; expected a pattern that matches the secret"
                           % pattern)
    return compiled


def validate(params):
    """Raise BadInput naming the first option that is not acceptable, its value and what was expected."""
    source = params["source"]
    if not 1 <= params["lines"] <= MAX_LINES:
        raise BadInput("lines is %s; expected 1 to %d" % (params["lines"], MAX_LINES))
    if not 0 <= params["scan_lines"] <= MAX_SCAN:
        raise BadInput("scan_lines is %s; expected 0 (automatic) to %d" % (params["scan_lines"], MAX_SCAN))
    if not 1 <= params["timeout"] <= MAX_TIMEOUT:
        raise BadInput("timeout is %s; expected 1 to %d seconds" % (params["timeout"], MAX_TIMEOUT))
    if source == "journal" and not is_unit_name(params["unit"]):
        raise BadInput("unit '%s' is not a systemd unit name; source=journal needs one (for example sample_app.service)"
                       % params["unit"])
    if source == "file":
        if not params["paths"]:
            raise BadInput("paths is empty; source=file needs the absolute paths of the log files")
        for path in params["paths"]:
            if "\x00" in path:
                raise BadInput("path '%s' holds a NUL byte; expected an absolute path like /var/log/app/stderr.log"
                               % path.replace("\x00", "\\x00"))
            if not path.startswith("/"):
                raise BadInput("path '%s' is not absolute; expected an absolute path like /var/log/app/stderr.log" % path)
    if source == "compose":
        if not params["project_dir"].startswith("/"):
            raise BadInput("project_dir '%s' is not absolute; source=compose needs the compose project directory"
                           % params["project_dir"])
        if not is_compose_service(params["service"]):
            raise BadInput("service '%s' is not a compose service name; source=compose needs one (for example app)"
                           % params["service"])
    if params["request_id"] and not REQUEST_ID.match(params["request_id"]):
        raise BadInput("request_id '%s' is not a request id: expected 1 to 200 of A-Z a-z 0-9 . _ : + / = - starting "
                       "with a letter or digit" % params["request_id"])
    for key, value in params["fields"].items():
        if not FIELD_KEY.match(str(key)):
            raise BadInput("fields key '%s' is not a field name: expected name or dotted.name of A-Z a-z 0-9 _ @ $ -"
                           % key)
        if isinstance(value, (dict, list)):
            raise BadInput("fields value of '%s' is a %s; expected a single value (compared as text)"
                           % (key, type(value).__name__))


# ----------------------------------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------------------------------
def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_line_time(text):
    m = LINE_TIME.match(text)
    return stamp_of(m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def parse_rfc3339(value):
    m = re.match(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$", value)
    return stamp_of(m.group(1), m.group(2), m.group(3), m.group(4)) if m else None


def stamp_of(date, clock, fraction, zone):
    """An aware UTC datetime, or None for a time no calendar has (month 13, zone +99:00, year 1 at +01:00): a line
    with one is a line without a time, never a failed search."""
    try:
        naive = datetime.datetime.strptime("%s %s" % (date, clock), "%Y-%m-%d %H:%M:%S")
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return naive.replace(microsecond=micro, tzinfo=parse_zone(zone)).astimezone(datetime.timezone.utc)
    except (ValueError, OverflowError):
        return None


def as_json(text):
    """The JSON object a line holds, or None: not JSON, or nested deeper than MAX_JSON_DEPTH (json.loads and the
    redaction recurse, and a line someone got logged must not end the search in a RecursionError)."""
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and depth_within(value, MAX_JSON_DEPTH) else None


def depth_within(value, limit):
    """Whether VALUE nests no deeper than LIMIT dicts and lists (without recursing)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def group(entries):
    """Entries ({_time, source, text}) into records, per source: a Python traceback joins the line that announced
    it (logging's message before C(Traceback ...)), its frames, the exception line and any chained traceback."""
    records = []
    last = {}  # source -> [its last record, state]; state: "line", "frames" (in a traceback), "after" (its end)
    for entry in entries:
        text, src = entry["text"], entry["source"]
        rec, state = last.get(src, (None, None))
        if rec is not None and state is not None:
            if text.startswith(TRACEBACK_START):
                rec["text"] += "\n" + text
                last[src] = [rec, "frames"]
                continue
            if state == "frames":
                rec["text"] += "\n" + text
                if text and text[:1] not in (" ", "\t"):
                    last[src] = [rec, "after"]  # the exception line ends the frames
                continue
            if state == "after" and (text in CHAINED or text == ""):
                rec["text"] += "\n" + text
                continue
        rec = dict(entry)
        rec["_json"] = as_json(text) is not None
        records.append(rec)
        if rec["_json"]:
            state = None  # a JSON line carries its traceback inside
        elif text.startswith(TRACEBACK_START):
            state = "frames"
        else:
            state = "line"
        last[src] = [rec, state]
    return records


def lookup(doc, dotted):
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def as_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def matches(record, grep, request_id, fields, since):
    if since is not None and (record.get("_time") is None or record["_time"] < since):
        return False
    doc = as_json(record["text"]) if record.get("_json") else None
    if grep is not None and not grep.search(record["text"]):
        return False
    if request_id:
        found = False
        if doc is not None:
            found = any(as_text(doc.get(k)) == request_id for k in REQUEST_ID_FIELDS if k in doc)
        if not found:
            # A whole word: "rid=abc-123" holds abc-123, "abc-1234" and "xabc-123" do not.
            word = r"(?<![A-Za-z0-9_-])%s(?![A-Za-z0-9_-])" % re.escape(request_id)
            found = re.search(word, record["text"]) is not None
        if not found:
            return False
    for key, expected in fields.items():
        if doc is None:
            return False
        value, present = lookup(doc, key)
        if not present or as_text(value) != as_text(expected):
            return False
    return True


def redact_text(text, patterns):
    text = mask_passwords(text, REDACTED)
    for pattern in patterns:
        text = pattern.sub(REDACTED, text)
    return text


def redact_value(value, patterns):
    if isinstance(value, str):
        return redact_text(value, patterns)
    if isinstance(value, dict):
        return dict((k, redact_pair(k, redact_value(v, patterns), patterns)) for k, v in value.items())
    if isinstance(value, list):
        return [redact_value(v, patterns) for v in value]
    return value


def redact_pair(key, value, patterns):
    """VALUE, or REDACTED when a pattern that reaches into it matches the pair as the text shows it
    ('"password": "..."'): the text hid it, so the parsed json must too."""
    if isinstance(value, (dict, list)) or not patterns:
        return value
    for separator in (": ", ":"):
        head = json.dumps(str(key)) + separator
        pair = head + json.dumps(value)
        if any(m.end() > len(head) for pattern in patterns for m in pattern.finditer(pair)):
            return REDACTED
    return value


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------
def decode(value):
    if isinstance(value, list):  # journald gives non-UTF-8 messages as byte arrays
        return bytes(v & 0xFF for v in value if isinstance(v, int)).decode("utf-8", "replace")
    return "" if value is None else str(value)


def with_timeout(argv, follow, timeout):
    if not follow:
        return argv
    return ["timeout", "--kill-after=5", str(timeout)] + argv


def run(module, argv, follow):
    rc, out, err = module.run_command(argv, errors="surrogate_or_replace")
    if follow and rc == 124:  # timeout ended the follow, as asked
        rc = 0
    if rc != 0:
        name = " ".join(argv[3:5] if argv[0] == "timeout" else argv[:2])
        last = ((err or out).strip().splitlines() or ["no output"])[-1]
        raise BadInput("%s failed (rc=%s): %s" % (name, rc, last))
    return out


def read_journal(module, params, since, scan):
    unit = params["unit"]
    argv = ["journalctl", "--unit", unit, "--output", "json", "--no-pager", "--lines", str(scan)]
    if since is not None:
        argv += ["--since", "@%d" % int(since.timestamp())]
    if params["follow"]:
        argv.append("--follow")
    out = run(module, with_timeout(argv, params["follow"], params["timeout"]), params["follow"])
    entries = []
    for line in out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        try:
            when = datetime.datetime.fromtimestamp(int(doc.get("__REALTIME_TIMESTAMP")) / 1e6, datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):  # a time out of range is an entry without one
            when = None
        for text in decode(doc.get("MESSAGE")).split("\n"):
            entries.append({"_time": when, "source": unit, "text": text})
    return entries, len(out.splitlines()), []


def read_compose(module, params, since, scan):
    argv = ["docker", "compose", "--project-directory", params["project_dir"], "logs", "--no-color", "--timestamps",
            "--tail", str(scan)]
    if since is not None:
        argv += ["--since", str(int(since.timestamp()))]
    if params["follow"]:
        argv.append("--follow")
    argv += ["--", params["service"]]
    out = run(module, with_timeout(argv, params["follow"], params["timeout"]), params["follow"])
    entries = []
    for line in out.splitlines():
        m = COMPOSE_LINE.match(line)
        if m:
            entries.append({"_time": parse_rfc3339(m.group(2)), "source": m.group(1), "text": m.group(3)})
        elif line.strip():
            entries.append({"_time": None, "source": params["service"], "text": line})
    return entries, len(out.splitlines()), []


def tail_lines(fh, size, count):
    """The last COUNT lines of an open binary file of SIZE bytes, read backwards in blocks; and whether the
    start of the file was reached."""
    pos = size
    chunks = []
    newlines = 0
    read = 0
    while pos > 0 and newlines <= count and read < MAX_TAIL_BYTES:
        step = min(BLOCK, pos)
        pos -= step
        fh.seek(pos)
        chunk = fh.read(step)
        chunks.append(chunk)
        newlines += chunk.count(b"\n")
        read += step
    data = b"".join(reversed(chunks))
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    complete = pos == 0
    if len(lines) > count:
        lines = lines[-count:]
        complete = False
    elif not complete and lines:
        lines = lines[1:]  # a partial first line
    return [line.decode("utf-8", "replace").rstrip("\r") for line in lines], complete


def check_file(path):
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BadInput("path '%s' cannot be read: %s" % (path, exc.strerror))
    if not stat.S_ISREG(st.st_mode):
        raise BadInput("path '%s' is not a regular file; expected a log file" % path)


def open_log(path):
    """PATH opened for reading, which must still be a regular file: the app's user owns its log directory and may
    have put a FIFO in its place since check_file() (open() would wait for a writer for ever). open_regular keeps the
    open from waiting; the check is made on what was opened."""
    try:
        return open_regular(path)
    except Refused:
        raise BadInput("path '%s' is not a regular file; expected a log file" % path)


def read_files(module, params, since, scan):
    entries = []
    scanned = 0
    partial = []
    ends = {}
    for path in params["paths"]:
        check_file(path)
        with open_log(path) as fh:
            size = os.fstat(fh.fileno()).st_size
            lines, complete = tail_lines(fh, size, scan)
            ends[path] = size
        if not complete:
            partial.append(path)
        scanned += len(lines)
        entries.extend(file_entries(path, lines))
    if params["follow"]:
        deadline = time.monotonic() + params["timeout"]
        rest = dict((p, b"") for p in params["paths"])
        while time.monotonic() < deadline:
            for path in params["paths"]:
                new, ends[path], rest[path] = read_new(path, ends[path], rest[path])
                scanned += len(new)
                entries.extend(file_entries(path, new))
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return entries, scanned, partial


def read_new(path, end, rest):
    """Lines appended to PATH since END (from the start again when the file was truncated or replaced)."""
    try:
        fh = open_log(path)
    except (OSError, BadInput):  # gone or swapped for what is not a log: nothing new from it
        return [], end, rest
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size < end:
            end, rest = 0, b""
        if size == end:
            return [], end, rest
        fh.seek(end)
        data = rest + fh.read(min(size - end, MAX_TAIL_BYTES))
        end = fh.tell()
    parts = data.split(b"\n")
    rest = parts.pop()
    return [p.decode("utf-8", "replace").rstrip("\r") for p in parts], end, rest


def file_entries(path, lines):
    out = []
    when = None
    for text in lines:
        doc = as_json(text)
        stamp = None
        if doc is not None:
            for key in ("timestamp", "time", "ts", "@timestamp", "asctime"):
                if isinstance(doc.get(key), str):
                    stamp = parse_line_time(doc[key])
                    if stamp is not None:
                        break
        else:
            stamp = parse_line_time(text)
        if stamp is not None:
            when = stamp
        out.append({"_time": when if stamp is None else stamp, "source": path, "text": text})
    return out


# ----------------------------------------------------------------------------------------------
def search(module, params, now=None):
    now = now or datetime.datetime.now(datetime.timezone.utc)
    validate(params)
    since = parse_since(params["since"], now) if params["since"] else None
    grep = compile_grep(params["grep"], params["ignore_case"])
    redact = compile_redact(params["redact"])
    fields = dict((str(k), v) for k, v in params["fields"].items())
    filtering = bool(grep is not None or params["request_id"] or fields)
    # Without filters, a margin over `lines` so that the oldest records returned (a traceback) are whole.
    scan = params["scan_lines"] or (max(5000, 20 * params["lines"]) if filtering else 2 * params["lines"] + 100)
    reader = {"journal": read_journal, "file": read_files, "compose": read_compose}[params["source"]]
    try:
        entries, scanned, partial = reader(module, params, since, scan)
    except BadInput as exc:  # a command's error can print what a returned line would have had redacted
        raise BadInput(redact_text(str(exc), redact)) from None
    # journal and compose filter by time themselves; files are filtered here. A record's time is its first line's.
    records = group(entries)
    file_since = since if params["source"] == "file" else None
    kept = [r for r in records if matches(r, grep, params["request_id"], fields, file_since)]
    returned = kept[-params["lines"]:]
    lines = []
    report = []
    for rec in returned:
        item = {"ts": iso(rec["_time"]) if rec.get("_time") else "", "source": rec["source"],
                "text": redact_text(rec["text"], redact)}
        if rec.get("_json"):
            item["json"] = redact_value(as_json(rec["text"]), redact)
        lines.append(item)
        first = True
        for part in item["text"].split("\n"):
            report.append(("%s %s %s" % (item["ts"] or "-", item["source"], part)) if first else "    " + part)
            first = False
    warnings_seen = []
    if file_since is not None and not any(r.get("_time") for r in records):
        warnings_seen.append("since: no line of %s starts with a time, so none could be kept"
                             % ", ".join(params["paths"]))
    # Sources whose scan stopped before their start: older lines exist that were not searched.
    cut = list(partial)
    if params["source"] != "file" and scanned >= scan and not params["follow"]:
        cut.append(params["unit"] or params["service"])
    if filtering or file_since is not None:
        warnings_seen += ["%s: only the last %d lines were searched (raise scan_lines to search more)" % (c, scan)
                          for c in cut]
    return {
        "lines": lines,
        "matched": len(kept),
        "scanned": scanned,
        "truncated": len(kept) > len(returned) or bool(cut),
        "report": report,
        "warnings_seen": warnings_seen,
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="str", choices=["journal", "file", "compose"], default="journal"),
            unit=dict(type="str", default=""),
            paths=dict(type="list", elements="str", default=[]),
            project_dir=dict(type="str", default=""),
            service=dict(type="str", default=""),
            lines=dict(type="int", default=100),
            scan_lines=dict(type="int", default=0),
            since=dict(type="str", default=""),
            grep=dict(type="str", default=""),
            ignore_case=dict(type="bool", default=False),
            request_id=dict(type="str", default=""),
            fields=dict(type="dict", default={}),
            follow=dict(type="bool", default=False),
            timeout=dict(type="int", default=30),
            redact=dict(type="list", elements="str", default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    try:
        result = search(module, module.params)
    except BadInput as exc:
        module.fail_json(msg="log_search: %s" % exc)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="log_search: %s" % exc, exception=traceback.format_exc())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
