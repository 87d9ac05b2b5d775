"""What each command does, between the argument parser (cli.py) and the runner layer (runner.py):
confirmations, the run itself, the exit code, the reports and the history."""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

from shipshape.config import UsageError, collection_root, default_state_dir, new_run_id, parse_extra_vars
from shipshape.display import NullProgress, PlainProgress, RichProgress
from shipshape.events import EventCollector, one_line, printable
from shipshape.history import History, sparkline
from shipshape.private import private_dir
from shipshape.redact import Redactor, no_log_options
from shipshape.exit_codes import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_NO_HOSTS,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    RESULT_OF_EXIT,
)
from shipshape.report import RunReport, render_terminal, to_json, to_markdown, write_reports
from shipshape.runner import (InventoryView, PlaybookRunner, RunInterrupted, RunnerError, RunOutcome, RunSpec, Vault,
                              is_template, vaulted_values)
from shipshape.validate import IDENT_MAX, InvalidValue

# Commands that ask before they run against a production inventory.
CONFIRMED = {"deploy", "rollback", "restore", "recover", "disaster-recovery"}
# The extra var that moves a command's playbook to other hosts (playbooks/*.yml: `hosts: "{{ deploy_hosts |
# default('app_servers') }}"`), and the pattern it makes in place of the command's own.
HOSTS_VARS = {"deploy": ("deploy_hosts", "{}"), "rollback": ("rollback_hosts", "{}"),
              "restore": ("restore_hosts", "{}:app_servers"), "recover": ("recovery_hosts", "{}")}


@dataclass
class Options:
    """The common options of every playbook command."""

    inventory: str | None = None
    limit: str | None = None
    extra_vars: list[str] = field(default_factory=list)
    check: bool = False
    diff: bool = False
    yes: bool = False
    forks: int | None = None
    report_dir: str | None = None
    quiet: bool = False
    json: bool = False
    state_dir: str | None = None
    verbosity: int = 0
    vault_password_files: list[str] = field(default_factory=list)
    vault_ids: list[str] = field(default_factory=list)
    ask_vault_pass: bool = False
    become_password_file: str | None = None
    ask_become_pass: bool = False


@dataclass
class Request:
    """One playbook command: which playbook, the variables the command sets, the hosts it targets."""

    command: str
    playbook: str
    variables: dict[str, Any] = field(default_factory=dict)
    pattern: str | None = "all"  # the hosts the playbook targets, for the confirmation (None: unknown)
    argv: list[str] = field(default_factory=list)


def exit_code(outcome: RunOutcome) -> tuple[int, str]:
    """Map the runner's status, rc and events to the CLI's exit code and a one-line message.

    When several apply: no hosts (5), a held lock (4), a backup name to choose (3), an unreachable host (2),
    a failed task (1)."""
    collector = outcome.collector
    # The collector's recap first: it counts a lost docker connection as unreachable, as Ansible does SSH's.
    stats = collector.stats or outcome.stats or {}
    failures = collector.failure_messages()
    has_results = any(r.status != "running" for r in collector.tasks.values())
    if not has_results and collector.no_hosts_matched:
        return EXIT_NO_HOSTS, "no hosts matched (check --limit and the inventory's groups)"
    if collector.lock_held:
        # the host's name: in a fleet, the lock to break is on one host
        held = [f"{r.host}: {r.message}" for r in collector.tasks.values() if r.lock_held]
        return EXIT_LOCKED, held[0] if held else "the deploy lock is held"
    if collector.name_required:
        # Not a failure of the hosts: the command needs --name (the message lists the names to choose from).
        return EXIT_USAGE, collector.name_required[0]
    if any(stats.get("dark", {}).values()):
        unreachable = [f for f in failures if f.split(":", 1)[0] in stats["dark"]]
        return EXIT_UNREACHABLE, (unreachable or failures or ["a host is unreachable"])[0]
    if any(stats.get("failures", {}).values()) or failures:
        return EXIT_FAILED, (failures or ["a task failed"])[0]
    if outcome.status == "successful" and outcome.rc == 0:
        return EXIT_OK, ""
    if not has_results:
        # Ansible stopped before any task: a syntax error, an undefined variable in the play, a bad file.
        return EXIT_USAGE, (collector.errors or [f"ansible-playbook failed (rc {outcome.rc}) before any task ran"])[0]
    return EXIT_FAILED, (collector.errors or [f"ansible-playbook failed (rc {outcome.rc}, {outcome.status})"])[0]


