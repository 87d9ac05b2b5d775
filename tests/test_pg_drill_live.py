"""shipshape.ops.pg_drill against a throwaway PostgreSQL 15 on loopback (the server of test_pg_backup_manifest_live),
run through Ansible: a real dump restored into a scratch database, checked, timed and dropped."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from test_pg_backup_manifest_live import (PG_BIN, RICH_LEAVES, RICH_ROWS, RICH_TABLES, as_postgres, load_rich,  # noqa: F401
                                          pg_server, rich_manifest)

from module_runner import run_ansible_module

OS_USER = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "")


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


def databases(port: int) -> set[str]:
    with admin(port) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


def drop_databases(port: int) -> None:
    """Every database of the throwaway server but postgres and the templates: each test starts from none."""
    with admin(port) as conn:
        for name in databases(port) - {"postgres", "template0", "template1"}:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def give_to_postgres(set_dir: Path) -> None:
    """The set directory and its files to the postgres user, as the backup role leaves them (when run as root)."""
    if os.geteuid() == 0:
        for path in [set_dir] + list(set_dir.iterdir()):
            shutil.chown(path, "postgres", "postgres")


@pytest.fixture
def backup_set(pg_server):  # noqa: F811
    """A database `shop` (alembic revision, 40 orders) dumped in custom format into a set directory, with its .sha256."""
    port, dummy = pg_server
    drop_databases(port)
    with admin(port) as conn:
        conn.execute("CREATE DATABASE shop")
    with admin(port, "shop") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('0002_orders')")
        conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, paid boolean)")
        conn.execute("INSERT INTO orders (paid) SELECT i % 2 = 0 FROM generate_series(1, 40) i")
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-set-"))
    dump = set_dir / "postgres.dump"
    subprocess.run(as_postgres([str(PG_BIN / "pg_dump"), "-Fc", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                "-d", "shop"]), check=True, stdout=dump.open("wb"))
    digest = hashlib.sha256(dump.read_bytes()).hexdigest()
    (set_dir / "postgres.dump.sha256").write_text(f"{digest}  postgres.dump\n")
    give_to_postgres(set_dir)
    yield port, set_dir, {"postgres": {"file": "postgres.dump", "sha256": digest, "format": "custom"}}
    shutil.rmtree(set_dir, ignore_errors=True)


def drill(ansible_env, port, set_dir, parts, check=False, **extra):
    args = dict(db="drill_shop_1", host="127.0.0.1", port=port, user="postgres", os_user=OS_USER, set_dir=str(set_dir),
                parts=parts, source_db="shop", tables=["orders", "alembic_version", "missing_table"])
    args.update(extra)
    return run_ansible_module(ansible_env, "shipshape.ops.pg_drill", args, check)


def test_a_good_set_is_restored_checked_timed_and_dropped(backup_set, ansible_env):
    port, set_dir, parts = backup_set
    assertions = [{"name": "half paid", "query": "SELECT count(*) FILTER (WHERE paid) * 2 = count(*) FROM orders"},
                  {"name": "a count", "query": "SELECT count(*) FROM orders"}]
    rc, result = drill(ansible_env, port, set_dir, parts, assertions=assertions)
    assert rc == 0, result
    assert result["changed"] is False and result["stopped_at"] is None and result["error"] is None
    assert result["sums"] == [{"name": "postgres", "actual": parts["postgres"]["sha256"], "listed_ok": True}]
    assert result["found"]["row_counts"] == {"orders": 40, "alembic_version": 1}
    assert result["found"]["tables_missing"] == ["missing_table"]
    assert result["found"]["revision"] == "0002_orders" and result["found"]["database"] == "drill_shop_1"
    assert [(a["name"], a["rc"], a["stdout"]) for a in result["assertions"]] == [("half paid", 0, "t"), ("a count", 0, "40")]
    assert result["created"] is True and result["dropped"] is True
    assert set(result["phases"]) == {"checksum", "restore", "verify", "cleanup"}
    assert result["pg_restore_s"] > 0 and result["create_s"] > 0
    assert result["elapsed"] >= sum(result["phases"][p] for p in ("checksum", "restore", "verify")) - 0.01
    assert "drill_shop_1" not in databases(port)


def test_a_scratch_name_that_reads_as_a_connection_string_restores_into_that_name_only(backup_set, ansible_env):
    # pg_restore -d and psql -d read a value holding '=' as a connection string: the scratch database
    # "dbname=bystander" was created, and the dump restored into the database bystander (or any host= and port=).
    port, set_dir, parts = backup_set
    with admin(port) as conn:
        conn.execute("CREATE DATABASE bystander")
    rc, result = drill(ansible_env, port, set_dir, parts, db="dbname=bystander",
                       assertions=[{"name": "orders", "query": "SELECT count(*) FROM orders", "expected": 40}])
    assert rc == 0, result
    assert result["stopped_at"] is None and result["error"] is None, result
    assert result["found"]["row_counts"] == {"orders": 40, "alembic_version": 1}
    assert [(a["name"], a["rc"], a["stdout"]) for a in result["assertions"]] == [("orders", 0, "40")]
    with admin(port, "bystander") as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname IN ('orders', 'alembic_version')").fetchone()[0] == 0
    assert "dbname=bystander" not in databases(port) and result["dropped"] is True


def test_a_tampered_dump_stops_before_anything_is_created(backup_set, ansible_env):
    port, set_dir, parts = backup_set
    with (set_dir / "postgres.dump").open("ab") as dump:
        dump.write(b"tampered")
    rc, result = drill(ansible_env, port, set_dir, parts)
    assert rc == 0, result
    assert result["stopped_at"] == "checksum" and "checksum mismatch: postgres" in result["error"]
    assert result["sums"][0]["actual"] != parts["postgres"]["sha256"] and result["sums"][0]["listed_ok"] is False
    assert result["created"] is False and result["found"] is None and "drill_shop_1" not in databases(port)


@pytest.mark.parametrize("name, why", [("shop", "it is the source database of the backup"),
                                       ("taken", "a database of that name already exists")])
def test_a_scratch_name_that_exists_is_refused_and_left_alone(backup_set, ansible_env, name, why):
    port, set_dir, parts = backup_set
    with admin(port) as conn:
        conn.execute("CREATE DATABASE taken")
    with admin(port, "taken") as conn:
        conn.execute("CREATE TABLE precious (id int)")
        conn.execute("INSERT INTO precious VALUES (1)")
    rc, result = drill(ansible_env, port, set_dir, parts, db=name)
    assert rc == 0, result
    assert result["stopped_at"] == "restore" and result["refused"] == why
    assert result["created"] is False and result["dropped"] is None
    with admin(port, "taken") as conn:
        assert conn.execute("SELECT count(*) FROM precious").fetchone()[0] == 1
    with admin(port, "shop") as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 40


def test_assertions_are_read_only_and_errors_are_returned_and_the_copy_still_dropped(backup_set, ansible_env):
    port, set_dir, parts = backup_set
    rc, result = drill(ansible_env, port, set_dir, parts,
                       assertions=[{"name": "writes", "query": "DELETE FROM orders RETURNING 1"},
                                   {"name": "typo", "query": "SELECT count(*) FROM ordrs"}])
    assert rc == 0 and result["stopped_at"] is None
    writes, typo = result["assertions"]
    assert writes["rc"] != 0 and "read-only transaction" in writes["stderr"]
    assert typo["rc"] != 0 and 'relation "ordrs" does not exist' in typo["stderr"]
    assert result["dropped"] is True and "drill_shop_1" not in databases(port)


def test_check_mode_only_checks_the_checksums(backup_set, ansible_env):
    port, set_dir, parts = backup_set
    rc, result = drill(ansible_env, port, set_dir, parts, check=True)
    assert rc == 0 and result["stopped_at"] is None
    assert set(result["phases"]) == {"checksum"} and result["created"] is False
    assert "drill_shop_1" not in databases(port)


def test_bad_options_name_the_option(backup_set, ansible_env):
    port, set_dir, parts = backup_set
    rc, result = drill(ansible_env, port, set_dir, {"redis": {"file": "redis.rdb"}})
    assert rc != 0 and result["msg"].startswith("parts: the set has no postgres part")
    rc, result = drill(ansible_env, port, set_dir, parts, jobs=0)
    assert rc != 0 and result["msg"] == "jobs: at least 1, got 0"
    rc, result = drill(ansible_env, port, set_dir, parts, os_user="no-such-user")
    assert rc != 0 and result["msg"] == "os_user: no OS user no-such-user on this host"


# --- the rich sample database: the whole database verified, each difference named --------------------------------

def seal(set_dir: Path, name: str) -> str:
    digest = hashlib.sha256((set_dir / name).read_bytes()).hexdigest()
    (set_dir / (name + ".sha256")).write_text(f"{digest}  {name}\n")
    return digest


def dump_set(port: int, db: str, set_dir: Path, roles: bool = False) -> dict:
    """The custom dump of ``db`` (and with ``roles`` the cluster's roles, pg_dumpall --roles-only), sealed and given to
    postgres as the backup role writes them: the set's parts."""
    base = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    subprocess.run([str(PG_BIN / "pg_dump"), "-Fc", "-d", db, "-f", str(set_dir / "postgres.dump")] + base, check=True)
    parts = {"postgres": {"file": "postgres.dump", "format": "custom", "sha256": seal(set_dir, "postgres.dump")}}
    if roles:
        subprocess.run([str(PG_BIN / "pg_dumpall"), "--roles-only", "-f", str(set_dir / "roles.sql")] + base, check=True)
        parts["postgres_roles"] = {"file": "roles.sql", "sha256": seal(set_dir, "roles.sql")}
    give_to_postgres(set_dir)
    return parts


def dump_rich(port: int, set_dir: Path) -> dict:
    """The custom dump of `rich` and the cluster's roles."""
    return dump_set(port, "rich", set_dir, roles=True)


@pytest.fixture
def rich_set(pg_server, ansible_env):  # noqa: F811
    port, dummy = pg_server
    drop_databases(port)
    load_rich(port)
    manifest = rich_manifest(ansible_env, port)
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-rich-"))
    parts = dump_rich(port, set_dir)
    yield port, set_dir, parts, manifest
    shutil.rmtree(set_dir, ignore_errors=True)


def drill_rich(ansible_env, port, set_dir, parts, manifest, **extra):
    args = dict(db="drill_rich_1", source_db="rich", tables=[], revision_query="", catalog=manifest["catalog"],
                required_roles=manifest["catalog"]["roles"], roles_file="roles.sql")
    args.update(extra)
    return drill(ansible_env, port, set_dir, parts, **args)


def test_the_rich_database_is_verified_whole(rich_set, ansible_env):
    port, set_dir, parts, manifest = rich_set
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
    assert rc == 0, result
    failed = [c for c in result["checks"] if not c["ok"]]
    assert result["stopped_at"] is None and failed == [], failed
    assert result["compared"]["tables"] == RICH_TABLES and result["compared"]["leaf_tables"] == RICH_LEAVES
    assert result["compared"]["rows"] == RICH_ROWS == result["compared"]["rows_found"]
    kinds = {c["kind"] for c in result["checks"]}
    assert {"checksum", "table", "row_count", "sequence", "view", "materialized_view", "function", "schema",
            "extension", "owner", "grant"} <= kinds
    names = {c["name"] for c in result["checks"]}
    assert {"rows shop.orders", "grants on table crm.customers", "column grants on table shop.coupons",
            "sequence shop.invoice_no", "extension citext", "default privileges"} <= names
    assert result["roles_created"] == [] and result["dropped"] is True


def test_a_copy_that_lost_a_row_a_grant_and_a_table_fails_naming_each(rich_set, ansible_env):
    port, set_dir, parts, manifest = rich_set
    # The dump is taken again after the damage; the manifest is the one of the intact database.
    with admin(port, "rich") as conn:
        conn.execute("DELETE FROM shop.orders WHERE id = 1")
        conn.execute("REVOKE SELECT ON crm.notes FROM rich_reader")
        conn.execute("DROP TABLE shop.empty_wishlist")
    parts = dump_rich(port, set_dir)
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
    assert rc == 0 and result["stopped_at"] is None
    failed = {c["name"]: c for c in result["checks"] if not c["ok"]}
    leaf = next(n for n in failed if n.startswith("rows shop.orders_"))
    assert set(failed) == {"rows shop.orders", leaf, "grants on table crm.notes", "table shop.empty_wishlist",
                           "sequence shop.empty_wishlist_id_seq"}, failed  # its serial went with it
    assert failed["rows shop.orders"]["expected"] == 1000 and failed["rows shop.orders"]["actual"] == 999
    assert failed["table shop.empty_wishlist"]["actual"] == "missing"
    assert "rich_reader=r/rich_owner" in failed["grants on table crm.notes"]["expected"]
    assert "rich_reader=r/rich_owner" not in failed["grants on table crm.notes"]["actual"]


def test_a_server_without_the_backups_locale_stops_the_drill_naming_it_and_creates_nothing(rich_set, ansible_env):
    # A drill host (a new one, a disaster recovery) may lack the locale the backup's database was made in: the
    # scratch database is not made in another one, which would sort text differently.
    port, set_dir, parts, manifest = rich_set
    catalog = dict(manifest["catalog"], database_locale=dict(encoding="UTF8", collate="xx_XX.UTF-8",
                                                             ctype="xx_XX.UTF-8", provider="c"))
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest, catalog=catalog)
    assert rc == 0 and result["stopped_at"] == "restore", result
    assert "with encoding UTF8, collate xx_XX.UTF-8, ctype xx_XX.UTF-8, provider libc failed" in result["error"]
    assert "locale -a" in result["error"]
    assert "drill_rich_1" not in databases(port)


