"""shipshape.ops.pg_diagnostics against throwaway PostgreSQL 15 servers on loopback, run through Ansible.

The tables, indexes and access sections read a database on the server of test_pg_backup_manifest_live (which does
not preload pg_stat_statements: the "not installed" and "not loaded" notes are read there). The slow queries are
read on a second server of this file's own, started with shared_preload_libraries=pg_stat_statements.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from test_pg_backup_manifest_live import PG_BIN, as_postgres, free_port, pg_server  # noqa: F401  (pg_server: a fixture)

from module_runner import run_ansible_module


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


def diagnose(ansible_env, port, db="diag", check=False, **extra):
    args = dict(db=db, host="127.0.0.1", port=port, user="postgres")
    args.update(extra)
    return run_ansible_module(ansible_env, "shipshape.ops.pg_diagnostics", args, check=check)


@pytest.fixture(scope="module")
def diag(pg_server):  # noqa: F811
    """`diag`: events partitioned by month (two partitions, an index on kind), crm.customers with a primary key, a
    unique index, an unused index and an INVALID unique index (a failed CREATE UNIQUE INDEX CONCURRENTLY); role
    reader may SELECT crm.customers only. Everything analyzed but crm.never_analyzed."""
    port, dummy = pg_server
    with admin(port) as conn:
        conn.execute("CREATE DATABASE diag")
        conn.execute("CREATE ROLE reader")
    with admin(port, "diag") as conn:
        conn.execute("CREATE TABLE events (id bigint, kind text, created_at timestamptz NOT NULL) "
                     "PARTITION BY RANGE (created_at)")
        conn.execute("CREATE TABLE events_2026_01 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')")
        conn.execute("CREATE TABLE events_2026_02 PARTITION OF events FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')")
        conn.execute("CREATE INDEX events_kind_idx ON events (kind)")
        conn.execute("INSERT INTO events SELECT i, 'k' || i % 3, '2026-01-01'::timestamptz + i * interval '1 hour' "
                     "FROM generate_series(1, 1000) i")
        conn.execute("CREATE SCHEMA crm")
        conn.execute("CREATE TABLE crm.customers (id int PRIMARY KEY, email text, name text)")
        conn.execute("INSERT INTO crm.customers SELECT i, 'c' || i || '@example.com', 'name ' || i % 50 "
                     "FROM generate_series(1, 200) i")
        conn.execute("CREATE UNIQUE INDEX customers_email_key ON crm.customers (email)")
        conn.execute("CREATE INDEX customers_name_idx ON crm.customers (name)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY customers_name_uniq ON crm.customers (name)")
        conn.execute("GRANT USAGE ON SCHEMA crm TO reader")
        conn.execute("GRANT SELECT ON crm.customers TO reader")
        conn.execute("ANALYZE")
        conn.execute("CREATE TABLE crm.never_analyzed (id int)")
        # One scan of the primary key, flushed to the statistics when this session ends.
        conn.execute("SET enable_seqscan = off")
        conn.execute("SELECT * FROM crm.customers WHERE id = 7").fetchall()
    yield port


def by_name(entries, key="name"):
    return dict((e[key], e) for e in entries)


def test_tables_indexes_and_access_of_a_real_database(ansible_env, diag):
    rc, result = diagnose(ansible_env, diag, roles=["reader", "ghost"])
    assert rc == 0 and result["changed"] is False, result
    tables = by_name(result["tables"])
    assert set(tables) == {"events", "events_2026_01", "events_2026_02", "customers", "never_analyzed"}
    assert tables["events"]["kind"] == "partitioned table" and tables["events"]["size_bytes"] == 0
    assert tables["events_2026_01"]["kind"] == tables["events_2026_02"]["kind"] == "partition"
    assert tables["customers"]["kind"] == "table" and tables["customers"]["schema"] == "crm"
    assert tables["customers"]["owner"] == "postgres" and tables["customers"]["rows_estimate"] == 200
    assert tables["events_2026_01"]["rows_estimate"] == 743  # hours 1..743 of January
    assert tables["never_analyzed"]["rows_estimate"] is None, "reltuples -1 is null"
    sizes = [t["size_bytes"] for t in result["tables"]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0

    indexes = by_name(result["indexes"])
    assert [(i["schema"], i["table"], i["name"]) for i in result["indexes"]] == \
        sorted((i["schema"], i["table"], i["name"]) for i in result["indexes"])
    pkey = indexes["customers_pkey"]
    assert pkey["primary"] and pkey["unique"] and pkey["valid"] and not pkey["unused"]
    assert pkey["scans"] >= 1 and pkey["definition"].startswith("CREATE UNIQUE INDEX customers_pkey ON crm.customers")
    assert indexes["customers_email_key"]["unique"] and not indexes["customers_email_key"]["unused"]
    assert indexes["customers_name_idx"]["unused"] and indexes["customers_name_idx"]["scans"] == 0
    assert indexes["customers_name_uniq"]["valid"] is False and not indexes["customers_name_uniq"]["unused"]
    assert indexes["events_kind_idx"]["scans"] is None and not indexes["events_kind_idx"]["unused"], \
        "a partitioned table's own index is never unused"
    assert indexes["events_2026_01_kind_idx"]["unused"] and indexes["events_2026_01_kind_idx"]["table"] == "events_2026_01"
    # A partitioned table's own index has no storage; the failed build left its index empty.
    assert [i["name"] for i in result["indexes"] if not i["size_bytes"]] == ["customers_name_uniq", "events_kind_idx"]

    access = dict(((a["schema"], a["table"]), a) for a in result["access"])
    assert access[("crm", "customers")] == dict(schema="crm", table="customers", owner="postgres",
                                                grants={"reader": ["SELECT"]})
    assert access[("public", "events")]["grants"] == {"reader": []}
    assert result["missing_roles"] == ["ghost"]
    assert any("ghost" in n for n in result["notes"])

    assert result["slow_queries"] == []
    assert any("pg_stat_statements is not installed in database diag" in n and "CREATE EXTENSION" in n
               for n in result["notes"])
    unused = len([i for i in result["indexes"] if i["unused"]])
    assert result["summary"] == dict(tables=5, indexes=len(indexes), unused_indexes=unused, invalid_indexes=1,
                                     slow_queries=0)
    assert result["msg"] == "diag: 5 tables, %d indexes (%d unused, 1 invalid), 0 slow queries, access of 2 roles " \
                            "(1 missing)" % (len(indexes), unused)

    rc, checked = diagnose(ansible_env, diag, check=True, roles=["reader", "ghost"])
    assert rc == 0 and checked["changed"] is False
    assert "invalid index " in " ".join(result["report"]) and "no such role: ghost" in result["report"]
    for key in ("tables", "indexes", "access", "missing_roles", "summary", "msg", "notes", "slow_queries", "report"):
        assert checked[key] == result[key], key


def test_named_tables_narrow_and_bring_their_partitions(ansible_env, diag):
    rc, result = diagnose(ansible_env, diag, tables=["events"], sections=["tables", "indexes"])
    assert rc == 0, result
    assert sorted(t["name"] for t in result["tables"]) == ["events", "events_2026_01", "events_2026_02"]
    assert sorted(i["name"] for i in result["indexes"]) == ["events_2026_01_kind_idx", "events_2026_02_kind_idx",
                                                           "events_kind_idx"]
    assert result["access"] == [] and result["slow_queries"] == [] and result["notes"] == []
    assert result["msg"].startswith("diag: 3 tables, 3 indexes (2 unused, 0 invalid)")


def test_a_missing_table_fails_naming_it(ansible_env, diag):
    rc, result = diagnose(ansible_env, diag, tables=["crm.customers", "crm.nope", "Events"])
    assert rc != 0 and result["msg"] == "Tables not found in database diag: crm.nope, Events"
    assert "tables" not in result


def test_a_role_and_a_table_named_with_a_dash_are_read(ansible_env, diag):
    # Made with quotes, as real databases have them: they reach the query as parameters, matched exactly.
    with admin(diag, "diag") as conn:
        conn.execute('CREATE ROLE "app-reader"')
        conn.execute('CREATE TABLE "bot-events" (id int)')
        conn.execute('GRANT SELECT, INSERT ON "bot-events" TO "app-reader"')
    try:
        rc, result = diagnose(ansible_env, diag, roles=["app-reader"], tables=["bot-events"])
        assert rc == 0, result
        assert [t["name"] for t in result["tables"]] == ["bot-events"]
        assert result["access"] == [dict(schema="public", table="bot-events", owner="postgres",
                                         grants={"app-reader": ["SELECT", "INSERT"]})]
    finally:
        with admin(diag, "diag") as conn:
            conn.execute('DROP TABLE "bot-events"')
            conn.execute('DROP ROLE "app-reader"')


def test_tables_whose_names_hold_a_dot_a_space_or_a_quote_are_named_in_double_quotes(ansible_env, diag):
    with admin(diag, "diag") as conn:
        conn.execute('CREATE TABLE crm."order.items" (id int)')
        conn.execute('CREATE TABLE "Order Items" (id int)')
        conn.execute('CREATE TABLE "say ""hi""" (id int)')
        conn.execute('CREATE TABLE crm.order (id int)')  # what an unquoted crm.order.items would wrongly find first
    try:
        rc, result = diagnose(ansible_env, diag, tables=['crm."order.items"', '"Order Items"', '"say ""hi"""'],
                              sections=["tables"])
        assert rc == 0, result
        assert sorted((t["schema"], t["name"]) for t in result["tables"]) == [
            ("crm", "order.items"), ("public", "Order Items"), ("public", 'say "hi"')]
        rc, result = diagnose(ansible_env, diag, tables=["crm.order.items"], sections=["tables"])
        assert rc != 0 and "tables: 'crm.order.items' is not a table name or schema.table" in result["msg"]
    finally:
        with admin(diag, "diag") as conn:
            conn.execute('DROP TABLE crm."order.items", "Order Items", "say ""hi""", crm.order')


