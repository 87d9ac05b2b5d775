"""Real processes: gunicorn (BIND and systemd socket activation) and the v2/broken releases."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from sa_helpers import (APP_DIR, alembic, free_port, gunicorn_cmd, http, service_env, stop,
                      wait_http)

SSA = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


def start_gunicorn(cwd, env, processes, log_path):
    log = open(log_path, "wb")
    proc = subprocess.Popen(gunicorn_cmd(), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    processes.append(proc)
    return proc


def test_gunicorn_bind(migrated, redis_url, processes, tmp_path):
    port = free_port()
    env = service_env(migrated, redis_url, BIND=f"127.0.0.1:{port}")
    proc = start_gunicorn(APP_DIR, env, processes, tmp_path / "gunicorn.log")
    status, body, _ = wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    assert status == 200 and body["status"] == "ok", body
    status, body, _ = http("POST", f"http://127.0.0.1:{port}/notes", {"body": "via gunicorn"})
    assert status == 201
    stop(proc)
    assert proc.returncode == 0
    log = (tmp_path / "gunicorn.log").read_text()
    assert f"Listening at: http://127.0.0.1:{port}" in log
    assert "GET /healthz" in log  # access log goes to stdout/stderr (journald)
    assert migrated.split("@")[0] not in log  # never the DATABASE_URL credentials


def test_gunicorn_under_systemd_socket_activation(migrated, redis_url, processes, tmp_path):
    assert os.path.exists(SSA), "systemd-socket-activate is required for this test (package systemd)"
    port = free_port()
    decoy = free_port()  # BIND must be ignored when LISTEN_FDS is present
    env = service_env(migrated, redis_url, BIND=f"127.0.0.1:{decoy}")
    cmd = [SSA, "-l", f"127.0.0.1:{port}"]
    # systemd-socket-activate passes only LISTEN_* (plus HOME/PATH/TERM) and the -E variables,
    # like a systemd unit with EnvironmentFile=.
    for name in ("DATABASE_URL", "REDIS_URL", "BIND", "GUNICORN_WORKERS", "PYTHONUNBUFFERED",
                 "PYTHONDONTWRITEBYTECODE"):
        if name in env:
            cmd += ["-E", name]
    cmd += gunicorn_cmd()
    log_path = tmp_path / "ssa.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=APP_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    processes.append(proc)
    # the first connection makes systemd-socket-activate exec gunicorn with the socket as fd 3
    status, body, _ = wait_http(f"http://127.0.0.1:{port}/healthz", proc, timeout=30)
    assert status == 200 and body["status"] == "ok", body
    status, body, _ = http("GET", f"http://127.0.0.1:{port}/readyz")
    assert status == 200 and body["alembic_revision"] == "0001_initial"
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", decoy)) != 0, "gunicorn bound BIND despite LISTEN_FDS"
    stop(proc)
    log = log_path.read_text()
    assert "Execing" in log, log
    assert f"Listening at: http://127.0.0.1:{port} ({proc.pid})" in log, log
    assert proc.returncode == 0, log


def test_v2_upgrade_keeps_data_and_serves_tags(release_tree, db_url, redis_url, processes, tmp_path, pg):
    v1 = release_tree("v1.0.0")
    v2 = release_tree("v2.0.0")
    alembic(v1, db_url, "upgrade", "head")
    pg.execute("INSERT INTO notes (body) VALUES ('written by v1')")
    proc = alembic(v2, db_url, "upgrade", "head")
    assert "0001_initial -> 0002_note_tags" in proc.stderr
    assert "0002_note_tags (head)" in alembic(v2, db_url, "current").stdout

    port = free_port()
    (v2 / "release.json").write_text(json.dumps({"id": "r-v2", "version": "2.0.0", "sha": "deadbeef",
                                                 "source": "test"}))
    g = start_gunicorn(v2, service_env(db_url, redis_url, BIND=f"127.0.0.1:{port}"), processes,
                       tmp_path / "v2.log")
    base = f"http://127.0.0.1:{port}"
    status, body, _ = wait_http(base + "/readyz", g)
    assert (status, body["alembic_revision"]) == (200, "0002_note_tags"), body
    assert http("GET", base + "/")[1]["message"] == "Hello from sample_app v2 - now with tags"
    assert http("GET", base + "/version")[1] == {"release_id": "r-v2", "version": "2.0.0",
                                                 "sha": "deadbeef", "source": "test"}
    status, note, _ = http("POST", base + "/notes", {"body": "tagged", "tag": "ops"})
    assert status == 201 and note["tag"] == "ops"
    assert http("POST", base + "/notes", {"body": "x", "tag": 5})[0] == 400
    listing = http("GET", base + "/notes")[1]
    assert [(n["body"], n["tag"]) for n in listing["notes"]] == [("written by v1", None), ("tagged", "ops")]
    assert http("GET", base + "/healthz")[1]["version"] == "2.0.0"


def test_v1_code_is_ready_on_a_v2_schema_it_does_not_know(release_tree, db_url, make_client):
    # A rollback: v2 migrated (expand-first), v1 runs again on the newer schema and says so.
    alembic(release_tree("v2.0.0"), db_url, "upgrade", "head")
    resp = make_client().get("/readyz")  # in-process app is v1 (head 0001_initial)
    assert resp.status_code == 200
    assert resp.get_json()["alembic_revision"] == "0002_note_tags" and resp.get_json()["schema"] == "ahead"
    assert make_client().post("/notes", json={"body": "v1 writes on the v2 schema"}).status_code == 201


def test_broken_release_healthz_always_503(release_tree, db_url, redis_url, processes, tmp_path):
    tree = release_tree("broken")
    alembic(tree, db_url, "upgrade", "head")
    port = free_port()
    g = start_gunicorn(tree, service_env(db_url, redis_url, BIND=f"127.0.0.1:{port}"), processes,
                       tmp_path / "broken.log")
    base = f"http://127.0.0.1:{port}"
    status, body, _ = wait_http(base + "/healthz", g)
    assert status == 503 and body["status"] == "failed" and body["version"] == "2.0.1-broken", body
    assert http("GET", base + "/healthz")[0] == 503
    assert http("GET", base + "/readyz")[0] == 200  # it starts and its schema is fine
    assert http("GET", base + "/version")[1]["version"] == "2.0.1-broken"


def test_broken_migration_is_rolled_back(release_tree, db_url, pg):
    alembic(release_tree("v2.0.0"), db_url, "upgrade", "head")
    tree = release_tree("broken-migration")
    proc = alembic(tree, db_url, "upgrade", "head", check=False)
    assert proc.returncode != 0
    assert "archived_at" in proc.stderr  # the SQL error
    assert pg.execute("SELECT version_num FROM alembic_version").fetchall() == [("0002_note_tags",)]
    assert pg.execute("SELECT to_regclass('public.note_archive')").fetchone()[0] is None
    cols = {r[0] for r in pg.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'").fetchall()}
    assert cols == {"id", "body", "tag", "created_at"}


def test_failed_run_from_empty_db_leaves_nothing(release_tree, db_url, pg):
    proc = alembic(release_tree("broken-migration"), db_url, "upgrade", "head", check=False)
    assert proc.returncode != 0
    tables = pg.execute("SELECT table_name FROM information_schema.tables WHERE table_schema='public'").fetchall()
    assert tables == []  # one transaction for the whole run


@pytest.mark.parametrize("name,head", [("v1.0.0", "0001_initial"), ("v2.0.0", "0002_note_tags"),
                                       ("broken", "0002_note_tags"), ("broken-migration", "0003_broken")])
def test_shipped_heads(release_tree, name, head):
    out = subprocess.run([sys.executable, "-m", "alembic", "-c", "alembic.ini", "heads"],
                         cwd=release_tree(name), capture_output=True, text=True, timeout=60,
                         env={**os.environ, "DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [head, "(head)"]