class App:
    """Runs the commands. Tests construct it with their own runner, streams and state directory."""

    def __init__(
        self,
        runner: PlaybookRunner | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        stdin: TextIO | None = None,
        interactive: bool | None = None,
    ) -> None:
        self._runner = runner
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.stdin = stdin or sys.stdin
        self._interactive = interactive

    # --- small helpers ----------------------------------------------------------------------------
    @property
    def runner(self) -> PlaybookRunner:
        if self._runner is None:
            self._runner = PlaybookRunner(collection_root())
        return self._runner

    @property
    def interactive(self) -> bool:
        if self._interactive is not None:
            return self._interactive
        return self.stdin.isatty() and self.stdout.isatty()

    def state_dir(self, options: Options) -> Path:
        # Absolute: the history keeps each run's directory, which `report` reads from wherever it is started.
        return (Path(options.state_dir).expanduser() if options.state_dir else default_state_dir()).absolute()

    def history(self, options: Options) -> History:
        return History(self.state_dir(options) / "history.sqlite")

    def console(self, stream: TextIO | None = None) -> Any:
        from rich.console import Console

        stream = stream or self.stdout
        return Console(file=stream, highlight=False, soft_wrap=True,
                       force_terminal=None if stream.isatty() else False, width=None if stream.isatty() else 160)

    def say(self, text: str, err: bool = False) -> None:
        stream = self.stderr if err else self.stdout
        stream.write(printable(text) + "\n")
        stream.flush()

    def inventory_path(self, options: Options) -> Path:
        if options.inventory:
            path = Path(options.inventory).expanduser()
            if not path.exists():
                raise UsageError(f"inventory not found: {options.inventory}")
            return path.resolve()
        path = self.runner.collection_root / "inventories" / "sandbox" / "hosts.yml"
        if not path.exists():
            raise UsageError(f"the default inventory is missing: {path}")
        return path

    @staticmethod
    def writable_dir(path: Path, option: str, value: str, adopt: bool = False) -> None:
        """A directory the run will write its reports (or history) into: made now, before anything runs, so that an
        unusable one is bad input (exit 3), not a traceback after the playbook changed the hosts."""
        try:
            private_dir(path, adopt=adopt)
        except OSError as exc:
            raise UsageError(f"{option} {value}: cannot use {path} ({exc.strerror or exc})") from None
        if not os.access(path, os.W_OK | os.X_OK):
            raise UsageError(f"{option} {value}: {path} is not writable")

    def progress(self, options: Options, label: str = "") -> NullProgress:
        if options.quiet:
            return NullProgress()
        stream = self.stderr if options.json else self.stdout
        if stream.isatty():
            return RichProgress(self.console(stream), label=label)
        return PlainProgress(stream, label=label)

    def ask(self, prompt: str, option: str) -> str:
        """A password typed on the terminal (never echoed, never on a command line)."""
        if not self.interactive:
            raise UsageError(f"{option} needs a terminal; use a password file instead")
        return getpass.getpass(prompt, stream=self.stderr)

    def vault(self, options: Options) -> Vault:
        """The vault options, with the password asked for now when --ask-vault-pass says so."""
        for vault_id in options.vault_ids:
            if vault_id.endswith("@prompt") or vault_id == "prompt":
                raise UsageError(f"--vault-id {vault_id}: prompting per vault id is not supported; "
                                 "use --ask-vault-pass or a password file (label@path)")
            label, at, source = vault_id.partition("@")
            _password_source("--vault-id", vault_id, source if at else label)
        for path in options.vault_password_files:
            _password_source("--vault-password-file", path, path)
        password = self.ask("Vault password: ", "--ask-vault-pass") if options.ask_vault_pass else None
        return Vault(password_files=tuple(options.vault_password_files), ids=tuple(options.vault_ids),
                     password=password)

    # --- playbook commands ------------------------------------------------------------------------
    def run_playbook(self, request: Request, options: Options) -> int:
        runner = self.runner
        inventory = self.inventory_path(options)
        vault = self.vault(options)  # before the extra vars: an -e @file may be vaulted
        vaulted: list[str] = []
        variables = parse_extra_vars(options.extra_vars, vault=vault, secrets=vaulted)
        variables.update(request.variables)
        runner.playbook_path(request.playbook)  # a missing playbook is bad input, before anything runs

        become_password = self.ask("BECOME password: ", "--ask-become-pass") if options.ask_become_pass else None
        if options.become_password_file and not Path(options.become_password_file).expanduser().is_file():
            raise UsageError(f"--become-password-file {options.become_password_file}: no such file")
        redactor = Redactor(secret_names=no_log_options(runner.collection_root))
        redactor.add_vars(variables)
        redactor.add_value(vaulted)
        redactor.add_value(become_password)
        redactor.add_value(vault.password)  # typed at --ask-vault-pass, as -K's is
        # The passwords in the user's own files: a task that reads one (a lookup, a cat) must not print it.
        for option, path in password_files(options):
            redactor.add_value(_password_in_file(option, path))
        pattern = targeted_pattern(request, variables)
        if request.command in CONFIRMED:
            # Needed before anything runs: is any targeted host production?
            view = runner.inventory(inventory, pattern, options.limit, vault=vault)
            redactor.add_value(view.passwords)
            for host_vars in view.hosts.values():
                learn_secrets(redactor, host_vars)
            if not view.hosts and options.limit:
                raise NoHosts(f"no hosts matched --limit {options.limit} among '{pattern}' in {inventory}")
        else:
            # Only its secret values are needed, by the first event: read it while ansible-playbook starts.
            view = InventoryView(hosts={})
            redactor.defer(self._learn_inventory_secrets(runner, inventory, redactor, vault))

        state = self.state_dir(options)
        self.writable_dir(state / "runs", "--state-dir", options.state_dir or str(state), adopt=True)
        if options.report_dir:
            self.writable_dir(Path(options.report_dir).expanduser(), "--report-dir", options.report_dir)
        run_id = new_run_id()
        run_dir = state / "runs" / run_id
        base = RunSpec(command=request.command, playbook=request.playbook, inventory=inventory, limit=options.limit,
                       extravars=variables, check=options.check, diff=options.diff, forks=options.forks,
                       verbosity=options.verbosity, literal=frozenset(request.variables), vault=vault,
                       become_password_file=(str(Path(options.become_password_file).expanduser())
                                             if options.become_password_file else None),
                       become_password=become_password)

        production = sorted(h for h in view.hosts if view.is_production(h))
        if request.command in CONFIRMED and production and not options.check and not options.yes:
            if not self.interactive:
                raise UsageError(
                    f"{request.command} on production ({', '.join(production)}) needs confirmation: "
                    "run it from a terminal, or pass --yes"
                )
            try:
                code = self.confirm(request, base, run_dir, redactor, options, production)
            except KeyboardInterrupt as exc:  # the check pass (or the question) stopped
                return self.interrupted(request, options, run_dir, redactor, run_id, exc)
            if code is not None:
                return code

        collector = EventCollector(redactor)
        progress = self.progress(options)
        progress.attach(collector)
        try:
            with progress:
                outcome = runner.run(base, run_dir, collector)
        except KeyboardInterrupt as exc:
            return self.interrupted(request, options, run_dir, redactor, run_id, exc)
        code, message = exit_code(outcome)
        if code == EXIT_NO_HOSTS and options.limit:
            message = f"no hosts matched --limit {options.limit} in {inventory}"
        report = self.build_report(request, options, base, outcome, code, message, redactor, run_id)
        # A playbook Ansible ended early (a whole batch lost): what its last plays would have named.
        undone = collector.cut_short(runner.play_names(base.playbook), list(view.hosts))
        report.warnings = [redactor.text(line) for line in undone] + report.warnings
        return self.finish(report, options, run_dir)

    def interrupted(self, request: Request, options: Options, run_dir: Path, redactor: Redactor, run_id: str,
                    exc: KeyboardInterrupt) -> int:
        """A run stopped by Ctrl-C, SIGTERM or SIGHUP: recorded (history, reports) with what its events said, once
        ansible-playbook had started; one stopped before that leaves nothing (nor an empty run directory)."""
        if isinstance(exc, RunInterrupted) and exc.outcome.collector.event_count:
            outcome = exc.outcome
            done = sum(1 for r in outcome.collector.tasks.values() if r.status != "running")
            under_way = [f"{r.host}: {r.task}" for r in outcome.collector.tasks.values() if r.status == "running"]
            message = (f"interrupted ({exc.how}) after {done} task result(s)"
                       + (f", during {'; '.join(under_way[:3])}" if under_way else "")
                       + ": the hosts may be part-way; check them with shipshape status")
            report = self.build_report(request, options, exc.spec, outcome, EXIT_INTERRUPTED, message, redactor, run_id)
            return self.finish(report, options, run_dir)
        # Nothing ran: name run_dir only when it holds something (a deploy's check pass), and leave no empty run
        # directory behind.
        if run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
        if run_dir.is_dir():
            self.say(f"interrupted; what the run kept is in {run_dir}", err=True)
        else:
            self.say("interrupted; the run was stopped and nothing of it was kept (no report, no history entry): "
                     "check the hosts with shipshape status", err=True)
        return EXIT_INTERRUPTED

    @staticmethod
    def _learn_inventory_secrets(runner: PlaybookRunner, inventory: Path, redactor: Redactor,
                                 vault: Vault) -> threading.Thread:
        def learn() -> None:
            try:
                view = runner.inventory(inventory, vault=vault)
                redactor.add_value(view.passwords)
                for host_vars in view.hosts.values():
                    learn_secrets(redactor, host_vars)
            except Exception:  # ansible-playbook will say what is wrong with the inventory
                pass

        thread = threading.Thread(target=learn, name="shipshape-inventory", daemon=True)
        thread.start()
        return thread

    def build_report(self, request: Request, options: Options, spec: RunSpec, outcome: RunOutcome, code: int,
                     message: str, redactor: Redactor, run_id: str) -> RunReport:
        report = RunReport.from_summary(
            outcome.collector.summary(),
            run_id=run_id,
            command=request.command,
            playbook=str(self.runner.playbook_path(spec.playbook)),
            inventory=str(spec.inventory),
            limit=spec.limit,
            argv=[redactor.text(a) for a in request.argv],
            user=os.environ.get("SHIPSHAPE_USER") or getpass.getuser(),
            check=spec.check,
            diff=spec.diff,
            started=outcome.started.isoformat(timespec="seconds"),
            ended=outcome.ended.isoformat(timespec="seconds"),
            duration_s=round((outcome.ended - outcome.started).total_seconds(), 2),
            result=RESULT_OF_EXIT.get(code, "failed"),
            exit_code=code,
            message=redactor.text(message),
            runner_status=outcome.status,
            runner_rc=outcome.rc,
            extravars=redactor.data(spec.extravars),
        )
        return report

    def finish(self, report: RunReport, options: Options, run_dir: Path) -> int:
        report.artifacts = {
            "run_dir": str(run_dir),
            "report_json": str(run_dir / "report.json"),
            "report_md": str(run_dir / "report.md"),
            "junit_xml": str(run_dir / "junit.xml"),
            "job_events": str(run_dir / "artifacts" / "main" / "job_events"),
            "stdout": str(run_dir / "artifacts" / "main" / "stdout"),
        }
        directories = [run_dir] + ([Path(options.report_dir).expanduser()] if options.report_dir else [])
        paths: dict[str, Path] = {}
        for index, directory in enumerate(directories):
            # The run happened: a full disk or a directory gone since the start must not hide its result, nor
            # keep it out of the history. Said on stderr; the exit code stays the run's.
            try:
                written = write_reports(report, [directory])
            except (OSError, UsageError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc, 300)
                self.say(f"shipshape: could not write the reports to {directory}: {reason}", err=True)
                continue
            if index == 0:
                paths = written
        try:
            self.history(options).record(report, run_dir)
        except Exception as exc:  # the run happened; a history problem must not hide it
            self.say(f"shipshape: could not record the run in the history: {exc}", err=True)
        if options.json:
            self.stdout.write(to_json(report))
            return report.exit_code
        if not options.quiet:
            render_terminal(report, self.console())
        if report.exit_code != EXIT_OK:
            self.say(f"shipshape {report.command}: {report.result} (exit {report.exit_code}): {report.message}", err=True)
            self.say(f"the run's artifacts are in {run_dir}", err=True)
        if not options.quiet:
            shown = [str(p) for p in paths.values()]
            if options.report_dir:
                shown.append(f"(copies in {Path(options.report_dir).expanduser()})")
            self.say("reports: " + "  ".join(shown))
        return report.exit_code

    def confirm(self, request: Request, base: RunSpec, run_dir: Path, redactor: Redactor, options: Options,
                production: list[str]) -> int | None:
        """Show what will change on production and ask. None: go on; an int: stop with that exit code."""
        lines: list[str] = []
        if request.command == "deploy":
            check = RunSpec(**{**base.__dict__, "check": True, "ident": "check"})
            collector = EventCollector(redactor)
            progress = self.progress(options, label="check: ")
            progress.attach(collector)
            with progress:
                outcome = self.runner.run(check, run_dir, collector)
            code, message = exit_code(outcome)
            if code != EXIT_OK:
                self.say(f"shipshape deploy: the check pass failed (exit {code}): {redactor.text(message)}", err=True)
                self.say(f"the run's artifacts are in {run_dir}", err=True)
                return code
            lines = collector.changes or ["(the check pass reported no changes)"]
        elif request.command == "rollback":
            target = request.variables.get("rollback_to") or "the previous good release"
            lines = [f"{host}: roll back to {target}" for host in production]
        elif request.command == "restore":
            name = request.variables.get("restore_backup_name")
            backup = request.variables.get("restore_backup_id") or (
                f"the newest verified backup of {name}" if name else "the newest verified backup")
            db = request.variables.get("restore_confirm")
            # roles/restore shortens the name it keeps the old database under to PostgreSQL's 63 bytes.
            shortened = ", shortened to 63 bytes" if len(f"{db}_before_YYYYmmddHHMMSS".encode()) > IDENT_MAX else ""
            lines = [f"{host}: restore {backup} into {db} (the current database is kept as {db}_before_<time>{shortened})"
                     for host in production]
        elif request.command == "recover":
            lines = [f"{host}: {request.variables.get('recovery_action')} (counted first; above the threshold only "
                     f"with --confirm)" for host in production]
        elif request.command == "disaster-recovery":
            lines = [f"{host}: provision, restore the newest verified backups and redeploy" for host in production]
        self.say(f"{request.command} on production ({', '.join(production)}). What will change:")
        for line in lines:
            self.say("  " + redactor.text(line))
        self.stdout.write("Proceed? [y/N] ")
        self.stdout.flush()
        answer = self.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            self.say("not confirmed: nothing was changed", err=True)
            return EXIT_USAGE
        return None

    # --- history and report -----------------------------------------------------------------------
    def show_history(self, options: Options, drills: bool = False, limit: int = 20, name: str | None = None) -> int:
        history = self.history(options)
        if drills:
            rows = history.drills(name=name)
            names = sorted({r["name"] for r in rows})
            # the last `limit` drills of each name, oldest first within it
            rows = [r for n in names for r in [x for x in rows if x["name"] == n][-limit:]]
            if options.json:
                self.stdout.write(json.dumps(rows, indent=2) + "\n")
                return EXIT_OK
            if not rows:
                self.say(f"no drills of {name} recorded yet (shipshape drill --name {name})" if name
                         else "no drills recorded yet (shipshape drill)")
                return EXIT_OK
            from rich.table import Table
            from rich.text import Text

            table = Table(show_edge=False, header_style="bold")
            for column in ("name", "run", "started", "result", "backup", "recovery", "change"):
                table.add_column(column, no_wrap=column in ("run", "started"), overflow="fold")
            for row in rows:
                seconds = row["drill_recovery_s"]
                delta = row["delta_s"]
                table.add_row(*(Text(printable(cell)) for cell in (
                    row["name"] or "-", row["run_id"], row["started"] or "", row["result"] or "",
                    ", ".join(row["backup_ids"]), f"{seconds:.1f}s" if seconds is not None else "-",
                    (f"{delta:+.1f}s" if delta is not None else ""))))
            console = self.console()
            console.print(table)
            for each in names:  # one trend per database: drills of different names are never mixed
                mine = [r["drill_recovery_s"] for r in rows if r["name"] == each]
                trend = sparkline(mine)
                if trend:
                    known = [s for s in mine if s is not None]
                    console.print(Text(printable(f"{each or '(no backup)'}: recovery time, oldest to newest: {trend}  "
                                                 f"(last {known[-1]:.1f}s, best {min(known):.1f}s, "
                                                 f"worst {max(known):.1f}s)")))  # a name's [brackets] are no markup
            return EXIT_OK
        rows = history.runs(limit=limit, name=name)
        if options.json:
            self.stdout.write(json.dumps(rows, indent=2) + "\n")
            return EXIT_OK
        if not rows:
            self.say(f"no runs of backup name {name} recorded in {history.path}" if name
                     else f"no runs recorded yet in {history.path}")
            return EXIT_OK
        from rich.table import Table
        from rich.text import Text

        table = Table(show_edge=False, header_style="bold")
        for column in ("run", "command", "result", "started", "duration", "user", "inventory", "releases / backups"):
            # The run id is what `shipshape report RUN` takes: never cut it.
            table.add_column(column, no_wrap=column in ("run", "started"), overflow="fold")
        for row in rows:
            ids = ", ".join(row["release_ids"] + row["backup_ids"])
            inventory = Path(row["inventory"] or "").name if row["inventory"] else ""
            if row["run_limit"]:
                inventory += f" ({row['run_limit']})"
            command = row["command"] + (" --check" if row["check_mode"] else "")
            # From the history: a user or inventory name's control sequences and [markup] are shown, not obeyed.
            table.add_row(*(Text(printable(cell)) for cell in (row["run_id"], command, row["result"] or "",
                                                                row["started"] or "", f"{row['duration_s'] or 0:.1f}s",
                                                                row["user"] or "", inventory, ids)))
        self.console().print(table)
        return EXIT_OK

    def show_report(self, run: str, options: Options) -> int:
        row = self.history(options).find(run)
        path = Path(row["run_dir"]) / "report.json" if row else self.state_dir(options) / "runs" / run / "report.json"
        if row and not path.is_file():  # recorded with a relative --state-dir by an older version
            path = self.state_dir(options) / "runs" / row["run_id"] / "report.json"
        if not path.is_file():
            raise UsageError(f"no run {run!r} in {self.state_dir(options)} (see shipshape history)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if options.json:
                self.stdout.write(json.dumps(data, indent=2) + "\n")
                return EXIT_OK
            report = RunReport.from_dict(data)
            markdown = to_markdown(report)  # its tasks, hosts and results are read here
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # cut short (full disk) or edited by hand
            raise UsageError(f"report {path} cannot be read: {one_line(exc, 200)}") from None
        if self.stdout.isatty():
            from rich.markdown import Markdown

            self.console().print(Markdown(markdown))
        else:
            self.stdout.write(markdown + "\n")
        return EXIT_OK


def targeted_pattern(request: Request, variables: dict[str, Any]) -> str:
    """The hosts the playbook will run on, for the production check: the command's pattern, or the one its hosts
    variable (-e deploy_hosts=...) puts in its place; "all" when that is a template only Ansible can render, a comment
    included (a host it names could be production: ask rather than guess)."""
    pattern = request.pattern or "all"
    name, form = HOSTS_VARS.get(request.command, (None, ""))
    if name is None or name not in variables:
        return pattern
    value = variables[name]
    if isinstance(value, list):
        value = ":".join(str(item) for item in value)
    if not isinstance(value, str) or not value.strip() or is_template(value):
        return "all"
    return form.format(value.strip())


def _password_source(option: str, value: str, path: str) -> None:
    """A vault password file (or client script) must be there before anything runs: ansible-playbook would stop
    after the run directory and the history row were made, and the in-process inventory read with a traceback."""
    if not path:
        raise UsageError(f"{option} {value!r}: expected a password file (label@path for --vault-id)")
    if not Path(path).expanduser().is_file():
        raise UsageError(f"{option} {value}: no such file: {path}")


def password_files(options: Options) -> list[tuple[str, str]]:
    """(option, path) of every password file the run hands to ansible-playbook."""
    files = [("--vault-password-file", path) for path in options.vault_password_files]
    for vault_id in options.vault_ids:
        label, at, source = vault_id.partition("@")
        files.append(("--vault-id", source if at else label))
    if options.become_password_file:
        files.append(("--become-password-file", options.become_password_file))
    return files


def _password_in_file(option: str, path: str) -> list[str]:
    """The password a file holds, as ansible-playbook reads it (stripped), and each of its lines; nothing for a client
    script (any execute bit: Ansible runs it, and only its output is the password)."""
    file = Path(path).expanduser()
    try:
        if file.stat().st_mode & 0o111:
            return []
        text = file.read_bytes().decode("utf-8", errors="surrogateescape")
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc.strerror or exc})") from None
    return [text.strip(), *text.splitlines()]


