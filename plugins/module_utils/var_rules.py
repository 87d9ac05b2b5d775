# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The rules a role's variables are held to before anything runs, written once.

Every value that ends up in a path, a unit file, an environment file or a command line is checked by one of
these kinds. ``problem(name, value, rule)`` returns one message naming the variable, the value (never a secret
one) and what was expected, or None. The roles list their variables and kinds (``shipshape.ops.check_vars``);
the wording of each kind lives here, so the same kind of value is refused in the same words everywhere.
"""

from __future__ import annotations

import json
import re

from ansible_collections.shipshape.ops.plugins.module_utils.names import UNIT_SUFFIXES, is_compose_service, is_unit_name
from ansible_collections.shipshape.ops.plugins.module_utils.postgres import database_name_error, identifier_error
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import (
    CONTROL_CHARS as CONTROL, component_problem, path_problem,
)

LINE_BREAK_OR_NUL = re.compile(r"[\r\n\x00]")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._+/-]*\Z")
SAFE_REL_PATH = re.compile(r"^[A-Za-z0-9._+/-]+\Z")
ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\Z")
APP_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
DIR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
UNIT_SETTING = re.compile(r"^[A-Za-z][A-Za-z0-9]*\Z")
DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
COMPOSE_PROJECT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
GIT_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
GIT_REF_BAD_PARTS = re.compile(r"(^|/)\.|\.lock(/|$)|//|^/|/$|\.\Z")

# What each kind expects, as the message says it; {max} and the like come from the rule.
EXPECTED = {
    "string": "must be a string",
    "nonempty": "must be a non-empty string",
    "list": "must be a list",
    "dict": "must be a mapping",
    "account": "must be a system {what} name (a lowercase letter or '_', then at most 31 lowercase letters, digits, "
               "'_' or '-')",
    "app_name": "must be a lowercase name of at most 32 characters (a letter, then letters, digits, '_' or '-')",
    "component": "must be one path component: a letter or digit, then at most {max_after} letters, digits, '.', '_', "
                 "'+' or '-', without '..'",
    "dir_name": "must be one directory name (letters, digits, '.', '_', '-'; not starting with '.')",
    "dir_names": "must be a list of directory names (letters, digits, '.', '_', '-'; not starting with '.')",
    "abs_path": "must be an absolute path other than / of letters, digits, '.', '_', '+', '-' and '/', without '.' "
                "or '..' components",
    "path": "must be an absolute path other than /, without '.' or '..' components or control characters",
    "paths": "must be a non-empty list of absolute paths other than /, without '.' or '..' components or control "
             "characters",
    "pg_tables": "must be a list of [schema.]table names (PostgreSQL identifiers)",
    "rel_path": "must be a relative path of letters, digits, '.', '_', '+', '-' and '/', without '.' or '..' "
                "components",
    "env_name": "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
    "service_name": "must be a service name (a letter or digit, then letters, digits, '_', '.' or '-')",
    "unit_name": "must be a systemd unit name ending in .service, .socket, .timer or .target",
    "docker_tag": "must be a docker tag (a letter, digit or '_', then at most 127 letters, digits, '_', '.' or '-')",
    "compose_project": "must be a compose project name (a lowercase letter or digit, then lowercase letters, digits, "
                       "'_' or '-')",
    "pg_ident": "must be a PostgreSQL identifier ([A-Za-z_][A-Za-z0-9_$]*, at most 63 bytes)",
    "pg_database": "must be a database name ([A-Za-z_][A-Za-z0-9_$-]*: letters, digits, '_', '$' and '-', starting with "
                   "a letter or '_'; at most 63 bytes)",
}

KINDS = ("choice", "int", "number", "bool", "line", "env", "unit_settings", "workers", "git_ref",
         "redis_patterns") + tuple(EXPECTED)


def shown(value):
    """A value as a message shows it: quoted, or as JSON when it is not a plain one-line string."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and not CONTROL.search(value) and "'" not in value:
        return "'%s'" % value
    return json.dumps(value, default=str)