def test_a_manifest_without_tables_fails_the_drill(rich_set, ansible_env):
    port, set_dir, parts, manifest = rich_set
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest, catalog={})
    assert rc == 0 and result["stopped_at"] == "verify"
    assert result["error"] == "the backup's manifest lists no tables: nothing to verify"
    assert [c for c in result["checks"] if not c["ok"]][0]["kind"] == "manifest"
    assert result["dropped"] is True


def test_missing_roles_are_created_from_the_saved_roles_or_named(rich_set, ansible_env):
    port, set_dir, parts, manifest = rich_set
    with (set_dir / "roles.sql").open("a") as roles:
        roles.write("CREATE ROLE rich_gone;\nALTER ROLE rich_gone WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB "
                    "NOLOGIN NOREPLICATION NOBYPASSRLS;\nGRANT rich_reader TO rich_gone GRANTED BY postgres;\n"
                    "CREATE ROLE rich_boss;\nALTER ROLE rich_boss WITH SUPERUSER LOGIN;\n")
    parts["postgres_roles"]["sha256"] = seal(set_dir, "roles.sql")
    roles = manifest["catalog"]["roles"] + ["rich_gone"]
    try:
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest, required_roles=roles, create_roles=False)
        assert rc == 0 and result["stopped_at"] == "restore" and result["created"] is False
        assert "the backup needs roles that this server lacks: rich_gone" in result["error"]
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest, required_roles=roles + ["rich_boss"])
        assert rc == 0 and result["stopped_at"] == "restore" and result["created"] is False
        assert "rich_boss has attribute SUPERUSER" in result["error"]
        with admin(port) as conn:  # all or none: rich_gone was not created either
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'rich_gone'").fetchone()[0] == 0
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest, required_roles=roles)
        assert rc == 0 and result["roles_created"] == ["rich_gone"] and result["stopped_at"] is None
        with admin(port) as conn:
            assert conn.execute("SELECT pg_has_role('rich_gone', 'rich_reader', 'MEMBER')").fetchone()[0] is True
    finally:
        with admin(port) as conn:
            conn.execute("DROP ROLE IF EXISTS rich_gone")


