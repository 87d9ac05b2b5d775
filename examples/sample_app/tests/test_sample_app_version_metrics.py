"""/, /version (release.json) and /metrics."""

import json


def test_index_greeting(client):
    body = client.get("/").get_json()
    assert body["version"] == "1.0.0" and "v1" in body["message"]


def test_version_reads_release_json_from_cwd(client, tmp_path, monkeypatch):
    release = {"id": "20240101T000000Z-abc1234", "version": "1.0.0", "sha": "abc1234def",
               "source": "git+file:///srv/sample_app.git@v1.0.0", "built_at": "2024-01-01T00:00:00Z",
               "built_by": "shipshape"}
    (tmp_path / "release.json").write_text(json.dumps(release))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMPLE_APP_RELEASE_FILE", raising=False)
    assert client.get("/version").get_json() == {
        "release_id": "20240101T000000Z-abc1234", "version": "1.0.0",
        "sha": "abc1234def", "source": "git+file:///srv/sample_app.git@v1.0.0",
    }


def test_version_release_file_override(client, tmp_path, monkeypatch):
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps({"id": "r42", "sha": "f00", "source": "archive"}))
    (tmp_path / "release.json").write_text(json.dumps({"id": "wrong"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAMPLE_APP_RELEASE_FILE", str(other))
    body = client.get("/version").get_json()
    assert (body["release_id"], body["sha"], body["source"]) == ("r42", "f00", "archive")


def test_version_env_fallback_and_unknown(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no release.json here
    monkeypatch.delenv("SAMPLE_APP_RELEASE_FILE", raising=False)
    monkeypatch.setenv("RELEASE_ID", "from-env")
    monkeypatch.setenv("GIT_SHA", "0123abc")
    body = client.get("/version").get_json()
    assert (body["release_id"], body["sha"], body["version"]) == ("from-env", "0123abc", "1.0.0")
    monkeypatch.delenv("RELEASE_ID")
    monkeypatch.delenv("GIT_SHA")
    body = client.get("/version").get_json()
    assert body == {"release_id": "unknown", "version": "1.0.0", "sha": "unknown", "source": "unknown"}


def test_version_ignores_broken_release_json(client, tmp_path, monkeypatch):
    (tmp_path / "release.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SAMPLE_APP_RELEASE_FILE", raising=False)
    monkeypatch.delenv("RELEASE_ID", raising=False)
    resp = client.get("/version")
    assert resp.status_code == 200 and resp.get_json()["release_id"] == "unknown"


def test_metrics(client):
    client.post("/notes", json={"body": "a"})
    client.post("/notes", json={"body": "b"})
    client.get("/notes")
    text = client.get("/metrics").get_data(as_text=True)
    lines = text.splitlines()
    assert "sample_app_up 1" in lines
    assert "sample_app_notes_total 2" in lines
    assert 'sample_app_http_requests_total{method="POST",endpoint="/notes",status="201"} 2' in lines
    assert 'sample_app_http_requests_total{method="GET",endpoint="/notes",status="200"} 1' in lines
    assert 'sample_app_outbox_messages{status="pending"} 2' in lines
    assert "sample_app_database_up 1" in lines
    assert "# TYPE sample_app_http_requests_total counter" in lines


def test_metrics_without_database(make_client, migrated):
    resp = make_client(database_url="postgresql://u:p@127.0.0.1:1/x").get("/metrics")
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "sample_app_up 1" in text and "sample_app_database_up 0" in text


def test_config_repr_hides_secrets():
    from sample_app.config import Config, redact_url, sqlalchemy_url

    cfg = Config(database_url="postgresql://app:s3cr3t@db:5432/app", redis_url="redis://:r3d1s@cache:6379/0")
    assert "s3cr3t" not in repr(cfg) and "r3d1s" not in repr(cfg)
    assert "s3cr3t" not in cfg.redact("failed for postgresql://app:s3cr3t@db:5432/app and s3cr3t")
    assert redact_url("postgresql://app:s3cr3t@db/app") == "postgresql://app:***@db/app"
    assert sqlalchemy_url("postgresql://a:b@h:5432/d") == "postgresql+psycopg://a:b@h:5432/d"
    assert sqlalchemy_url("postgres://a:b@h/d") == "postgresql+psycopg://a:b@h/d"
