"""Keep secrets out of the terminal, the reports and the artifacts a run leaves behind.

Two rules, applied together by :class:`Redactor`:

- by key: the value of any mapping key that names a secret (``password``, ``token``, ``secret``, ``key`` as a
  word of the key, e.g. ``db_password``, ``api_key``, ``redis_server_password``) becomes ``********``;
- by value: every known secret value (extra vars with such names, options the roles mark ``no_log: true`` in
  ``roles/*/meta/argument_specs.yml``, and inventory variables with such names) is replaced wherever it
  appears inside a string.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

MASK = "********"

# A key is secret when one of its words (split on _ - . and space, or camelCase) is one of these.
# "pass": Ansible's own connection and privilege passwords are spelled that way (ansible_become_pass,
# ansible_ssh_pass, ansible_sudo_pass, ansible_su_pass, ansible_httpapi_pass), and so are many users' (db_pass).
_SECRET_WORDS = {"password", "passwd", "passphrase", "pass", "token", "secret", "key", "apikey", "privatekey"}
_SECRET_IN_WORD = re.compile(r"(password|passwd|token|secret)", re.IGNORECASE)
# Values this short are never replaced inside text: replacing "1" everywhere would destroy the output.
MIN_SECRET_LENGTH = 4
# A variable whose whole value is another variable: `db_password: "{{ vault_db_password }}"`.
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Keys of ansible's own result bookkeeping that contain a secret word but carry no secret.
_NOT_SECRET_KEYS = {"_ansible_no_log", "no_log", "lock_held"}


def is_secret_key(key: object) -> bool:
    """True when a variable or mapping key names a secret (password, token, secret or key)."""
    if not isinstance(key, str) or key in _NOT_SECRET_KEYS:
        return False
    if _SECRET_IN_WORD.search(key):
        return True
    words = re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", key)
    return any(word.lower() in _SECRET_WORDS for word in words if word)


def no_log_options(collection_root: Path) -> set[str]:
    """Names of the role options marked ``no_log: true`` in the collection's argument specs."""
    names: set[str] = set()

    def walk(options: dict | None) -> None:
        for name, spec in (options or {}).items():
            if not isinstance(spec, dict):
                continue
            if spec.get("no_log"):
                names.add(name)
            walk(spec.get("options"))
            walk(spec.get("suboptions"))

    for path in sorted(Path(collection_root).glob("roles/*/meta/argument_specs.yml")):
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for entry in (data.get("argument_specs") or {}).values():
            if isinstance(entry, dict):
                walk(entry.get("options"))
    return names


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


class Redactor:
    """Replaces secret values and the values of secret keys with ``********``."""

    def __init__(self, secret_values: Iterable[str] = (), secret_names: Iterable[str] = ()) -> None:
        self.secret_names = set(secret_names)
        self.values: set[str] = set()
        for value in secret_values:
            self.add_value(value)
        self._pattern: re.Pattern[str] | None = None
        self._pending: list[Any] = []

    def defer(self, thread: Any) -> None:
        """A thread still learning secret values (the inventory's); joined before the first redaction."""
        self._pending.append(thread)

    def settle(self) -> None:
        while self._pending:
            self._pending.pop().join()

    def add_value(self, value: Any) -> None:
        for text in _strings(value):
            text = text.strip()
            # Templates are not secrets themselves; their rendered value is caught where it is known.
            if len(text) >= MIN_SECRET_LENGTH and "{{" not in text and "{%" not in text:
                self.values.add(text)
                # JSON-escaped forms appear in serialised artifacts.
                escaped = json.dumps(text)[1:-1]
                if escaped != text:
                    self.values.add(escaped)
        self._pattern = None

    def add_vars(self, variables: dict[str, Any], nested: bool = True) -> None:
        """Learn the secret values of a mapping of variables (extra vars, inventory vars).

        A top-level variable is secret when the roles mark it no_log or its name names a secret (password,
        token, secret, key). Inside nested mappings (with ``nested``) only password, token and secret count:
        a ``key:`` there is usually a Redis key or a dictionary key, not a credential."""
        variables = variables or {}
        for name, value in variables.items():
            # Not is_secret_name(): that waits for the learning threads, and this may run in one of them.
            if name in self.secret_names or is_secret_key(name):
                self.add_value(value)
                self.add_value(self._indirect(value, variables))
            elif nested:
                self._add_nested(value)

    @staticmethod
    def _indirect(value: Any, variables: dict[str, Any], depth: int = 5) -> Any:
        """The value a plain ``{{ other }}`` reference names, followed through the same mapping."""
        while depth > 0 and isinstance(value, str):
            match = _REFERENCE.fullmatch(value.strip())
            if not match or match.group(1) not in variables:
                return None
            value = variables[match.group(1)]
            depth -= 1
        return value if isinstance(value, str) and "{{" not in value else None

    def _add_nested(self, value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name in self.secret_names or (isinstance(name, str) and _SECRET_IN_WORD.search(name)):
                    self.add_value(item)
                else:
                    self._add_nested(item)
        elif isinstance(value, list):
            for item in value:
                self._add_nested(item)

    def is_secret_name(self, name: object) -> bool:
        if self._pending:
            self.settle()
        return name in self.secret_names or is_secret_key(name)

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if self._pending:
            self.settle()
        if self._pattern is None and self.values:
            ordered = sorted(self.values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
        return self._pattern

    def text(self, text: str) -> str:
        if not text or self.pattern is None:
            return text
        return self.pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """A copy of ``value`` with secret keys masked and secret values replaced in every string."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if self.is_secret_name(key) and item not in (None, "", [], {}) and not isinstance(item, bool):
                    out[key] = MASK
                else:
                    out[key] = self.data(item)
            return out
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.data(item) for item in value)
        if isinstance(value, str):
            return self.text(value)
        return value

    def scrub_in_place(self, value: dict) -> dict:
        """Redact a mapping in place (ansible-runner writes the event it passed to the handler)."""
        cleaned = self.data(value)
        value.clear()
        value.update(cleaned)
        return value

    def scrub_file(self, path: Path) -> bool:
        """Redact one file in place: JSON by key and value, anything else as text. True when it changed."""
        try:
            raw = path.read_bytes()
        except OSError:
            return False
        try:
            original = raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        cleaned = original
        if path.suffix == ".json" or path.name in ("command",) or path.parent.name == "fact_cache":
            try:
                cleaned = json.dumps(self.data(json.loads(original)))
            except ValueError:
                cleaned = self.text(original)
        else:
            cleaned = self.text(original)
        if cleaned == original:
            return False
        mode = path.stat().st_mode & 0o777
        tmp = path.with_name(path.name + ".redacting")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode or 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(cleaned)
        os.replace(tmp, path)
        return True

    def scrub_tree(self, root: Path) -> int:
        """Redact every file under ``root``; returns how many changed."""
        changed = 0
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if self.scrub_file(Path(dirpath) / name):
                    changed += 1
        return changed
