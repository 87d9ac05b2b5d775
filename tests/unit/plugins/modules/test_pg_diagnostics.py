"""shipshape.ops.pg_diagnostics against a fake DB-API driver that answers the module's catalog queries (no database
needed; the SQL itself is run live in tests/test_pg_diagnostics_live.py)."""

from __future__ import annotations

import datetime
import re

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import postgres
from ansible_collections.shipshape.ops.plugins.modules import pg_diagnostics
from ansible_collections.shipshape.ops.tests.unit.fake_sql import Composed, FakeSQL


class FakeError(Exception):
    def __init__(self, msg, code):
        super().__init__(msg)
        self.pgcode = code


VACUUMED = datetime.datetime(2026, 3, 2, 4, 10, 11, tzinfo=datetime.timezone.utc)

# oid: (schema, name, relkind, is_partition, owner, reltuples, size, seq_scan, idx_scan, dead, vacuum, autovacuum, analyze)
TABLES = {
    101: ("public", "events", "p", False, "app", -1.0, 0, None, None, None, None, None, None),
    102: ("public", "events_2026_01", "r", True, "app", 743.0, 90112, 3, 12, 0, None, VACUUMED, None),
    103: ("public", "events_2026_02", "r", True, "app", 253.0, 40960, 1, 0, 0, None, None, None),
    201: ("crm", "customers", "r", False, "crm_owner", 200.0, 131072, 5, 40, 7, VACUUMED, None, VACUUMED),
    202: ("crm", "never_analyzed", "r", False, "crm_owner", -1.0, 8192, 0, 0, 0, None, None, None),
}
VIEWS = {301: ("crm", "customer_view")}
PARTITIONS = {101: [102, 103]}
# (table oid, name, size, scans, unique, primary, valid)
INDEXES = [
    (201, "customers_pkey", 16384, 40, True, True, True),
    (201, "customers_name_idx", 16384, 0, False, False, True),
    (201, "customers_email_key", 16384, 0, True, False, True),
    (201, "customers_name_uniq", 8192, 0, True, False, False),
    (101, "events_kind_idx", 0, None, False, False, True),
    (102, "events_2026_01_kind_idx", 16384, 0, False, False, True),
    (103, "events_2026_02_kind_idx", 16384, 3, False, False, True),
]
GRANTS = {("reader", 201): ["SELECT"], ("writer", 201): ["SELECT", "INSERT", "UPDATE", "DELETE"]}
NEW_COLUMNS = ["userid", "dbid", "query", "calls", "total_exec_time", "mean_exec_time", "rows"]
OLD_COLUMNS = ["userid", "dbid", "query", "calls", "total_time", "mean_time", "rows"]
STATEMENTS = [  # (query, calls, total, mean, rows)
    ("SELECT * FROM bot_events WHERE chat_id = $1", 310, 251844.0, 812.4, 6200),
    ("SELECT pg_sleep($1)", 2, 100.5, 50.25, 2),
    ("UPDATE outbox SET status = $1", 40, 12.0, 0.3, 40),
]


class FakeDatabase(object):
    def __init__(self, extension="public", columns=None, roles=("reader", "writer", "app"), slow_error=None,
                 error_on=None):
        self.extension = extension  # the schema of pg_stat_statements, or None when not installed
        self.columns = NEW_COLUMNS if columns is None else columns
        self.roles = roles
        self.slow_error = slow_error  # an exception selecting from pg_stat_statements raises
        self.error_on = error_on  # (text in a query, exception)
        self.statements = []
        self.kwargs = None
        self.committed = self.rolled_back = self.closed = False

    def connect(self, **kwargs):
        self.kwargs = kwargs
        return FakeConnection(self)


class FakeConnection(object):
    def __init__(self, db):
        self.db = db

    def cursor(self):
        return FakeCursor(self.db)

    def commit(self):
        self.db.committed = True

    def rollback(self):
        self.db.rolled_back = True

    def close(self):
        self.db.closed = True


def relation(oid):
    if oid in TABLES:
        return TABLES[oid][:2], TABLES[oid][2]
    return VIEWS[oid], "v"