def test_a_gzipped_plain_dump_is_piped_without_a_shell_and_verified(rich_set, ansible_env):
    port, set_dir, parts, manifest = rich_set
    plain = subprocess.run([str(PG_BIN / "pg_dump"), "-Fp", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "rich"],
                           check=True, capture_output=True).stdout
    import gzip
    (set_dir / "postgres.sql.gz").write_bytes(gzip.compress(plain))
    if os.geteuid() == 0:
        shutil.chown(set_dir / "postgres.sql.gz", "postgres", "postgres")
    parts["postgres"] = {"file": "postgres.sql.gz", "format": "plain", "compression": "gzip",
                         "sha256": seal(set_dir, "postgres.sql.gz")}
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
    assert rc == 0 and result["stopped_at"] is None, result["error"]
    assert [c for c in result["checks"] if not c["ok"]] == []
    assert result["compared"]["rows_found"] == RICH_ROWS
    (set_dir / "postgres.sql.gz").write_bytes(gzip.compress(plain)[:-200])  # truncated: gzip fails, named
    parts["postgres"]["sha256"] = seal(set_dir, "postgres.sql.gz")
    rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
    assert rc == 0 and result["stopped_at"] == "restore" and "(gzip rc 1)" in result["error"], result["error"]


def test_an_icu_database_without_a_public_schema_is_restored_as_it_was_and_verified(pg_server, ansible_env):  # noqa: F811
    # Two things pg_dump of one database does not carry: the database's locale (here ICU de-DE, where 'a' < 'B';
    # template1's C.UTF-8 sorts 'B' first) and a dropped public schema (every new database has one again).
    port, dummy = pg_server
    drop_databases(port)
    with admin(port) as conn:
        conn.execute("CREATE DATABASE \"Shop-DE\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE'")
    with admin(port, "Shop-DE") as conn:
        conn.execute("DROP SCHEMA public")
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.words (w text PRIMARY KEY)")
        conn.execute("INSERT INTO app.words VALUES ('a'), ('B'), ('ä')")
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest",
                                    dict(db="Shop-DE", host="127.0.0.1", port=port, user="postgres", revision_query=""))
    assert rc == 0, result
    catalog = result["manifest"]["catalog"]
    assert catalog["database_locale"] == dict(encoding="UTF8", collate="C.UTF-8", ctype="C.UTF-8", provider="i",
                                              locale="de-DE")
    assert "public" not in catalog["schemas"]
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-icu-"))
    try:
        parts = dump_set(port, "Shop-DE", set_dir)
        rc, result = drill(ansible_env, port, set_dir, parts, db="drill_shop_de", source_db="Shop-DE", tables=[],
                           revision_query="", catalog=catalog, drop=False,
                           assertions=[{"name": "order", "query": "SELECT string_agg(w, ',' ORDER BY w) FROM app.words",
                                        "expected": "a,ä,B"}])
        assert rc == 0, result
        failed = [c for c in result["checks"] if not c["ok"]]
        assert result["stopped_at"] is None and failed == [], failed
        names = {c["name"] for c in result["checks"]}
        assert {"database encoding and locale", "schema public", "assertion order"} <= names
        with admin(port) as conn:
            assert conn.execute("SELECT datlocprovider, daticulocale FROM pg_database WHERE datname = 'drill_shop_de'"
                                ).fetchone() == ("i", "de-DE")
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)
        with admin(port) as conn:
            conn.execute('DROP DATABASE IF EXISTS "drill_shop_de" WITH (FORCE)')


