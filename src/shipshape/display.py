"""Live progress while a playbook runs: rich on a terminal, plain lines otherwise, nothing with --quiet."""

from __future__ import annotations

import time
from typing import Any, TextIO

from shipshape.events import EventCollector, one_line, printable


class NullProgress:
    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def update(self, name: str, event: dict) -> None:
        return None

    def attach(self, collector: EventCollector) -> EventCollector:
        collector.on_update = self.update
        self.collector = collector
        return collector


class PlainProgress(NullProgress):
    """One line per play and task, and one per host that changed, failed or was unreachable."""

    def __init__(self, stream: TextIO, label: str = "") -> None:
        self.stream = stream
        self.label = label
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        self.stream.write(f"[{time.monotonic() - self.started:7.1f}s] {printable(text)}\n")
        self.stream.flush()

    def update(self, name: str, event: dict) -> None:
        data = event.get("event_data") or {}
        if name == "playbook_on_play_start":
            self._line(f"{self.label}PLAY {data.get('name') or data.get('play', '')}")
        elif name in ("playbook_on_task_start", "playbook_on_handler_task_start"):
            self._line(f"{self.label}TASK {data.get('task', '')}")
        elif name in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            # The collector's status: a lost docker connection arrives as a failure and is shown as unreachable.
            record = self.collector.tasks.get((data.get("task_uuid", ""), data.get("host", "")))
            what = "unreachable" if name == "runner_on_unreachable" or (record and record.status == "unreachable") else "failed"
            self._line(f"  {what}: {data.get('host')}: {record.message if record else ''}")
        elif name == "runner_on_ok" and (data.get("res") or {}).get("changed"):
            self._line(f"  changed: {data.get('host')}")


class RichProgress(NullProgress):
    """A spinner line: the current task, hosts done/total for it, elapsed time; failures printed above."""

    def __init__(self, console: Any, label: str = "") -> None:
        from rich.live import Live

        self.console = console
        self.label = label
        self.started = time.monotonic()
        self.live = Live(console=console, get_renderable=self._render, refresh_per_second=8, transient=True)

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.text import Text

        collector = getattr(self, "collector", None)
        progress = collector.progress if collector else None
        task = progress.task if progress else "starting"
        hosts = f"{progress.hosts_done}/{progress.hosts_total} hosts" if progress and progress.hosts_total else ""
        text = Text.assemble(
            (self.label, "bold"),
            (printable(one_line(task, 80)) or "starting", "cyan"),
            ("  " + hosts if hosts else "", "dim"),
            (f"  {time.monotonic() - self.started:.1f}s", "dim"),
        )
        return Spinner("dots", text=text)

    def __enter__(self) -> "RichProgress":
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.live.__exit__(*exc)

    def update(self, name: str, event: dict) -> None:
        from rich.text import Text

        data = event.get("event_data") or {}
        if name in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
            record = self.collector.tasks.get((data.get("task_uuid", ""), data.get("host", "")))
            what = "unreachable" if name == "runner_on_unreachable" or (record and record.status == "unreachable") else "failed"
            self.console.print(Text(printable(f"{what}: {data.get('host')} [{data.get('task', '')}] "
                                              f"{record.message if record else ''}"), style="red"))
