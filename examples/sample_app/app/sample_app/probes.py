"""Dependency probes used by /healthz, /readyz and /metrics."""

from __future__ import annotations

from typing import Optional

import psycopg
from psycopg import errors as pg_errors

DEAD_LETTER_STREAM = "events:dead"


def check_database(conn: psycopg.Connection) -> None:
    """Raise if the database does not answer."""
    conn.execute("SELECT 1").fetchone()


def outbox_counts(conn: psycopg.Connection) -> Optional[dict]:
    """{"pending": N, "failed": N} from the outbox table, or None when the table does not exist yet."""
    try:
        with conn.transaction():
            rows = conn.execute(
                "SELECT status, count(*) FROM outbox WHERE status IN ('pending', 'failed') GROUP BY status"
            ).fetchall()
    except pg_errors.UndefinedTable:
        return None
    counts = {"pending": 0, "failed": 0}
    for status, n in rows:
        counts[status] = int(n)
    return counts


def dead_letter_length(client) -> int:
    """Length of the Redis dead-letter stream (0 when it does not exist)."""
    return int(client.xlen(DEAD_LETTER_STREAM))