def test_roles_only_a_policy_a_user_mapping_or_a_type_names_are_required_and_created(pg_server, ansible_env):  # noqa: F811
    # Roles no table, function or schema names: a policy's TO role, a user mapping's user, a type's owner. pg_restore
    # needs each; on a host without them the restore failed at CREATE POLICY / CREATE USER MAPPING.
    port, dummy = pg_server
    roles = ["h1_policy_role", "h1_fdw_user", "h1_type_owner"]
    drop_databases(port)
    with admin(port) as conn:
        for role in roles:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
            conn.execute(f"CREATE ROLE {role}")
        conn.execute("CREATE DATABASE mapped")
    with admin(port, "mapped") as conn:
        conn.execute("CREATE TABLE notes (id int, body text)")
        conn.execute("INSERT INTO notes VALUES (1, 'a'), (2, 'b')")
        conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY own ON notes TO h1_policy_role USING (id > 1)")
        conn.execute("CREATE EXTENSION postgres_fdw")
        conn.execute("CREATE SERVER remote FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host 'db.example', dbname 'x')")
        conn.execute("CREATE USER MAPPING FOR h1_fdw_user SERVER remote OPTIONS (user 'remote', password 'S3cr3t-pw')")
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'sad')")
        conn.execute("ALTER TYPE mood OWNER TO h1_type_owner")
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest",
                                    dict(db="mapped", host="127.0.0.1", port=port, user="postgres", revision_query=""))
    assert rc == 0, result
    catalog = result["manifest"]["catalog"]
    assert set(roles) <= set(catalog["roles"])
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-mapped-"))
    try:
        parts = dump_set(port, "mapped", set_dir, roles=True)
        with admin(port) as conn:  # a drill host without those roles
            conn.execute("DROP DATABASE mapped WITH (FORCE)")
            for role in roles:
                conn.execute(f"DROP ROLE {role}")
        rc, result = drill(ansible_env, port, set_dir, parts, db="drill_mapped", source_db="mapped", tables=[],
                           revision_query="", catalog=catalog, required_roles=catalog["roles"], roles_file="roles.sql")
        assert rc == 0, result
        failed = [c for c in result["checks"] if not c["ok"]]
        assert result["stopped_at"] is None and failed == [], (result["error"], failed)
        assert sorted(result["roles_created"]) == sorted(roles) and result["dropped"] is True
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)
        with admin(port) as conn:
            conn.execute("DROP DATABASE IF EXISTS drill_mapped WITH (FORCE)")
            conn.execute("DROP DATABASE IF EXISTS mapped WITH (FORCE)")
            for role in roles:
                conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_the_scratch_copy_has_the_databases_own_settings_so_the_revision_and_assertions_resolve(pg_server, ansible_env):  # noqa: F811
    # ALTER DATABASE ... SET search_path = app (the app's tables, alembic_version too, in schema app): pg_dump does
    # not carry it; without it the drill read no revision and an unqualified assertion found no table.
    port, dummy = pg_server
    drop_databases(port)
    with admin(port) as conn:
        conn.execute("CREATE DATABASE pathed")
    with admin(port, "pathed") as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute("CREATE TABLE app.alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO app.alembic_version VALUES ('0007_paths')")
        conn.execute("CREATE TABLE app.orders (id int)")
        conn.execute("INSERT INTO app.orders VALUES (1), (2)")
        conn.execute("ALTER DATABASE pathed SET search_path = app")
        conn.execute("ALTER DATABASE pathed SET app.jwt_secret = 'not-restored'")  # recorded by name only
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest",
                                    dict(db="pathed", host="127.0.0.1", port=port, user="postgres"))
    assert rc == 0, result
    manifest = result["manifest"]
    assert manifest["revision"] == "0007_paths"
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-pathed-"))
    try:
        parts = dump_set(port, "pathed", set_dir)
        rc, result = drill(ansible_env, port, set_dir, parts, db="drill_pathed", source_db="pathed", tables=[],
                           catalog=manifest["catalog"], check_revision=True, expected_revision=manifest["revision"],
                           assertions=[{"name": "orders", "query": "SELECT count(*) FROM orders", "expected": 2}])
        assert rc == 0, result
        failed = [c for c in result["checks"] if not c["ok"]]
        assert result["stopped_at"] is None and failed == [], (result["error"], failed)
        assert result["found"]["revision"] == "0007_paths" and result["dropped"] is True
        assert "not-restored" not in str(result)
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)
        with admin(port) as conn:
            conn.execute("DROP DATABASE IF EXISTS drill_pathed WITH (FORCE)")