class FakeCursor(object):
    def __init__(self, db):
        self.db = db
        self.result = []

    def execute(self, query, values=None):
        text = query.text if isinstance(query, Composed) else query
        self.db.statements.append((text, values))
        assert ("%s" in text) == (values is not None), text
        if values is not None:
            assert text.count("%s") == len(values), (text, values)
        if self.db.error_on and self.db.error_on[0] in text:
            raise self.db.error_on[1]
        if text.startswith(("SET TRANSACTION", "SAVEPOINT", "ROLLBACK TO", "RELEASE")):
            self.result = []
        elif text.startswith("SELECT set_config('statement_timeout'"):
            self.result = [(values[0],)]
        elif text in (pg_diagnostics.RESOLVE, pg_diagnostics.RESOLVE_QUALIFIED):
            wanted = tuple(values) if len(values) == 2 else ("public", values[0]) if values[0] != "customer_view" \
                else ("crm", values[0])
            self.result = [(oid, relation(oid)[1]) for oid in list(TABLES) + list(VIEWS) if relation(oid)[0] == wanted]
        elif text == pg_diagnostics.PARTITIONS:
            self.result = [(oid,) for oid in PARTITIONS.get(values[0], [])]
        elif text == pg_diagnostics.TABLES:
            every, oids = values
            self.result = [(oid,) + row for oid, row in TABLES.items() if every or oid in oids]
        elif text == pg_diagnostics.INDEXES:
            every, oids = values
            self.result = [(TABLES[t][0], TABLES[t][1], name, "CREATE INDEX %s ON %s.%s" % (name, TABLES[t][0], TABLES[t][1]),
                            size, scans, unique, primary, valid)
                           for t, name, size, scans, unique, primary, valid in INDEXES if every or t in oids]
        elif text == pg_diagnostics.STAT_STATEMENTS_SCHEMA:
            self.result = [(self.db.extension,)] if self.db.extension else []
        elif text == pg_diagnostics.STAT_STATEMENTS_COLUMNS:
            assert values == [self.db.extension]
            self.result = [(c,) for c in self.db.columns]
        elif text.startswith("SELECT left(query, 2000)"):
            if self.db.slow_error:
                raise self.db.slow_error
            self.result = list(STATEMENTS)
        elif text.startswith("SELECT rolname FROM pg_roles"):
            self.result = [(r,) for r in values[0] if r in self.db.roles]
        elif text == pg_diagnostics.ACCESS:
            oids, roles = values
            self.result = [(oid, role) + tuple(p in GRANTS.get((role, oid), []) for p in pg_diagnostics.PRIVILEGES)
                           for oid in oids for role in roles]
        else:
            raise AssertionError("unexpected query: %s" % text)

    def fetchone(self):
        return self.result[0] if self.result else None

    def fetchall(self):
        return self.result


@pytest.fixture
def database(monkeypatch):
    def install(**kwargs):
        db = FakeDatabase(**kwargs)
        monkeypatch.setattr(postgres, "DRIVER", db)
        monkeypatch.setattr(postgres, "sql", FakeSQL)
        monkeypatch.setattr(postgres, "DRIVER_NAME", "psycopg2")
        return db
    return install


def queries(db, start):
    return [(text, values) for text, values in db.statements if text.startswith(start)]


# --- options -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, message",
    [
        ({"tables": ["crm.customers", "a.b.c"]}, "tables: 'a.b.c' is not a table name or schema.table"),
        ({"tables": [".customers"]}, "tables: '.customers' is not a table name or schema.table"),
        ({"roles": ["reader", "bad role"]}, "roles: 'bad role' is not a role name: expected "),
        ({"roles": ["-reader"]}, "roles: '-reader' is not a role name: expected "),
        ({"roles": ["r" * 64]}, "roles: '%s' is 64 bytes long: expected at most 63" % ("r" * 64)),
        ({"slow_queries_limit": 0}, "slow_queries_limit: 0 is out of range: expected 1 to 1000"),
        ({"slow_queries_limit": 1001}, "slow_queries_limit: 1001 is out of range: expected 1 to 1000"),
        ({"slow_queries_min_mean_ms": -1}, "slow_queries_min_mean_ms: -1.0 is negative"),
        ({"statement_timeout_ms": -5}, "statement_timeout_ms: -5 is negative"),
        ({"sections": []}, "sections: empty: expected one or more of tables, indexes, slow_queries, access"),
        ({"sections": ["tables", "locks"]}, "value of sections must be one or more of"),
        # libpq would connect to the user's database (postgres): never a report of another database
        ({"db": ""}, "db: empty: expected the name of the database to report on"),
    ],
)
def test_bad_options_fail_before_connecting(database, run_module, args, message):
    db = database()
    failed, result = run_module(pg_diagnostics, dict({"db": "app"}, **args))
    assert failed and message in result["msg"], result
    assert db.kwargs is None


