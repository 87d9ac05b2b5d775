"""The WSGI application (Flask)."""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from typing import Optional

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from . import GREETING, __version__, db, migration_state, notes, probes
from .config import Config
from .release import read_release

log = logging.getLogger("sample_app")

# Paths that keep answering in maintenance mode (probes and identity).
MAINTENANCE_EXEMPT = {"/healthz", "/readyz", "/metrics", "/version"}
READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def _setup_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:  # gunicorn/pytest may already have configured logging
        handler = logging.StreamHandler(sys.stderr)  # journald picks up stderr
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)


class Metrics:
    """Per-process counters (each gunicorn worker counts its own requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter = Counter()

    def count(self, method: str, endpoint: str, status: int) -> None:
        with self._lock:
            self.requests[(method, endpoint, status)] += 1

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.requests)


def create_app(config: Optional[Config] = None) -> Flask:
    _setup_logging()
    cfg = config if config is not None else Config.from_env()
    app = Flask("sample_app")
    app.config["SAMPLE_APP"] = cfg
    app.json.sort_keys = False
    metrics = Metrics()
    log.info(
        "sample_app %s starting (maintenance=%s read_only=%s)",
        __version__, cfg.maintenance_mode, cfg.read_only_mode,
    )

    def error(status: int, code: str, **extra) -> Response:
        resp = jsonify({"error": code, **extra})
        resp.status_code = status
        if status == 503:
            resp.headers["Retry-After"] = str(cfg.retry_after)
        return resp

    def conn(timeout: float = cfg.probe_timeout, autocommit: bool = False):
        c = db.connect(cfg.database_url, timeout=timeout)
        c.autocommit = autocommit
        return c

    def safe(exc: BaseException) -> str:
        return cfg.redact(f"{type(exc).__name__}: {exc}".strip())

    # ---- modes ---------------------------------------------------------------------------
    @app.before_request
    def modes():
        if cfg.maintenance_mode and request.path not in MAINTENANCE_EXEMPT:
            return error(503, "maintenance")
        if cfg.read_only_mode and request.method not in READ_METHODS:
            return error(503, "read_only")
        return None

    @app.after_request
    def count_request(resp: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule is not None else "other"
        metrics.count(request.method, endpoint, resp.status_code)
        return resp

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        log.error("unhandled error on %s %s: %s", request.method, request.path, safe(exc))
        return error(500, "internal_error")

    # ---- identity ------------------------------------------------------------------------
    @app.get("/")
    def index():
        return jsonify({"app": "sample_app", "message": GREETING, "version": __version__})

    @app.get("/version")
    def version():
        return jsonify(read_release())

    # ---- probes --------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        body = {
            "status": "ok",
            "database": "ok",
            "redis": "ok",
            "queue": {"pending": None, "failed": None, "dead_letter": None},
            "version": __version__,
        }
        reasons = []
        try:
            with conn(autocommit=True) as c:
                probes.check_database(c)
                counts = probes.outbox_counts(c)
            if counts is None:
                reasons.append("outbox table missing (migrations not applied?)")
            else:
                body["queue"].update(counts)
        except Exception as exc:
            body["database"] = "failed"
            log.warning("healthz: database probe failed: %s", safe(exc))
        try:
            r = db.redis_client(cfg.redis_url, timeout=cfg.probe_timeout)
            try:
                r.ping()
                body["queue"]["dead_letter"] = probes.dead_letter_length(r)
            finally:
                r.close()
        except Exception as exc:
            body["redis"] = "failed"
            log.warning("healthz: redis probe failed: %s", safe(exc))

        q = body["queue"]
        if body["database"] == "failed" or body["redis"] == "failed":
            body["status"] = "failed"
        else:
            if q["pending"] is not None and q["pending"] > cfg.queue_pending_degraded:
                reasons.append(f"outbox pending {q['pending']} > {cfg.queue_pending_degraded}")
            if q["failed"] is not None and q["failed"] > cfg.queue_failed_degraded:
                reasons.append(f"outbox failed {q['failed']} > {cfg.queue_failed_degraded}")
            if q["dead_letter"] is not None and q["dead_letter"] > cfg.dlq_degraded:
                reasons.append(f"dead letter {q['dead_letter']} > {cfg.dlq_degraded}")
            if reasons:
                body["status"] = "degraded"
                body["reasons"] = reasons
        resp = jsonify(body)
        resp.status_code = 503 if body["status"] == "failed" else 200
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/readyz")
    def readyz():
        heads = migration_state.shipped_heads()
        expected = heads[0] if len(heads) == 1 else None
        try:
            with conn(autocommit=True) as c:
                current = migration_state.current_revisions(c)
        except Exception as exc:
            log.warning("readyz: database probe failed: %s", safe(exc))
            return _not_ready("database unavailable", None, expected)
        cur = current[0] if current and len(current) == 1 else None
        if expected is None:
            return _not_ready(f"release ships {len(heads)} migration heads", cur, None)
        if current is None or not current:
            return _not_ready("database has no alembic revision (migrations not applied)", None, expected)
        if len(current) > 1:
            return _not_ready("database has several alembic revisions", ",".join(current), expected)
        if cur != expected and cur in migration_state.shipped_revisions():
            return _not_ready("migrations pending: the database is behind this release's head", cur, expected)
        if cur != expected:
            # A revision this release does not ship: a newer release migrated the database. Migrations are
            # expand-first, so an older release (a rollback) still runs on the newer schema.
            return jsonify({"status": "ok", "alembic_revision": cur, "schema": "ahead", "expected_revision": expected})
        return jsonify({"status": "ok", "alembic_revision": cur, "schema": "current"})

    def _not_ready(reason: str, current: Optional[str], expected: Optional[str]) -> Response:
        resp = jsonify({
            "status": "not_ready",
            "reason": reason,
            "alembic_revision": current,
            "expected_revision": expected,
        })
        resp.status_code = 503
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/metrics")
    def metrics_view():
        rel = read_release()
        lines = [
            "# HELP sample_app_up 1 while the process serves requests.",
            "# TYPE sample_app_up gauge",
            "sample_app_up 1",
            "# HELP sample_app_info Release identity.",
            "# TYPE sample_app_info gauge",
            'sample_app_info{version="%s",release_id="%s",sha="%s"} 1'
            % (_label(rel["version"]), _label(rel["release_id"]), _label(rel["sha"])),
            "# HELP sample_app_maintenance_mode 1 when MAINTENANCE_MODE is on.",
            "# TYPE sample_app_maintenance_mode gauge",
            f"sample_app_maintenance_mode {int(cfg.maintenance_mode)}",
            "# HELP sample_app_read_only_mode 1 when READ_ONLY_MODE is on.",
            "# TYPE sample_app_read_only_mode gauge",
            f"sample_app_read_only_mode {int(cfg.read_only_mode)}",
            "# HELP sample_app_http_requests_total HTTP requests answered by this worker process.",
            "# TYPE sample_app_http_requests_total counter",
        ]
        for (method, endpoint, status), n in sorted(metrics.snapshot().items()):
            lines.append(
                'sample_app_http_requests_total{method="%s",endpoint="%s",status="%d"} %d'
                % (_label(method), _label(endpoint), status, n)
            )
        db_up = 0
        try:
            with conn(autocommit=True) as c:
                total = c.execute("SELECT count(*) FROM notes").fetchone()[0]
                counts = probes.outbox_counts(c) or {}
            db_up = 1
            lines += [
                "# HELP sample_app_notes_total Rows in the notes table.",
                "# TYPE sample_app_notes_total gauge",
                f"sample_app_notes_total {int(total)}",
                "# HELP sample_app_outbox_messages Outbox rows by status.",
                "# TYPE sample_app_outbox_messages gauge",
            ]
            for status in ("pending", "failed"):
                lines.append(f'sample_app_outbox_messages{{status="{status}"}} {counts.get(status, 0)}')
        except Exception as exc:
            log.warning("metrics: database query failed: %s", safe(exc))
        lines += [
            "# HELP sample_app_database_up 1 when the metrics query reached the database.",
            "# TYPE sample_app_database_up gauge",
            f"sample_app_database_up {db_up}",
        ]
        return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")

    # ---- notes API -----------------------------------------------------------------------
    @app.post("/notes")
    def create_note():
        payload = request.get_json(silent=True)
        try:
            note = notes.validate(payload)
        except notes.ValidationError as exc:
            return error(400, "bad_request", detail=str(exc))
        try:
            with conn(timeout=cfg.probe_timeout) as c:
                row = notes.create(c, note)
        except Exception as exc:
            log.error("POST /notes: database error: %s", safe(exc))
            return error(503, "database_unavailable")
        try:  # best effort: the outbox row is the source of truth
            r = db.redis_client(cfg.redis_url, timeout=cfg.probe_timeout)
            try:
                r.xadd("events", notes.event_fields(row), maxlen=10000, approximate=True)
            finally:
                r.close()
        except Exception as exc:
            log.warning("POST /notes: could not publish event: %s", safe(exc))
        resp = jsonify(row)
        resp.status_code = 201
        resp.headers["Location"] = f"/notes/{row['id']}"
        return resp

    @app.get("/notes")
    def list_notes():
        raw = request.args.get("limit", "100")
        try:
            limit = int(raw)
            if not 1 <= limit <= 1000:
                raise ValueError
        except ValueError:
            return error(400, "bad_request", detail="'limit' must be an integer between 1 and 1000")
        try:
            with conn() as c:
                rows, total = notes.list_(c, limit)
        except Exception as exc:
            log.error("GET /notes: database error: %s", safe(exc))
            return error(503, "database_unavailable")
        return jsonify({"notes": rows, "count": total})

    @app.get("/notes/<int:note_id>")
    def get_note(note_id: int):
        try:
            with conn() as c:
                row = notes.get(c, note_id)
        except Exception as exc:
            log.error("GET /notes/%s: database error: %s", note_id, safe(exc))
            return error(503, "database_unavailable")
        if row is None:
            return error(404, "not_found")
        return jsonify(row)

    return app


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
