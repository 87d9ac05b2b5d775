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
from test_pg_backup_manifest_live import PG_BIN, as_postgres, pg_server  # noqa: F401  (pg_server: a fixture)

from module_runner import run_ansible_module

OS_USER = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "")


def admin(port: int, db: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=db, autocommit=True)


def databases(port: int) -> set[str]:
    with admin(port) as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database")}


@pytest.fixture
def backup_set(pg_server):  # noqa: F811
    """A database `shop` (alembic revision, 40 orders) dumped in custom format into a set directory, with its .sha256."""
    port, dummy = pg_server
    with admin(port) as conn:
        for name in databases(port) - {"postgres", "template0", "template1"}:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
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
    if os.geteuid() == 0:
        for path in (set_dir, dump, set_dir / "postgres.dump.sha256"):
            shutil.chown(path, "postgres", "postgres")
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
