"""Validation at the boundary: every value the CLI passes to a playbook variable is checked here, before
anything runs (no run directory, no history entry). A bad value is one line and exit code 3."""

from __future__ import annotations

import re

from shipshape.config import UsageError

# A release version: deploy --version V deploys the git ref vV.
VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
# A full commit sha, or an abbreviated one.
SHA = re.compile(r"[0-9a-fA-F]{7,40}")
# Release ids (roles/systemd_release: "<version>-<sha8>", or systemd_release_id) and backup ids
# (roles/backup: "<backup_name>-YYYYmmddTHHMMSSZ"): one path component of a safe charset.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# A backup name (roles/backup's backup_name: one database or app each; its sets are "<name>-YYYYmmddTHHMMSSZ").
BACKUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
# PostgreSQL's NAMEDATALEN - 1. A database name may use all of it: roles/restore shortens the names it derives
# (<db>_restoring, <db>_before_<stamp>) to fit.
IDENT_MAX = 63
# A database, role or table name: an identifier, or one with '-' after its first character (my-app); the collection's
# modules quote it or pass it as one argument or query parameter (module_utils/postgres.DATABASE_PATTERN).
DB_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$-]*")
# A table name part in double quotes, as SQL writes one: any printable characters, '.' included, '"' doubled
# (the collection's module_utils/postgres.split_table_name reads the same form).
QUOTED_PART = re.compile(r'"((?:[^"\x00-\x1f\x7f]|"")+)"')
# Bytes git check-ref-format refuses anywhere in a ref.
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# Stricter than git: refs are also shown in reports and shells, so only these characters.
_REF_CHARS = re.compile(r"[A-Za-z0-9._+/@=-]+")


class InvalidValue(UsageError):
    """A command-line value that would become a playbook variable is not acceptable."""

    def __init__(self, command: str, option: str, value: str, what: str, expected: str) -> None:
        self.line = f"shipshape {command}: {option} {value!r} is not {what}: {expected}"
        super().__init__(self.line)


def _ref_problem(ref: str) -> str | None:
    """Why git check-ref-format would refuse ``ref`` (as a branch/tag name), or None."""
    if not ref:
        return "it is empty"
    if len(ref) > 255:
        return "it is longer than 255 characters"
    if ref.startswith("-"):
        return "it starts with '-'"
    if _REF_FORBIDDEN.search(ref):
        return "it contains a space, a control character or one of ~ ^ : ? * [ \\"
    if not _REF_CHARS.fullmatch(ref):
        return "it contains a character outside A-Z a-z 0-9 . _ + - / @ ="
    if ".." in ref:
        return "it contains '..'"
    if "@{" in ref or ref == "@":
        return "it contains '@{' or is '@'"
    if ref.startswith("/") or ref.endswith("/") or "//" in ref:
        return "it starts or ends with '/' or contains '//'"
    if ref.endswith("."):
        return "it ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "a component starts with '.'"
        if part.endswith(".lock"):
            return "a component ends with '.lock'"
    return None


GIT_REF_EXPECTED = ("a 7 to 40 digit hex sha, or a branch or tag name as git check-ref-format accepts it "
                    "(only A-Z a-z 0-9 . _ + - / @ =; no leading '-', no '..', no '@{', "
                    "no component starting with '.' or ending in '.lock', no leading/trailing '/')")


def git_ref(command: str, option: str, value: str) -> str:
    if SHA.fullmatch(value):
        return value
    problem = _ref_problem(value)
    if problem:
        raise InvalidValue(command, option, value, "a valid git ref", f"{problem}; expected {GIT_REF_EXPECTED}")
    return value


def version(command: str, option: str, value: str) -> str:
    if not VERSION.fullmatch(value):
        raise InvalidValue(command, option, value, "a valid version",
                           "expected 1 to 64 of A-Z a-z 0-9 . + _ - starting with a letter or digit (e.g. 2.0.1)")
    # deploy --version V deploys the ref vV: it must be a ref too.
    git_ref(command, option, f"v{value}")
    return value


