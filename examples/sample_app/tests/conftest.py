"""Fixtures for the sample_app tests. They need a REAL PostgreSQL and Redis:

    SAMPLE_APP_TEST_DATABASE_URL=postgresql://user:pass@host:port/db   (role must be allowed to CREATE DATABASE)
    SAMPLE_APP_TEST_REDIS_URL=redis://127.0.0.1:6379/0                  (this Redis db is FLUSHed)

examples/sample_app/run-tests.sh provides both (pg_virtualenv + a throwaway redis-server).
Each test gets its own freshly created database, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from sa_helpers import APP_DIR, DB_ENV, REDIS_ENV, alembic, stop, with_dbname


# ---- services ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def services():
    missing = [n for n in (DB_ENV, REDIS_ENV) if not os.environ.get(n)]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not set. The sample_app tests need a real PostgreSQL and a real "
            f"Redis; run examples/sample_app/run-tests.sh (pg_virtualenv + throwaway redis-server), or "
            f"set {DB_ENV}=postgresql://... and {REDIS_ENV}=redis://... yourself.",
            pytrace=False,
        )
    import psycopg
    import redis

    admin_url, redis_url = os.environ[DB_ENV], os.environ[REDIS_ENV]
    try:
        with psycopg.connect(admin_url, connect_timeout=5) as c:
            c.execute("SELECT 1")
    except Exception as exc:
        pytest.fail(f"{DB_ENV} does not answer: {type(exc).__name__}: {exc}", pytrace=False)
    try:
        r = redis.Redis.from_url(redis_url, socket_timeout=5)
        r.ping()
        r.close()
    except Exception as exc:
        pytest.fail(f"{REDIS_ENV} does not answer: {type(exc).__name__}: {exc}", pytrace=False)
    return admin_url, redis_url


@pytest.fixture(autouse=True)
def _require_services(services):
    """Every test fails (never skips) when PostgreSQL/Redis are not provided."""


@pytest.fixture
def db_url(services):
    import psycopg

    admin_url = services[0]
    name = "sa_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_dbname(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(services):
    import redis

    url = services[1]
    r = redis.Redis.from_url(url, decode_responses=True)
    r.flushdb()
    try:
        yield url
    finally:
        r.flushdb()
        r.close()


@pytest.fixture
def rconn(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    yield r
    r.close()


@pytest.fixture
def pg(db_url):
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


# ---- migrations -------------------------------------------------------------------------------


@pytest.fixture
def migrated(db_url):
    alembic(APP_DIR, db_url, "upgrade", "head")
    return db_url


# ---- in-process app ---------------------------------------------------------------------------

@pytest.fixture
def make_client(db_url, redis_url):
    from sample_app.app import create_app
    from sample_app.config import Config

    def make(**overrides):
        fields = {"database_url": db_url, "redis_url": redis_url}
        fields.update(overrides)
        app = create_app(Config(**fields))
        app.testing = True
        return app.test_client()

    return make


@pytest.fixture
def client(make_client, migrated):
    return make_client()


# ---- real processes ---------------------------------------------------------------------------


@pytest.fixture
def processes():
    """Popen objects appended here are stopped (SIGTERM, then SIGKILL) after the test."""
    procs: list = []
    yield procs
    for p in reversed(procs):
        stop(p)


@pytest.fixture
def release_tree(tmp_path):
    """Materialize a version's tree (app/ + overlays) like an unpacked release archive."""
    import make_releases

    def make(name: str) -> Path:
        dest = tmp_path / f"release-{name}"
        if dest.exists():
            shutil.rmtree(dest)
        return make_releases.materialize(name, dest)

    return make