def test_a_copy_that_lost_an_index_a_constraint_a_trigger_a_policy_and_forced_rls_fails_naming_each(pg_server, ansible_env):  # noqa: F811
    # Rows, owners and grants all match in a copy without them: it was reported verified.
    port, dummy = pg_server
    drop_databases(port)
    load_rich(port)
    with admin(port, "rich") as conn:
        conn.execute("CREATE INDEX notes_body_lower ON crm.notes (lower(body))")
        conn.execute("CREATE INDEX monthly_revenue_month ON shop.monthly_revenue (month)")
        conn.execute("ALTER TABLE crm.notes ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE crm.notes FORCE ROW LEVEL SECURITY")
        conn.execute("CREATE POLICY reader_notes ON crm.notes FOR SELECT TO rich_reader USING (customer_id > 0)")
    manifest = rich_manifest(ansible_env, port)
    notes = manifest["catalog"]["tables"]["crm.notes"]
    assert notes["row_security"] == "enabled, forced"
    assert notes["indexes"]["notes_body_lower"] == "CREATE INDEX notes_body_lower ON crm.notes USING btree (lower(body))"
    assert notes["policies"] == {"reader_notes": "AS PERMISSIVE FOR SELECT TO rich_reader USING ((customer_id > 0))"}
    assert notes["constraints"]["notes_customer_id_fkey"] == "FOREIGN KEY (customer_id) REFERENCES crm.customers(id)"
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-defs-"))
    try:
        parts = dump_rich(port, set_dir)
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
        assert rc == 0 and result["stopped_at"] is None, result
        failed = [c for c in result["checks"] if not c["ok"]]
        assert failed == [], failed
        names = {c["name"] for c in result["checks"]}
        assert {"index notes_body_lower on table crm.notes", "policy reader_notes on table crm.notes",
                "row level security of table crm.notes", "constraint products_price_check on table shop.products",
                "trigger stock_audit on table shop.stock", "index monthly_revenue_month on materialized view shop.monthly_revenue",
                "constraint orders_pkey on table shop.orders"} <= names
        # The dump is taken again after the damage; the manifest is the one of the intact database.
        with admin(port, "rich") as conn:
            conn.execute("DROP INDEX crm.notes_body_lower")
            conn.execute("DROP INDEX shop.monthly_revenue_month")
            conn.execute("ALTER TABLE shop.products DROP CONSTRAINT products_price_check")
            conn.execute("DROP TRIGGER stock_audit ON shop.stock")
            conn.execute("DROP POLICY reader_notes ON crm.notes")
            conn.execute("ALTER TABLE crm.notes NO FORCE ROW LEVEL SECURITY")
        parts = dump_rich(port, set_dir)
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest)
        assert rc == 0 and result["stopped_at"] is None, result
        failed = {c["name"]: (c["expected"], c["actual"]) for c in result["checks"] if not c["ok"]}
        assert failed == {
            "index notes_body_lower on table crm.notes": (notes["indexes"]["notes_body_lower"], "missing"),
            "index monthly_revenue_month on materialized view shop.monthly_revenue": (
                "CREATE INDEX monthly_revenue_month ON shop.monthly_revenue USING btree (month)", "missing"),
            "constraint products_price_check on table shop.products": ("CHECK ((price >= (0)::numeric))", "missing"),
            "trigger stock_audit on table shop.stock": (
                "CREATE TRIGGER stock_audit AFTER UPDATE ON shop.stock FOR EACH ROW EXECUTE FUNCTION audit.log_event()", "missing"),
            "policy reader_notes on table crm.notes": (notes["policies"]["reader_notes"], "missing"),
            "row level security of table crm.notes": ("enabled, forced", "enabled"),
        }, failed
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)


