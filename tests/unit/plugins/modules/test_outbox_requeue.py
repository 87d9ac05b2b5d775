"""shipshape.ops.outbox_requeue against a fake DB-API driver that interprets the composed SQL it is sent."""

from __future__ import annotations

import re

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import postgres
from ansible_collections.shipshape.ops.plugins.modules import outbox_requeue
from ansible_collections.shipshape.ops.tests.unit.fake_sql import Composed, FakeSQL


def row(status, attempts=1, age_days=0):
    return {"status": status, "attempts": attempts, "age_days": age_days, "touched": False}


class FakeDatabase(object):
    def __init__(self, rows):
        self.rows = rows
        self.statements = []
        self.committed = self.rolled_back = self.closed = False
        self.kwargs = None

    def connect(self, **kwargs):
        self.kwargs = kwargs
        return FakeConnection(self)


class FakeConnection(object):
    def __init__(self, db):
        self.db = db
        self.pending = None

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.db.committed = True

    def rollback(self):
        self.db.rolled_back = True
        if self.pending is not None:
            for r, saved in self.pending:
                r.update(saved)
            self.pending = None

    def close(self):
        self.db.closed = True


class FakeCursor(object):
    def __init__(self, conn):
        self.conn = conn
        self.db = conn.db
        self.result = []
        self.rowcount = -1

    def matches(self, where, values):
        values = list(values)
        tests = []
        for cond in where.split(" AND "):
            m = re.match(r'^"(\w+)" = %s$', cond)
            if m:
                tests.append(lambda r, c=m.group(1), v=values.pop(0): r[c] == v)
                continue
            m = re.match(r'^"created_at" > now\(\) - %s::interval$', cond)
            if m:
                days = int(values.pop(0).split()[0])
                tests.append(lambda r, d=days: r["age_days"] < d)
                continue
            m = re.match(r'^"attempts" >= %s$', cond)
            assert m, cond
            tests.append(lambda r, n=values.pop(0): r["attempts"] >= n)
        assert not values
        return [r for r in self.db.rows if all(t(r) for t in tests)]

    def execute(self, query, values=None):
        text = query.text if isinstance(query, Composed) else query
        self.db.statements.append((text, values))
        assert "%s" not in text or values is not None
        m = re.match(r'^SELECT count\(\*\) FROM \(SELECT 1 FROM "outbox" WHERE (.*) FOR UPDATE\) AS matched$', text)
        if m:
            self.result = [(len(self.matches(m.group(1), values)),)]
            return
        m = re.match(r'^SELECT "status"::text, count\(\*\) FROM "outbox" GROUP BY 1$', text)
        if m:
            counts = {}
            for r in self.db.rows:
                counts[r["status"]] = counts.get(r["status"], 0) + 1
            self.result = list(counts.items())
            return
        m = re.match(r'^UPDATE "outbox" SET "status" = %s(, "attempts" = 0)?(, "updated_at" = now\(\))? WHERE (.*)$', text)
        assert m, text
        hits = self.matches(m.group(3), values[1:])
        self.conn.pending = [(r, dict(r)) for r in hits]
        for r in hits:
            r["status"] = values[0]
            if m.group(1):
                r["attempts"] = 0
            r["touched"] = bool(m.group(2))
        self.rowcount = len(hits)

    def fetchone(self):
        return self.result[0]

    def fetchall(self):
        return self.result


ROWS = [row("failed", attempts=a, age_days=d) for a, d in [(1, 0), (3, 0), (5, 2), (3, 10), (1, 10)]] + \
    [row("pending") for dummy in range(3)] + [row("sent") for dummy in range(4)]


@pytest.fixture
def database(monkeypatch):
    def install(rows=None):
        db = FakeDatabase([dict(r) for r in (rows if rows is not None else ROWS)])
        monkeypatch.setattr(postgres, "DRIVER", db)
        monkeypatch.setattr(postgres, "sql", FakeSQL)
        monkeypatch.setattr(postgres, "DRIVER_NAME", "psycopg2")
        return db
    return install


def statuses(db):
    counts = {}
    for r in db.rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts


