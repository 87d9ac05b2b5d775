"""The run history: one SQLite row per run in <state>/history.sqlite (standard library only)."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipshape.config import UsageError
from shipshape.private import private_dir, private_file
from shipshape.report import RunReport

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    inventory TEXT,
    run_limit TEXT,
    user TEXT,
    started TEXT,
    ended TEXT,
    duration_s REAL,
    result TEXT,
    exit_code INTEGER,
    check_mode INTEGER DEFAULT 0,
    release_ids TEXT DEFAULT '[]',
    backup_ids TEXT DEFAULT '[]',
    drill_recovery_s REAL,
    message TEXT,
    run_dir TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
"""

COLUMNS = ("run_id", "command", "inventory", "run_limit", "user", "started", "ended", "duration_s", "result",
           "exit_code", "check_mode", "release_ids", "backup_ids", "drill_recovery_s", "message", "run_dir")

SPARKS = "▁▂▃▄▅▆▇█"
# A backup id is "<backup name>-YYYYmmddTHHMMSSZ" (roles/backup): the name is what the drills trend by.
_STAMP = re.compile(r"-[0-9]{8}T[0-9]{6}Z$")


def backup_name_of(backup_id: str) -> str:
    """The backup name of a backup id ('' when the id does not end in the role's UTC stamp)."""
    return _STAMP.sub("", backup_id) if _STAMP.search(backup_id or "") else ""


def backup_names(row: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for backup_id in row.get("backup_ids") or []:
        name = backup_name_of(backup_id)
        if name and name not in names:
            names.append(name)
    return names


@dataclass
class History:
    path: Path

    def connect(self) -> sqlite3.Connection:
        private_dir(self.path.parent)
        private_file(self.path)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            connection.executescript(SCHEMA)
        except sqlite3.Error as exc:
            connection.close()
            raise self.unusable(exc) from None
        return connection

    def unusable(self, exc: sqlite3.Error) -> UsageError:
        """A history that is not a database (overwritten, cut short) or stays locked: one line naming it."""
        return UsageError(f"the history {self.path} cannot be used: {exc} (move it aside to start a new one)")

    def record(self, report: RunReport, run_dir: Path | str) -> None:
        row = {
            "run_id": report.run_id,
            "command": report.command,
            "inventory": report.inventory,
            "run_limit": report.limit,
            "user": report.user,
            "started": report.started,
            "ended": report.ended,
            "duration_s": report.duration_s,
            "result": report.result,
            "exit_code": report.exit_code,
            "check_mode": int(bool(report.check)),
            "release_ids": json.dumps(report.release_ids),
            "backup_ids": json.dumps(report.backup_ids),
            "drill_recovery_s": report.drill_recovery_s,
            "message": report.message,
            "run_dir": str(run_dir),
        }
        try:
            with closing(self.connect()) as connection, connection:
                connection.execute(
                    f"INSERT OR REPLACE INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})",
                    row,
                )
        except sqlite3.Error as exc:
            raise self.unusable(exc) from None

    def runs(self, limit: int | None = None, command: str | None = None,
             name: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first; with a name, only those whose backups are of that backup name."""
        if not self.path.exists():
            return []
        query = "SELECT * FROM runs"
        params: list[Any] = []
        if command:
            query += " WHERE command = ?"
            params.append(command)
        query += " ORDER BY started DESC, run_id DESC"
        if limit and not name:
            query += " LIMIT ?"
            params.append(limit)
        try:
            with closing(self.connect()) as connection:
                rows = [dict(r) for r in connection.execute(query, params)]
        except sqlite3.Error as exc:
            raise self.unusable(exc) from None
        for row in rows:
            row["release_ids"] = json.loads(row["release_ids"] or "[]")
            row["backup_ids"] = json.loads(row["backup_ids"] or "[]")
            row["check_mode"] = bool(row["check_mode"])
            row["backup_names"] = backup_names(row)
        if name:
            rows = [r for r in rows if name in r["backup_names"]]
            rows = rows[:limit] if limit else rows
        return rows

    def find(self, run: str) -> dict[str, Any] | None:
        """A run by its id, a unique prefix of it, or 'last'."""
        rows = self.runs()
        if run == "last":
            return rows[0] if rows else None
        exact = [r for r in rows if r["run_id"] == run]
        if exact:
            return exact[0]
        matches = [r for r in rows if r["run_id"].startswith(run)]
        return matches[0] if len(matches) == 1 else None

    def drills(self, name: str | None = None) -> list[dict[str, Any]]:
        """Drill runs, oldest first, each with its backup name ('' when it reached no backup) and the change of
        recovery time since the previous drill of the same name: one trend per database, never mixed."""
        rows = list(reversed(self.runs(command="drill")))
        previous: dict[str, float] = {}
        for row in rows:
            row["name"] = (row["backup_names"] or [""])[0]
            seconds = row["drill_recovery_s"]
            last = previous.get(row["name"])
            row["delta_s"] = round(seconds - last, 1) if (seconds is not None and last is not None) else None
            if seconds is not None:
                previous[row["name"]] = seconds
        if name is not None:
            rows = [r for r in rows if r["name"] == name]
        return rows


def sparkline(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    return "".join(" " if v is None else SPARKS[int((v - low) / span * (len(SPARKS) - 1))] for v in values)
