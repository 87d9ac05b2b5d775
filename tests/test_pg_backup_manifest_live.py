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
