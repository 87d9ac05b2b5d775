"""The outbox worker: delivers pending rows, and delivers nothing while the pause key exists in Redis."""

from sample_app.config import Config
from sample_app.outbox_worker import deliver_once


def statuses(pg):
    return [row[0] for row in pg.execute("SELECT status FROM outbox ORDER BY id").fetchall()]


def test_a_paused_outbox_delivers_nothing_then_delivers_once_resumed(client, pg, rconn, db_url, redis_url):
    for i in range(3):
        assert client.post("/notes", json={"body": f"n{i}"}).status_code == 201
    cfg = Config(database_url=db_url, redis_url=redis_url)
    rconn.set(cfg.outbox_pause_key, "alice@laptop: webhooks failing")

    assert deliver_once(cfg) == {"paused": True, "paused_by": "alice@laptop: webhooks failing", "delivered": 0}
    assert statuses(pg) == ["pending"] * 3

    rconn.delete(cfg.outbox_pause_key)
    assert deliver_once(cfg) == {"paused": False, "paused_by": None, "delivered": 3}
    assert statuses(pg) == ["sent"] * 3
    assert [r[0] for r in pg.execute("SELECT attempts FROM outbox").fetchall()] == [1, 1, 1]
    assert deliver_once(cfg)["delivered"] == 0


def test_the_pause_key_comes_from_the_environment():
    assert Config.from_env({"OUTBOX_PAUSE_KEY": "loyalty:outbox:paused"}).outbox_pause_key == "loyalty:outbox:paused"
    assert Config.from_env({}).outbox_pause_key == "sample_app:outbox:paused"
