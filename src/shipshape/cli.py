"""shipshape: run the shipshape.ops runbooks (deploy, rollback, backup, restore, drills, maintenance,
migrations, health) against an inventory, with live progress, reports and a history of every run."""

from __future__ import annotations

import argparse
import os
import re
import sys

from shipshape import __version__
from shipshape.commands import App, Options, Request, guarded
from shipshape import validate
from shipshape.config import UsageError

EPILOG = """\
exit codes:
  0  success
  1  a task failed
  2  a host was unreachable
  3  bad usage or input (unknown inventory, bad extra vars, missing playbook, --confirm missing,
     production without a terminal or --yes, confirmation declined)
     or several backup names where drill or restore needs one: "several backups in DIR: a, b;
     choose one with --name"
  4  a lock is held (another deploy or rollback runs: "Refused: the lock ...")
  5  no hosts matched (e.g. --limit nosuchhost)
When several apply: 5, then 4, then 3 (a backup name to choose), then 2, then 1.

Every run keeps its artifacts and reports in <state>/runs/<run-id>/ (state: --state-dir,
$XDG_STATE_HOME/shipshape or ~/.local/state/shipshape). See docs/cli.md.
"""


class Parser(argparse.ArgumentParser):
    """argparse, but bad usage is one line and exit code 3."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _common(parser: argparse.ArgumentParser, playbook: bool = True) -> None:
    group = parser.add_argument_group("common options")
    if playbook:
        group.add_argument("-i", "--inventory", action="append", metavar="INVENTORY",
                           help="inventory file or directory (default: the sandbox); one (a directory combines several)")
        group.add_argument("-l", "--limit", help="limit to these hosts or groups (an Ansible pattern)")
        group.add_argument("-e", "--extra-vars", action="append", default=[], metavar="VARS",
                           help="key=value, JSON/YAML, or @file; repeatable")
        group.add_argument("-C", "--check", action="store_true", help="check mode: change nothing")
        group.add_argument("-D", "--diff", action="store_true", help="show differences of changed files")
        group.add_argument("-y", "--yes", action="store_true", help="do not ask before changing production")
        group.add_argument("-f", "--forks", type=int, help="parallel hosts")
        group.add_argument("--report-dir", help="also write report.json, report.md and junit.xml here")
        group.add_argument("-q", "--quiet", action="store_true", help="no progress and no summary; errors only")
        group.add_argument("-v", "--verbose", action="count", default=0, dest="verbosity",
                           help="ansible verbosity (recorded in the artifacts)")
        group.add_argument("--vault-password-file", action="append", default=[], dest="vault_password_files",
                           metavar="FILE", help="vault password file (or executable client script); repeatable")
        group.add_argument("--vault-id", action="append", default=[], dest="vault_ids", metavar="ID",
                           help="vault id, label@file; repeatable")
        group.add_argument("-J", "--ask-vault-pass", action="store_true", help="ask for the vault password")
        group.add_argument("--become-password-file", metavar="FILE",
                           help="password for sudo on the hosts, from this file")
        group.add_argument("-K", "--ask-become-pass", action="store_true", help="ask for the sudo password")
    group.add_argument("--json", action="store_true", help="print JSON on stdout (the report, or the list)")
    group.add_argument("--state-dir", help="history and runs (default: $XDG_STATE_HOME/shipshape)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="shipshape", description=__doc__, epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"shipshape {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    def add(name: str, help_text: str, playbook: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(sub, playbook=playbook)
        return sub

    deploy = add("deploy", "deploy a release to the app hosts (playbooks/deploy.yml)")
    which = deploy.add_mutually_exclusive_group()
    which.add_argument("--version", dest="release_version", metavar="V", help="deploy version V (git ref vV)")
    which.add_argument("--ref", help="deploy this git ref (tag, branch or sha)")
    deploy.add_argument("--serial", metavar="N", help="rolling: N hosts (or N%%) per batch; a failed batch stops "
                                                     "the rest (deploy_serial)")
    deploy.add_argument("--canary", metavar="N", type=int,
                        help="deploy and gate N hosts alone before any other starts (deploy_canary)")

    rollback = add("rollback", "roll back to the previous good release, or --to one (playbooks/rollback.yml)")
    rollback.add_argument("--to", metavar="RELEASE", help="release id to roll back to")

    backup = add("backup", "make a verified backup set (playbooks/backup.yml)")
    backup.add_argument("--name", metavar="NAME",
                        help="back up only the hosts whose backup_name is NAME (default: every host's own)")

    restore = add("restore", "restore a backup into its database (playbooks/restore.yml)")
    restore.add_argument("--backup", metavar="ID", help="backup id (default: the newest verified of --name)")
    restore.add_argument("--name", metavar="NAME",
                         help="backup name (one database each) whose newest set is restored; needed when the "
                              "backup directory holds several names")
    restore.add_argument("--confirm", metavar="DB", help="name of the database to replace (required)")

    drill = add("drill", "restore drill: restore the newest backup aside and check it (playbooks/drill.yml); "
                         "--schedule installs the timer that runs it (playbooks/drill_schedule.yml)")
    drill.add_argument("--name", metavar="NAME", action="append",
                       help="backup name (one database each) to drill; needed when the backup directory holds "
                            "several names. With --schedule, repeat it: the timer drills each name in turn")
    when = drill.add_mutually_exclusive_group()
    when.add_argument("--schedule", metavar="CALENDAR",
                      help="install (or update) the systemd timer that runs this drill on the db hosts, at this "
                           "OnCalendar expression (e.g. monthly); runs no drill now")
    when.add_argument("--unschedule", action="store_true", help="remove the drill's timer from the db hosts")

    maintenance = add("maintenance", "maintenance mode on, off, read-only, or its status (playbooks/maintenance.yml)")
    maintenance.add_argument("state", choices=["on", "off", "read-only", "status"])

    migrate = add("migrate", "schema migrations of the current release (playbooks/migrate.yml)")
    migrate.add_argument("action", choices=["status", "apply"])

    add("health", "health checks of every host (playbooks/health.yml)")

    status = add("status", "what runs on the app hosts: release, sha, unit, port, disk, memory, env keys "
                           "(playbooks/status.yml; reads only)")
    status.add_argument("--ref", help="also list the commits between the running sha and this git ref")

    db_report = add("db-report", "read-only SQL diagnostics of the database: tables, unused and invalid indexes, the "
                                 "slowest statements, what roles may do (playbooks/db_report.yml; reads only)")
    db_report.add_argument("--table", action="append", default=[], metavar="TABLE",
                           help='only this table (table or schema.table; a name holding \'.\', a space or \'"\' in double quotes, '
                                'as SQL writes it: crm."order.items"); repeatable')
    db_report.add_argument("--role", action="append", default=[], metavar="ROLE",
                           help="also list this role's privileges on each table; repeatable")
    db_report.add_argument("--match", metavar="TEXT", help="only the slow statements whose text contains TEXT")
    db_report.add_argument("--slow", type=int, metavar="N", help="the N slowest statements (default 10, at most 1000)")

    logs = add("logs", "tail and search the app's logs (playbooks/logs.yml; reads only)")
    logs.add_argument("--source", choices=["journal", "file", "compose"],
                      help="the unit's journal, log files (--path) or compose service (default: the strategy's)")
    logs.add_argument("--since", help="a duration (10m, 2h, 1d) or an ISO time")
    logs.add_argument("--grep", metavar="REGEX", help="a regular expression, or errors | tracebacks | warnings")
    logs.add_argument("--request-id", metavar="ID", help="the lines of one request")
    logs.add_argument("--field", action="append", default=[], metavar="KEY=VALUE",
                      help="match a field of JSON log lines; repeatable")
    logs.add_argument("--lines", type=int, metavar="N", help="the last N matching records (default 100, at most 10000)")
    logs.add_argument("--follow", action="store_true", help="keep reading new lines for --timeout seconds")
    logs.add_argument("--timeout", type=int, metavar="S", help="how long --follow reads (default 30, at most 300)")
    logs.add_argument("--path", action="append", default=[], metavar="FILE", help="a log file (with --source file)")
    logs.add_argument("--service", help="the compose service (with --source compose)")

    add("provision", "install the hosts: PostgreSQL and Redis on db_servers, the runtime on app_servers "
                     "(playbooks/provision.yml)")

    recover = add("recover", "a data recovery procedure, counted first and confirmed above a threshold "
                             "(playbooks/recovery.yml; the procedure's settings with -e)")
    recover.add_argument("action", choices=list(RECOVERY_ACTIONS))
    recover.add_argument("--confirm", action="store_true",
                         help="go ahead above recovery_confirm_threshold rows, entries or keys")

    dr = add("disaster-recovery", "recover the service from nothing: blank hosts and the off-host backup copies "
                                  "(playbooks/disaster_recovery.yml)")
    dr.add_argument("--backup-dir", required=True, metavar="DIR",
                    help="the off-host copies on this machine (<dir>/<host>/<backup id>/)")
    dr.add_argument("--ref", help="the release to redeploy (default: the last good release of the deploy history)")
    dr.add_argument("--stop-after", choices=["provision", "restore", "deploy", "caches"],
                    help="stop after this phase; a later run continues")

    history = add("history", "list the recorded runs", playbook=False)
    history.add_argument("--drills", action="store_true", help="drill results and the recovery-time trend")
    history.add_argument("--name", metavar="NAME", help="only the runs (and drills) of this backup name")
    history.add_argument("-n", "--last", type=int, default=20, metavar="N", help="this many runs (default 20)")

    report = add("report", "show the report of a recorded run", playbook=False)
    report.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'last')")

    # Internal (benchmarks, tests): run any playbook through the same layers. Not listed in --help.
    internal = commands.add_parser("playbook", formatter_class=argparse.RawDescriptionHelpFormatter)
    internal.add_argument("path", help="playbook path")
    _common(internal)
    return parser


# The common options, accepted before the command too (`shipshape -i inv health`): those that take a value.
VALUE_OPTIONS = {"-i", "--inventory", "-l", "--limit", "-e", "--extra-vars", "-f", "--forks", "--report-dir",
                 "--state-dir", "--vault-password-file", "--vault-id", "--become-password-file"}
FLAG_OPTIONS = {"-C", "--check", "-D", "--diff", "-y", "--yes", "-q", "--quiet", "-v", "--verbose", "--json",
                "-J", "--ask-vault-pass", "-K", "--ask-become-pass"}


def _is_common(word: str) -> tuple[bool, bool]:
    """(is a common option, takes the next word as its value)."""
    name = word.split("=", 1)[0]
    if name in VALUE_OPTIONS:
        return True, "=" not in word
    if word in FLAG_OPTIONS or re.fullmatch(r"-v+", word):
        return True, False
    for short in ("-i", "-l", "-e", "-f"):  # -iINVENTORY
        if word.startswith(short) and len(word) > 2 and not word.startswith("--"):
            return True, False
    return False, False


def reorder(argv: list[str], commands: set[str]) -> list[str]:
    """Move common options given before the command to just after it, where its parser reads them."""
    moved: list[str] = []
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in commands:
            return [word, *moved, *argv[index + 1:]]  # everything before the command was a common option
        common, takes_value = _is_common(word)
        if not common:
            return argv
        moved.append(word)
        if takes_value and index + 1 < len(argv):
            moved.append(argv[index + 1])
            index += 1
        index += 1
    return argv


MAINTENANCE_STATES = {"on": "maintenance", "off": "live", "read-only": "read_only", "status": "status"}
# The recovery role's procedures: recovery_action's choices in roles/recovery/meta/argument_specs.yml, which a test keeps
# equal to this (argparse needs them before the collection is found).
RECOVERY_ACTIONS = ("outbox_requeue", "stream_replay", "delete_keys", "restart_unit", "publish", "archive_rows",
                    "restart_service", "outbox_pause", "outbox_resume")


def to_request(args: argparse.Namespace, argv: list[str]) -> Request:
    """The playbook, variables and targeted hosts of a parsed command line."""
    command = args.command
    extra = {}
    if command == "deploy":
        if args.release_version is not None:
            ref = "v" + validate.version(command, "--version", args.release_version)
        elif args.ref is not None:
            ref = validate.git_ref(command, "--ref", args.ref)
        else:
            ref = None
        if ref:
            # The same release whichever deploy_strategy the hosts use: a git ref (systemd) or an image tag
            # (compose, whose own check refuses a ref that is not a docker tag, such as one with '/').
            extra["systemd_release_git_ref"] = ref
            extra["compose_release_tag"] = ref
        # Play keywords: a play's serial is read before any host, so these go as -e, never through the inventory.
        if args.serial is not None:
            extra["deploy_serial"] = validate.batch_size(command, "--serial", args.serial)
        if args.canary is not None:
            extra["deploy_canary"] = validate.number(command, "--canary", args.canary, 0, 10000)
        return Request(command, "deploy.yml", extra, pattern="app_servers", argv=argv)
    if command == "rollback":
        if args.to is not None:
            extra["rollback_to"] = validate.release_id(command, "--to", args.to)
        return Request(command, "rollback.yml", extra, pattern="app_servers", argv=argv)
    if command == "backup":
        if args.name is not None:
            extra["backup_select_name"] = validate.backup_name(command, "--name", args.name)
        return Request(command, "backup.yml", extra, pattern="db_servers:app_servers", argv=argv)
    if command == "restore":
        if args.confirm is None:
            raise UsageError("restore: --confirm DB is required (the name of the database the restore replaces)")
        extra["restore_confirm"] = validate.database(command, "--confirm", args.confirm)
        if args.backup is not None:
            extra["restore_backup_id"] = validate.backup_id(command, "--backup", args.backup)
        if args.name is not None:
            extra["restore_backup_name"] = validate.backup_name(command, "--name", args.name)
        return Request(command, "restore.yml", extra, pattern="db_servers:app_servers", argv=argv)
    if command == "drill":
        names = [validate.backup_name(command, "--name", name) for name in args.name or []]
        if args.schedule is not None or args.unschedule:
            extra["restore_drill_schedule_enabled"] = not args.unschedule
            if args.schedule is not None:
                extra["restore_drill_schedule"] = validate.calendar(command, "--schedule", args.schedule)
            extra["restore_drill_schedule_names"] = names
            return Request("drill-schedule", "drill_schedule.yml", extra, pattern="db_servers", argv=argv)
        if len(names) > 1:
            raise UsageError("drill: --name given %d times: a drill checks one backup name (several only with "
                             "--schedule)" % len(names))
        if names:
            extra["restore_drill_backup_name"] = names[0]
        return Request(command, "drill.yml", extra, pattern="all", argv=argv)
    if command == "maintenance":
        extra["maintenance_state"] = MAINTENANCE_STATES[args.state]
        return Request(command, "maintenance.yml", extra, pattern="app_servers", argv=argv)
    if command == "migrate":
        extra["migrate_action"] = args.action
        return Request(command, "migrate.yml", extra, pattern="app_servers", argv=argv)
    if command == "health":
        return Request(command, "health.yml", extra, pattern="all", argv=argv)
    if command == "status":
        if args.ref is not None:
            extra["status_ref"] = validate.git_ref(command, "--ref", args.ref)
        return Request(command, "status.yml", extra, pattern="app_servers", argv=argv)
    if command == "logs":
        return Request(command, "logs.yml", logs_variables(args), pattern="app_servers", argv=argv)
    if command == "db-report":
        if args.table:
            extra["db_report_tables"] = [validate.table(command, "--table", t) for t in args.table]
        if args.role:
            extra["db_report_roles"] = [validate.role(command, "--role", r) for r in args.role]
        if args.match is not None:
            extra["db_report_match"] = validate.text(command, "--match", args.match)
        if args.slow is not None:
            extra["db_report_slow_limit"] = validate.number(command, "--slow", args.slow, 1, 1000)
        return Request(command, "db_report.yml", extra, pattern="db_servers", argv=argv)
    if command == "provision":
        return Request(command, "provision.yml", extra, pattern="all", argv=argv)
    if command == "recover":
        extra["recovery_action"] = args.action
        if args.confirm:
            extra["recovery_confirm"] = True
        return Request(command, "recovery.yml", extra, pattern="db_servers", argv=argv)
    if command == "disaster-recovery":
        extra["disaster_recovery_backup_dir"] = validate.absolute_path(
            command, "--backup-dir", os.path.abspath(os.path.expanduser(args.backup_dir)))
        if args.ref is not None:
            extra["disaster_recovery_release_ref"] = validate.git_ref(command, "--ref", args.ref)
        if args.stop_after is not None:
            extra["disaster_recovery_stop_after"] = args.stop_after
        return Request(command, "disaster_recovery.yml", extra, pattern="db_servers:app_servers", argv=argv)
    if command == "playbook":
        return Request(command, args.path, extra, pattern="all", argv=argv)
    raise UsageError(f"unknown command {command}")


def logs_variables(args: argparse.Namespace) -> dict:
    """The logs playbook's variables from `shipshape logs` options, each validated here (and in log_search)."""
    command, extra = "logs", {}
    if args.source is not None:
        extra["logs_source"] = args.source
    if args.since is not None:
        extra["logs_since"] = validate.since(command, "--since", args.since)
    if args.grep is not None:
        extra["logs_grep"] = validate.grep(command, "--grep", args.grep)
    if args.request_id is not None:
        extra["logs_request_id"] = validate.request_id(command, "--request-id", args.request_id)
    if args.field:
        extra["logs_fields"] = dict(validate.field(command, "--field", value) for value in args.field)
    if args.lines is not None:
        extra["logs_lines"] = validate.number(command, "--lines", args.lines, 1, 10000)
    if args.follow:
        extra["logs_follow"] = True
    if args.timeout is not None:
        extra["logs_timeout"] = validate.number(command, "--timeout", args.timeout, 1, 300)
    if args.path:
        extra["logs_paths"] = [validate.absolute_path(command, "--path", path) for path in args.path]
    if args.service is not None:
        extra["logs_service"] = validate.backup_name(command, "--service", args.service)
    return extra


