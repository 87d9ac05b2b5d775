"""Helpers shared by the sample_app tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SAMPLE_DIR = Path(__file__).resolve().parents[1]
APP_DIR = SAMPLE_DIR / "app"
for _p in (str(APP_DIR), str(SAMPLE_DIR)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

DB_ENV = "SAMPLE_APP_TEST_DATABASE_URL"
REDIS_ENV = "SAMPLE_APP_TEST_REDIS_URL"

def with_dbname(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def alembic(app_dir: Path, db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run alembic the way deploy tooling does: from the release dir, env file loaded."""
    env = {k: v for k, v in os.environ.items() if k not in (DB_ENV, REDIS_ENV)}
    env["DATABASE_URL"] = db_url
    proc = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", *args],
        cwd=app_dir, env=env, capture_output=True, text=True, timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"alembic {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body=None, timeout: float = 10.0):
    data = None
    headers = {}
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, hdrs = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        status, raw, hdrs = exc.code, exc.read(), exc.headers
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, payload, hdrs


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before answering {url}")
        try:
            return http("GET", url, timeout=5)
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout}s: {last}")


def gunicorn_cmd() -> list:
    script = Path(sys.executable).parent / "gunicorn"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]
    return base + ["-c", "gunicorn.conf.py", "sample_app.wsgi:app"]


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def service_env(db_url: str, redis_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LISTEN_", "SAMPLE_APP_TEST_")) and k not in ("MAINTENANCE_MODE", "READ_ONLY_MODE")}
    env.update({"DATABASE_URL": db_url, "REDIS_URL": redis_url, "GUNICORN_WORKERS": "1", "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env
