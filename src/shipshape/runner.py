"""The runner layer: one class that turns a run request into the kwargs of ``ansible_runner.run`` and runs it.

Tests replace it (or point ``playbook_dir`` at their own playbooks, or pass their own ``run`` function).
Extra vars travel through a 0600 file outside the run directory that is deleted when the run ends, so they
reach neither the command line (``ps``, the ``command`` artifact) nor ``env/extravars``; after the run every
file of the run directory is redacted again (the event handler already redacts events before they are written).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipshape.config import UsageError
from shipshape.events import EventCollector

ARTIFACT_IDENT = "main"


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

    def environment_of(self, host: str) -> str:
        return str(self.hosts.get(host, {}).get("shipshape_environment", "") or "")


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
            raise UsageError(f"playbook {name} not found (looked for {path})")
        return path

    def envvars(self) -> dict[str, str]:
        env = {
            "ANSIBLE_CONFIG": str(self.collection_root / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(self.collection_root / ".collections"),
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
        }
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
    ) -> dict[str, Any]:
        cmdline: list[str] = []
        if extravars_file is not None:
            cmdline += ["-e", f"@{extravars_file}"]
        if spec.check:
            cmdline.append("--check")
        if spec.diff:
            cmdline.append("--diff")
        kwargs: dict[str, Any] = {
            "private_data_dir": str(run_dir),
            "ident": spec.ident,
            "playbook": str(self.playbook_path(spec.playbook)),
            "inventory": str(Path(spec.inventory).resolve()),
            "envvars": self.envvars(),
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
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmpdir = Path(tempfile.mkdtemp(prefix="shipshape-"))
        extravars_file = None
        if spec.extravars:
            extravars_file = tmpdir / "extravars.json"
            fd = os.open(extravars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(spec.extravars, handle)
        kwargs = self.build_kwargs(spec, run_dir, collector, extravars_file)
        started = dt.datetime.now(dt.timezone.utc)
        try:
            run = self._run
            if run is None:
                import ansible_runner

                run = ansible_runner.run
            result = run(**kwargs)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        ended = dt.datetime.now(dt.timezone.utc)
        artifact_dir = run_dir / "artifacts" / spec.ident
        artifact_dir.mkdir(parents=True, exist_ok=True)
        # Our own redacted stdout, from the events.
        (artifact_dir / "stdout").write_text(collector.redactor.text("\n".join(collector.stdout)) + "\n")
        collector.redactor.scrub_tree(run_dir)
        return RunOutcome(
            run_dir=run_dir,
            artifact_dir=artifact_dir,
            status=getattr(result, "status", "error") or "error",
            rc=int(getattr(result, "rc", 1) if getattr(result, "rc", None) is not None else 1),
            stats=getattr(result, "stats", None),
            started=started,
            ended=ended,
            collector=collector,
        )

    # --- the inventory, read in-process -----------------------------------------------------------
    def inventory(self, inventory: Path, pattern: str = "all", limit: str | None = None) -> InventoryView:
        """The hosts ``pattern`` and ``limit`` select, with their variables (not templated)."""
        os.environ.setdefault("ANSIBLE_CONFIG", str(self.collection_root / "ansible.cfg"))
        os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(self.collection_root / ".collections"))
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.utils.display import Display
        from ansible.vars.manager import VariableManager

        # ansible-playbook prints the inventory's warnings itself, into the run's events; do not print them twice.
        display = Display()
        display.warning = lambda *args, **kwargs: None  # type: ignore[method-assign]
        loader = DataLoader()
        manager = InventoryManager(loader=loader, sources=[str(inventory)])
        if not manager.list_hosts("all"):
            raise UsageError(f"inventory {inventory}: no hosts (is it a valid inventory?)")
        variables = VariableManager(loader=loader, inventory=manager)
        if limit:
            manager.subset(limit)
        hosts = {}
        for host in manager.get_hosts(pattern):
            hosts[host.name] = dict(variables.get_vars(host=host, include_hostvars=False))
        return InventoryView(hosts=hosts)
