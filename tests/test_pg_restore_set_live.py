"""shipshape.ops.pg_restore_set against a throwaway PostgreSQL 15 on loopback (the server of
test_pg_backup_manifest_live), run through Ansible: a real dump restored beside a live database and swapped in,
refusals that leave the database list alone, and failures that leave no <db>_restoring behind."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from test_pg_backup_manifest_live import PG_BIN, as_postgres, pg_server  # noqa: F401  (pg_server: a fixture)

from module_runner import run_ansible_module


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


def databases(port: int) -> set[str]:
    with admin(port) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")}


def orders(port: int, db: str = "shop") -> int:
    with admin(port, db) as conn:
        return conn.execute("SELECT count(*) FROM orders").fetchone()[0]


@pytest.fixture
def dumps(pg_server):  # noqa: F811
    """`shop` with 40 orders, dumped in custom format and as gzipped plain SQL; then `shop` gets a 41st order."""
    port, dummy = pg_server
    with admin(port) as conn:
        for name in databases(port) - {"postgres"}:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute("CREATE DATABASE shop")
    with admin(port, "shop") as conn:
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, paid boolean)")
        conn.execute("INSERT INTO orders (paid) SELECT i % 2 = 0 FROM generate_series(1, 40) i")
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-restore-set-"))
    dump = ["pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "shop", "--no-owner"]
    custom = set_dir / "postgres.dump"
    subprocess.run(dump + ["-Fc", "-f", str(custom)], check=True)
    plain = subprocess.run(dump + ["-Fp"], check=True, capture_output=True).stdout
    with gzip.open(str(set_dir / "postgres.sql.gz"), "wb") as out:
        out.write(plain)
    with admin(port, "shop") as conn:
        conn.execute("INSERT INTO orders (paid) VALUES (true)")
    yield port, set_dir
    shutil.rmtree(set_dir, ignore_errors=True)


def restore(ansible_env, port, path, check=False, **extra):
    args = dict(name="shop", path=str(path), host="127.0.0.1", port=port, user="postgres", owner="postgres",
                backup_id="b1", expected_row_counts={"orders": 40})
    args.update(extra)
    return run_ansible_module(ansible_env, "shipshape.ops.pg_restore_set", args, check)


def test_a_new_database_is_restored_and_counted(dumps, ansible_env):
    port, set_dir = dumps
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name="shop_copy")
    assert rc == 0, result
    assert result["changed"] and result["replaced"] == "" and result["row_counts"] == {"orders": 40}
    assert orders(port, "shop_copy") == 40
    assert databases(port) == {"postgres", "shop", "shop_copy"}


def test_a_database_with_data_is_refused_without_the_confirmation(dumps, ansible_env):
    port, set_dir = dumps
    before = databases(port)
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump")
    assert rc != 0 and result["msg"].startswith("Refusing to replace database 'shop': it holds data (1 tables with rows)")
    assert databases(port) == before and orders(port) == 41


@pytest.mark.parametrize("dump, extra", [("postgres.dump", {"compression": "gzip"}),
                                         ("postgres.sql.gz", {"format": "plain", "compression": "gzip"})])
def test_the_live_database_is_replaced_and_kept(dumps, ansible_env, dump, extra):
    port, set_dir = dumps
    rc, result = restore(ansible_env, port, set_dir / dump, confirm="shop", **extra)
    assert rc == 0, result
    previous = result["previous"]
    assert previous.startswith("shop_before_") and result["replaced"] == previous
    assert orders(port) == 40 and orders(port, previous) == 41  # the replaced one is kept, connections allowed
    assert databases(port) == {"postgres", "shop", previous}
    with admin(port) as conn:
        assert conn.execute("SELECT bool_and(datallowconn) FROM pg_database WHERE NOT datistemplate").fetchone()[0] is True


def test_a_database_named_with_all_63_bytes_is_replaced_and_kept(dumps, ansible_env):
    """PostgreSQL allows 63 bytes; the restore's scratch copy and the kept database derive shortened names from it."""
    port, set_dir = dumps
    name = "shop_customer_analytics_warehouse_eu_west_1_production_reports2"
    assert len(name.encode()) == 63
    with admin(port) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE shop')  # 41 orders, as the live shop
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name=name, confirm=name)
    assert rc == 0, result
    previous = result["previous"]
    assert previous.startswith(name[:30]) and "_before_" in previous and len(previous.encode()) == 63
    assert orders(port, name) == 40 and orders(port, previous) == 41
    assert databases(port) == {"postgres", "shop", name, previous}  # no scratch copy left


def database_acl(port: int, db: str) -> set[tuple[str, str, bool]]:
    with admin(port) as conn:
        return set(conn.execute(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type, "
            "a.is_grantable FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
            "WHERE d.datname = %s AND a.grantee <> d.datdba", (db,)).fetchall())