@pytest.mark.parametrize(
    "args, matched",
    [
        ({}, 5),
        ({"min_attempts": 3}, 3),
        ({"max_age": "7 days"}, 3),
        ({"max_age": "7 days", "min_attempts": 3}, 2),
        ({"failed_status": "nope"}, 0),
    ],
    ids=["all-failed", "min-attempts", "max-age", "both", "none"],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_requeues_failed_rows(database, run_module, args, matched, check_mode):
    db = database()
    failed, result = run_module(outbox_requeue, dict(args, db="sample_app"), check_mode=check_mode)
    assert not failed, result
    assert result["matched"] == matched
    assert result["changed"] is (matched > 0)
    assert result["counts_before"] == {"failed": 5, "pending": 3, "sent": 4}
    failed_left = 5 - matched if "failed_status" not in args else 5
    expected_after = dict((k, v) for k, v in {"failed": failed_left, "pending": 3 + matched, "sent": 4}.items() if v)
    assert result["counts_after"] == expected_after
    if check_mode:
        assert result["requeued"] == 0 and statuses(db) == {"failed": 5, "pending": 3, "sent": 4}
        assert not db.committed and not [s for s in db.statements if s[0].startswith("UPDATE")]
    else:
        assert result["requeued"] == matched and statuses(db) == expected_after
        assert db.committed is (matched > 0)
        touched = [r for r in db.rows if r["touched"]]
        assert len(touched) == matched and all(r["attempts"] == 0 and r["status"] == "pending" for r in touched)
    assert db.closed


def test_values_are_parameters_never_sql(database, run_module):
    db = database()
    run_module(outbox_requeue, {"db": "x", "failed_status": "failed'; DROP TABLE outbox; --", "max_age": "1 day"})
    for text, dummy in db.statements:
        assert "DROP" not in text


def test_second_run_is_a_no_op(database, run_module):
    db = database()
    assert run_module(outbox_requeue, {"db": "x"})[1]["requeued"] == 5
    failed, result = run_module(outbox_requeue, {"db": "x"})
    assert not failed and result["changed"] is False and result["matched"] == 0
    assert statuses(db) == {"pending": 8, "sent": 4}


def test_refuses_more_than_max_rows_and_changes_nothing(database, run_module):
    db = database()
    failed, result = run_module(outbox_requeue, {"db": "x", "max_rows": 4})
    assert failed
    assert "Refusing to requeue 5 failed rows of outbox: more than max_rows (4)" in result["msg"]
    assert statuses(db) == {"failed": 5, "pending": 3, "sent": 4} and not db.committed


def test_columns_are_configurable(database, run_module):
    db = database()
    failed, result = run_module(outbox_requeue, {"db": "x", "attempts_column": "", "updated_column": ""})
    assert not failed and result["requeued"] == 5
    update = [s for s, v in db.statements if s.startswith("UPDATE")][0]
    assert update.startswith('UPDATE "outbox" SET "status" = %s WHERE')
    assert [r["attempts"] for r in db.rows if r["status"] == "pending" and r["age_days"]] == [5, 3, 1]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"table": "a.b.c"}, "is not a table name"),
        ({"min_attempts": -1}, "min_attempts cannot be negative"),
        ({"pending_status": "failed"}, "both 'failed'"),
        ({"max_age": "1 day", "created_column": ""}, "max_age needs created_column"),
    ],
)
def test_bad_options(database, run_module, args, message):
    db = database()
    failed, result = run_module(outbox_requeue, dict(args, db="x"))
    assert failed and message in result["msg"]
    assert db.kwargs is None


def test_database_error_rolls_back(database, run_module):
    db = database()
    failed, result = run_module(outbox_requeue, {"db": "x", "table": "missing"})
    assert failed and "Cannot requeue the failed rows of missing in database x" in result["msg"]
    assert db.rolled_back and db.closed


def test_min_attempts_without_attempts_column_is_refused(database, run_module):
    """min_attempts with attempts_column empty was dropped from the WHERE without a word: every failed row was
    requeued, not only those tried that often."""
    db = database()
    failed, result = run_module(outbox_requeue, {"db": "x", "attempts_column": "", "min_attempts": 3})
    assert failed and "min_attempts needs attempts_column" in result["msg"], result
    assert db.kwargs is None and statuses(db) == {"failed": 5, "pending": 3, "sent": 4}


def test_rows_failing_between_the_count_and_the_update_do_not_pass_max_rows(database, run_module, monkeypatch):
    """The count locks the failed rows, but a row a worker marks failed after it is matched by the UPDATE too: the
    run requeued more rows than max_rows allows, and committed."""
    db = database()
    execute = FakeCursor.execute

    def a_worker_fails_one_more(self, query, values=None):
        execute(self, query, values)
        if (query.text if isinstance(query, Composed) else query).startswith("SELECT count(*)"):
            db.rows.append(row("failed", attempts=2))
    monkeypatch.setattr(FakeCursor, "execute", a_worker_fails_one_more)
    failed, result = run_module(outbox_requeue, {"db": "x", "max_rows": 5})
    assert failed and "Refusing to requeue 6 failed rows of outbox: more than max_rows (5)" in result["msg"], result
    assert result["requeued"] == 0 and not result["changed"]
    assert statuses(db) == {"failed": 6, "pending": 3, "sent": 4} and not db.committed and db.rolled_back