def _identifier(command: str, option: str, value: str, what: str) -> str:
    if not RUN_ID.fullmatch(value) or ".." in value:
        raise InvalidValue(command, option, value, f"a valid {what}",
                           "expected 1 to 128 of A-Z a-z 0-9 . _ + - starting with a letter or digit, "
                           "without '/' or '..'")
    return value


def release_id(command: str, option: str, value: str) -> str:
    return _identifier(command, option, value, "release id")


def backup_id(command: str, option: str, value: str) -> str:
    return _identifier(command, option, value, "backup id")


def run_id(command: str, option: str, value: str) -> str:
    """A run id, a prefix of one, or 'last': it names a directory under <state>/runs, so never '/' or '..'."""
    return _identifier(command, option, value, "run id")


def _pg_name(value: str) -> bool:
    """A database, role or table name (DB_NAME) of at most IDENT_MAX bytes."""
    return bool(DB_NAME.fullmatch(value)) and len(value.encode()) <= IDENT_MAX


def database(command: str, option: str, value: str) -> str:
    if not _pg_name(value):
        raise InvalidValue(command, option, value, "a valid database name",
                           f"expected a database name [A-Za-z_][A-Za-z0-9_$-]* of at most {IDENT_MAX} bytes")
    return value


# Tables and roles reach pg_diagnostics as query parameters (matched exactly, case included), never as SQL text: a
# name created with quotes and a '-' (app-reader) is one a user has to be able to name.
def _table_parts(value: str) -> list[str] | None:
    """The parts of table or schema.table, each a DB_NAME or a QUOTED_PART (unquoted), or None."""
    parts, pos = [], 0
    while len(parts) < 2:
        quoted = QUOTED_PART.match(value, pos)
        if quoted:
            parts.append(quoted.group(1).replace('""', '"'))
            pos = quoted.end()
        else:
            plain = DB_NAME.match(value, pos)
            if not plain:
                return None
            parts.append(plain.group(0))
            pos = plain.end()
        if pos == len(value):
            return parts
        if value[pos] != ".":
            return None
        pos += 1
    return None


def table(command: str, option: str, value: str) -> str:
    parts = _table_parts(value)
    if not parts or any(len(part.encode()) > IDENT_MAX for part in parts):
        raise InvalidValue(command, option, value, "a table name",
                           "expected table or schema.table, each a name [A-Za-z_][A-Za-z0-9_$-]* or any other name "
                           f'in double quotes, \'"\' doubled (crm."order.items"); each at most {IDENT_MAX} bytes')
    return value


def role(command: str, option: str, value: str) -> str:
    if not _pg_name(value):
        raise InvalidValue(command, option, value, "a role name",
                           f"expected a role name [A-Za-z_][A-Za-z0-9_$-]* of at most {IDENT_MAX} bytes")
    return value


def text(command: str, option: str, value: str) -> str:
    """Free text a module binds as a query parameter: printable, one line, 1 to 200 characters."""
    if not 0 < len(value) <= 200 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidValue(command, option, value, "a short text", "expected 1 to 200 characters on one line")
    return value


def backup_name(command: str, option: str, value: str) -> str:
    if not BACKUP_NAME.fullmatch(value) or ".." in value:
        raise InvalidValue(command, option, value, "a valid backup name",
                           "expected 1 to 100 of A-Z a-z 0-9 . _ + - starting with a letter or digit, "
                           "without '/' or '..' (the backup role's backup_name, e.g. sample_app)")
    return value


# A systemd OnCalendar expression ("monthly", "Mon *-*-01..07 04:00:00", "*-*-01 04:00 Europe/Berlin"): written
# into the timer unit, so one line of these characters only; the role checks it with systemd-analyze calendar.
CALENDAR = re.compile(r"[A-Za-z0-9*][A-Za-z0-9 *:/,.~+_-]{0,127}")


