"""shipshape.ops.redis_stream_replay against a real redis-server on loopback (the server of
test_redis_invalidate_live), run through Ansible: entries too big for one Lua call are replayed whole."""

from __future__ import annotations

import pytest
from test_redis_invalidate_live import redis_server  # noqa: F401  (a fixture)

from module_runner import run_ansible_module


@pytest.fixture
def streams(redis_server):  # noqa: F811
    port, client = redis_server
    client.flushall()
    yield port, client
    client.flushall()


def wide_entry(fields):
    return dict(("field:%05d" % i, "value %d" % i) for i in range(fields))


def test_entries_with_thousands_of_fields_are_replayed_whole(ansible_env, streams):
    """Lua's unpack() stops at about 8,000 values: an entry of 4,000 fields or more failed the replay, on every run."""
    port, client = streams
    small = client.xadd("events:dead", {"type": "order.created", "n": "0"})
    wide = client.xadd("events:dead", wide_entry(6000))
    last = client.xadd("events:dead", {"type": "order.created", "n": "2"})
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_stream_replay", {"port": port, "batch_size": 2})
    assert rc == 0, result.get("msg")
    assert (result["replayed"], result["already_replayed"], result["deleted"]) == (3, 0, 3)
    assert client.xlen("events:dead") == 0
    added = client.xrange("events")
    assert [fields for dummy, fields in added] == [
        {b"type": b"order.created", b"n": b"0"},
        dict((k.encode(), v.encode()) for k, v in wide_entry(6000).items()),
        {b"type": b"order.created", b"n": b"2"},
    ]
    record = client.hgetall("events:dead:replayed")
    assert record == dict((old, new) for old, (new, dummy) in zip([small, wide, last], added))
    assert result["ids"][wide.decode()] == added[1][0].decode()
    # field order is kept too
    assert list(added[1][1]) == [k.encode() for k in wide_entry(6000)]

    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_stream_replay", {"port": port})
    assert rc == 0 and result["changed"] is False and client.xlen("events") == 3


def test_a_wide_entry_already_recorded_is_only_deleted(ansible_env, streams):
    port, client = streams
    wide = client.xadd("events:dead", wide_entry(5000))
    client.hset("events:dead:replayed", wide, "1-1")
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_stream_replay", {"port": port})
    assert rc == 0 and (result["replayed"], result["already_replayed"], result["deleted"]) == (0, 1, 1), result
    assert client.xlen("events") == 0 and client.xlen("events:dead") == 0


def test_check_mode_counts_a_wide_entry_and_writes_nothing(ansible_env, streams):
    port, client = streams
    client.xadd("events:dead", wide_entry(5000))
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_stream_replay", {"port": port}, check=True)
    assert rc == 0 and result["replayed"] == 1 and result["deleted"] == 0, result
    assert client.xlen("events:dead") == 1 and not client.exists("events", "events:dead:replayed")