def with_reader(port: int, *statements: str) -> None:
    """The login role shop_reader (roles are cluster-wide: it may be there from an earlier test), then statements."""
    with admin(port) as conn:
        conn.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_reader') "
                     "THEN CREATE ROLE shop_reader LOGIN; END IF; END $$")
        for statement in statements:
            conn.execute(statement)


def test_the_database_privileges_of_the_replaced_database_are_kept(dumps, ansible_env):
    # pg_dump of one database does not carry GRANT ... ON DATABASE: a restore that lost them would let every
    # role connect again (PUBLIC's default) and lock out the roles granted by name.
    port, set_dir = dumps
    with_reader(port, "REVOKE ALL ON DATABASE shop FROM PUBLIC", "GRANT CONNECT ON DATABASE shop TO shop_reader",
                "GRANT TEMPORARY ON DATABASE shop TO shop_reader WITH GRANT OPTION")
    wanted = {("shop_reader", "CONNECT", False), ("shop_reader", "TEMPORARY", True)}
    assert database_acl(port, "shop") == wanted
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", confirm="shop")
    assert rc == 0, result
    assert database_acl(port, "shop") == wanted  # PUBLIC may not connect to the restored copy either
    assert sorted(result["database_privileges"]) == ["shop_reader:CONNECT", "shop_reader:TEMPORARY*"]
    assert orders(port) == 40


def database_settings(port: int, db: str) -> list[str]:
    """[role:]name=value of a database's settings, the database's own first."""
    with admin(port) as conn:
        return [row[0] for row in conn.execute(
            "SELECT coalesce(r.rolname || ':', '') || c FROM pg_db_role_setting s "
            "JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole, "
            "unnest(s.setconfig) c WHERE d.datname = %s ORDER BY r.rolname NULLS FIRST, c", (db,)).fetchall()]


def test_the_settings_of_the_replaced_database_are_kept(dumps, ansible_env):
    # ALTER DATABASE ... SET lives with the database's oid: a restored copy swapped in by name would start without
    # its search path (an app's unqualified names then miss their schema) and without a role's timeout.
    port, set_dir = dumps
    with_reader(port, 'ALTER DATABASE shop SET search_path = "$user", public, "Odd, ""Schema"""',
                "ALTER DATABASE shop SET app.region = 'eu; DROP TABLE orders'",
                "ALTER DATABASE shop SET statement_timeout = '30s'",
                "ALTER ROLE shop_reader IN DATABASE shop SET work_mem = '8MB'")
    wanted = database_settings(port, "shop")
    assert wanted == ["app.region=eu; DROP TABLE orders", 'search_path="$user", public, "Odd, ""Schema"""',
                      "statement_timeout=30s", "shop_reader:work_mem=8MB"]
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", confirm="shop")
    assert rc == 0, result
    assert database_settings(port, "shop") == wanted
    # Their names only, here and in the target: a value may be a secret.
    assert sorted(result["database_settings"]) == ["app.region", "search_path", "shop_reader:work_mem", "statement_timeout"]
    assert result["target"]["settings"] == [["", "app.region"], ["", "search_path"], ["", "statement_timeout"],
                                            ["shop_reader", "work_mem"]]
    assert "DROP TABLE orders" not in json.dumps(result) and "8MB" not in json.dumps(result)
    assert database_settings(port, result["previous"]) == wanted  # the kept database keeps them too
    assert orders(port) == 40
    with psycopg.connect(host="127.0.0.1", port=port, user="shop_reader", dbname="shop") as conn:
        assert conn.execute("SHOW search_path").fetchone()[0] == '"$user", public, "Odd, ""Schema"""'
        assert conn.execute("SHOW work_mem").fetchone()[0] == "8MB"


def test_a_new_database_gets_the_manifests_settings_and_a_warning_for_a_withheld_one(dumps, ansible_env):
    port, set_dir = dumps
    catalog = {"database_settings": [["", "app.jwt_secret"], ["", "work_mem=16MB"]]}
    # Only the settings are given (no catalog to compare the copy with).
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name="shop_copy", expected_catalog=catalog,
                         check_row_counts=False)
    assert rc == 0, result
    assert database_settings(port, "shop_copy") == ["work_mem=16MB"]
    assert result["database_settings"] == ["app.jwt_secret (not restored, no value in the backup)", "work_mem"]
    assert any("setting app.jwt_secret without its value" in w and "ALTER DATABASE shop_copy SET" in w
               for w in result.get("warnings", [])), result.get("warnings")