def test_bad_options_fail_before_connecting(ansible_env, diag):
    rc, result = diagnose(ansible_env, diag, roles=["reader; DROP ROLE reader"], tables=["a.b.c"],
                          slow_queries_limit=0)
    assert rc != 0
    assert "tables: 'a.b.c' is not a table name or schema.table" in result["msg"]
    assert "roles: 'reader; DROP ROLE reader' is not a role name" in result["msg"]
    assert "slow_queries_limit: 0 is out of range: expected 1 to 1000" in result["msg"]


def test_installed_but_not_loaded_is_a_note(ansible_env, pg_server):  # noqa: F811
    port, dummy = pg_server
    with admin(port) as conn:
        conn.execute("CREATE DATABASE noload")
    with admin(port, "noload") as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    rc, result = diagnose(ansible_env, port, db="noload", sections=["slow_queries"])
    assert rc == 0 and result["slow_queries"] == [], result
    assert len(result["notes"]) == 1 and "installed in database noload but the server has not loaded it" in \
        result["notes"][0] and "shared_preload_libraries" in result["notes"][0]
    assert result["msg"] == "noload: 0 slow queries"


# --- slow queries: a server that preloads pg_stat_statements ----------------------------------------------------

@pytest.fixture(scope="module")
def pgss_server():
    """A second throwaway server with shared_preload_libraries=pg_stat_statements, and in it database `slow`
    with the extension, where a few statements ran (one with pg_sleep(0.05), twice)."""
    assert (PG_BIN / "initdb").exists(), "PostgreSQL is not installed: apt-get install -y postgresql-15 (or set PG_BIN)"
    libdir = subprocess.run([str(PG_BIN / "pg_config"), "--pkglibdir"], capture_output=True, text=True,
                            check=False).stdout.strip() or str(PG_BIN.parent / "lib")
    assert (Path(libdir) / "pg_stat_statements.so").exists(), \
        "pg_stat_statements is not in %s: install PostgreSQL's contrib modules (postgresql-15)" % libdir
    workdir = Path(tempfile.mkdtemp(prefix="shipshape-pgss-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port, data = free_port(), workdir / "data"
    try:
        subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                    "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w", "-o",
                                    "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                                    "-c shared_preload_libraries=pg_stat_statements" % (port, workdir), "start"]),
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        log = (workdir / "log").read_text() if (workdir / "log").exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise AssertionError("PostgreSQL did not start: %s\n%s\n%s" % (exc, exc.stderr, log))
    try:
        with admin(port) as conn:
            conn.execute("CREATE DATABASE slow")
        with admin(port, "slow") as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
            for dummy in range(2):
                conn.execute("SELECT pg_sleep(%s)", [0.05])
            conn.execute('SELECT 1 AS "pct%_col"')
            conn.execute('SELECT 1 AS "pctX_col"')  # what an unescaped LIKE '%pct%_col%' would match too
            conn.execute("SELECT count(*) FROM pg_class")
        yield port
    finally:
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       check=False, capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def test_slow_queries_slowest_first_and_narrowed(ansible_env, pgss_server):
    rc, result = diagnose(ansible_env, pgss_server, db="slow", sections=["slow_queries"])
    assert rc == 0 and result["notes"] == [], result
    slowest = result["slow_queries"][0]
    assert "pg_sleep" in slowest["query"] and slowest["calls"] == 2 and slowest["mean_ms"] >= 50
    assert slowest["total_ms"] >= 100 and slowest["rows"] == 2
    assert "$1" in slowest["query"], "pg_stat_statements replaced the constant"
    means = [q["mean_ms"] for q in result["slow_queries"]]
    assert means == sorted(means, reverse=True) and len(means) >= 3
    assert result["msg"] == "slow: %d slow queries (slowest %.1f ms mean)" % (len(means), slowest["mean_ms"])
    assert result["report"][0] == result["msg"]
    assert result["report"][1].startswith("slow %.1f ms mean, 2 calls: SELECT pg_sleep($1)" % slowest["mean_ms"])

    rc, matched = diagnose(ansible_env, pgss_server, db="slow", sections=["slow_queries"], slow_queries_match="PCT%_col")
    assert rc == 0 and [q["query"] for q in matched["slow_queries"]] == ['SELECT $1 AS "pct%_col"'], matched

    rc, slow_only = diagnose(ansible_env, pgss_server, db="slow", sections=["slow_queries"],
                             slow_queries_min_mean_ms=40, slow_queries_limit=5)
    assert rc == 0 and [q["query"] for q in slow_only["slow_queries"]] == [slowest["query"]]
    assert slow_only["summary"]["slow_queries"] == 1
