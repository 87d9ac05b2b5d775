"""shipshape.ops.pg_backup_manifest against a throwaway PostgreSQL 15 on loopback, run through Ansible.

The server is a private initdb + pg_ctl in a temporary directory on a free port (as the postgres user
when run as root), not pg_virtualenv: as root, pg_virtualenv always names its cluster 15/regress under
/etc/postgresql, so two runs at once (this and examples/sample_app/run-tests.sh) would collide.
Fails (does not skip) when PostgreSQL's binaries are missing: apt-get install -y postgresql-15.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg  # a pinned dependency of the venv, only to fill the database
import pytest

from module_runner import run_ansible_module

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def pg_server():
    assert (PG_BIN / "initdb").exists(), "PostgreSQL is not installed: apt-get install -y postgresql-15 (or set PG_BIN)"
    workdir = Path(tempfile.mkdtemp(prefix="shipshape-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = free_port()
    data = workdir / "data"
    try:
        subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                                    "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(workdir / "log"), "-w", "-o",
                                    "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, workdir),
                                    "start"]), check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        log = (workdir / "log").read_text() if (workdir / "log").exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        raise AssertionError("PostgreSQL did not start: %s\n%s\n%s" % (exc, exc.stderr, log))
    yield port, workdir
    subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                   check=False, capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def database(pg_server):
    port, workdir = pg_server
    admin = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
    admin.execute("DROP DATABASE IF EXISTS app")
    admin.execute("CREATE DATABASE app")
    admin.close()
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="app", autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('3f2a1b9c0d4e')")
        conn.execute("CREATE TABLE users (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO users SELECT FROM generate_series(1, 1200)")
        conn.execute("CREATE SCHEMA audit")
        conn.execute("CREATE TABLE audit.events (id int)")
        conn.execute("INSERT INTO audit.events SELECT generate_series(1, 7)")
        conn.execute('CREATE TABLE "Mixed Case" (id int)')
        conn.execute('INSERT INTO "Mixed Case" VALUES (1), (2)')
    return port, workdir


def run(ansible_env, args: dict, check: bool = False, interpreter: str | None = None) -> tuple[int, dict]:
    return run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest", args, check, interpreter)


TABLES = ["users", "audit.events", "Mixed Case", "orders"]


@pytest.mark.parametrize("check", [False, True])
@pytest.mark.parametrize("via", ["tcp", "unix_socket"])
def test_manifest_of_a_real_database(database, ansible_env, check, via):
    port, workdir = database
    conn = {"host": "127.0.0.1"} if via == "tcp" else {"unix_socket": str(workdir)}
    rc, result = run(ansible_env, dict(conn, db="app", port=port, user="postgres", tables=TABLES,
                                       extra={"dump": "app.dump"}), check=check)
    assert rc == 0, result
    assert result["changed"] is False
    manifest = result["manifest"]
    assert manifest["database"] == "app" and manifest["dump"] == "app.dump"
    assert manifest["server_version"].startswith("15.")
    assert manifest["revision"] == "3f2a1b9c0d4e"
    assert manifest["row_counts"] == {"users": 1200, "audit.events": 7, "Mixed Case": 2}
    assert manifest["tables_missing"] == ["orders"]


def test_missing_tables_and_revision_table(database, ansible_env):
    port, dummy = database
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="app", autocommit=True) as conn:
        conn.execute("DROP TABLE alembic_version")
    args = dict(db="app", host="127.0.0.1", port=port, user="postgres", tables=TABLES)
    rc, result = run(ansible_env, args)
    assert rc == 0 and result["manifest"]["revision"] is None
    assert result["manifest"]["row_counts"]["users"] == 1200  # the transaction survived the missing table
    rc, result = run(ansible_env, dict(args, fail_on_missing=True))
    assert rc != 0 and result["msg"] == "Tables not found in database app: orders"
    assert result["manifest"]["tables_missing"] == ["orders"]


def test_revision_query_cannot_write(database, ansible_env):
    port, dummy = database
    rc, result = run(ansible_env, dict(db="app", host="127.0.0.1", port=port, user="postgres",
                                       revision_query="INSERT INTO users DEFAULT VALUES RETURNING id"))
    assert rc != 0 and "read-only transaction" in result["msg"]


def test_connection_failure_is_clear(ansible_env):
    rc, result = run(ansible_env, dict(db="app", host="127.0.0.1", port=free_port(), user="postgres"))
    assert rc != 0 and result["msg"].startswith("Cannot connect to database app on 127.0.0.1 port ")


def test_missing_driver_message(database, ansible_env):
    system_python = "/usr/bin/python3"
    probe = subprocess.run([system_python, "-c", "import psycopg2"], capture_output=True, check=False)
    probe3 = subprocess.run([system_python, "-c", "import psycopg"], capture_output=True, check=False)
    if probe.returncode == 0 or probe3.returncode == 0:
        pytest.skip("%s has a PostgreSQL driver" % system_python)
    port, dummy = database
    rc, result = run(ansible_env, dict(db="app", host="127.0.0.1", port=port), interpreter=system_python)
    assert rc != 0
    assert "Failed to import the required Python library (psycopg2 (python3-psycopg2) or psycopg)" in result["msg"]


# --- the rich sample database (tests/data/rich_schema.sql): the whole database, discovered ----------------------

RICH_SQL = Path(__file__).parent / "data" / "rich_schema.sql"
#: What rich_schema.sql holds: 24 tables (2 partitioned parents, 22 leaves), rows in the leaves.
RICH_TABLES, RICH_LEAVES, RICH_ROWS = 24, 22, 3866


def load_rich(port: int, db: str = "rich") -> None:
    """A fresh database ``db`` holding rich_schema.sql (its roles are cluster-wide and kept)."""
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    proc = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port),
                           "-U", "postgres", "-d", db, "-o", os.devnull, "-f", str(RICH_SQL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def rich_manifest(ansible_env, port: int, db: str = "rich") -> dict:
    rc, result = run(ansible_env, dict(db=db, host="127.0.0.1", port=port, user="postgres", revision_query=""))
    assert rc == 0, result
    return result["manifest"]


def test_manifest_of_the_rich_database_is_the_whole_database(pg_server, ansible_env):
    port, dummy = pg_server
    load_rich(port)
    manifest = rich_manifest(ansible_env, port)
    catalog = manifest["catalog"]
    assert manifest["row_counts"] == {} and manifest["tables_missing"] == []  # the old keys, unchanged
    assert catalog["totals"]["tables"] == RICH_TABLES and catalog["totals"]["leaf_tables"] == RICH_LEAVES
    assert catalog["totals"]["rows"] == RICH_ROWS
    tables = catalog["tables"]
    # Partitions and parents told apart; the parent's rows are its leaves', counted once.
    assert tables["shop.orders"]["kind"] == "partitioned table" and tables["shop.orders"]["rows"] == 1000
    assert tables["shop.orders_2026_03"]["kind"] == "partitioned table"
    assert tables["shop.orders_2026_03"]["parent"] == "shop.orders"
    assert tables["shop.orders_2026_03_h0"]["parent"] == "shop.orders_2026_03"
    assert tables["shop.orders_2026_03"]["rows"] == tables["shop.orders_2026_03_h0"]["rows"] + tables["shop.orders_2026_03_h1"]["rows"]
    assert sum(t["rows"] for k, t in tables.items() if t["parent"] and t["kind"] == "table") == 1000
    assert tables["crm.customers"]["rows"] == 300 and tables["shop.empty_wishlist"]["rows"] == 0
    assert tables["crm.customers"]["owner"] == "rich_owner"
    assert "rich_reader=r/rich_owner" in tables["crm.customers"]["acl"]
    assert "rich_reader=r/rich_owner" in tables["shop.products"]["acl"]  # by the default privileges
    assert tables["shop.coupons"]["column_acl"] == ["code: rich_reader=r/rich_owner", "percent: rich_reader=r/rich_owner"]
    assert catalog["sequences"]["shop.invoice_no"] == dict(owner="rich_owner", acl=["rich_owner=rwU/rich_owner"],
                                                          last_value=1006, is_called=True)
    assert catalog["sequences"]["audit.unused_seq"]["is_called"] is False
    assert set(catalog["views"]) == {"shop.order_totals", "shop.low_stock", "crm.customer_overview"}
    assert catalog["materialized_views"]["shop.monthly_revenue"]["rows"] == 4
    assert catalog["materialized_views"]["crm.segment_sizes"] == dict(owner="rich_owner", acl=["rich_owner=arwdDxt/rich_owner", "rich_reader=r/rich_owner"],
                                                                     populated=False, rows=None)
    assert set(catalog["functions"]) == {"shop.price_with_tax(price numeric, rate numeric)", "shop.next_invoice()",
                                         "audit.log_event()", "crm.merge_customers(IN keep bigint, IN drop_id bigint)"}
    assert catalog["functions"]["crm.merge_customers(IN keep bigint, IN drop_id bigint)"]["kind"] == "procedure"
    assert "rich_writer=X/rich_owner" in catalog["functions"]["shop.next_invoice()"]["acl"]
    assert not any(a.startswith("=X") for a in catalog["functions"]["shop.next_invoice()"]["acl"])  # PUBLIC revoked
    assert set(catalog["extensions"]) == {"pgcrypto", "citext"}
    assert {"shop", "crm", "audit", "public"} <= set(catalog["schemas"])
    assert catalog["default_privileges"] == ["rich_owner shop r: rich_reader=r/rich_owner"]
    assert catalog["large_objects"] == {"rich_owner": 2} and catalog["totals"]["large_objects"] == 2
    assert catalog["roles"] == ["rich_owner", "rich_reader", "rich_writer"]
    assert catalog["database_privileges"] == [["rich_reader", "CONNECT", False], ["rich_writer", "CONNECT", False],
                                              ["rich_writer", "TEMPORARY", False]]
    assert catalog["database_settings"] == [["", "app.tenant=rich"], ["", 'search_path="$user", public, crm'],
                                            ["rich_reader", "statement_timeout=5s"]]


def test_a_secret_looking_setting_is_recorded_by_name_only(pg_server, ansible_env):
    # PostgREST keeps its JWT secret as ALTER DATABASE ... SET app.jwt_secret: the manifest is the backup's result,
    # which reaches run artifacts, so the value stays out of it.
    port, dummy = pg_server
    secret = "s3cr3t-jwt-value-not-for-logs"
    conn = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
    try:
        conn.execute("DROP DATABASE IF EXISTS settings_db")
        conn.execute("CREATE DATABASE settings_db")
        conn.execute("ALTER DATABASE settings_db SET app.jwt_secret = '%s'" % secret)
        conn.execute("ALTER DATABASE settings_db SET app.db_password = 'also-hidden'")
        conn.execute("ALTER DATABASE settings_db SET work_mem = '16MB'")
        rc, result = run(ansible_env, dict(db="settings_db", host="127.0.0.1", port=port, user="postgres",
                                           revision_query=""))
        assert rc == 0, result
        assert result["manifest"]["catalog"]["database_settings"] == [["", "app.db_password"], ["", "app.jwt_secret"],
                                                                      ["", "work_mem=16MB"]]
        assert secret not in json.dumps(result) and "also-hidden" not in json.dumps(result)
    finally:
        conn.execute("DROP DATABASE IF EXISTS settings_db")
        conn.close()


def test_configured_tables_add_assertions_and_never_narrow(pg_server, ansible_env):
    port, dummy = pg_server
    load_rich(port)
    rc, result = run(ansible_env, dict(db="rich", host="127.0.0.1", port=port, user="postgres", revision_query="",
                                       tables=["crm.customers", "crm.gone"], fail_on_missing=True))
    assert rc != 0 and result["msg"] == "Tables not found in database rich: crm.gone"
    assert result["manifest"]["row_counts"] == {"crm.customers": 300}
    assert result["manifest"]["catalog"]["totals"]["tables"] == RICH_TABLES


def test_a_column_grant_on_a_column_whose_name_holds_a_colon_names_only_real_roles(pg_server, ansible_env):
    # column_acl is recorded as "column: aclitem"; the roles a restore creates come from the aclitems themselves, so a
    # column named "note: internal" does not make up a role "internal: reader" that no server has (the restore
    # refused: "the backup needs roles that ... the set did not save").
    port, dummy = pg_server
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS colons WITH (FORCE)")
        conn.execute("CREATE DATABASE colons")
        conn.execute("DROP ROLE IF EXISTS colon_reader")
        conn.execute("CREATE ROLE colon_reader")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="colons", autocommit=True) as conn:
            conn.execute('CREATE TABLE notes (id int, "note: internal" text)')
            conn.execute('GRANT SELECT ("note: internal") ON notes TO colon_reader')
        catalog = rich_manifest(ansible_env, port, "colons")["catalog"]
        assert catalog["tables"]["public.notes"]["column_acl"] == ["note: internal: colon_reader=r/postgres"]
        assert catalog["roles"] == ["colon_reader", "postgres"]
    finally:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS colons WITH (FORCE)")
            conn.execute("DROP ROLE IF EXISTS colon_reader")


def test_names_holding_a_dot_are_two_keys_not_one(pg_server, ansible_env):
    # Keys joined with "." made schema "a.b" table c and schema a table "b.c" both "a.b.c": one overwrote the other,
    # and a restore that lost either was reported verified.
    port, dummy = pg_server
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS dotted WITH (FORCE)")
        conn.execute("CREATE DATABASE dotted")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="dotted", autocommit=True) as conn:
            conn.execute('CREATE SCHEMA "a.b"')
            conn.execute('CREATE SCHEMA a')
            conn.execute('CREATE TABLE "a.b".c (id int)')
            conn.execute('INSERT INTO "a.b".c VALUES (1)')
            conn.execute('CREATE TABLE a."b.c" (id int) PARTITION BY LIST (id)')
            conn.execute('CREATE TABLE a."b.c.1" PARTITION OF a."b.c" FOR VALUES IN (1, 2)')
            conn.execute('INSERT INTO a."b.c" VALUES (1), (2)')
            conn.execute('CREATE FUNCTION "a.b".f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$')
            conn.execute('CREATE FUNCTION a."b.f"() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$')
        catalog = rich_manifest(ansible_env, port, "dotted")["catalog"]
        assert set(catalog["tables"]) == {'"a.b".c', 'a."b.c"', 'a."b.c.1"'}
        assert catalog["tables"]['"a.b".c']["rows"] == 1 and catalog["tables"]['a."b.c"']["rows"] == 2
        assert catalog["tables"]['a."b.c.1"']["parent"] == 'a."b.c"'
        assert set(catalog["functions"]) == {'"a.b".f()', 'a."b.f"()'}
        assert catalog["totals"]["tables"] == 3 and catalog["totals"]["rows"] == 3
    finally:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS dotted WITH (FORCE)")


def test_rows_row_level_security_would_hide_are_counted_or_the_manifest_fails_naming_the_table(pg_server, ansible_env):
    # A backup role that row level security applies to counted only the rows its policies let it see (1 of 3), and
    # a restore that lost the rest would match that count.
    port, dummy = pg_server
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS guarded WITH (FORCE)")
        conn.execute("CREATE DATABASE guarded")
        for role in ("rls_backup", "rls_owner"):
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="guarded", autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (id int, tenant text)")
            conn.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b'), (3, 'b')")
            conn.execute("ALTER TABLE notes OWNER TO rls_owner")
            conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY tenant_a ON notes USING (tenant = 'a')")
            conn.execute("GRANT SELECT ON notes TO rls_backup")
        args = dict(db="guarded", host="127.0.0.1", port=port, revision_query="")
        rc, result = run(ansible_env, dict(args, user="rls_backup"))
        assert rc != 0 and "the rows of table public.notes cannot all be counted: row level security" in result["msg"], result
        rc, result = run(ansible_env, dict(args, user="rls_backup", tables=["notes"]))
        assert rc != 0 and "row-level security" in result["msg"] and "notes" in result["msg"], result
        # The owner, whom row level security does not bind unless forced, counts every row.
        rc, result = run(ansible_env, dict(args, user="rls_owner", tables=["notes"]))
        assert rc == 0, result
        assert result["manifest"]["row_counts"] == {"notes": 3}
        assert result["manifest"]["catalog"]["tables"]["public.notes"]["rows"] == 3
        assert result["manifest"]["catalog"]["tables"]["public.notes"]["row_security"] == "enabled"
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="guarded", autocommit=True) as conn:
            conn.execute("ALTER TABLE notes FORCE ROW LEVEL SECURITY")
        rc, result = run(ansible_env, dict(args, user="rls_owner"))
        assert rc != 0 and "the rows of table public.notes cannot all be counted" in result["msg"], result
    finally:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS guarded WITH (FORCE)")
            conn.execute("DROP ROLE IF EXISTS rls_backup")
            conn.execute("DROP ROLE IF EXISTS rls_owner")


def test_a_setting_whose_value_holds_a_password_is_recorded_by_name_only(pg_server, ansible_env):
    # Names alone missed app.database_url = 'postgres://app:<password>@db/app': the password reached the manifest,
    # the backup's result and so the run's logs and artifacts.
    port, dummy = pg_server
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS urls_db")
        conn.execute("CREATE DATABASE urls_db")
        conn.execute("ALTER DATABASE urls_db SET app.database_url = 'postgres://app:hunter2-url@db.example/app'")
        conn.execute("ALTER DATABASE urls_db SET app.dsn = 'host=db.example password=hunter2-dsn'")
        conn.execute("ALTER DATABASE urls_db SET app.home = 'https://example.com/'")
    try:
        rc, result = run(ansible_env, dict(db="urls_db", host="127.0.0.1", port=port, user="postgres", revision_query=""))
        assert rc == 0, result
        assert result["manifest"]["catalog"]["database_settings"] == [["", "app.database_url"], ["", "app.dsn"],
                                                                      ["", "app.home=https://example.com/"]]
        assert "hunter2" not in json.dumps(result)
    finally:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS urls_db")