def test_check_mode_reports_the_target_and_changes_nothing(dumps, ansible_env):
    port, set_dir = dumps
    before = databases(port)
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", check=True, confirm="shop")
    assert rc == 0, result
    assert result["target"] == {"exists": True, "owner": "postgres", "tables_with_rows": 1,
                                "privileges": [["", "CONNECT", False], ["", "TEMPORARY", False]],  # PUBLIC's default
                                "settings": []}
    assert databases(port) == before and orders(port) == 41


def test_a_broken_dump_leaves_no_scratch_database_and_the_live_one_untouched(dumps, ansible_env):
    port, set_dir = dumps
    broken = set_dir / "broken.dump"
    broken.write_bytes((set_dir / "postgres.dump").read_bytes()[:-200])
    rc, result = restore(ansible_env, port, broken, confirm="shop")
    assert rc != 0
    assert result["msg"].startswith("Restore of backup b1 into shop failed before the swap, so the live database is "
                                    "untouched: pg_restore exited 1:"), result["msg"]
    assert databases(port) == {"postgres", "shop"} and orders(port) == 41


def test_counts_that_differ_from_the_manifest_stop_before_the_swap(dumps, ansible_env):
    port, set_dir = dumps
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", confirm="shop", expected_row_counts={"orders": 39})
    assert rc != 0 and "the restored copy does not match the backup: rows {'orders': 40}, manifest {'orders': 39}" in result["msg"]
    assert databases(port) == {"postgres", "shop"} and orders(port) == 41


@pytest.mark.parametrize("name", ['x";DROP DATABASE shop;--', "shop; select 1", "a" * 64])
def test_a_hostile_name_is_refused_before_anything_connects(dumps, ansible_env, name):
    port, set_dir = dumps
    before = databases(port)
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name=name, confirm=name)
    assert rc != 0 and result["msg"].startswith("name: '%s' " % name.replace("'", "\\'"))
    assert databases(port) == before and orders(port) == 41


def test_a_hostile_owner_is_refused(dumps, ansible_env):
    port, set_dir = dumps
    marker = Path(tempfile.gettempdir()) / "shipshape-restore-owner-marker"
    rc, result = restore(ansible_env, port, set_dir / "postgres.dump", confirm="shop",
                         owner=f"postgres' -c 'COPY (SELECT 1) TO PROGRAM ''touch {marker}''")
    assert rc != 0 and result["msg"].startswith("owner: ")
    assert not marker.exists() and databases(port) == {"postgres", "shop"}


# --- the rich sample database: owners and grants kept, missing roles named ------------------------------------

def test_a_restore_keeps_owners_and_grants_and_checks_the_whole_catalog(pg_server, ansible_env):  # noqa: F811
    from test_pg_backup_manifest_live import load_rich, rich_manifest
    from test_pg_drill_live import dump_rich

    port, dummy = pg_server
    load_rich(port)
    manifest = rich_manifest(ansible_env, port)
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-restore-rich-"))
    try:
        dump_rich(port, set_dir)
        args = dict(name="rich_copy", owner="", expected_row_counts={}, expected_catalog=manifest["catalog"],
                    required_roles=manifest["catalog"]["roles"], roles_file=str(set_dir / "roles.sql"))
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump", **args)
        assert rc == 0, result
        assert result["checks"] == [] and result["roles_created"] == []
        # A new database gets the backup's own privileges on the database: no CONNECT for PUBLIC.
        rich_acl = {("rich_reader", "CONNECT", False), ("rich_writer", "CONNECT", False), ("rich_writer", "TEMPORARY", False)}
        assert database_acl(port, "rich") == rich_acl and database_acl(port, "rich_copy") == rich_acl
        assert sorted(result["database_privileges"]) == ["rich_reader:CONNECT", "rich_writer:CONNECT", "rich_writer:TEMPORARY"]
        # And its settings, which pg_dump does not carry either: from the manifest into the new database.
        rich_settings = ['app.tenant=rich', 'search_path="$user", public, crm', 'rich_reader:statement_timeout=5s']
        assert database_settings(port, "rich") == rich_settings and database_settings(port, "rich_copy") == rich_settings
        # The read-only role reads what it was granted in the restored copy, and not the rest.
        with psycopg.connect(host="127.0.0.1", port=port, user="rich_reader", dbname="rich_copy") as conn:
            assert conn.execute("SELECT count(*) FROM crm.customers").fetchone()[0] == 300
            assert conn.execute("SELECT count(*) FROM shop.orders").fetchone()[0] == 1000
            assert conn.execute("SELECT count(code) FROM shop.coupons").fetchone()[0] == 25
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT secret FROM shop.coupons")
        with admin(port, "rich_copy") as conn:
            assert conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'").fetchone()[0] == "rich_owner"
        # A copy that differs from the manifest is not swapped in; the difference is named.
        catalog = dict(manifest["catalog"], tables=dict(manifest["catalog"]["tables"]))
        catalog["tables"]["crm.notes"] = dict(catalog["tables"]["crm.notes"], rows=121)
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump", **dict(args, name="rich_copy2", expected_catalog=catalog))
        assert rc != 0 and "rows crm.notes: expected 121, got 120" in result["msg"]
        assert "rich_copy2" not in databases(port) and "rich_copy2_restoring" not in databases(port)
        # A role the dump needs is missing and may not be created: one error naming it, nothing touched.
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump",
                             **dict(args, name="rich_copy3", required_roles=["rich_owner", "rich_nobody"], create_roles=False))
        assert rc != 0 and "the backup needs roles that this server lacks: rich_nobody" in result["msg"]
        assert "rich_copy3_restoring" not in databases(port)
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)


