"""MAINTENANCE_MODE and READ_ONLY_MODE."""

import pytest

from sample_app.config import Config, env_flag


@pytest.mark.parametrize("value,expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True),
    ("0", False), ("false", False), ("", False), (None, False), ("no", False),
])
def test_env_flag(value, expected):
    assert env_flag(value) is expected


def test_modes_from_env():
    cfg = Config.from_env({"MAINTENANCE_MODE": "1", "READ_ONLY_MODE": "true"})
    assert cfg.maintenance_mode and cfg.read_only_mode
    cfg = Config.from_env({})
    assert not cfg.maintenance_mode and not cfg.read_only_mode


def test_maintenance_mode(make_client, migrated):
    c = make_client(maintenance_mode=True)
    for method, path in [("GET", "/"), ("GET", "/notes"), ("POST", "/notes"), ("GET", "/notes/1"), ("GET", "/nope")]:
        resp = c.open(path, method=method, json={"body": "x"} if method == "POST" else None)
        assert resp.status_code == 503, (method, path)
        assert resp.get_json() == {"error": "maintenance"}
        assert int(resp.headers["Retry-After"]) > 0
    for path in ("/healthz", "/readyz", "/version"):
        resp = c.get(path)
        assert resp.status_code == 200, (path, resp.get_json())
    metrics = c.get("/metrics")
    assert metrics.status_code == 200 and "sample_app_maintenance_mode 1" in metrics.get_data(as_text=True)


def test_maintenance_writes_nothing(make_client, migrated, pg):
    make_client(maintenance_mode=True).post("/notes", json={"body": "x"})
    assert pg.execute("SELECT count(*) FROM notes").fetchone()[0] == 0


def test_read_only_mode(make_client, migrated, pg):
    make_client().post("/notes", json={"body": "before read-only"})
    c = make_client(read_only_mode=True)
    resp = c.post("/notes", json={"body": "x"})
    assert resp.status_code == 503 and resp.get_json() == {"error": "read_only"}
    assert "Retry-After" in resp.headers
    for method in ("PUT", "PATCH", "DELETE"):
        assert c.open("/notes/1", method=method).get_json() == {"error": "read_only"}
    listing = c.get("/notes")
    assert listing.status_code == 200 and listing.get_json()["count"] == 1
    assert c.get("/notes/1").status_code == 200
    assert c.head("/notes").status_code == 200
    assert c.get("/healthz").status_code == 200
    assert pg.execute("SELECT count(*) FROM notes").fetchone()[0] == 1
    assert "sample_app_read_only_mode 1" in c.get("/metrics").get_data(as_text=True)


def test_maintenance_wins_over_read_only(make_client, migrated):
    c = make_client(maintenance_mode=True, read_only_mode=True)
    assert c.post("/notes", json={"body": "x"}).get_json() == {"error": "maintenance"}
    assert c.get("/notes").get_json() == {"error": "maintenance"}
