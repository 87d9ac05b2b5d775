#!/usr/bin/env bash
# Run the sample_app tests against a throwaway PostgreSQL (pg_virtualenv) and a throwaway Redis.
#
#   PYTHON=/path/to/venv/bin/python examples/sample_app/run-tests.sh [pytest args...]
#
# PYTHON (default: python3) must have requirements-test.txt installed.
# PG_VERSION (default: 15 if installed, else pg_virtualenv's newest) picks the PostgreSQL major.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

die() { echo "run-tests.sh: $*" >&2; exit 2; }

command -v pg_virtualenv >/dev/null 2>&1 \
  || die "pg_virtualenv is not installed; install it with 'apt-get install -y postgresql-common postgresql-15' (the tests need a real PostgreSQL)."
REDIS_SERVER="${REDIS_SERVER:-$(command -v redis-server || true)}"
[ -n "$REDIS_SERVER" ] && [ -x "$REDIS_SERVER" ] \
  || die "redis-server is not installed; install it with 'apt-get install -y redis-server' (the tests need a real Redis)."
command -v systemd-socket-activate >/dev/null 2>&1 \
  || die "systemd-socket-activate is missing; install the 'systemd' package (the socket-activation test needs it)."
"$PYTHON" -c 'import flask, gunicorn, psycopg, redis, alembic, sqlalchemy, pytest' 2>/dev/null \
  || die "$PYTHON lacks the test requirements; run '$PYTHON -m pip install -r $HERE/requirements-test.txt' (or set PYTHON=<venv>/bin/python)."

pg_args=()
if [ -n "${PG_VERSION:-}" ]; then
  pg_args=(-v "$PG_VERSION")
elif [ -d /usr/lib/postgresql/15 ]; then
  pg_args=(-v 15)
fi

redis_port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
redis_dir="$(mktemp -d)"
"$REDIS_SERVER" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$redis_dir" --daemonize no >"$redis_dir/redis.log" 2>&1 &
redis_pid=$!
cleanup() {
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
  rm -rf "$redis_dir"
}
trap cleanup EXIT

export SAMPLE_APP_TEST_REDIS_URL="redis://127.0.0.1:${redis_port}/0"
"$PYTHON" - <<'PY' || { cat "$redis_dir/redis.log" >&2; die "redis-server did not start"; }
import os, time, redis
r = redis.Redis.from_url(os.environ["SAMPLE_APP_TEST_REDIS_URL"], socket_timeout=1)
for _ in range(100):
    try:
        r.ping(); break
    except redis.ConnectionError:
        time.sleep(0.1)
else:
    raise SystemExit(1)
PY

export HERE PYTHON
export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of app/ (the release source tree)
set +e
pg_virtualenv "${pg_args[@]}" sh -c '
  set -e
  SAMPLE_APP_TEST_DATABASE_URL="$("$PYTHON" -c "import os; from urllib.parse import quote as q; e=os.environ; print(\"postgresql://%s:%s@%s:%s/%s\" % (q(e[\"PGUSER\"], safe=\"\"), q(e[\"PGPASSWORD\"], safe=\"\"), e.get(\"PGHOST\") or \"localhost\", e[\"PGPORT\"], q(e[\"PGDATABASE\"], safe=\"\")))")"
  export SAMPLE_APP_TEST_DATABASE_URL
  cd "$HERE"
  exec "$PYTHON" -m pytest -p no:cacheprovider tests "$@"
' sh "$@"
rc=$?
set -e
exit "$rc"