def test_a_table_found_through_the_databases_search_path_is_counted_in_the_copy(pg_server, ansible_env):  # noqa: F811
    # The manifest's row_counts name tables as configured ("orders"), found through ALTER DATABASE ... SET
    # search_path = app when they were counted; the copy was counted before it had that setting: "tables missing".
    port, dummy = pg_server
    with admin(port) as conn:
        for name in databases(port) - {"postgres"}:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute("CREATE DATABASE pathed")
    with admin(port, "pathed") as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.orders (id int)")
        conn.execute("INSERT INTO app.orders SELECT generate_series(1, 12)")
        conn.execute("ALTER DATABASE pathed SET search_path = app")
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest",
                                    dict(db="pathed", host="127.0.0.1", port=port, user="postgres", tables=["orders"]))
    assert rc == 0, result
    manifest = result["manifest"]
    assert manifest["row_counts"] == {"orders": 12} and manifest["catalog"]["database_settings"] == [["", "search_path=app"]]
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-restore-pathed-"))
    try:
        subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "pathed", "-Fc",
                        "-f", str(set_dir / "postgres.dump")], check=True)
        for name, confirm in (("pathed", "pathed"), ("pathed_new", "")):  # replacing it, and as a new database
            rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name=name, confirm=confirm,
                                 expected_row_counts=manifest["row_counts"], expected_catalog=manifest["catalog"])
            assert rc == 0, result
            assert result["row_counts"] == {"orders": 12} and result["database_settings"] == ["search_path"]
        assert {"pathed", "pathed_new"} <= databases(port) and not [d for d in databases(port) if "restoring" in d]
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)


def test_data_the_connecting_role_cannot_see_or_only_in_large_objects_still_needs_the_confirmation(dumps, ansible_env):
    # The check read information_schema.tables (only tables the role has a privilege on) with row level security
    # on, and no large objects: a database whose data was in those was "empty" and replaced without confirm.
    port, set_dir = dumps
    with admin(port) as conn:
        conn.execute("DROP ROLE IF EXISTS restorer")
        conn.execute("CREATE ROLE restorer LOGIN CREATEDB")
        conn.execute("CREATE DATABASE files")
        conn.execute("CREATE DATABASE hidden OWNER restorer")
        conn.execute("CREATE DATABASE guarded OWNER restorer")
    try:
        with admin(port, "files") as conn:
            conn.execute("SELECT lo_from_bytea(0, 'a scanned invoice')")
        with admin(port, "hidden") as conn:
            conn.execute("CREATE TABLE payroll (id int)")  # owned by postgres, no privilege for restorer
            conn.execute("INSERT INTO payroll VALUES (1)")
        with admin(port, "guarded") as conn:
            conn.execute("CREATE TABLE notes (id int, tenant text)")
            conn.execute("INSERT INTO notes VALUES (1, 'other')")
            conn.execute("ALTER TABLE notes OWNER TO restorer")
            conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
            conn.execute("ALTER TABLE notes FORCE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY mine ON notes USING (tenant = current_user)")
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name="files")
        assert rc != 0 and "Refusing to replace database 'files': it holds data (0 tables with rows, 1 large objects)" \
            in result["msg"], result["msg"]
        as_restorer = dict(user="restorer", owner="restorer", privileges=False)
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name="hidden", **as_restorer)
        assert rc != 0 and "before the swap" in result["msg"] and "permission denied for table payroll" in result["msg"], result
        rc, result = restore(ansible_env, port, set_dir / "postgres.dump", name="guarded", **as_restorer)
        assert rc != 0 and "before the swap" in result["msg"] and "row-level security" in result["msg"], result
        assert {"files", "hidden", "guarded"} <= databases(port) and not [d for d in databases(port) if "_before_" in d]
        with admin(port, "hidden") as conn:
            assert conn.execute("SELECT count(*) FROM payroll").fetchone()[0] == 1
    finally:
        with admin(port) as conn:
            for name in databases(port) - {"postgres"}:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute("DROP ROLE IF EXISTS restorer")
