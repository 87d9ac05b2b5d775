"""shipshape.ops.pg_backup_manifest against a fake DB-API driver (no database needed)."""

from __future__ import annotations

import sys
import types

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import pg_catalog, postgres
from ansible_collections.shipshape.ops.plugins.modules import pg_backup_manifest

#: The fake driver knows the old queries only; the catalog's own are tested live (tests/test_pg_backup_manifest_live.py).
STUB_CATALOG = {"tables": {}, "totals": {"tables": 0}}


@pytest.fixture(autouse=True)
def stub_catalog(monkeypatch):
    monkeypatch.setattr(pg_catalog, "describe", lambda cursor, sql: STUB_CATALOG)


class FakeError(Exception):
    """A driver error; psycopg2 names the SQLSTATE pgcode, psycopg 3 sqlstate."""

    def __init__(self, msg, code, style):
        super().__init__(msg)
        setattr(self, "pgcode" if style == "psycopg2" else "sqlstate", code)


class FakeSQL(object):
    """Stands in for psycopg2.sql / psycopg.sql: records the identifier parts it was given."""

    class SQL(object):
        def __init__(self, text):
            self.text = text

        def format(self, ident):
            return ("COUNT", ident.parts)

    class Identifier(object):
        def __init__(self, *parts):
            self.parts = parts


class FakeDatabase(object):
    def __init__(self, tables=None, revision="abc123", style="psycopg2", fail_count=None):
        # tables: {(schema, table): rows}; unqualified names resolve in schema public
        self.tables = tables if tables is not None else {("public", "users"): 3, ("audit", "events"): 7}
        self.revision = revision  # None: no alembic_version table; "": table without rows
        self.style = style
        self.fail_count = fail_count
        self.connect_kwargs = None
        self.statements = []
        self.closed = False
        self.rolled_back = False

    # the driver module's connect()
    def connect(self, **kwargs):
        self.connect_kwargs = kwargs
        return FakeConnection(self)


class FakeConnection(object):
    def __init__(self, database):
        self.database = database

    def cursor(self):
        return FakeCursor(self.database)

    def rollback(self):
        self.database.rolled_back = True

    def close(self):
        self.database.closed = True


class FakeCursor(object):
    def __init__(self, database):
        self.db = database
        self.row = None

    def execute(self, query, args=None):
        db = self.db
        db.statements.append((query, args))
        self.row = None
        if isinstance(query, tuple):  # the composed count query
            parts = query[1]
            key = parts if len(parts) == 2 else ("public",) + parts
            if db.fail_count == key:
                raise FakeError("permission denied for table %s" % key[1], "42501", db.style)
            self.row = (db.tables[key],)
        elif query == "SELECT current_database()":
            self.row = ("sample_app",)
        elif query == "SHOW server_version":
            self.row = ("15.8 (Debian 15.8-0+deb12u1)",)
        elif query == "SELECT version_num FROM alembic_version":
            if db.revision is None:
                raise FakeError('relation "alembic_version" does not exist', "42P01", db.style)
            self.row = (db.revision,) if db.revision else None
        elif query.startswith("SELECT to_regclass("):
            key = tuple(args) if len(args) == 2 else ("public",) + tuple(args)
            self.row = (key in db.tables,)
        elif query.startswith(("SET TRANSACTION", "SAVEPOINT", "ROLLBACK TO", "RELEASE")) or query == pg_catalog.ROW_SECURITY_OFF:
            pass
        else:
            raise FakeError("syntax error at or near %r" % query.split()[0], "42601", db.style)

    def fetchone(self):
        return self.row


@pytest.fixture
def fake_db(monkeypatch):
    def install(**kwargs):
        database = FakeDatabase(**kwargs)
        monkeypatch.setattr(postgres, "DRIVER", database)
        monkeypatch.setattr(postgres, "sql", FakeSQL)
        monkeypatch.setattr(postgres, "DRIVER_NAME", database.style)
        return database

    return install


