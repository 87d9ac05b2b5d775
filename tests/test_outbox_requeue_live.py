"""shipshape.ops.outbox_requeue against a throwaway PostgreSQL 15 on loopback (the server of
test_pg_backup_manifest_live): the runbooks' requeue conditions (attempts < 3, created within a day, last_error
reset, scheduled_at set) pick exactly the rows they name, and nothing else changes."""

from __future__ import annotations

import psycopg
import pytest
from test_pg_backup_manifest_live import pg_server  # noqa: F401  (pg_server: a fixture)

from module_runner import run_ansible_module


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


@pytest.fixture
def outbox(pg_server):  # noqa: F811
    """Failed rows: id 1 (1 attempt, an hour old), 2 (3 attempts, an hour old), 3 (1 attempt, 3 days old);
    id 4 pending. Every failed row has a last_error and no scheduled_at."""
    port, dummy = pg_server
    with admin(port) as conn:
        conn.execute("DROP DATABASE IF EXISTS loyalty WITH (FORCE)")
        conn.execute("CREATE DATABASE loyalty")
    with admin(port, "loyalty") as conn:
        conn.execute("CREATE TABLE outbox (id int PRIMARY KEY, status text, attempts int, last_error text,"
                     " scheduled_at timestamptz, created_at timestamptz, updated_at timestamptz)")
        conn.execute("INSERT INTO outbox VALUES"
                     " (1, 'failed', 1, 'timeout', NULL, now() - interval '1 hour', now() - interval '1 hour'),"
                     " (2, 'failed', 3, 'timeout', NULL, now() - interval '1 hour', now() - interval '1 hour'),"
                     " (3, 'failed', 1, 'timeout', NULL, now() - interval '3 days', now() - interval '3 days'),"
                     " (4, 'pending', 0, NULL, NULL, now(), now())")
    yield port


def rows(port):
    with admin(port, "loyalty") as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT id, status, attempts, last_error, scheduled_at IS NOT NULL FROM outbox ORDER BY id")}


def requeue(ansible_env, port, check=False, **extra):
    args = dict(db="loyalty", host="127.0.0.1", port=port, user="postgres", max_attempts=3, max_age="1 day",
                null_columns=["last_error"], now_columns=["scheduled_at"], reset_attempts=False)
    args.update(extra)
    return run_ansible_module(ansible_env, "shipshape.ops.outbox_requeue", args, check=check)


def test_the_runbook_conditions_requeue_only_the_rows_they_name(ansible_env, outbox):
    before = rows(outbox)
    rc, result = requeue(ansible_env, outbox, check=True)
    assert rc == 0 and result["matched"] == 1 and rows(outbox) == before, "check mode counts and changes nothing"

    rc, result = requeue(ansible_env, outbox)
    assert rc == 0 and result["changed"] and result["requeued"] == 1, result
    after = rows(outbox)
    assert after[1] == ("pending", 1, None, True), "attempts kept, last_error reset, scheduled_at set"
    assert after[2] == before[2], "3 attempts is not below max_attempts=3"
    assert after[3] == before[3], "3 days old is outside max_age=1 day"
    assert after[4] == before[4]

    rc, again = requeue(ansible_env, outbox)
    assert rc == 0 and not again["changed"] and again["requeued"] == 0


@pytest.mark.parametrize(("extra", "message"), [
    ({"null_columns": ["status"]}, "null_columns: 'status' is empty or a column the requeue already sets"),
    ({"min_attempts": 3}, "min_attempts (3) must be below max_attempts (3)"),
    ({"now_columns": ["scheduled_at; DROP TABLE outbox"]}, "does not exist"),
])
def test_bad_conditions_are_refused_and_nothing_changes(ansible_env, outbox, extra, message):
    before = rows(outbox)
    rc, result = requeue(ansible_env, outbox, **extra)
    assert rc != 0 and message in result["msg"], result
    assert rows(outbox) == before
