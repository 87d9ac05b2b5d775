"""The runner layer: one class that turns a run request into the kwargs of ``ansible_runner.run`` and runs it.

Tests replace it (or point ``playbook_dir`` at their own playbooks, or pass their own ``run`` function).
Extra vars travel through a 0600 file outside the run directory that is deleted when the run ends, so they
reach neither the command line (``ps``, the ``command`` artifact) nor ``env/extravars``; after the run every
file of the run directory is redacted again (the event handler already redacts events before they are written).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shipshape.config import ansible_cfg_candidates, read_ansible_cfg
from shipshape.events import EventCollector
from shipshape.private import private_dir, write_private

ARTIFACT_IDENT = "main"
# Loads, once per run, what each forked worker would load again (plugins/callback/prefork.py).
PREFORK_CALLBACK = "shipshape.ops.prefork"


@dataclass
class RunSpec:
    """What to run: a playbook with its inventory, limit and variables."""

    command: str
    playbook: str  # a file name in the playbook directory, or a path
    inventory: Path
    limit: str | None = None
    extravars: dict[str, Any] = field(default_factory=dict)
    check: bool = False
    diff: bool = False
    forks: int | None = None
    verbosity: int = 0
    ident: str = ARTIFACT_IDENT
    # Names in extravars whose values the CLI itself set (--ref, --to, --confirm...): passed as data only
    # (YAML `!unsafe`), so Ansible never templates them. The user's own -e values stay as Ansible treats them.
    literal: frozenset[str] = frozenset()
    vault: "Vault" = field(default_factory=lambda: Vault())
    # Privilege escalation on the hosts: a password file of the user's, or the password typed at -K.
    become_password_file: str | None = None
    become_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Vault:
    """How ansible-playbook opens vaulted values: password files, vault ids (``label@file``), or a password
    the user typed (``--ask-vault-pass``), handed over in a 0600 file of the run's private work directory."""

    password_files: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    password: str | None = field(default=None, repr=False)

    def cmdline(self, password_file: Path | None = None) -> list[str]:
        words: list[str] = []
        for path in self.password_files:
            words += ["--vault-password-file", path]
        for vault_id in self.ids:
            words += ["--vault-id", vault_id]
        if password_file is not None:
            words += ["--vault-password-file", str(password_file)]
        return words