def learn_secrets(redactor: Redactor, host_vars: dict[str, Any]) -> None:
    """An inventory host's secrets: variables named as secrets, and every value that came out of a vault."""
    redactor.add_vars(host_vars, nested=False)
    for value in vaulted_values(host_vars):
        redactor.add_value(value)


class NoHosts(Exception):
    """Nothing matched: exit code 5."""


def guarded(call: Callable[[], int], stderr: TextIO | None = None) -> int:
    """Run a command; bad input becomes one line and exit 3, no hosts exit 5 (never a traceback)."""
    stderr = stderr or sys.stderr
    try:
        return call()
    except InvalidValue as exc:
        stderr.write(f"{printable(exc.line)}\n")
        return EXIT_USAGE
    except (UsageError, RunnerError) as exc:
        stderr.write(f"shipshape: {printable(one_line(exc, 1000))}\n")
        return EXIT_USAGE
    except NoHosts as exc:
        stderr.write(f"shipshape: {printable(one_line(exc, 1000))}\n")
        return EXIT_NO_HOSTS
    except KeyboardInterrupt:
        stderr.write("shipshape: interrupted\n")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file or directory the user named that cannot be used: one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        stderr.write(printable(f"shipshape: {one_line(exc.strerror or exc, 500)}{where}") + "\n")
        return EXIT_USAGE