# Path options an empty value must not turn into the default: `-i "$INVENTORY"` with the variable unset ran against
# the sandbox, `--state-dir ""` wrote to ~/.local/state, `--report-dir ""` was dropped.
PATH_OPTIONS = (("inventory", "-i/--inventory"), ("state_dir", "--state-dir"), ("report_dir", "--report-dir"),
                ("become_password_file", "--become-password-file"))


def to_options(args: argparse.Namespace) -> Options:
    for name, option in PATH_OPTIONS:
        value = getattr(args, name, None)
        if any(not str(each).strip() for each in (value if isinstance(value, list) else [value] if value is not None else [])):
            raise UsageError(f"{args.command}: {option} is empty: expected a path (is the shell variable that should "
                             "hold it unset?)")
    if getattr(args, "forks", None) is not None:
        # 0 was dropped without a word, a negative number reached ansible-playbook (a run directory and history
        # row for an error Ansible reported after starting).
        validate.number(args.command, "--forks", args.forks, 1, 10000)
    if getattr(args, "inventory", None) is not None:
        if len(args.inventory) > 1:
            # ansible-playbook merges several -i; argparse kept only the last, so the run (and the production check)
            # silently targeted one of them.
            raise UsageError(f"{args.command}: -i/--inventory given {len(args.inventory)} times "
                             f"({', '.join(args.inventory)}): shipshape takes one inventory; put the files in one "
                             "directory to combine them")
        args.inventory = args.inventory[0]
    if getattr(args, "limit", None) is not None:
        validate.limit(args.command, "--limit", args.limit)
    names = Options.__dataclass_fields__
    return Options(**{name: getattr(args, name) for name in names if getattr(args, name, None) is not None})


def main(argv: list[str] | None = None, app: App | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    app = app or App()

    def run() -> int:
        parser = build_parser()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        args = parser.parse_args(reorder(argv, set(commands.choices)))
        options = to_options(args)
        if args.command == "history":
            name = validate.backup_name("history", "--name", args.name) if args.name is not None else None
            validate.number("history", "--last", args.last, 1, 1000000)  # 0 or -1 listed every run
            return app.show_history(options, drills=args.drills, limit=args.last, name=name)
        if args.command == "report":
            return app.show_report(validate.run_id("report", "RUN", args.run), options)
        return app.run_playbook(to_request(args, ["shipshape", *argv]), options)

    return guarded(run, app.stderr)


if __name__ == "__main__":
    sys.exit(main())
