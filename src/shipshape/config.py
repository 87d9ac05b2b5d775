"""Where things are (the collection, the state directory), run ids, and parsing of extra vars."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from pathlib import Path
from typing import Any

import yaml


class UsageError(Exception):
    """Bad usage or input: reported as one line, exit code 3."""


def collection_root() -> Path:
    """The shipshape.ops collection: $SHIPSHAPE_COLLECTION_ROOT, else the checkout this package lives in, else
    the collection installed (``ansible-galaxy collection install``) where Ansible looks for collections."""
    env = os.environ.get("SHIPSHAPE_COLLECTION_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / "playbooks").is_dir():
            raise UsageError(f"SHIPSHAPE_COLLECTION_ROOT={env} has no playbooks/ directory")
        return root
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "galaxy.yml").is_file() and (parent / "playbooks").is_dir():
            return parent
    searched = collections_paths()
    for path in searched:
        root = path / "ansible_collections" / "shipshape" / "ops"
        if (root / "playbooks").is_dir():
            return root
    raise UsageError(
        "cannot find the shipshape.ops collection: install it (ansible-galaxy collection install "
        "shipshape-ops-<version>.tar.gz) into one of " + ", ".join(str(p) for p in searched)
        + ", or set SHIPSHAPE_COLLECTION_ROOT"
    )


def collections_paths() -> list[Path]:
    """Where ansible-playbook will look for collections, as the user configured it: ANSIBLE_COLLECTIONS_PATH,
    else ``collections_path`` of the user's ansible.cfg, else Ansible's defaults."""
    import configparser

    value = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
    if not value:
        for candidate in ansible_cfg_candidates():
            if os.path.isfile(candidate):
                parser = read_ansible_cfg(candidate)
                if parser is None:
                    break
                value = parser.get("defaults", "collections_path", fallback=None) or \
                    parser.get("defaults", "collections_paths", fallback=None)
                break  # Ansible reads the first config file it finds, and only that one
    if not value:
        value = os.pathsep.join(["~/.ansible/collections", "/usr/share/ansible/collections"])
    paths = [Path(os.path.expandvars(part)).expanduser() for part in value.split(os.pathsep) if part]
    # Collections installed into the Python environment (pip install ansible) come last, as in Ansible.
    import sys

    paths += [Path(entry) for entry in sys.path if entry and (Path(entry) / "ansible_collections").is_dir()]
    return paths


def ansible_cfg_candidates() -> list[str]:
    """Where Ansible looks for its config, in its order (ansible.config.manager.find_ini_config_file): ANSIBLE_CONFIG
    (a directory means its ansible.cfg), ./ansible.cfg unless the working directory is world-writable (a file planted
    in /tmp is not the user's: Ansible ignores it), ~/.ansible.cfg, /etc/ansible/ansible.cfg."""
    import stat

    candidates = []
    env = os.environ.get("ANSIBLE_CONFIG")
    if env:
        env = os.path.expanduser(env)
        candidates.append(os.path.join(env, "ansible.cfg") if os.path.isdir(env) else env)
    try:
        cwd = os.getcwd()
        if not os.stat(cwd).st_mode & stat.S_IWOTH:
            candidates.append(os.path.join(cwd, "ansible.cfg"))
    except OSError:
        pass
    candidates += [os.path.expanduser("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"]
    return candidates


def read_ansible_cfg(path: str) -> "Any":
    """An ansible.cfg read as Ansible reads it (UTF-8, undecodable bytes kept as they are: a Latin-1 comment does not
    stop Ansible), or None when Ansible could not read it either (it will say so itself)."""
    import configparser

    # Ansible's own parser strips '; comments' after a value: 'host_key_checking = True ; keep it on' is True to it.
    parser = configparser.ConfigParser(interpolation=None, strict=False, inline_comment_prefixes=(";",))
    try:
        with open(path, "rb") as handle:
            parser.read_string(handle.read().decode("utf-8", errors="surrogateescape"), source=path)
    except (OSError, configparser.Error):
        return None
    return parser


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "shipshape"


def new_run_id(now: dt.datetime | None = None) -> str:
    """UTC stamp plus a short random part: sortable, unique enough for one controller."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def parse_extra_vars(items: list[str] | None, vault: Any = None, secrets: list[str] | None = None) -> dict[str, Any]:
    """Merge ``-e`` values: ``key=value`` (several, space separated), JSON/YAML mappings, or ``@file``.

    A file ansible-playbook would open with its vault (encrypted whole, or holding inline ``!vault`` values) or
    that marks values ``!unsafe`` is read as Ansible reads it, with ``vault`` (a runner.Vault); the values that
    came out of a vault are appended to ``secrets``, and the ``!unsafe`` ones stay data."""
    result: dict[str, Any] = {}
    for item in items or []:
        item = item.strip()
        if not item:
            raise UsageError("-e/--extra-vars: empty value")
        if item.startswith("@"):
            path = Path(item[1:]).expanduser()
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise UsageError(f"-e/--extra-vars: cannot read {path}: {exc.strerror}") from None
            except UnicodeDecodeError as exc:
                raise UsageError(f"-e/--extra-vars: cannot read {path}: not UTF-8 text (byte {exc.start})") from None
            if text.lstrip().startswith("$ANSIBLE_VAULT") or "!vault" in text or "!unsafe" in text:
                data = _ansible_mapping(path, vault, secrets)
            else:
                data = _load_mapping(text, f"-e @{path}")
        elif item[0] in "{[" or ("=" not in item.split(None, 1)[0]):
            data = _load_mapping(item, f"-e {item!r}")
        else:
            data = _key_values(item)
        result.update(data)
    return result


def _load_mapping(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not valid JSON or YAML"
            raise UsageError(f"{what}: cannot parse extra vars ({problem})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{what}: extra vars must be key=value or a mapping, not a {type(data).__name__}")
    return data


def _ansible_mapping(path: Path, vault: Any, secrets: list[str] | None) -> dict[str, Any]:
    """An extra vars file read by Ansible's own loader (vault, ``!vault``, ``!unsafe``), as plain data: strings
    Ansible would not template (``!unsafe``) become runner._Unsafe, written back with the tag."""
    from ansible.errors import AnsibleError
    from ansible.module_utils._internal._datatag import AnsibleTagHelper
    from ansible.parsing.dataloader import DataLoader

    from shipshape.runner import _Unsafe, vault_secrets, vaulted_values

    loader = DataLoader()
    try:
        if vault is not None and (vault.password_files or vault.ids or vault.password):
            loader.set_vault_secrets(vault_secrets(loader, vault))
        data = loader.load_from_file(str(path), cache="none", trusted_as_template=True)
        if data is not None and not isinstance(data, dict):
            raise UsageError(f"-e @{path}: extra vars must be a mapping, not a {type(data).__name__}")
        found = vaulted_values(data or {})

        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {str(key): plain(item) for key, item in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(item) for item in value]
            if isinstance(value, str) or type(value).__name__ == "EncryptedString":
                trusted = any(type(t).__name__ == "TrustedAsTemplate" for t in AnsibleTagHelper.tags(value))
                text = str.__str__(str(value))  # decrypted, and an untagged copy (yaml's SafeDumper takes str only)
                return text if trusted else _Unsafe(text)
            if isinstance(value, bool) or value is None:
                return value
            if isinstance(value, int):
                return int(value)
            if isinstance(value, float):
                return float(value)
            return value

        result = plain(data) if data is not None else {}
    except AnsibleError as exc:
        message = " ".join(str(getattr(exc, "message", None) or exc).split())[:300]
        raise UsageError(f"-e @{path}: {message}") from None
    if secrets is not None:
        secrets.extend(str(value) for value in found)
    return result


def _key_values(text: str) -> dict[str, Any]:
    """key=value pairs as ansible-playbook -e reads them (quotes and {{ templates }} kept together)."""
    from ansible.parsing.splitter import parse_kv

    try:
        data = parse_kv(text)
    except Exception as exc:  # ansible raises its own error types for unbalanced quotes and blocks
        raise UsageError(f"-e {text!r}: cannot parse extra vars ({one_line_error(exc)})") from None
    raw = data.pop("_raw_params", None)
    if raw:
        raise UsageError(f"-e {text!r}: cannot parse extra vars ({raw!r} is not key=value)")
    for key in data:
        if not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            raise UsageError(f"-e {text!r}: cannot parse extra vars ({key!r} is not a variable name)")
    return dict(data)


def one_line_error(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
