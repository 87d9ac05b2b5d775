"""Alembic revisions: the head shipped in this release vs. the one recorded in the database."""

from __future__ import annotations

import functools
import os
from typing import Optional, Tuple

import psycopg
from psycopg import errors as pg_errors

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


@functools.lru_cache(maxsize=1)
def shipped_heads(migrations_dir: str = MIGRATIONS_DIR) -> Tuple[str, ...]:
    import logging

    from alembic.script import ScriptDirectory  # imported lazily: only /readyz needs it

    logging.getLogger("alembic").setLevel(logging.WARNING)

    return tuple(sorted(ScriptDirectory(migrations_dir).get_heads()))


@functools.lru_cache(maxsize=1)
def shipped_revisions(migrations_dir: str = MIGRATIONS_DIR) -> frozenset:
    """Every revision this release ships (not only the heads)."""
    import logging

    from alembic.script import ScriptDirectory

    logging.getLogger("alembic").setLevel(logging.WARNING)

    return frozenset(rev.revision for rev in ScriptDirectory(migrations_dir).walk_revisions())


def current_revisions(conn: psycopg.Connection) -> Optional[Tuple[str, ...]]:
    """Revisions in alembic_version, () when empty, None when the table does not exist."""
    try:
        with conn.transaction():
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    except pg_errors.UndefinedTable:
        return None
    return tuple(sorted(r[0] for r in rows))
