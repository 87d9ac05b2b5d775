"""/healthz: ok, degraded, failed."""


def fill_outbox(pg, n, status="pending"):
    pg.execute(
        "INSERT INTO outbox (event_type, payload, status) "
        "SELECT 'test', jsonb_build_object('i', i), %s FROM generate_series(1, %s) AS i",
        (status, n),
    )


def test_healthz_ok(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {
        "status": "ok", "database": "ok", "redis": "ok",
        "queue": {"pending": 0, "failed": 0, "dead_letter": 0},
        "version": "1.0.0",
    }


def test_healthz_at_threshold_is_still_ok(client, pg):
    fill_outbox(pg, 100)
    fill_outbox(pg, 50, "failed")
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["queue"]["pending"] == 100 and body["queue"]["failed"] == 50


def test_healthz_degraded_on_pending(client, pg):
    fill_outbox(pg, 101)
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "degraded"
    assert body["queue"]["pending"] == 101
    assert body["database"] == "ok" and body["redis"] == "ok"


def test_healthz_degraded_on_failed(client, pg):
    fill_outbox(pg, 51, "failed")
    body = client.get("/healthz").get_json()
    assert body["status"] == "degraded" and body["queue"]["failed"] == 51


def test_healthz_sent_rows_do_not_count(client, pg):
    fill_outbox(pg, 500, "sent")
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["queue"]["pending"] == 0


def test_healthz_degraded_on_dead_letter_stream(client, rconn):
    for i in range(11):
        rconn.xadd("events:dead", {"i": str(i)})
    body = client.get("/healthz").get_json()
    assert body["status"] == "degraded" and body["queue"]["dead_letter"] == 11


def test_healthz_thresholds_from_env(make_client, migrated, pg, redis_url):
    from sample_app.config import Config

    cfg = Config.from_env({
        "DATABASE_URL": migrated, "REDIS_URL": redis_url,
        "QUEUE_PENDING_DEGRADED": "2", "QUEUE_FAILED_DEGRADED": "7", "DLQ_DEGRADED": "3",
    })
    assert (cfg.queue_pending_degraded, cfg.queue_failed_degraded, cfg.dlq_degraded) == (2, 7, 3)
    fill_outbox(pg, 3)
    assert make_client(queue_pending_degraded=2).get("/healthz").get_json()["status"] == "degraded"
    assert make_client(queue_pending_degraded=3).get("/healthz").get_json()["status"] == "ok"
    defaults = Config.from_env({})
    assert (defaults.queue_pending_degraded, defaults.queue_failed_degraded, defaults.dlq_degraded) == (100, 50, 10)


def test_healthz_failed_on_bad_redis_url(make_client, migrated):
    resp = make_client(redis_url="redis://127.0.0.1:1/0").get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "failed" and body["redis"] == "failed" and body["database"] == "ok"


def test_healthz_failed_on_unreachable_database(make_client, migrated, caplog):
    resp = make_client(database_url="postgresql://app:hunter2-secret@127.0.0.1:1/app").get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["status"] == "failed" and body["database"] == "failed" and body["redis"] == "ok"
    assert "hunter2-secret" not in resp.get_data(as_text=True)
    assert "hunter2-secret" not in caplog.text


def test_healthz_failed_even_if_queue_also_degraded(make_client, migrated, pg):
    fill_outbox(pg, 200)
    resp = make_client(redis_url="redis://127.0.0.1:1/0").get("/healthz")
    assert resp.status_code == 503 and resp.get_json()["status"] == "failed"


def test_healthz_probe_is_bounded_by_timeout(make_client, migrated):
    # A local listening socket that never answers simulates a hung redis.
    import socket
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    try:
        start = time.monotonic()
        resp = make_client(redis_url=f"redis://127.0.0.1:{port}/0").get("/healthz")
        elapsed = time.monotonic() - start
    finally:
        srv.close()
    assert resp.status_code == 503 and resp.get_json()["redis"] == "failed"
    assert elapsed < 6, f"healthz took {elapsed:.1f}s with a hung redis"


def test_healthz_before_migrations_is_degraded_not_failed(make_client, db_url):
    resp = make_client().get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "degraded" and body["database"] == "ok"
    assert body["queue"]["pending"] is None
