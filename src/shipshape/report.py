"""The report of one run: a data model (schema_version 1, documented in docs/cli.md), then renderers for the
terminal, JSON, Markdown and JUnit XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipshape.events import RESULT_FACTS, one_line, printable
from shipshape.private import private_dir, write_private

SCHEMA_VERSION = 1

@dataclass
class HostSummary:
    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    duration_s: float = 0.0


@dataclass
class RunReport:
    """Everything a report shows; ``to_dict`` is the report.json document."""

    run_id: str
    command: str
    playbook: str
    inventory: str
    limit: str | None
    argv: list[str]
    user: str
    check: bool
    diff: bool
    started: str
    ended: str
    duration_s: float
    result: str
    exit_code: int
    message: str
    runner_status: str
    runner_rc: int | None
    hosts: list[HostSummary] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    extravars: dict[str, Any] = field(default_factory=dict)

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def from_summary(cls, summary: dict[str, Any], **meta: Any) -> "RunReport":
        """A report of a run's summary (``EventCollector.summary()``: plain data) and its metadata."""
        meta.setdefault("changes", list(summary.get("changes", [])))
        results = dict(summary.get("results", {}))
        # A role says what it let through in its result's warnings (deploy: a degraded release that passed the gate).
        role_warnings = [f"{host}: {one_line(w)}" for host, facts in results.items() for value in facts.values()
                         if isinstance(value, dict) and isinstance(value.get("warnings"), list)
                         for w in value["warnings"]]
        return cls(
            hosts=[HostSummary(**host) for host in summary.get("hosts", [])],
            tasks=list(summary.get("tasks", [])),
            results=results,
            failures=list(summary.get("failures", [])),
            warnings=list(dict.fromkeys(role_warnings + list(summary.get("warnings", [])))),
            **meta,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"schema_version": SCHEMA_VERSION, **data, "release_ids": self.release_ids,
                "backup_ids": self.backup_ids, "drill_recovery_s": self.drill_recovery_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunReport":
        data = dict(data)
        version = data.pop("schema_version", None)
        if version != SCHEMA_VERSION:
            raise ValueError(f"report schema_version {version!r} is not {SCHEMA_VERSION}")
        data["hosts"] = [HostSummary(**h) for h in data.get("hosts", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    # --- what the roles returned, in words --------------------------------------------------------
    @property
    def release_ids(self) -> list[str]:
        ids = []
        for facts in self.results.values():
            for key in ("deploy_result", "rollback_result"):
                value = _mapping(facts.get(key))
                release = value.get("release") if key == "deploy_result" else value.get("to")
                if release and release not in ids:
                    ids.append(str(release))
        return ids

    @property
    def backup_ids(self) -> list[str]:
        ids = []
        for facts in self.results.values():
            for key, attr in (("backup_result", "id"), ("restore_result", "backup_id"),
                              ("restore_drill_result", "backup"), ("deploy_result", "backup")):
                value = _mapping(facts.get(key)).get(attr)
                if isinstance(value, dict):
                    value = value.get("id")
                if value and value not in ids:
                    ids.append(str(value))
        return ids

    @property
    def drill_recovery_s(self) -> float | None:
        for facts in self.results.values():
            for key in ("restore_drill_result",):
                value = _mapping(facts.get(key))
                for attr in ("recovery_s", "recovery_time_s"):
                    if isinstance(value.get(attr), (int, float, str)) and value.get(attr) != "":
                        try:
                            return float(value[attr])
                        except ValueError:
                            continue
        return None


def _mapping(value: Any) -> dict:
    """A role's result, or {} when it is not a mapping (an error path, a playbook's own fact of the same name)."""
    return value if isinstance(value, dict) else {}


def _describe_batch(v: dict) -> list[str]:
    """A rolling deploy's batch (deploy's batch_end): nothing for one batch that lost no host."""
    unreachable = set(map(str, v.get("unreachable") or []))
    lost = ", ".join(f"{host} unreachable" if host in unreachable else host for host in map(str, v.get("lost") or []))
    where = f"batch {v.get('batch', '?')} of {v.get('batches', '?')}"
    share = f"{v.get('lost_percent', '?')}% of the batch"
    if v.get("stop"):
        line = (f"rolling deploy stopped after {where}: lost {lost} ({share}, more than deploy_max_fail_percentage "
                f"{v.get('max_fail_percentage', 0)}%)")
        later = ", ".join(map(str, v.get("later") or []))
        return [line + (f"; not deployed: {later}" if later else "")]
    if lost:
        return [f"{where} lost {lost} ({share}, within deploy_max_fail_percentage {v.get('max_fail_percentage', 0)}%); "
                "the next batches went on"]
    if v.get("batches", 1) > 1:
        return [f"{where} ({', '.join(map(str, v.get('hosts') or []))}): no host lost"]
    return []


def _describe_rollout(v: dict) -> list[str]:
    """The end of a deploy's rollout (deploy's rollout_end): stale locks of lost hosts, and a switch back."""
    lines = []
    if v.get("stale_locks"):
        lines.append(f"stale deploy lock on {', '.join(map(str, v['stale_locks']))} ({v.get('lock_path', '?')}): lost "
                     "after taking it; the next deploy there is refused until it is older than deploy_lock_max_age or "
                     "broken with -e deploy_lock_break=true")
    if v.get("switch_back"):
        lines.append("rollout stopped: the hosts it deployed were switched back to the release they ran before "
                     "(deploy_rollback_on_batch_failure)")
    return lines


def describe_result(fact: str, value: Any) -> list[str]:
    """Lines that say what a role returned: the release switched to, the backup made, the health, ...

    A value of a shape the role does not return (an error path, a playbook's own fact of the same name) is shown as
    plain data: rendering it must not cost the run its reports and its history row."""
    try:
        return _describe_result(fact, value)
    except (TypeError, AttributeError, KeyError, ValueError):
        return [one_line(json.dumps(value, default=str))]


def _describe_result(fact: str, value: Any) -> list[str]:
    if not isinstance(value, dict):
        return [one_line(value)]
    v = value
    if fact == "deploy_result":
        line = f"deploy {v.get('result', '?')}: {v.get('from') or 'nothing'} -> {v.get('release') or '?'}"
        if v.get("version"):
            line += f" (version {v['version']})"
        if v.get("duration_s") not in (None, ""):
            line += f" in {v['duration_s']}s"
        health = (v.get("health_after") or {}).get("status")
        if health:
            line += f"; health {health}"
        lines = [line]
        if v.get("commits"):
            lines.append(f"commits: {'; '.join(map(str, v['commits']))}")
        migrations = v.get("migrations") or {}
        if migrations:
            lines.extend("migrations " + x for x in describe_result("migrations_result", migrations))
        backup = v.get("backup") or {}
        if isinstance(backup, dict) and backup.get("id"):
            lines.append(f"pre-deploy backup {backup['id']} on {', '.join(map(str, backup.get('hosts') or [])) or '?'}")
        if v.get("pruned"):
            lines.append(f"pruned (keep-N): {', '.join(map(str, v['pruned']))}")
        if v.get("message"):
            lines.append(one_line(v["message"]))
        return lines
    if fact == "deploy_batch_result":
        return _describe_batch(v)
    if fact == "deploy_rollout_result":
        return _describe_rollout(v)
    if fact == "rollback_result":
        line = f"rollback {v.get('result', '?')}: {v.get('from') or '?'} -> {v.get('to') or '?'}"
        health = (v.get("health") or {}).get("status")
        lines = [line + (f"; health {health}" if health else "")]
        if v.get("message"):  # e.g. a retried rollback: which release runs, and how to go further back
            lines.append(one_line(v["message"]))
        return lines
    if fact == "backup_result":
        made = "made" if str(v.get("created")).lower() == "true" else "kept"
        lines = [f"backup {made} {v.get('id', '?')} ({v.get('reason', '')}) at {v.get('path', '?')}".rstrip()]
        if v.get("offhost"):
            lines.append(f"off-host copy: {v['offhost']}")
        if v.get("deleted"):
            lines.append(f"removed by retention: {', '.join(map(str, v['deleted']))}")
        return lines
    if fact == "restore_result":
        parts = v.get("parts") or []
        what = ", ".join(map(str, parts)) if isinstance(parts, list) and parts else "backup"
        line = f"restored {what} of {v.get('backup_id', '?')}"
        if v.get("database"):
            line += f" into {v['database']}"
        if v.get("files"):
            line += f"; files back in {', '.join(map(str, v['files']))}"
        if v.get("replaced"):
            line += f" (previous kept as {v['replaced']})"
        lines = [line]
        if v.get("row_counts"):
            lines.append("row counts: " + ", ".join(f"{k} {n}" for k, n in v["row_counts"].items()))
        if v.get("roles_created"):
            lines.append("roles created from the backup: " + ", ".join(map(str, v["roles_created"])))
        if v.get("database_privileges"):
            lines.append("database privileges: " + ", ".join(map(str, v["database_privileges"])))
        if v.get("database_settings"):
            lines.append("database settings: " + ", ".join(map(str, v["database_settings"])))
        return lines
    if fact == "status_result":
        # The module's own lines: release, unit, port, disk, memory, env keys (never values), commits.
        return [one_line(line) for line in (v.get("report") or []) + (v.get("commits_report") or [])]
    if fact == "db_report_result":
        # The module's own lines: the summary, invalid and unused indexes, the slowest statements, notes.
        return [one_line(line, limit=400) for line in v.get("report") or []]
    if fact == "logs_result":
        shown = v.get("records") or []
        lines = [f"logs: {v.get('matched', 0)} matching of {v.get('scanned', 0)} lines read"
                 + (f", the last {len(shown)} shown" if v.get("matched", 0) > len(shown) else "")]
        return lines + [one_line(line, limit=2000) for line in v.get("report") or []]
    if fact == "preflight_result":
        lines = [f"health {v.get('status', '?')}: {v.get('message', '')}"]
        for check in v.get("checks") or []:
            if isinstance(check, dict):
                lines.append(f"  {check.get('status', '?'):<8} {check.get('name', '?')}: {one_line(check.get('message', ''))}")
        return lines
    if fact == "maintenance_result":
        state, before = v.get("state", "?"), v.get("previous_state", "?")
        change = state if state == before else f"{before} -> {state}"
        line = f"maintenance {change} ({v.get('mechanism', '?')})"
        if str(v.get("restarted")).lower() == "true":
            line += ", restarted"
        return [line]
    if fact == "migrations_result":
        pending = v.get("pending") or []
        applied = str(v.get("applied")).lower() == "true"
        what = (("applied " if applied else "pending ") + ", ".join(map(str, pending))) if pending else "nothing pending"
        return [f"{v.get('tool', '?')}: {v.get('before') or 'none'} -> {v.get('after') or 'none'}; {what}"]
    if fact == "restore_drill_result":
        lines = [one_line(v.get("summary") or f"drill {v.get('result', '?')}", 600)]
        if v.get("recovery_s") not in (None, ""):
            lines.append(f"recovery time {v['recovery_s']} s; phases: "
                         + ", ".join(f"{k} {s}s" for k, s in (v.get("phases_s") or {}).items() if s is not None))
        for check in v.get("checks") or []:
            if isinstance(check, dict):
                status = "ok" if check.get("ok") else "FAILED"
                detail = "" if check.get("ok") else f": expected {check.get('expected')!r}, got {check.get('actual')!r}"
                lines.append(f"  {status:<8} {check.get('name', '?')}{detail}")
        return lines
    # anything else: every scalar, then the checks.
    lines = []
    scalars = [f"{k} {one_line(x, 120)}" for k, x in v.items() if not isinstance(x, (dict, list))]
    if scalars:
        lines.append(", ".join(scalars))
    for key, x in v.items():
        if isinstance(x, list) and x and all(isinstance(i, dict) for i in x):
            for item in x:
                status = item.get("status", "ok" if item.get("ok", True) else "failed")
                lines.append(f"  {status:<8} {item.get('name', key)}: {one_line(item.get('message', item.get('msg', '')), 160)}")
        elif isinstance(x, dict) and x:
            lines.append(f"{key}: " + ", ".join(f"{a} {one_line(b, 60)}" for a, b in x.items()))
    return lines or ["(empty)"]


# --- renderers --------------------------------------------------------------------------------------------
def to_json(report: RunReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False, default=str) + "\n"


# Line breaks of any kind (a value must stay on its line: a table row, a list item) and control characters (a bare ESC
# reaches the terminal through `shipshape report`): shown as the XML writer shows them.
_MD_BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x85\u2028\u2029]")
_MD_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Inline markup a value could start: code, emphasis, links, strike-through, tables; `_` only at a word's edge
# (deploy_health_fail_on stays as it is written, as CommonMark reads it).
_MD_INLINE = re.compile(r"[\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Block markup at the start of a value (a heading, a nested list, "1." an ordered one): escaped there only ('>' is
# already &gt;).
_MD_BLOCK_START = re.compile(r"^(\s*(?:[0-9]+)?)([#+=.)-])")


def _md_line(text: Any) -> str:
    text = _MD_BREAKS.sub(" ", str(text))
    return _MD_CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _md_escape(text: Any) -> str:
    """A value as Markdown text: on one line, its markup and HTML shown as written, never taken as ours."""
    text = _md_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(lambda m: "\\" + m.group(0), text)
    return _MD_BLOCK_START.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _md_code(text: Any) -> str:
    """A value as inline code: fenced by more backticks than it holds in a row, so its own never close it."""
    text = _md_line(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_markdown(report: RunReport) -> str:
    r = report
    e = _md_escape
    lines = [
        f"# shipshape {e(r.command)}: {e(r.result)}",
        "",
        f"- run: {_md_code(r.run_id)}",
        f"- playbook: {_md_code(r.playbook)}",
        f"- inventory: {_md_code(r.inventory)}" + (f", limit {_md_code(r.limit)}" if r.limit else ""),
        f"- by {e(r.user)}, {e(r.started)} -> {e(r.ended)} ({r.duration_s}s)" + (" (check mode)" if r.check else ""),
        f"- exit code {r.exit_code}" + (f": {e(r.message)}" if r.message else ""),
        "",
    ]
    if r.changes:
        lines += ["## What will change", ""] + [f"- {e(c)}" for c in r.changes] + [""]
    lines += ["## Hosts", "", "| host | ok | changed | failed | unreachable | skipped | duration |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for h in r.hosts:
        lines.append(f"| {e(h.name)} | {h.ok} | {h.changed} | {h.failed} | {h.unreachable} | {h.skipped} | {h.duration_s}s |")
    if not r.hosts:
        lines.append("| (no hosts) | | | | | | |")
    lines.append("")
    if r.results:
        lines += ["## Results", ""]
        for host, facts in r.results.items():
            for fact in RESULT_FACTS:
                described = describe_result(fact, facts[fact]) if fact in facts else []
                if described:
                    lines.append(f"- **{e(host)}** {_md_code(fact)}: {e(described[0])}")
                    lines += [f"  - {e(x.strip())}" for x in described[1:]]
        lines.append("")
    if r.failures:
        lines += ["## Failures", ""] + [f"- {e(f)}" for f in r.failures] + [""]
    if r.warnings:
        lines += ["## Warnings", ""] + [f"- {e(w)}" for w in r.warnings] + [""]
    # "running": under way when the run was interrupted.
    problems = [t for t in r.tasks if t["status"] in ("failed", "unreachable", "rescued", "ignored", "running")]
    if problems:
        lines += ["## Failed tasks", "", "| host | task | status | message |", "| --- | --- | --- | --- |"]
        lines += [f"| {e(t['host'])} | {e(t['task'])} | {e(t['status'])} | {e(t['message'])} |" for t in problems]
        lines.append("")
    if r.artifacts:
        lines += ["## Artifacts", ""] + [f"- {e(k)}: {_md_code(v)}" for k, v in r.artifacts.items()] + [""]
    return "\n".join(lines)


# Characters XML 1.0 does not allow at all (ElementTree writes them as they are, and the file no longer parses):
# control characters from a command's output (a bare ESC, a backspace, NUL), surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: Any) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(value))


def to_junit(report: RunReport) -> str:
    """A testsuite per run, a testcase per host and task; failures (and unreachable hosts) as <failure>."""
    suites = _junit(report)
    for element in suites.iter():
        element.text = _xml_text(element.text) if element.text is not None else None
        for name, value in element.attrib.items():
            element.set(name, _xml_text(value))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _junit(report: RunReport) -> ET.Element:
    tasks = report.tasks
    # A task still running when the run was interrupted is no passed test: it fails as "interrupted".
    failing = ("failed", "unreachable", "running") if report.result == "interrupted" else ("failed", "unreachable")
    failures = sum(1 for t in tasks if t["status"] in failing)
    skipped = sum(1 for t in tasks if t["status"] == "skipped")
    suites = ET.Element("testsuites", name=f"shipshape {report.command}", tests=str(len(tasks)),
                        failures=str(failures), time=f"{report.duration_s:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=f"shipshape {report.command} {report.run_id}",
                          tests=str(len(tasks)), failures=str(failures), errors="0", skipped=str(skipped),
                          time=f"{report.duration_s:.3f}", timestamp=report.started)
    for task in tasks:
        case = ET.SubElement(suite, "testcase", classname=task["host"], name=f"{task['play']}: {task['task']}".strip(": "),
                             time=f"{task['duration_s']:.3f}")
        if task["status"] in failing:
            kind = "interrupted" if task["status"] == "running" else task["status"]
            message = task["message"] or ("interrupted while it ran" if kind == "interrupted" else "")
            failure = ET.SubElement(case, "failure", type=kind, message=message)
            failure.text = f"{task['host']}: {task['task']} ({task['action']}, {task['task_path']}): {message}"
        elif task["status"] == "skipped":
            ET.SubElement(case, "skipped")
    if report.exit_code != 0 and not failures:
        # The run stopped before any task, or was interrupted between two: one case says why (a suite of passed
        # cases would read as a run that went well).
        case = ET.SubElement(suite, "testcase", classname="shipshape", name=report.command)
        ET.SubElement(case, "failure", type=report.result, message=report.message or report.result)
        suite.set("tests", str(len(tasks) + 1))
        suite.set("failures", "1")
        suites.set("tests", str(len(tasks) + 1))
        suites.set("failures", "1")
    return suites


def write_reports(report: RunReport, directories: list[Path]) -> dict[str, Path]:
    """Write report.json, report.md and junit.xml into each directory; returns the paths in the first."""
    paths: dict[str, Path] = {}
    for index, directory in enumerate(directories):
        private_dir(directory)
        for name, render in (("report.json", to_json), ("report.md", to_markdown), ("junit.xml", to_junit)):
            path = write_private(directory / name, render(report))
            if index == 0:
                paths[name] = path
    return paths


def render_terminal(report: RunReport, console: Any) -> None:
    """The summary table per host, then the results the roles returned, then the failures."""
    from rich.table import Table
    from rich.text import Text

    if report.changes and report.command != "deploy-check":
        console.print(Text("What will change:", style="bold"))
        for change in report.changes:
            console.print(Text(printable(f"  {change}")))
    table = Table(title=None, show_edge=False, header_style="bold")
    for column, justify in (("host", "left"), ("ok", "right"), ("changed", "right"), ("failed", "right"),
                            ("unreachable", "right"), ("duration", "right")):
        table.add_column(column, justify=justify)
    for h in report.hosts:
        style = "red" if (h.failed or h.unreachable) else ("yellow" if h.changed else "green")
        table.add_row(Text(printable(h.name), style=style), str(h.ok), str(h.changed), str(h.failed), str(h.unreachable),
                      f"{h.duration_s:.1f}s")
    if report.hosts:
        console.print(table)
    for host, facts in report.results.items():
        for fact in RESULT_FACTS:
            described = describe_result(fact, facts[fact]) if fact in facts else []
            if described:
                console.print(Text(printable(f"{host}: "), style="bold") + Text(printable(described[0])))
                for extra in described[1:]:
                    console.print(Text(printable(f"    {extra.strip()}")))
    for failure in report.failures:
        console.print(Text(printable(f"FAILED {failure}"), style="red"))
    for warning in report.warnings:
        console.print(Text(printable(f"WARNING {warning}"), style="yellow"))