def vaulted_values(variables: dict[str, Any]) -> list[str]:
    """The values that came out of a vault (an encrypted vars file, or an inline ``!vault``): secrets
    whatever their names."""
    try:
        from ansible.module_utils._internal._datatag import AnsibleTagHelper
    except ImportError:  # another ansible-core: names still decide
        return []
    encrypted_files: dict[str, bool] = {}

    def from_vault(value: Any) -> bool:
        for tag in AnsibleTagHelper.tags(value):
            kind = type(tag).__name__
            if kind in ("VaultedValue", "EncryptedString"):
                return True
            path = getattr(tag, "path", None) if kind == "Origin" else None
            if path:
                if path not in encrypted_files:
                    try:
                        with open(path, "rb") as handle:
                            encrypted_files[path] = handle.read(14) == b"$ANSIBLE_VAULT"
                    except OSError:
                        encrypted_files[path] = False
                if encrypted_files[path]:
                    return True
        return False

    found: list[str] = []

    def walk(value: Any) -> None:
        if type(value).__name__ == "EncryptedString":  # an inline !vault value, decrypted when read as str
            try:
                found.append(str(value))
            except Exception:  # no secret opens it: ansible-playbook will say so
                pass
        elif isinstance(value, str):
            if from_vault(value):
                found.append(str(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    walk(variables)
    return found


@dataclass
class RunOutcome:
    run_dir: Path
    artifact_dir: Path
    status: str  # ansible-runner's: successful | failed | timeout | canceled | error
    rc: int
    stats: dict[str, Any] | None
    started: dt.datetime
    ended: dt.datetime
    collector: EventCollector


@dataclass
class InventoryView:
    """The hosts a pattern and limit select, with their (untemplated) variables."""

    hosts: dict[str, dict[str, Any]]
    # The vault passwords the inventory was opened with, a client script's output included: secrets to redact.
    passwords: list[str] = field(default_factory=list)

    def environment_of(self, host: str) -> str:
        return str(self.hosts.get(host, {}).get("shipshape_environment", "") or "")

    def is_production(self, host: str) -> bool:
        """'production' however the inventory spells it (Production, ' production '), or a template only Ansible
        renders (not read here: ask rather than guess)."""
        environment = self.environment_of(host)
        return environment.strip().lower() == "production" or is_template(environment)


# What makes Ansible template a string: an expression, a statement or a comment ('{# x #}prod' renders as 'prod').
TEMPLATE_MARKS = ("{{", "{%", "{#")


def is_template(value: str) -> bool:
    return any(mark in value for mark in TEMPLATE_MARKS)


class RunnerError(Exception):
    """The run cannot start: a playbook or inventory that is not there or holds no hosts."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped part-way (Ctrl-C, SIGTERM, SIGHUP): ``outcome`` is what its events said until then, ``spec``
    what was run, ``how`` what stopped it."""

    def __init__(self, outcome: "RunOutcome", spec: RunSpec, how: str) -> None:
        super().__init__(f"interrupted ({how})")
        self.outcome, self.spec, self.how = outcome, spec, how


class _Unsafe(str):
    """A string written with YAML's `!unsafe` tag: Ansible keeps it as data and never templates it."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Unsafe, lambda dumper, value: dumper.represent_scalar("!unsafe", str(value), style="'"))


def _unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return _Unsafe(value)
    if isinstance(value, dict):
        return {key: _unsafe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unsafe(item) for item in value]
    return value


def extravars_yaml(extravars: dict[str, Any], literal: frozenset[str] | set[str] = frozenset()) -> str:
    """The extra vars file: the names in ``literal`` tagged `!unsafe` (data only), the rest as given."""
    data = {name: (_unsafe(value) if name in literal else value) for name, value in extravars.items()}
    return yaml.dump(data, Dumper=_Dumper, default_flow_style=False, allow_unicode=True, sort_keys=False)


class _CancelOnSignals:
    """While a playbook runs, SIGTERM and SIGHUP ask ansible-runner to cancel it (it stops ansible-playbook),
    so the caller's cleanup runs; Ctrl-C already raises KeyboardInterrupt."""

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)
    # How long ansible-playbook has to stop its workers after our SIGINT, before ansible-runner kills it.
    GRACE_S = 15.0

    def __init__(self, playbook_pid: Callable[[], int | None] = lambda: None) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        self._playbook_pid = playbook_pid
        self._forwarded: float | None = None

    def requested(self) -> bool:
        """ansible-runner's cancel callback. ansible-runner cancels with SIGKILL to ansible-playbook's process group,
        but Ansible's workers run in sessions of their own: killed that way, ansible-playbook left them running the
        task on the hosts. So ansible-playbook gets a SIGINT first (its Ctrl-C: it stops its workers and exits), and
        the SIGKILL only when it has not stopped within GRACE_S."""
        if self.signal is None:
            return False
        pid = self._playbook_pid()
        if pid is None or not _our_child(pid):  # never signal a process that is not this run's ansible-playbook
            return True
        if self._forwarded is None:
            self._forwarded = time.monotonic()
            try:
                os.kill(pid, signal.SIGINT)
            except OSError:
                return True
        return not _alive(pid) or time.monotonic() - self._forwarded > self.GRACE_S

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signal = signum

    def __enter__(self) -> "_CancelOnSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def vault_secrets(loader: Any, vault: Vault) -> list[Any]:
    """The vault secrets ansible-playbook will use, for reading the inventory in-process."""
    from ansible.cli import CLI
    from ansible.parsing.vault import VaultSecret, VaultSecretsContext

    ids = [vault_id for vault_id in vault.ids if not vault_id.endswith("@prompt")]
    secrets = list(CLI.setup_vault_secrets(loader, vault_ids=ids, vault_password_files=list(vault.password_files),
                                           ask_vault_pass=False, auto_prompt=False, initialize_context=False))
    if vault.password is not None:
        secrets.append(("default", VaultSecret(vault.password.encode())))
    # Inline !vault values decrypt through the process-wide context, which ansible-core lets one set once.
    context = VaultSecretsContext.current(optional=True)
    if context is None:
        VaultSecretsContext.initialize(VaultSecretsContext(secrets))
    else:
        context.secrets = secrets
    return secrets


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _our_child(pid: int) -> bool:
    """Whether ``pid`` is a child of this process (ansible-runner's pexpect child: ansible-playbook)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


def sweep_work_dirs(runs: Path) -> list[Path]:
    """Remove the work directories of runs whose process is gone (a SIGKILL): unredacted events."""
    removed = []
    for work in runs.glob(".*.work"):
        parts = work.name.split(".")
        pid = int(parts[-2]) if len(parts) >= 4 and parts[-2].isdigit() else None
        if pid is None or not _alive(pid):
            shutil.rmtree(work, ignore_errors=True)
            removed.append(work)
    return removed


class PlaybookRunner:
    """Builds the kwargs for ``ansible_runner.run`` and runs one playbook of the collection."""

    def __init__(
        self,
        collection_root: Path,
        playbook_dir: Path | None = None,
        run: Callable[..., Any] | None = None,
        quiet: bool = True,
    ) -> None:
        self.collection_root = Path(collection_root)
        self.playbook_dir = Path(playbook_dir) if playbook_dir else self.collection_root / "playbooks"
        self._run = run
        self.quiet = quiet

    # --- inputs -----------------------------------------------------------------------------------
    def playbook_path(self, name: str) -> Path:
        path = Path(name)
        if not path.is_absolute() and path.parent == Path("."):
            path = self.playbook_dir / name
        path = path.resolve()
        if not path.is_file():
            raise RunnerError(f"playbook {name} not found (looked for {path})")
        return path

    def play_names(self, name: str) -> list[str]:
        """The names of the playbook's own plays, in order (imported playbooks are not followed): the plays a run
        is expected to start. Empty when the file cannot be read as a list of plays."""
        import yaml

        try:
            plays = yaml.safe_load(self.playbook_path(name).read_text(encoding="utf-8"))
        except (OSError, RunnerError, yaml.YAMLError):
            return []
        if not isinstance(plays, list):
            return []
        return [str(p["name"]) for p in plays if isinstance(p, dict) and "hosts" in p and p.get("name")]

    @property
    def checkout(self) -> bool:
        """A checkout (scripts/bootstrap made .collections): its own ansible.cfg and collections are used.
        An installed collection runs with the user's ansible.cfg and collections path."""
        return (self.collection_root / ".collections").is_dir()

    @property
    def sandbox_inventory(self) -> Path:
        return self.collection_root / "inventories" / "sandbox" / "hosts.yml"

    def host_key_checking(self) -> str:
        """What the user's own setting says (environment, then their ansible.cfg), default True.

        ansible-runner sets ANSIBLE_HOST_KEY_CHECKING=False when the variable is unset, and that beats a
        config file's ``host_key_checking = True``: so the CLI always sets it explicitly."""
        if os.environ.get("ANSIBLE_HOST_KEY_CHECKING") is not None:
            return os.environ["ANSIBLE_HOST_KEY_CHECKING"]
        ours = (self.collection_root / "ansible.cfg").resolve()
        for candidate in ansible_cfg_candidates():
            if not os.path.isfile(candidate):
                continue
            if Path(candidate).resolve() == ours:
                continue  # the collection's own config is not the user's choice
            parser = read_ansible_cfg(candidate)
            if parser is None:
                return "True"
            value = parser.get("defaults", "host_key_checking", fallback=None)
            return value.strip() if value is not None else "True"
        return "True"

    def callbacks_enabled(self) -> str:
        """The callbacks ansible-playbook would enable (its environment, else the config it will read), and the
        collection's ``prefork``, which only makes each task's worker cheaper to start (docs/cli.md)."""
        value = os.environ.get("ANSIBLE_CALLBACKS_ENABLED")
        if value is None:
            candidates = [str(self.collection_root / "ansible.cfg")] if self.checkout else ansible_cfg_candidates()
            for candidate in candidates:
                if os.path.isfile(candidate):
                    parser = read_ansible_cfg(candidate)
                    value = parser.get("defaults", "callbacks_enabled", fallback="") if parser is not None else ""
                    break
        names = [name.strip() for name in (value or "").split(",") if name.strip()]
        if PREFORK_CALLBACK not in names:
            names.append(PREFORK_CALLBACK)
        return ",".join(names)

    def envvars(self, inventory: Path | None = None) -> dict[str, str]:
        env = {"ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_CALLBACKS_ENABLED": self.callbacks_enabled()}
        if self.checkout:
            env["ANSIBLE_CONFIG"] = str(self.collection_root / "ansible.cfg")
            env["ANSIBLE_COLLECTIONS_PATH"] = str(self.collection_root / ".collections")
        if inventory is not None and Path(inventory).resolve() == self.sandbox_inventory.resolve():
            # The built-in sandbox: containers reached through the docker connection, which has no host
            # keys. Today's behaviour, and the user's environment still wins.
            env["ANSIBLE_HOST_KEY_CHECKING"] = os.environ.get("ANSIBLE_HOST_KEY_CHECKING", "False")
        else:
            # A real inventory: host keys are checked unless the user's own config or environment says not.
            env["ANSIBLE_HOST_KEY_CHECKING"] = self.host_key_checking()
        # Run as /path/.venv/bin/shipshape (a systemd timer, cron) the venv is not on PATH: ansible-playbook
        # must still be the one installed beside this interpreter.
        path = os.environ.get("PATH", os.defpath)
        bindir = str(Path(sys.executable).parent)
        if bindir not in path.split(os.pathsep):
            env["PATH"] = os.pathsep.join([bindir, path])
        return env

    def build_kwargs(
        self,
        spec: RunSpec,
        run_dir: Path,
        handler: Callable[[dict], bool],
        extravars_file: Path | None = None,
        password_file: Path | None = None,
        become_file: Path | None = None,
    ) -> dict[str, Any]:
        cmdline: list[str] = []
        if extravars_file is not None:
            cmdline += ["-e", f"@{extravars_file}"]
        cmdline += spec.vault.cmdline(password_file)
        for path in (spec.become_password_file, become_file):
            if path is not None:
                cmdline += ["--become-password-file", str(path)]
        if spec.check:
            cmdline.append("--check")
        if spec.diff:
            cmdline.append("--diff")
        kwargs: dict[str, Any] = {
            "private_data_dir": str(run_dir),
            "ident": spec.ident,
            "playbook": str(self.playbook_path(spec.playbook)),
            "inventory": str(Path(spec.inventory).resolve()),
            "envvars": self.envvars(spec.inventory),
            "event_handler": handler,
            "quiet": self.quiet,
            # Nothing written to env/ (extravars, cmdline); stdout is written by us, redacted, from the events.
            "suppress_env_files": True,
            "settings": {"suppress_output_file": True},
            # Relative paths in extra vars mean what they mean where shipshape was started.
            "project_dir": os.getcwd(),
        }
        if cmdline:
            kwargs["cmdline"] = shlex.join(cmdline)
        if spec.limit:
            kwargs["limit"] = spec.limit
        if spec.forks:
            kwargs["forks"] = spec.forks
        if spec.verbosity:
            kwargs["verbosity"] = spec.verbosity
        return kwargs

    # --- running ----------------------------------------------------------------------------------
    def run(self, spec: RunSpec, run_dir: Path, collector: EventCollector) -> RunOutcome:
        """Run in a private work directory (0700) beside ``run_dir``; only redacted files reach ``run_dir``.

        ansible-runner writes its events to disk as they come; a run stopped by SIGTERM, SIGHUP or Ctrl-C is
        cancelled and its work directory removed, and one left by a SIGKILL is removed by the next run."""
        private_dir(run_dir.parent, adopt=True)
        sweep_work_dirs(run_dir.parent)
        private_dir(run_dir, adopt=True)
        work = run_dir.parent / f".{run_dir.name}.{os.getpid()}.work"
        private_dir(work, adopt=True)
        extravars_file = password_file = become_file = None
        result: Any = None
        interrupted: str | None = None
        try:
            # Inside the try: a full disk (or anything else) while the secrets are written must not leave them behind.
            if spec.extravars:
                extravars_file = work / "extravars.yml"
                fd = os.open(extravars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:  # as Ansible reads it, whatever the locale
                    handle.write(extravars_yaml(spec.extravars, spec.literal))
            if spec.vault.password is not None:
                password_file = write_private(work / "vault-password", spec.vault.password + "\n")
            if spec.become_password is not None:
                become_file = write_private(work / "become-password", spec.become_password + "\n")
            kwargs = self.build_kwargs(spec, work, collector, extravars_file, password_file, become_file)
            started = dt.datetime.now(dt.timezone.utc)
            with _CancelOnSignals(lambda: collector.playbook_pid) as cancel:
                kwargs["cancel_callback"] = cancel.requested
                run = self._run
                if run is None:
                    import ansible_runner

                    run = ansible_runner.run
                try:
                    result = run(**kwargs)
                except KeyboardInterrupt:
                    interrupted = "Ctrl-C"
                if cancel.signal is not None:
                    interrupted = signal.Signals(cancel.signal).name
            ended = dt.datetime.now(dt.timezone.utc)
            status = getattr(result, "status", "error") or "error"
            rc = int(getattr(result, "rc", 1) if getattr(result, "rc", None) is not None else 1)
            stats = getattr(result, "stats", None)  # read from the work directory's events
            for used in (extravars_file, password_file, become_file):
                if used is not None:
                    used.unlink()
            collector.redactor.scrub_tree(work)
            # Stopped: ansible-playbook may still be writing its events there, unredacted: none of them is kept (the
            # collector has them, redacted, for the report).
            if interrupted is None and (work / "artifacts").is_dir():
                # One directory per ident: a deploy's check pass ("check") and its run ("main") share run_dir, so
                # the second run's artifacts/ must not be moved *into* the first one's (artifacts/artifacts/main).
                kept = private_dir(run_dir / "artifacts", adopt=True)
                for each in (work / "artifacts").iterdir():
                    target = kept / each.name
                    if target.is_symlink() or target.is_file():
                        target.unlink()
                    elif target.exists():
                        shutil.rmtree(target)
                    shutil.move(str(each), str(target))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        artifact_dir = run_dir / "artifacts" / spec.ident
        if interrupted is not None:
            outcome = RunOutcome(run_dir=run_dir, artifact_dir=artifact_dir,
                                 # canceled, whether ansible-runner killed it or it stopped at our SIGINT
                                 status="canceled", rc=rc if result is not None else -1,
                                 stats=stats, started=started, ended=ended, collector=collector)
            if collector.event_count:  # it started: what it printed until then
                private_dir(artifact_dir, adopt=True)
                write_private(artifact_dir / "stdout", collector.redactor.text("\n".join(collector.stdout)) + "\n")
            raise RunInterrupted(outcome, spec, interrupted)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        # Our own redacted stdout, from the events.
        write_private(artifact_dir / "stdout", collector.redactor.text("\n".join(collector.stdout)) + "\n")
        collector.redactor.scrub_tree(run_dir)
        return RunOutcome(
            run_dir=run_dir,
            artifact_dir=artifact_dir,
            status=status,
            rc=rc,
            stats=stats,
            started=started,
            ended=ended,
            collector=collector,
        )

    # --- the inventory, read in-process -----------------------------------------------------------
    def inventory(self, inventory: Path, pattern: str = "all", limit: str | None = None,
                  vault: Vault | None = None) -> InventoryView:
        """The hosts ``pattern`` and ``limit`` select, with their variables (not templated; vaulted values
        decrypted when ``vault`` opens them, so that they can be redacted)."""
        if self.checkout:
            os.environ.setdefault("ANSIBLE_CONFIG", str(self.collection_root / "ansible.cfg"))
            os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(self.collection_root / ".collections"))
        from ansible.errors import AnsibleError

        try:
            return self._inventory(inventory, pattern, limit, vault)
        except AnsibleError as exc:
            # A vault password that is missing or wrong, a vault password file that is not there, an inventory
            # Ansible cannot parse: one line (exit 3), before anything runs.
            message = " ".join(str(getattr(exc, "message", None) or exc).split())[:500]
            raise RunnerError(f"inventory {inventory}: {message}") from None

    def _inventory(self, inventory: Path, pattern: str, limit: str | None, vault: Vault | None) -> InventoryView:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.utils.display import Display
        from ansible.vars.manager import VariableManager

        # ansible-playbook prints the inventory's warnings itself, into the run's events; do not print them twice.
        display = Display()
        display.warning = lambda *args, **kwargs: None  # type: ignore[method-assign]
        loader = DataLoader()
        passwords: list[str] = []
        if vault is not None and (vault.password_files or vault.ids or vault.password):
            secrets = vault_secrets(loader, vault)
            loader.set_vault_secrets(secrets)
            for _label, secret in secrets:
                try:
                    passwords.append(secret.bytes.decode("utf-8", errors="surrogateescape"))
                except (AttributeError, TypeError):  # a secret that holds none (not loaded)
                    continue
        manager = InventoryManager(loader=loader, sources=[str(inventory)])
        if not manager.list_hosts("all"):
            raise RunnerError(f"inventory {inventory}: no hosts (is it a valid inventory?)")
        variables = VariableManager(loader=loader, inventory=manager)
        if limit:
            manager.subset(limit)
        hosts = {}
        for host in manager.get_hosts(pattern):
            hosts[host.name] = dict(variables.get_vars(host=host, include_hostvars=False))
        return InventoryView(hosts=hosts, passwords=passwords)