def test_every_problem_is_named_at_once(database, run_module):
    database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "tables": ["a.b.c"], "roles": ["x y"],
                                                 "slow_queries_limit": 0})
    assert failed and result["msg"].count(": ") >= 3
    assert result["msg"].startswith("tables: 'a.b.c'") and "roles: 'x y'" in result["msg"]


# --- pg_stat_statements' columns ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "columns, expected",
    [
        (NEW_COLUMNS, ("total_exec_time", "mean_exec_time")),
        (OLD_COLUMNS, ("total_time", "mean_time")),
        (NEW_COLUMNS + ["total_time", "mean_time"], ("total_exec_time", "mean_exec_time")),
        (["query", "calls", "total_exec_time"], None),
        ([], None),
    ],
    ids=["pg13+", "pg12-", "both", "half", "none"],
)
def test_time_columns(columns, expected):
    assert pg_diagnostics.time_columns(iter(columns)) == expected


@pytest.mark.parametrize("columns, mean", [(NEW_COLUMNS, "mean_exec_time"), (OLD_COLUMNS, "mean_time")])
def test_slow_queries_use_the_views_columns(database, run_module, columns, mean):
    db = database(columns=columns, extension="monitoring")
    failed, result = run_module(pg_diagnostics, {"db": "app", "sections": ["slow_queries"],
                                                 "slow_queries_limit": 3, "slow_queries_min_mean_ms": 0.5})
    assert not failed and result["notes"] == [], result
    [(text, values)] = queries(db, "SELECT left(query")
    assert '"%s" >= %%s' % mean in text and text.endswith('ORDER BY "%s" DESC LIMIT %%s' % mean)
    assert 'FROM "monitoring"."pg_stat_statements"' in text and "current_database()" in text
    assert "strpos" not in text and values == [0.5, 3]
    assert [q["mean_ms"] for q in result["slow_queries"]] == [812.4, 50.25, 0.3]
    assert result["slow_queries"][0] == dict(query="SELECT * FROM bot_events WHERE chat_id = $1", calls=310,
                                             total_ms=251844.0, mean_ms=812.4, rows=6200)


def test_slow_queries_match_is_a_parameter_taken_literally(database, run_module):
    db = database()
    match = "50%_off'; DROP TABLE x; --"
    failed, result = run_module(pg_diagnostics, {"db": "app", "sections": ["slow_queries"], "slow_queries_match": match})
    assert not failed, result
    [(text, values)] = queries(db, "SELECT left(query")
    assert "strpos(lower(query), lower(%s)) > 0" in text and values == [0.0, match, 10]
    assert all("DROP" not in t and "50%" not in t for t, dummy in db.statements)


def test_extension_missing_is_a_note_not_a_failure(database, run_module):
    db = database(extension=None)
    failed, result = run_module(pg_diagnostics, {"db": "app"})
    assert not failed and result["changed"] is False, result
    assert result["slow_queries"] == [] and not queries(db, "SELECT left(query")
    assert result["notes"] == [pg_diagnostics.NOT_INSTALLED_NOTE % "app"]
    assert "CREATE EXTENSION pg_stat_statements" in result["notes"][0]
    assert "shared_preload_libraries" in result["notes"][0]
    assert result["msg"].endswith(", 0 slow queries")
    assert result["tables"] and result["indexes"], "the other sections are read all the same"


def test_extension_not_loaded_is_a_note_and_the_transaction_goes_on(database, run_module):
    error = FakeError("pg_stat_statements must be loaded via shared_preload_libraries", "55000")
    db = database(slow_error=error)
    failed, result = run_module(pg_diagnostics, {"db": "app", "roles": ["reader"]})
    assert not failed, result
    assert result["slow_queries"] == [] and result["notes"] == [pg_diagnostics.NOT_LOADED_NOTE % "app"]
    texts = [t for t, dummy in db.statements]
    rollback = texts.index("ROLLBACK TO SAVEPOINT shipshape_slow_queries")
    assert texts[rollback - 2] == "SAVEPOINT shipshape_slow_queries"
    assert any(t == pg_diagnostics.ACCESS for t in texts[rollback:]), "access was read after the rollback"
    assert result["access"]


def test_unknown_columns_are_a_note(database, run_module):
    database(columns=["query", "calls"])
    failed, result = run_module(pg_diagnostics, {"db": "app", "sections": ["slow_queries"]})
    assert not failed and result["notes"] == [pg_diagnostics.UNKNOWN_COLUMNS_NOTE % "app"]