@pytest.mark.parametrize("style", ["psycopg2", "psycopg"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_manifest_collects_version_revision_and_counts(fake_db, run_module, style, check_mode):
    db = fake_db(style=style)
    failed, result = run_module(
        pg_backup_manifest,
        {"db": "sample_app", "tables": ["users", "audit.events", "orders"], "extra": {"dump": "x.dump", "database": "no"}},
        check_mode=check_mode,
    )
    assert not failed and result["changed"] is False
    manifest = result["manifest"]
    assert manifest["database"] == "sample_app"  # collected keys win over extra
    assert manifest["dump"] == "x.dump"
    assert manifest["server_version"].startswith("15.8")
    assert manifest["revision"] == "abc123"
    assert manifest["row_counts"] == {"users": 3, "audit.events": 7}
    assert manifest["tables_missing"] == ["orders"]
    assert manifest["collected_at"].endswith("Z")
    assert result["driver"] == style
    assert db.statements[0][0].startswith("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
    assert db.rolled_back and db.closed


@pytest.mark.parametrize("style", ["psycopg2", "psycopg"])
@pytest.mark.parametrize(
    "revision, expected",
    [(None, None), ("", None), ("3f2a1b9c0d4e", "3f2a1b9c0d4e")],
    ids=["no-alembic-table", "empty-table", "revision"],
)
def test_revision_is_null_without_the_alembic_table(fake_db, run_module, style, revision, expected):
    db = fake_db(revision=revision, style=style)
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "tables": ["users"]})
    assert not failed
    assert result["manifest"]["revision"] == expected
    # the failed query was rolled back to its savepoint, and the counts still ran after it
    assert result["manifest"]["row_counts"] == {"users": 3}
    if revision is None:
        assert ("ROLLBACK TO SAVEPOINT shipshape_revision", None) in db.statements


def test_row_level_security_is_off_before_anything_is_counted(fake_db, run_module):
    # A role row level security applies to counted only the rows its policies show: off, the server refuses instead.
    db = fake_db()
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "tables": ["users"]})
    assert not failed
    queries = [statement[0] for statement in db.statements]
    first_count = next(i for i, q in enumerate(queries) if isinstance(q, tuple))
    assert pg_catalog.ROW_SECURITY_OFF in queries[:first_count]


def test_an_empty_revision_query_is_skipped(fake_db, run_module):
    db = fake_db()
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "revision_query": ""})
    assert not failed and result["manifest"]["revision"] is None
    assert not any("SAVEPOINT" in str(statement) for statement in db.statements)


@pytest.mark.parametrize("style", ["psycopg2", "psycopg"])
def test_other_revision_query_errors_fail_with_a_traceback(fake_db, run_module, style):
    fake_db(style=style)
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "revision_query": "SELEC 1"})
    assert failed
    assert "Cannot collect the manifest of database sample_app" in result["msg"]
    assert "syntax error" in result["msg"]
    assert "Traceback" in result["exception"]


@pytest.mark.parametrize(
    "fail_on_missing, tables, failed_expected",
    [
        (False, ["users", "gone"], False),
        (True, ["users", "gone"], True),
        (True, ["users", "audit.events"], False),
        (True, [], False),
    ],
)
def test_fail_on_missing(fake_db, run_module, fail_on_missing, tables, failed_expected):
    fake_db()
    failed, result = run_module(
        pg_backup_manifest, {"db": "sample_app", "tables": tables, "fail_on_missing": fail_on_missing}
    )
    assert failed is failed_expected
    assert result["manifest"]["tables_missing"] == [t for t in tables if t == "gone"]
    if failed:
        assert result["msg"] == "Tables not found in database sample_app: gone"


@pytest.mark.parametrize("name", ["a.b.c", ".users", "public.", ""])
def test_malformed_table_names_are_refused(fake_db, run_module, name):
    db = fake_db()
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "tables": [name]})
    assert failed and result["msg"].startswith("tables: ")
    assert db.connect_kwargs is None  # refused before connecting


def test_count_errors_fail_the_module(fake_db, run_module):
    fake_db(fail_count=("public", "users"))
    failed, result = run_module(pg_backup_manifest, {"db": "sample_app", "tables": ["users"]})
    assert failed and "permission denied for table users" in result["msg"]


