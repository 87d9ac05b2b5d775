"""The event handler: gathers what the report needs from ansible-runner's event stream.

It redacts each event in place before ansible-runner writes it to ``job_events/``, records per host and per
task the status, duration, change and failure message, the results the roles return (``*_result`` facts of
set_fact tasks), and the "what will change" messages of deploy's check pass. It always returns True.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shipshape.redact import Redactor

# Facts the roles set as their result, in the order the report shows them.
RESULT_FACTS = (
    "deploy_result",
    "deploy_batch_result",
    "deploy_rollout_result",
    "rollback_result",
    "backup_result",
    "restore_result",
    "restore_drill_result",
    "preflight_result",
    "maintenance_result",
    "migrations_result",
    "recovery_result",
    "disaster_recovery_result",
    "systemd_release_result",
    "compose_release_result",
    "status_result",
    "logs_result",
    "db_report_result",
)
CHANGE_TASK = "Show what will change"
LOCK_REFUSED = "Refused: the lock"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_SPACES = re.compile(r"\s+")


# Control characters a terminal acts on (ESC starts OSC 0, a retitle, or OSC 52, a clipboard write; 0x9b is an 8-bit
# CSI): what hosts print is shown as text, "\x1b", never sent to the operator's terminal as it is. Tabs and newlines stay.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: Any) -> str:
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def one_line(text: Any, limit: int = 400) -> str:
    text = _SPACES.sub(" ", _ANSI.sub("", str(text or ""))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Messages that say a command failed but not why: the command's own last error line says why.
GENERIC = re.compile(r"^(non-zero return code|MODULE FAILURE|All items completed|"
                     r"See stdout/stderr for the exact error)", re.IGNORECASE)


def _last_line(value: Any) -> str:
    if isinstance(value, list):
        lines = [str(v) for v in value]
    elif isinstance(value, str):
        lines = value.splitlines()
    else:
        return ""
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


def own_error_line(res: dict[str, Any]) -> str:
    """The failing command's own last non-empty error line: stderr, else stdout, else the module's stderr."""
    for key in ("stderr_lines", "stderr", "stdout_lines", "stdout", "module_stderr", "module_stdout"):
        line = _last_line(res.get(key))
        if line:
            return line
    return ""


def _with_reason(msg: str, res: dict[str, Any]) -> str:
    if isinstance(msg, str) and GENERIC.match(msg.strip()):
        line = own_error_line(res)
        if line and line not in msg:
            return f"{msg.strip().rstrip('.')}: {line}"
    return msg


def failure_message(res: dict[str, Any]) -> str:
    """The one thing to say about a failed or unreachable result."""
    if not isinstance(res, dict):
        return one_line(res)
    msg = _with_reason(res.get("msg") or "", res)
    for item in res.get("results") or []:
        # A loop: the first item that failed says more than "All items completed".
        if isinstance(item, dict) and (item.get("failed") or item.get("unreachable")):
            item_msg = _with_reason(item.get("msg") or "", item) or item.get("stderr") or ""
            if item_msg:
                msg = item_msg
                break
    if not msg:
        msg = res.get("stderr") or res.get("stdout") or res.get("reason") or ""
        if isinstance(msg, str) and msg.strip():
            msg = msg.strip().splitlines()[-1]
    if msg and isinstance(msg, str) and msg.startswith("Task failed: "):
        msg = msg[len("Task failed: "):]
    if msg and isinstance(msg, str) and msg.startswith("Action failed: "):
        msg = msg[len("Action failed: "):]
    return one_line(msg or "failed (no message)")


# The docker connection reports a container that stopped or went away as a module that failed ("Error response from
# daemon: Container ... is not running"), where SSH's would be unreachable: it is a lost connection all the same.
_DOCKER_GONE = re.compile(r"Error response from daemon: ((?:Container \S+ is not running|No such container: \S+))")


def lost_connection(res: Any) -> str:
    """The connection error of a failed result that means the host went away (the docker connection's), or ''."""
    if not isinstance(res, dict):
        return ""
    for key in ("module_stderr", "msg", "stderr"):
        value = res.get(key)
        found = _DOCKER_GONE.search(value) if isinstance(value, str) else None
        if found:
            return f"docker: {found.group(1)}"
    return ""


def connection_error(res: dict[str, Any]) -> str:
    """An unreachable host's connection error in one line, in SSH's own words: its banner of @ dropped and,
    when long, its first and last lines kept (the last say why: "Host key verification failed.")."""
    raw = res.get("msg") if isinstance(res, dict) else None
    if not isinstance(raw, str) or "\n" not in raw.strip():
        return failure_message(res)
    lines = [line.strip().strip("@").strip() for line in _ANSI.sub("", raw).splitlines()]
    lines = [line for line in lines if line]
    if len(" ".join(lines)) > 400 and len(lines) > 5:
        lines = lines[:2] + ["…"] + lines[-3:]
    return failure_message({"msg": " ".join(lines)})


@dataclass
class TaskRecord:
    host: str
    play: str
    task: str
    action: str
    task_path: str
    status: str = "running"  # ok | changed | failed | ignored | rescued | unreachable | skipped
    changed: bool = False
    started: str = ""
    ended: str = ""
    duration_s: float = 0.0
    message: str = ""
    lock_held: bool = False
    name_required: bool = False  # several backup names and none chosen (backup_sets' name_required): exit 3

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "play": self.play,
            "task": self.task,
            "action": self.action,
            "task_path": self.task_path,
            "status": self.status,
            "changed": self.changed,
            "started": self.started,
            "ended": self.ended,
            "duration_s": round(self.duration_s, 3),
            "message": self.message,
        }