def test_a_saved_membership_in_a_superuser_role_is_refused_and_no_role_is_created(rich_set, ansible_env):
    # SUPERUSER was refused, but GRANT postgres TO a saved role was granted: SET ROLE postgres, the same power.
    port, set_dir, parts, manifest = rich_set
    with (set_dir / "roles.sql").open("a") as roles:
        roles.write("CREATE ROLE rich_sneaky;\nALTER ROLE rich_sneaky WITH NOSUPERUSER LOGIN;\n"
                    "GRANT postgres TO rich_sneaky GRANTED BY postgres;\n")
    parts["postgres_roles"]["sha256"] = seal(set_dir, "roles.sql")
    try:
        rc, result = drill_rich(ansible_env, port, set_dir, parts, manifest,
                                required_roles=manifest["catalog"]["roles"] + ["rich_sneaky"])
        assert rc == 0 and result["stopped_at"] == "restore" and result["created"] is False, result
        assert "which a restore does not grant: rich_sneaky in postgres" in result["error"]
        with admin(port) as conn:
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'rich_sneaky'").fetchone()[0] == 0
    finally:
        with admin(port) as conn:
            conn.execute("DROP ROLE IF EXISTS rich_sneaky")


def test_a_partitions_foreign_key_attached_under_its_own_name_verifies(pg_server, ansible_env):  # noqa: F811
    # A partition's foreign key that existed before its parent's (attached to it, keeping its own name) is not dumped:
    # the parent's makes it again under the parent's name. Compared by name, a faithful copy failed.
    port, dummy = pg_server
    drop_databases(port)
    with admin(port) as conn:
        conn.execute("CREATE DATABASE attached")
    with admin(port, "attached") as conn:
        conn.execute("CREATE TABLE refs (id int PRIMARY KEY)")
        conn.execute("INSERT INTO refs VALUES (1)")
        conn.execute("CREATE TABLE events (id int, ref int) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE events_1 (id int, ref int, CONSTRAINT events_1_own_fk FOREIGN KEY (ref) REFERENCES refs (id))")
        conn.execute("ALTER TABLE events ATTACH PARTITION events_1 FOR VALUES FROM (0) TO (100)")
        conn.execute("ALTER TABLE events ADD CONSTRAINT events_ref_fkey FOREIGN KEY (ref) REFERENCES refs (id)")
        conn.execute("INSERT INTO events VALUES (1, 1)")
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.pg_backup_manifest",
                                    dict(db="attached", host="127.0.0.1", port=port, user="postgres", revision_query=""))
    assert rc == 0, result
    catalog = result["manifest"]["catalog"]
    assert catalog["tables"]["public.events"]["constraints"] == {
        "events_ref_fkey": "FOREIGN KEY (ref) REFERENCES public.refs(id)"}
    set_dir = Path(tempfile.mkdtemp(prefix="shipshape-drill-attached-"))
    try:
        parts = dump_set(port, "attached", set_dir)
        rc, result = drill(ansible_env, port, set_dir, parts, db="drill_attached", source_db="attached", tables=[],
                           revision_query="", catalog=catalog)
        assert rc == 0, result
        failed = [c for c in result["checks"] if not c["ok"]]
        assert result["stopped_at"] is None and failed == [], (result["error"], failed)
    finally:
        shutil.rmtree(set_dir, ignore_errors=True)


@pytest.mark.parametrize("compression", ["", "gzip"])
def test_a_plain_dump_named_like_stdin_is_read_from_its_file(backup_set, ansible_env, compression):
    # psql -f - and gzip -dc -- - read their standard input, not the set's file named "-".
    port, set_dir, parts = backup_set
    plain = subprocess.run(as_postgres([str(PG_BIN / "pg_dump"), "-Fp", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                                        "-d", "shop"]), check=True, capture_output=True).stdout
    if compression:
        import gzip
        plain = gzip.compress(plain)
    (set_dir / "-").write_bytes(plain)
    digest = hashlib.sha256(plain).hexdigest()
    (set_dir / "-.sha256").write_text(f"{digest}  -\n")
    give_to_postgres(set_dir)
    parts = {"postgres": {"file": "-", "format": "plain", "compression": compression, "sha256": digest}}
    rc, result = drill(ansible_env, port, set_dir, parts, tables=["orders"])
    assert rc == 0 and result["stopped_at"] is None, result
    assert result["found"]["row_counts"] == {"orders": 40} and result["dropped"] is True