@pytest.mark.parametrize(
    "args, expected",
    [
        ({}, {"dbname": "app", "port": 5432, "connect_timeout": 10}),
        ({"unix_socket": "/run/pg"}, {"dbname": "app", "port": 5432, "connect_timeout": 10, "host": "/run/pg"}),
        (
            {"host": "db1", "port": 5433, "user": "backup", "password": "s3cret", "unix_socket": "/ignored"},
            {"dbname": "app", "port": 5433, "connect_timeout": 10, "host": "db1", "user": "backup", "password": "s3cret"},
        ),
    ],
    ids=["peer-default-socket", "socket-dir", "tcp"],
)
def test_connection_options(fake_db, run_module, args, expected):
    db = fake_db()
    failed, result = run_module(pg_backup_manifest, dict({"db": "app"}, **args))
    assert not failed
    assert db.connect_kwargs == expected
    assert "s3cret" not in str(result)


def test_connection_failure_names_the_target(monkeypatch, run_module):
    class Refusing(object):
        @staticmethod
        def connect(**kwargs):
            raise FakeError('connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed', "08006", "psycopg")

    monkeypatch.setattr(postgres, "DRIVER", Refusing)
    monkeypatch.setattr(postgres, "DRIVER_NAME", "psycopg")
    failed, result = run_module(pg_backup_manifest, {"db": "app", "user": "backup"})
    assert failed
    assert result["msg"].startswith("Cannot connect to database app on the local Unix socket port 5432 as backup:")


def test_missing_driver_uses_missing_required_lib(monkeypatch, run_module):
    monkeypatch.setattr(postgres, "DRIVER", None)
    monkeypatch.setattr(postgres, "IMPORT_ERROR", "Traceback: No module named 'psycopg'")
    failed, result = run_module(pg_backup_manifest, {"db": "app"})
    assert failed
    assert "Failed to import the required Python library (psycopg2 (python3-psycopg2) or psycopg)" in result["msg"]
    assert "No module named" in result["exception"]


@pytest.mark.parametrize(
    "blocked, expected",
    [([], "psycopg2"), (["psycopg2"], "psycopg"), (["psycopg2", "psycopg"], None)],
    ids=["both", "only-psycopg3", "neither"],
)
def test_driver_preference(monkeypatch, blocked, expected):
    for name in ("psycopg2", "psycopg"):
        fake = types.ModuleType(name)
        fake.sql = types.ModuleType(name + ".sql")
        monkeypatch.setitem(sys.modules, name, None if name in blocked else fake)
        monkeypatch.setitem(sys.modules, name + ".sql", None if name in blocked else fake.sql)
    driver, sql, name, error = postgres.import_driver()
    assert name == expected
    if expected:
        assert driver is sys.modules[expected] and sql is sys.modules[expected + ".sql"] and error is None
    else:
        assert driver is None and sql is None
        assert "ImportError" in error or "ModuleNotFoundError" in error


@pytest.mark.parametrize(
    "name, parts", [
        ("users", ("users",)), ("audit.events", ("audit", "events")), ("Mixed.Case", ("Mixed", "Case")),
        # a part holding '.', a space or '"': in double quotes, as SQL writes it
        ('crm."order.items"', ("crm", "order.items")), ('"Order Items"', ("Order Items",)),
        ('"a.b"."c.d"', ("a.b", "c.d")), ('"say ""hi"""', ('say "hi"',)), ('"x".y', ("x", "y")),
        ("bot-events", ("bot-events",)),
    ]
)
def test_split_table_name(name, parts):
    assert postgres.split_table_name(name) == parts


@pytest.mark.parametrize("name", ["a.b.c", "", ".a", "a.", '"unclosed', 'a."b', '""', '"a"b', 'a"b', '"a".', 'a..b'])
def test_split_table_name_refuses_what_is_not_one(name):
    with pytest.raises(ValueError, match="is not a table name or schema.table"):
        postgres.split_table_name(name)


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
@pytest.mark.parametrize(
    "parts, expected",
    [
        (("users",), 'SELECT count(*) FROM "users"'),
        (("audit", "events"), 'SELECT count(*) FROM "audit"."events"'),
        (('we"ird; DROP TABLE x', "t"), 'SELECT count(*) FROM "we""ird; DROP TABLE x"."t"'),
    ],
)
def test_count_query_quotes_identifiers_with_the_real_driver(monkeypatch, driver, parts, expected):
    sql = pytest.importorskip(driver + ".sql")
    monkeypatch.setattr(postgres, "sql", sql)
    query = postgres.count_query(parts)
    if driver == "psycopg":
        text = query.as_string(None)
    else:  # psycopg2 needs a connection to render; check the composition instead
        assert query.seq[1].strings == parts
        return
    assert text == expected