def _words(items):
    items = [str(item) if item != "" else "''" for item in items]
    return items[0] if len(items) == 1 else "%s or %s" % (", ".join(items[:-1]), items[-1])


def _whole(value):
    """VALUE as an int when it is a whole number (an int or a string of digits, never a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.match(r"^-?[0-9]+\Z", value.strip()):
        return int(value)
    return None


def _number(value):
    """VALUE as a float when it is a number (an int, a float or a string of one, never a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.match(r"^-?[0-9]+([.][0-9]+)?\Z", value.strip()):
        return float(value)
    return None


def _int_expectation(rule, what="a whole number"):
    low, high = rule.get("min"), rule.get("max")
    if low is not None and high is not None:
        return "must be %s from %s to %s" % (what, low, high)
    if low is not None:
        return "must be %s of at least %s" % (what, low)
    if high is not None:
        return "must be %s of at most %s" % (what, high)
    return "must be %s" % what


def _path_ok(value, kind, rule):
    if kind == "abs_path":
        if not SAFE_PATH.match(value) or value.rstrip("/") == "":
            return False
    elif not SAFE_REL_PATH.match(value) or value.startswith("/"):
        return False
    if any(part in (".", "..") for part in value.split("/")):
        return False
    suffix = rule.get("suffix")
    return not suffix or value.endswith(suffix)


def _loose_path_ok(value):
    """An absolute path other than /, any characters but control ones, no '.' or '..' component: a path that is
    only ever one argv item or an open() (spaces are fine there). The modules' own check of a path."""
    return path_problem(value) is None


def _pg_ident_ok(value):
    return identifier_error("", value) is None


def _pg_table_ok(value):
    return isinstance(value, str) and value.count(".") <= 1 and all(_pg_ident_ok(part) for part in value.split("."))


def _git_ref_problem(name, value):
    """git check-ref-format's rules (a commit sha passes them too): a ref only ever reaches git as one argv item
    after --end-of-options; these make a typo or a hostile value fail here, naming it."""
    if value == "":
        return "%s is empty; name a branch, a tag or a commit sha" % name
    if value.startswith("-"):
        return "%s %s must not start with '-' (a branch, tag or sha, never an option)" % (name, shown(value))
    if ".." in value:
        return "%s %s must not contain '..' (git ref names cannot)" % (name, shown(value))
    if "@{" in value or value == "@":
        return "%s %s must not contain '@{' or be '@' (git ref names cannot)" % (name, shown(value))
    if GIT_REF_BAD_CHARS.search(value):
        return ("%s %s must not contain a space, a control character or any of ~ ^ : ? * [ \\ (git ref names "
                "cannot)" % (name, json.dumps(value)))
    if GIT_REF_BAD_PARTS.search(value):
        return ("%s %s must not have an empty component, a component starting with '.' or ending with '.lock', or "
                "end with '.' (git ref names cannot)" % (name, shown(value)))
    return None


def _truthy(value):
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1"))


def _redis_patterns_problem(name, value, rule):
    """Glob patterns of keys to delete: a list of non-empty strings, none matching every key (a FLUSHDB under
    another name) unless the rule's C(match_all_ok) is true. The test is the modules' own
    (redis_client.pattern_matches_everything), so a role refuses before anything runs what the module would refuse
    after the work before it (a restored database) was done."""
    # Imported here: redis_client imports redis-py when it can, which only this kind needs.
    from ansible_collections.shipshape.ops.plugins.module_utils.redis_client import pattern_matches_everything

    example = rule.get("example", "cache:*")
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        return "%s must be a list of key patterns (globs such as '%s'), got %s" % (name, example, shown(value))
    if "" in value:
        return "%s: an empty pattern ('') matches no key to delete; expected a glob such as '%s'%s" % (
            name, example, _note(rule))
    if _truthy(rule.get("match_all_ok")):
        return None
    everything = [item for item in value if pattern_matches_everything(item)]
    if not everything:
        return None
    confirm = " or %s=true to delete every key" % rule["confirm"] if rule.get("confirm") else ""
    return "%s: %s matches every key, as a FLUSHDB would; expected a narrower pattern such as '%s'%s%s" % (
        name, ", ".join(shown(item) for item in everything), example, confirm, _note(rule))


MAPPING_KEYS = {
    "env": (ENV_NAME, "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
    "unit_settings": (UNIT_SETTING, "a unit setting name (a letter, then letters and digits)"),
    "workers": (APP_NAME, "a worker name (a lowercase letter, then at most 31 lowercase letters, digits, '_' or '-')"),
}


def _mapping_problem(name, value, kind, rule):
    """env: environment variable names, values without a line break or NUL (a secret as often as not: never shown).
    unit_settings: unit setting names, values without a control character (one setting a line).
    workers: worker names (they name units), values one command line each, not empty."""
    if not isinstance(value, dict):
        return "%s must be a mapping of names to values, got %s" % (name, shown(value))
    key_re, key_words = MAPPING_KEYS[kind]
    for key in value:
        if not isinstance(key, str) or not key_re.match(key):
            return "%s key %s must be %s" % (name, shown(key), key_words)
    for key, item in value.items():
        text = "" if item is None else str(item)
        if kind == "env" and LINE_BREAK_OR_NUL.search(text):
            return ("%s['%s'] contains a newline, a carriage return or a NUL (value not shown)%s"
                    % (name, key, _note(rule)))
        if kind == "unit_settings" and CONTROL.search(text):
            return "%s['%s'] contains a line break or a control character%s" % (name, key, _note(rule))
        if kind == "workers" and (CONTROL.search(text) or not text.strip() or isinstance(item, (dict, list))):
            return "%s['%s'] %s must be one command line, not empty, without a line break or a control character%s" % (
                name, key, json.dumps(text), _note(rule))
    return None


def _note(rule):
    return "; %s" % rule["note"] if rule.get("note") else ""


def problem(name, value, rule):
    """Why VALUE of the variable NAME breaks RULE, as one message, or None when it is acceptable.

    RULE is ``{"kind": ..., ...}``: ``choices`` for choice; ``min``/``max`` for int; ``max`` (length) for
    component; ``suffix`` for abs_path; ``what`` (user or group) for account; ``note`` (why, appended);
    ``about`` (shown after the value, e.g. where a default came from); ``empty_ok`` (an empty value passes; the note says what empty means);
    ``secret`` (the value is never shown); ``expect`` (the words of the expectation, when the kind's own do not
    say enough).
    """
    kind = rule.get("kind", "string")
    if kind not in KINDS:
        raise ValueError("unknown rule kind %r for %s (expected one of: %s)" % (kind, name, ", ".join(KINDS)))
    if rule.get("empty_ok") and value in ("", None):
        return None
    if kind == "git_ref":
        return _git_ref_problem(name, "" if value is None else str(value))
    if kind == "redis_patterns":
        return _redis_patterns_problem(name, value, rule)
    if kind in MAPPING_KEYS:
        return _mapping_problem(name, value, kind, rule)

    ok, expectation = True, EXPECTED.get(kind, "")
    if kind == "choice":
        choices = rule["choices"]
        ok = value in choices and not isinstance(value, bool)
        expectation = "must be %s" % _words(choices)
    elif kind == "int":
        number = _whole(value)
        ok = number is not None and (rule.get("min") is None or number >= rule["min"]) \
            and (rule.get("max") is None or number <= rule["max"])
        expectation = _int_expectation(rule)
    elif kind == "number":
        number = _number(value)
        ok = number is not None and (rule.get("min") is None or number >= rule["min"]) \
            and (rule.get("max") is None or number <= rule["max"])
        expectation = _int_expectation(rule, "a number")
    elif kind == "bool":
        ok = isinstance(value, bool) or (isinstance(value, str) and value.lower() in (
            "true", "false", "yes", "no", "on", "off", "1", "0"))
        expectation = "must be true or false"
    elif kind == "line":
        if isinstance(value, (dict, list, tuple)):
            return "%s must be one line of text, got %s" % (name, shown(value))
        text = "" if value is None else str(value)
        if CONTROL.search(text):
            return "%s contains a line break or a control character (%s)%s" % (name, json.dumps(text), _note(rule))
        return None
    elif kind == "list":
        ok = isinstance(value, (list, tuple))
    elif kind == "paths":
        ok = isinstance(value, (list, tuple)) and len(value) > 0 and all(_loose_path_ok(item) for item in value)
    elif kind == "dir_names":
        ok = isinstance(value, (list, tuple)) and all(isinstance(item, str) and DIR_NAME.match(item) for item in value)
    elif kind == "pg_tables":
        ok = isinstance(value, (list, tuple)) and all(_pg_table_ok(item) for item in value)
    elif kind == "dict":
        ok = isinstance(value, dict)
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "nonempty":
        ok = isinstance(value, str) and value.strip() != ""
    elif not isinstance(value, str):
        ok = False
    elif kind == "account":
        ok = bool(ACCOUNT.match(value))
        expectation = expectation.format(what=rule.get("what", "user"))
    elif kind == "app_name":
        ok = bool(APP_NAME.match(value))
    elif kind == "component":
        limit = int(rule.get("max", 128))
        ok = component_problem(value, limit) is None
        expectation = expectation.format(max_after=limit - 1)
    elif kind == "dir_name":
        ok = bool(DIR_NAME.match(value))
    elif kind == "path":
        ok = _loose_path_ok(value)
    elif kind in ("abs_path", "rel_path"):
        ok = _path_ok(value, kind, rule)
        if rule.get("suffix"):
            expectation = expectation.replace("must be ", "must be ending in %s, " % rule["suffix"], 1) \
                if kind == "rel_path" else "must be an absolute path ending in %s, of letters, digits, '.', '_', " \
                "'+', '-' and '/', without '.' or '..' components" % rule["suffix"]
    elif kind == "service_name":
        ok = is_compose_service(value)
    elif kind == "unit_name":
        ok = is_unit_name(value, UNIT_SUFFIXES) and value.endswith(rule.get("suffix", ""))
    elif kind == "env_name":
        ok = bool(ENV_NAME.match(value))
    elif kind == "pg_ident":
        ok = _pg_ident_ok(value)
    elif kind == "pg_database":
        ok = database_name_error("", value) is None
    elif kind == "docker_tag":
        ok = bool(DOCKER_TAG.match(value))
    elif kind == "compose_project":
        ok = bool(COMPOSE_PROJECT.match(value))
    if ok:
        return None
    expectation = rule.get("expect") or expectation
    value_text = "(value not shown)" if rule.get("secret") else shown(value)
    about = " %s" % rule["about"] if rule.get("about") else ""
    note = " (%s)" % rule["note"] if rule.get("note") else ""
    return "%s %s%s %s%s" % (name, value_text, about, expectation, note)


def problems(values, rules):
    """Every message for VALUES (name -> value) under RULES (name -> rule), in the order of RULES."""
    found = []
    for name, rule in rules.items():
        if isinstance(rule, str):
            rule = {"kind": rule}
        message = problem(name, values.get(name), rule)
        if message:
            found.append(message)
    return found


def check_vars_argument_spec():
    """The options of shipshape.ops.check_vars (the module and its action plugin)."""
    return dict(rules=dict(type="dict", required=True), values=dict(type="dict"))


def check(rules, values):
    """(failed, result) for VALUES under RULES: the whole of the module's work, shared with the action plugin."""
    try:
        found = problems(values or {}, rules)
    except (ValueError, KeyError, TypeError) as exc:
        return True, dict(msg="check_vars: a rule is wrong: %s" % exc, checked=[], problems=[])
    result = dict(checked=list(rules), problems=found, changed=False)
    if found:
        result["msg"] = found[0] if len(found) == 1 else "%d variables refused: %s" % (len(found), "; ".join(found))
    return bool(found), result