def calendar(command: str, option: str, value: str) -> str:
    if not CALENDAR.fullmatch(value):
        raise InvalidValue(command, option, value, "a systemd calendar expression",
                           "expected one line of A-Z a-z 0-9, spaces and * : / , . ~ + _ - (systemd OnCalendar, "
                           "e.g. monthly or '*-*-01 04:00:00')")
    return value


# `logs` values: each reaches log_search, which checks it again.
DURATION = re.compile(r"[1-9][0-9]{0,5}[smhdw]")
ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:?[0-9]{2})?)?")
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{0,127}")
FIELD_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
GREP_PRESETS = ("errors", "tracebacks", "warnings")


def since(command: str, option: str, value: str) -> str:
    if not (DURATION.fullmatch(value) or ISO_TIME.fullmatch(value)):
        raise InvalidValue(command, option, value, "a duration or a time",
                           "expected a duration such as 10m, 2h or 1d (s, m, h, d, w), or an ISO time such as "
                           "2026-12-02T15:00:00Z")
    return value


def grep(command: str, option: str, value: str) -> str:
    if value in GREP_PRESETS:
        return value
    try:
        re.compile(value)
    except re.error as exc:
        raise InvalidValue(command, option, value, "a regular expression",
                           f"{exc}; expected a Python regular expression, or one of {', '.join(GREP_PRESETS)}") from None
    if not value or len(value) > 500 or any(ord(c) < 32 for c in value):
        raise InvalidValue(command, option, value, "a regular expression",
                           "expected 1 to 500 characters without control characters")
    return value


def request_id(command: str, option: str, value: str) -> str:
    if not REQUEST_ID.fullmatch(value):
        raise InvalidValue(command, option, value, "a request id",
                           "expected 1 to 128 of A-Z a-z 0-9 . _ : + = / - starting with a letter or digit")
    return value


def field(command: str, option: str, value: str) -> tuple[str, str]:
    key, sep, wanted = value.partition("=")
    if not sep or not FIELD_KEY.fullmatch(key) or any(ord(c) < 32 for c in wanted) or len(wanted) > 500:
        raise InvalidValue(command, option, value, "a field match",
                           "expected key=value, the key of letters, digits, _ . - (dotted for nested JSON fields)")
    return key, wanted


def number(command: str, option: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InvalidValue(command, option, str(value), "in range", f"expected {low} to {high}")
    return value


BATCH_PERCENT = re.compile(r"([1-9][0-9]?|100)%")


def batch_size(command: str, option: str, value: str) -> int | str:
    """Hosts per batch of a rolling deploy, as a play's serial takes it: a whole number or a percentage."""
    if BATCH_PERCENT.fullmatch(value):
        return value
    if value.isdigit() and 1 <= int(value) <= 10000:
        return int(value)
    raise InvalidValue(command, option, value, "a batch size",
                       "expected a whole number of hosts (1 or more) or a percentage from 1% to 100%")


def absolute_path(command: str, option: str, value: str) -> str:
    if not value.startswith("/") or ".." in value.split("/") or any(ord(c) < 32 for c in value):
        raise InvalidValue(command, option, value, "an absolute path",
                           "expected an absolute path without '..' or control characters")
    return value


def limit(command: str, option: str, value: str) -> str:
    """An Ansible host pattern for --limit: ansible-playbook reads a leading '-' as one of its own options (the run
    failed after it started, with Ansible's usage text hidden), and a control character is never part of a host name."""
    if not value.strip() or value.startswith("-") or len(value) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidValue(command, option, value, "a host pattern",
                           "expected an Ansible host pattern (web1, 'app_servers:&eu', 'all:!db1', @retry-file): "
                           "not empty, not starting with '-', on one line, at most 4096 characters")
    return value