@dataclass
class Progress:
    """What the live display shows."""

    play: str = ""
    task: str = ""
    hosts_total: int = 0
    hosts_done: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


class EventCollector:
    """The ``event_handler`` for ansible_runner.run (call the instance). Always returns True."""

    def __init__(self, redactor: Redactor | None = None, on_update: Callable[[str, dict], None] | None = None):
        self.redactor = redactor or Redactor()
        self.on_update = on_update
        self.tasks: dict[tuple[str, str], TaskRecord] = {}
        self.order: list[tuple[str, str]] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.changes: list[str] = []
        self.stats: dict[str, dict[str, int]] = {}
        self.stdout: list[str] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.no_hosts_matched = False
        self.progress = Progress()
        self._play_hosts: set[str] = set()
        self._task_done: set[str] = set()
        self._task_uuid = ""
        self._connection_lost: dict[str, int] = {}  # host: failed results that were a lost connection
        self._locks: dict[str, str] = {}  # host: the release_lock path it took and has not released yet
        self.plays: list[str] = []  # the plays that started, in order
        self.event_count = 0
        self.playbook_pid: int | None = None

    # ansible-runner calls this for every event, before writing it to job_events/.
    def __call__(self, event: dict[str, Any]) -> bool:
        try:
            self.redactor.scrub_in_place(event)
            self._handle(event)
        except Exception as exc:  # never lose the run for a report problem
            self.errors.append(f"shipshape: could not read an event: {exc}")
        return True

    def _handle(self, event: dict[str, Any]) -> None:
        self.event_count += 1
        if isinstance(event.get("pid"), int):  # ansible-playbook's own process (its callback plugin's)
            self.playbook_pid = event["pid"]
        name = event.get("event", "")
        data = event.get("event_data") or {}
        stdout = event.get("stdout") or ""
        if stdout:
            self.stdout.append(stdout)
        if name == "verbose" and stdout:
            for line in _ANSI.sub("", stdout).splitlines():
                line = line.strip()
                if line.startswith(("[ERROR]:", "ERROR!")):
                    self.errors.append(one_line(line.split(":", 1)[1] if line.startswith("[ERROR]") else line[6:]))
                elif line.startswith("[WARNING]:"):
                    self.warnings.append(one_line(line[len("[WARNING]:"):]))
                if "leaves us with no hosts to target" in line or "no hosts matched" in line:
                    self.no_hosts_matched = True
        elif name == "playbook_on_play_start":
            self.progress.play = data.get("name") or data.get("play") or ""
            self.plays.append(self.progress.play)
            self._play_hosts = set()
            self.progress.hosts_total = 0
        elif name == "playbook_on_no_hosts_matched":
            self.no_hosts_matched = True
        elif name in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self.progress.task = data.get("task") or data.get("name") or ""
            self._task_uuid = data.get("task_uuid") or data.get("uuid") or ""
            self._task_done = set()
            self.progress.hosts_done = 0
        elif name == "runner_on_start":
            host = data.get("host", "")
            self._play_hosts.add(host)
            self.progress.hosts_total = len(self._play_hosts)
            self._record(data, "running")
        elif name in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
            self._finish(name, data)
        elif name == "playbook_on_stats":
            self.stats = {
                key: dict(data.get(key) or {})
                for key in ("ok", "changed", "failures", "dark", "skipped", "rescued", "ignored", "processed")
            }
            # Ansible counted a lost docker connection as a failure: the recap says unreachable, as for SSH.
            for host, count in self._connection_lost.items():
                moved = min(count, int(self.stats["failures"].get(host) or 0))
                if moved:
                    self.stats["failures"][host] -= moved
                    self.stats["dark"][host] = int(self.stats["dark"].get(host) or 0) + moved
        if self.on_update is not None:
            self.on_update(name, event)

    def _record(self, data: dict[str, Any], status: str) -> TaskRecord:
        key = (data.get("task_uuid", ""), data.get("host", ""))
        record = self.tasks.get(key)
        if record is None:
            record = TaskRecord(
                host=data.get("host", ""),
                play=data.get("play", ""),
                task=data.get("task", ""),
                action=data.get("resolved_action") or data.get("task_action", ""),
                task_path=data.get("task_path", ""),
                status=status,
            )
            self.tasks[key] = record
            self.order.append(key)
        return record

    def _finish(self, name: str, data: dict[str, Any]) -> None:
        host = data.get("host", "")
        res = data.get("res") or {}
        record = self._record(data, "running")
        record.started = data.get("start") or record.started
        record.ended = data.get("end") or ""
        record.duration_s = float(data.get("duration") or 0.0)
        if name == "runner_on_ok":
            record.changed = bool(isinstance(res, dict) and res.get("changed"))
            record.status = "changed" if record.changed else "ok"
            facts = res.get("ansible_facts") if isinstance(res, dict) else None
            if isinstance(facts, dict):
                for fact in RESULT_FACTS:
                    if fact in facts:
                        self.results.setdefault(host, {})[fact] = facts[fact]
            if record.task == CHANGE_TASK and isinstance(res, dict) and res.get("msg"):
                self.changes.append(one_line(res["msg"], limit=2000))
            if record.action.endswith("release_lock") and isinstance(res, dict):
                self._track_lock(host, res)
        elif name == "runner_on_failed" and not data.get("ignore_errors") and lost_connection(res):
            record.status = "unreachable"
            record.message = lost_connection(res)
            self._connection_lost[host] = self._connection_lost.get(host, 0) + 1
        elif name == "runner_on_failed":
            record.status = "ignored" if data.get("ignore_errors") else "failed"
            record.message = failure_message(res)
            if isinstance(res, dict) and (res.get("lock_held") or record.message.startswith(LOCK_REFUSED)):
                record.lock_held = True
            if isinstance(res, dict) and res.get("name_required") is True:
                record.name_required = True
        elif name == "runner_on_unreachable":
            record.status = "unreachable"
            record.message = connection_error(res)
        else:
            record.status = "skipped"
        if host not in self._task_done and data.get("task_uuid") == self._task_uuid:
            self._task_done.add(host)
            self.progress.hosts_done = len(self._task_done)

    def _track_lock(self, host: str, res: dict[str, Any]) -> None:
        """A release_lock result: taken (acquired) or released (state absent), so that a host lost in between is
        known to hold its lock still. Check mode takes nothing."""
        args = (res.get("invocation") or {}).get("module_args") or {}
        if res.get("acquired") is True and not res.get("_ansible_check_mode"):
            self._locks[host] = str(args.get("path") or "")
        elif args.get("state") == "absent":
            self._locks.pop(host, None)

    # --- what the run came to -------------------------------------------------------------------------
    def cut_short(self, plays: list[str], targeted: list[str]) -> list[str]:
        """What a run that Ansible ended early left undone, in words, when no play of its own could say it.

        Ansible ends the whole playbook when every host of a batch (serial) is lost, unreachable as a rule: the
        plays after it never start, so a rolling deploy's last play ("Finish the rollout") cannot name what the
        run left. ``plays``: the playbook's plays in order; ``targeted``: the hosts the command aimed at. Nothing
        when every play started, or when no host was lost."""
        lost = sorted({r.host for r in self.tasks.values() if r.status == "unreachable"})
        missing = [play for play in plays if play not in self.plays]
        if not lost or not missing or not self.plays:
            return []
        seen = {r.host for r in self.tasks.values()}
        lines = [f"the run ended before its play(s) {', '.join(repr(p) for p in missing)}: every host of a batch "
                 f"was lost ({', '.join(lost)} unreachable), and Ansible stops a playbook there"]
        never = [h for h in targeted if h not in seen]
        if never:
            lines.append(f"not started (the run stopped before them): {', '.join(never)}")
        for host in lost:
            if host in self._locks:
                path = self._locks[host]
                lines.append(f"stale lock on {host}{f' ({path})' if path else ''}: it was lost after taking it and "
                             "still holds it; once the host is back, the next run is refused until the lock is "
                             "broken (-e deploy_lock_break=true for a deploy) or older than its max age")
        return lines

    def task_records(self) -> list[TaskRecord]:
        records = [self.tasks[key] for key in self.order]
        rescued_hosts = {h for h, n in (self.stats.get("rescued") or {}).items() if n}
        failed_hosts = {h for h, n in (self.stats.get("failures") or {}).items() if n}
        for record in records:
            # A failure that a rescue block handled, on a host that did not fail in the end.
            if record.status == "failed" and record.host in rescued_hosts and record.host not in failed_hosts:
                record.status = "rescued"
        return records

    @property
    def lock_held(self) -> bool:
        return any(r.lock_held for r in self.tasks.values())

    @property
    def name_required(self) -> list[str]:
        """'host: message' of each task that refused to guess between several backup names."""
        return [f"{r.host}: {r.message}" for r in self.tasks.values() if r.name_required]

    def failure_messages(self) -> list[str]:
        """The last failure of each failed or unreachable host, as 'host: message' ('host: unreachable: the
        connection error' for a host that could not be reached)."""
        last: dict[str, str] = {}
        for record in self.task_records():
            if record.status == "unreachable":
                last[record.host] = f"unreachable: {record.message}"
            elif record.status == "failed":
                last[record.host] = record.message
        return [f"{host}: {message}" for host, message in last.items()]

    # --- the run, as plain data ---------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the run did, as plain data for the report: per host the recap counts and the span of its
        tasks, the tasks in order, the results the roles returned, failures, warnings and deploy's changes."""
        records = self.task_records()
        hosts: dict[str, dict[str, Any]] = {}
        spans: dict[str, list[str]] = {}
        counted = ("ok", "changed", "failed", "unreachable", "skipped", "rescued", "ignored")

        def host(name: str) -> dict[str, Any]:
            return hosts.setdefault(name, {"name": name, **{key: 0 for key in counted}, "duration_s": 0.0})

        for record in records:
            summary = host(record.host)
            if record.status in counted:
                summary[record.status] += 1
            if record.status == "changed":
                summary["ok"] += 1  # as ansible counts: changed results are also ok
            for stamp in (record.started, record.ended):
                if stamp:
                    spans.setdefault(record.host, []).append(stamp)
        for name, stamps in spans.items():
            try:
                first, last = dt.datetime.fromisoformat(min(stamps)), dt.datetime.fromisoformat(max(stamps))
                hosts[name]["duration_s"] = round((last - first).total_seconds(), 2)
            except ValueError:
                pass
        # ansible's own recap is the authority on the counts when it arrived.
        stats = self.stats or {}
        for key, attribute in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"),
                               ("dark", "unreachable"), ("skipped", "skipped"), ("rescued", "rescued"),
                               ("ignored", "ignored")):
            for name, count in (stats.get(key) or {}).items():
                host(name)[attribute] = int(count)
        return {
            "hosts": [hosts[name] for name in sorted(hosts)],
            "tasks": [record.as_dict() for record in records],
            "results": {name: self.results[name] for name in sorted(self.results)},
            "failures": self.failure_messages(),
            "warnings": list(dict.fromkeys(self.warnings)),
            "changes": list(self.changes),
        }
