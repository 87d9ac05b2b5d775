"""Notes API and the outbox pattern."""

import json


def test_create_list_get_round_trip_with_outbox(client, pg, rconn):
    resp = client.post("/notes", json={"body": "first note"})
    assert resp.status_code == 201, resp.get_json()
    note = resp.get_json()
    assert note["body"] == "first note" and isinstance(note["id"], int) and note["created_at"]
    assert resp.headers["Location"] == f"/notes/{note['id']}"

    second = client.post("/notes", json={"body": "second"}).get_json()

    listing = client.get("/notes").get_json()
    assert listing["count"] == 2
    assert [n["body"] for n in listing["notes"]] == ["first note", "second"]
    assert client.get(f"/notes/{note['id']}").get_json() == note

    outbox = pg.execute("SELECT event_type, payload, status, attempts FROM outbox ORDER BY id").fetchall()
    assert len(outbox) == 2
    event_type, payload, status, attempts = outbox[0]
    assert (event_type, status, attempts) == ("note.created", "pending", 0)
    assert payload["id"] == note["id"] and payload["body"] == "first note"

    events = rconn.xrange("events")
    assert [e[1]["note_id"] for e in events] == [str(note["id"]), str(second["id"])]
    assert json.loads(events[0][1]["payload"])["body"] == "first note"


def test_list_limit(client):
    for i in range(3):
        client.post("/notes", json={"body": f"n{i}"})
    body = client.get("/notes?limit=2").get_json()
    assert len(body["notes"]) == 2 and body["count"] == 3
    assert client.get("/notes?limit=0").status_code == 400
    assert client.get("/notes?limit=abc").status_code == 400


def test_bad_input_is_400_and_writes_nothing(client, pg):
    cases = [
        dict(data="not json", content_type="application/json"),
        dict(data="body=x", content_type="application/x-www-form-urlencoded"),
        dict(json=["body"]),
        dict(json={}),
        dict(json={"body": ""}),
        dict(json={"body": "   "}),
        dict(json={"body": 42}),
        dict(json={"body": None}),
        dict(json={"body": "x" * 10001}),
    ]
    for kwargs in cases:
        resp = client.post("/notes", **kwargs)
        assert resp.status_code == 400, kwargs
        assert resp.get_json()["error"] == "bad_request"
    assert pg.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    assert pg.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_unknown_note_is_404_json(client):
    resp = client.get("/notes/999999")
    assert resp.status_code == 404 and resp.get_json() == {"error": "not_found"}
    assert client.get("/nope").status_code == 404
    assert client.delete("/notes/1").status_code == 405


def test_post_succeeds_when_redis_is_down(make_client, migrated, pg):
    c = make_client(redis_url="redis://127.0.0.1:1/0")
    resp = c.post("/notes", json={"body": "redis is down"})
    assert resp.status_code == 201
    assert pg.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0] == 1


def test_post_rolls_back_note_when_outbox_insert_fails(client, pg):
    # Break the outbox table: the note must not be committed without its outbox row.
    pg.execute("ALTER TABLE outbox ADD CONSTRAINT no_inserts CHECK (event_type <> 'note.created')")
    resp = client.post("/notes", json={"body": "must not persist"})
    assert resp.status_code == 503
    assert pg.execute("SELECT count(*) FROM notes").fetchone()[0] == 0


def test_notes_503_when_database_down(make_client, migrated):
    c = make_client(database_url="postgresql://u:p@127.0.0.1:1/x")
    assert c.get("/notes").status_code == 503
    assert c.post("/notes", json={"body": "x"}).get_json() == {"error": "database_unavailable"}