def test_other_errors_fail_with_the_password_masked(database, run_module):
    error = FakeError("permission denied for view pg_stat_statements (as ops with s3cret-pw)", "42501")
    db = database(slow_error=error)
    failed, result = run_module(pg_diagnostics, {"db": "app", "password": "s3cret-pw", "sections": ["slow_queries"]})
    assert failed
    assert result["msg"] == ("Cannot read the diagnostics of database app: permission denied for view "
                             "pg_stat_statements (as ops with ********)")
    assert "s3cret-pw" not in repr(result)
    assert db.closed and not db.committed


def test_a_statement_timeout_says_what_to_do(database, run_module):
    database(error_on=(pg_diagnostics.INDEXES, FakeError("canceling statement due to statement timeout", "57014")))
    failed, result = run_module(pg_diagnostics, {"db": "app", "statement_timeout_ms": 500})
    assert failed and result["msg"].endswith("statement timeout (statement_timeout_ms is 500: raise it, or narrow "
                                             "tables and sections)")


# --- results -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("check_mode", [False, True])
def test_results_shaped_sorted_and_summarized(database, run_module, check_mode):
    db = database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "roles": ["reader", "writer", "ghost", "reader"]},
                                check_mode=check_mode)
    assert not failed and result["changed"] is False, result
    assert [(t["schema"], t["name"]) for t in result["tables"]] == [
        ("crm", "customers"), ("public", "events_2026_01"), ("public", "events_2026_02"), ("crm", "never_analyzed"),
        ("public", "events")]
    customers, january = result["tables"][0], result["tables"][1]
    assert customers == dict(schema="crm", name="customers", kind="table", owner="crm_owner", rows_estimate=200,
                             size_bytes=131072, seq_scan=5, idx_scan=40, n_dead_tup=7,
                             last_vacuum="2026-03-02T04:10:11+00:00", last_autovacuum=None,
                             last_analyze="2026-03-02T04:10:11+00:00")
    assert january["kind"] == "partition" and january["last_autovacuum"] == "2026-03-02T04:10:11+00:00"
    events = result["tables"][-1]
    assert events["kind"] == "partitioned table" and events["rows_estimate"] is None and events["seq_scan"] is None
    assert result["tables"][3]["rows_estimate"] is None

    assert [(i["schema"], i["table"], i["name"]) for i in result["indexes"]] == [
        ("crm", "customers", "customers_email_key"), ("crm", "customers", "customers_name_idx"),
        ("crm", "customers", "customers_name_uniq"), ("crm", "customers", "customers_pkey"),
        ("public", "events", "events_kind_idx"), ("public", "events_2026_01", "events_2026_01_kind_idx"),
        ("public", "events_2026_02", "events_2026_02_kind_idx")]
    unused = dict((i["name"], i["unused"]) for i in result["indexes"])
    assert unused == {"customers_email_key": False, "customers_name_idx": True, "customers_name_uniq": False,
                      "customers_pkey": False, "events_kind_idx": False, "events_2026_01_kind_idx": True,
                      "events_2026_02_kind_idx": False}
    assert result["indexes"][2]["valid"] is False and result["indexes"][3]["primary"] is True

    assert result["missing_roles"] == ["ghost"]
    assert result["notes"] == ["access: no role ghost on the server, so its privileges are not listed"]
    assert [(a["schema"], a["table"]) for a in result["access"]] == [
        ("crm", "customers"), ("crm", "never_analyzed"), ("public", "events"), ("public", "events_2026_01"),
        ("public", "events_2026_02")]
    assert result["access"][0] == dict(schema="crm", table="customers", owner="crm_owner",
                                       grants={"reader": ["SELECT"], "writer": ["SELECT", "INSERT", "UPDATE", "DELETE"]})
    assert result["access"][2]["grants"] == {"reader": [], "writer": []}

    assert result["summary"] == dict(tables=5, indexes=7, unused_indexes=2, invalid_indexes=1, slow_queries=3)
    assert result["msg"] == ("app: 5 tables, 7 indexes (2 unused, 1 invalid), 3 slow queries (slowest 812.4 ms mean), "
                             "access of 3 roles (1 missing)")
    assert result["driver"] == "psycopg2"

    # Read only, with the timeout, and never committed (check mode the same).
    assert db.statements[0] == ("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", None)
    assert db.statements[1] == ("SELECT set_config('statement_timeout', %s, true)", ["30000"])
    assert not db.committed and db.rolled_back and db.closed
    assert not [t for t, dummy in db.statements
                if re.match(r"\s*(INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|TRUNCATE|VACUUM|ANALYZE)", t)]


