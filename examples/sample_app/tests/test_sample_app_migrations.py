"""alembic migrations and /readyz."""

from sa_helpers import APP_DIR, alembic


def test_readyz_503_before_migrations(make_client, db_url):
    resp = make_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "not_ready"
    assert body["alembic_revision"] is None
    assert body["expected_revision"] == "0001_initial"
    assert "migrations not applied" in body["reason"]


def test_upgrade_head_on_empty_db_then_readyz_ok(make_client, db_url, pg):
    proc = alembic(APP_DIR, db_url, "upgrade", "head")
    assert "Running upgrade  -> 0001_initial" in proc.stderr
    tables = {r[0] for r in pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
    assert {"notes", "outbox", "alembic_version"} <= tables
    resp = make_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"status": "ok", "alembic_revision": "0001_initial", "schema": "current"}


def test_alembic_current_and_heads(db_url):
    assert "0001_initial (head)" in alembic(APP_DIR, db_url, "heads").stdout
    assert "0001_initial" not in alembic(APP_DIR, db_url, "current").stdout
    alembic(APP_DIR, db_url, "upgrade", "head")
    assert "0001_initial (head)" in alembic(APP_DIR, db_url, "current").stdout
    # idempotent
    again = alembic(APP_DIR, db_url, "upgrade", "head")
    assert "Running upgrade" not in again.stderr


def test_outbox_schema(migrated, pg):
    pg.execute("INSERT INTO outbox (event_type, payload) VALUES ('x', '{}')")
    row = pg.execute("SELECT status, attempts, created_at IS NOT NULL, updated_at IS NOT NULL FROM outbox").fetchone()
    assert row == ("pending", 0, True, True)
    import psycopg

    try:
        pg.execute("INSERT INTO outbox (event_type, payload, status) VALUES ('x', '{}', 'bogus')")
    except psycopg.errors.CheckViolation:
        pass
    else:
        raise AssertionError("outbox.status accepted a value outside pending/sent/failed")


def test_downgrade_base(migrated, pg):
    alembic(APP_DIR, migrated, "downgrade", "base")
    tables = {r[0] for r in pg.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()}
    assert "notes" not in tables and "outbox" not in tables


def test_readyz_503_when_database_unreachable(make_client, db_url):
    bad = "postgresql://nobody:secret-pw@127.0.0.1:1/nothing"
    resp = make_client(database_url=bad).get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["reason"] == "database unavailable"
    assert body["expected_revision"] == "0001_initial"
    assert "secret-pw" not in resp.get_data(as_text=True)


def test_readyz_is_ok_on_a_schema_ahead_of_this_release(make_client, migrated, pg):
    # A newer release migrated the database (expand-first): this older release still runs on it.
    pg.execute("UPDATE alembic_version SET version_num = '0002_note_tags'")
    resp = make_client().get("/readyz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["alembic_revision"] == "0002_note_tags"
    assert body["expected_revision"] == "0001_initial"
    assert body["schema"] == "ahead"


def test_readyz_503_when_the_database_is_behind(make_client, migrated, pg, monkeypatch):
    from sample_app import migration_state

    # This release ships 0001 -> 0002 (as v2 does); the database is still at 0001: migrations pending.
    monkeypatch.setattr(migration_state, "shipped_heads", lambda *a: ("0002_note_tags",))
    monkeypatch.setattr(migration_state, "shipped_revisions", lambda *a: frozenset({"0001_initial", "0002_note_tags"}))
    resp = make_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["alembic_revision"] == "0001_initial" and body["expected_revision"] == "0002_note_tags"
    assert "behind" in body["reason"]


def test_alembic_without_database_url_fails_clearly(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.run([sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
                          cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "DATABASE_URL is not set" in proc.stderr


def test_alembic_never_prints_the_password(db_url, services):
    # a wrong password: the connection fails and the error must not echo the secret
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(db_url)
    netloc = f"{parts.username}:Zz-not-the-pw-42@{parts.hostname}:{parts.port}"
    bad = urlunsplit(parts._replace(netloc=netloc))
    proc = alembic(APP_DIR, bad, "upgrade", "head", check=False)
    assert "Zz-not-the-pw-42" not in proc.stdout + proc.stderr
    ok = alembic(APP_DIR, db_url, "upgrade", "head")
    assert (parts.password or "") == "" or parts.password not in ok.stdout + ok.stderr
