"""Notes storage (v2: optional tag). POST writes the note and an outbox row in one transaction (outbox pattern)."""

from __future__ import annotations

import json
from typing import Any, Optional

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

MAX_BODY = 10_000
MAX_TAG = 64
COLUMNS = "id, body, tag, created_at"


class ValidationError(ValueError):
    pass


def validate(payload: Any) -> dict:
    if not isinstance(payload, dict):
        raise ValidationError("expected a JSON object")
    body = payload.get("body")
    if not isinstance(body, str) or not body.strip():
        raise ValidationError("'body' must be a non-empty string")
    if len(body) > MAX_BODY:
        raise ValidationError(f"'body' is longer than {MAX_BODY} characters")
    tag = payload.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG):
        raise ValidationError(f"'tag' must be a string of at most {MAX_TAG} characters, or null")
    return {"body": body, "tag": tag}


def to_json(row: dict) -> dict:
    out = dict(row)
    if out.get("created_at") is not None:
        out["created_at"] = out["created_at"].isoformat()
    return out


def create(conn: psycopg.Connection, note: dict) -> dict:
    with conn.transaction():
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                f"INSERT INTO notes (body, tag) VALUES (%s, %s) RETURNING {COLUMNS}", (note["body"], note["tag"])
            )
            row = to_json(cur.fetchone())
            cur.execute(
                "INSERT INTO outbox (event_type, payload, status) VALUES (%s, %s, 'pending')",
                ("note.created", Jsonb(row)),
            )
    return row


def get(conn: psycopg.Connection, note_id: int) -> Optional[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM notes WHERE id = %s", (note_id,))
        row = cur.fetchone()
    return to_json(row) if row else None


def list_(conn: psycopg.Connection, limit: int) -> tuple[list, int]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {COLUMNS} FROM notes ORDER BY id LIMIT %s", (limit,))
        rows = [to_json(r) for r in cur.fetchall()]
        cur.execute("SELECT count(*) AS n FROM notes")
        total = cur.fetchone()["n"]
    return rows, int(total)


def event_fields(row: dict) -> dict:
    """Fields of the Redis stream entry announcing a new note."""
    return {"type": "note.created", "note_id": str(row["id"]), "payload": json.dumps(row)}