def test_no_roles_lists_owners_only(database, run_module):
    db = database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "sections": ["access"]})
    assert not failed, result
    assert [a["owner"] for a in result["access"]] == ["crm_owner", "crm_owner", "app", "app", "app"]
    assert all(a["grants"] == {} for a in result["access"]) and result["missing_roles"] == []
    assert not queries(db, pg_diagnostics.ACCESS) and not queries(db, pg_diagnostics.INDEXES)
    assert result["tables"] == [] and result["indexes"] == [] and result["slow_queries"] == []
    assert result["msg"] == "app: 5 tables"


def test_named_tables_narrow_and_bring_partitions(database, run_module):
    db = database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "tables": ["events", "crm.customers", "events"],
                                                 "sections": ["tables", "indexes"]})
    assert not failed, result
    assert sorted(t["name"] for t in result["tables"]) == ["customers", "events", "events_2026_01", "events_2026_02"]
    assert len(result["indexes"]) == 7
    [(dummy, values)] = queries(db, pg_diagnostics.TABLES)
    assert values == [False, [101, 102, 103, 201]]
    resolved = [v for t, v in db.statements if t in (pg_diagnostics.RESOLVE, pg_diagnostics.RESOLVE_QUALIFIED)]
    assert resolved == [["events"], ["crm", "customers"], ["events"]]
    assert result["msg"] == "app: 4 tables, 7 indexes (2 unused, 1 invalid)"


def test_a_missing_table_fails_before_anything_is_read(database, run_module):
    db = database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "tables": ["crm.customers", "crm.gone", "Events"]})
    assert failed and result["msg"] == "Tables not found in database app: crm.gone, Events"
    assert "tables" not in result
    assert not queries(db, pg_diagnostics.TABLES) and not queries(db, pg_diagnostics.INDEXES)
    assert not queries(db, pg_diagnostics.STAT_STATEMENTS_SCHEMA)
    assert db.rolled_back and db.closed


def test_a_view_is_not_a_table(database, run_module):
    database()
    failed, result = run_module(pg_diagnostics, {"db": "app", "tables": ["customer_view"]})
    assert failed and result["msg"] == "tables: not a table in database app: customer_view (view)"


def test_summary_line_of_each_section():
    result = dict(tables=[], indexes=[dict(unused=True, valid=False)], access=[dict()], missing_roles=["x"],
                  slow_queries=[dict(mean_ms=0.04)])
    assert pg_diagnostics.summarize("db", ["indexes"], 2, result)[1] == "db: 1 indexes (1 unused, 1 invalid)"
    assert pg_diagnostics.summarize("db", ["slow_queries"], 0, result)[1] == "db: 1 slow queries (slowest 0.0 ms mean)"
    assert pg_diagnostics.summarize("db", ["access"], 2, result)[1] == "db: 1 tables, access of 2 roles (1 missing)"
    assert pg_diagnostics.summarize("db", ["access"], 0, result)[1] == "db: 1 tables"
    summary = pg_diagnostics.summarize("db", ["slow_queries"], 0, result)[0]
    assert summary == dict(tables=0, indexes=1, unused_indexes=1, invalid_indexes=1, slow_queries=1)


def test_the_report_names_what_needs_a_look():
    result = {"indexes": [
        {"schema": "public", "table": "t", "name": "t_pkey", "valid": True, "unused": False, "scans": 9, "size_bytes": 8192},
        {"schema": "public", "table": "t", "name": "t_a_idx", "valid": True, "unused": True, "scans": 0, "size_bytes": 16384},
        {"schema": "app", "table": "u", "name": "u_b_key", "valid": False, "unused": False, "scans": 0, "size_bytes": 8192}],
        "slow_queries": [{"query": "SELECT  pg_sleep($1)\n FROM t", "mean_ms": 51.25, "calls": 3},
                         {"query": "SELECT " + "x, " * 80 + "y", "mean_ms": 2.0, "calls": 1}],
        "missing_roles": ["ghost"], "notes": ["pg_stat_statements is not installed"]}
    lines = pg_diagnostics.report_lines("db: summary", result)
    assert lines[:4] == ["db: summary", "unused index public.t_a_idx on t (0 scans, 16384 bytes)",
                         "invalid index app.u_b_key on u (0 scans, 8192 bytes)",
                         "slow 51.2 ms mean, 3 calls: SELECT pg_sleep($1) FROM t"]
    assert lines[4].startswith("slow 2.0 ms mean, 1 calls: SELECT x, x,") and lines[4].endswith("...")
    assert len(lines[4].split(": ", 1)[1]) == 160
    assert lines[5:] == ["no such role: ghost", "pg_stat_statements is not installed"]
