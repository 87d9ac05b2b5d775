"""shipshape.ops.redis_publish against a real redis-server on loopback (the server of test_redis_invalidate_live),
run through Ansible with both clients: a subscriber receives the message, and too few receivers fail the task."""

from __future__ import annotations

import pytest
from test_redis_invalidate_live import interpreters, redis_server  # noqa: F401  (redis_server: a fixture)

from module_runner import run_ansible_module


@pytest.mark.parametrize(("interpreter", "client_name"), interpreters())
def test_a_subscriber_receives_the_message(ansible_env, redis_server, interpreter, client_name):  # noqa: F811
    port, client = redis_server
    pubsub = client.pubsub()
    pubsub.subscribe("authz.user.updated")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    try:
        rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_publish",
                                        {"port": port, "channel": "authz.user.updated", "payload": "42",
                                         "min_receivers": 1}, interpreter=interpreter)
        assert rc == 0 and result["changed"] and result["receivers"] == 1 and result["client"] == client_name, result
        message = pubsub.get_message(timeout=5)
        assert (message["channel"], message["data"]) == (b"authz.user.updated", b"42")
    finally:
        pubsub.close()


def test_nobody_listening_fails_when_a_receiver_is_required(ansible_env, redis_server):  # noqa: F811
    port, client = redis_server
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_publish",
                                    {"port": port, "channel": "nobody.listens", "payload": "x", "min_receivers": 1})
    assert rc != 0 and "0 subscribers received it, fewer than min_receivers (1)" in result["msg"]


def test_check_mode_sends_nothing(ansible_env, redis_server):  # noqa: F811
    port, client = redis_server
    pubsub = client.pubsub()
    pubsub.subscribe("authz.user.updated")
    pubsub.get_message(timeout=2)
    try:
        rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_publish",
                                        {"port": port, "channel": "authz.user.updated", "payload": "42"}, check=True)
        assert rc == 0 and result["changed"] and result["receivers"] == 0
        assert pubsub.get_message(timeout=1) is None
    finally:
        pubsub.close()


def test_a_channel_with_a_newline_is_refused(ansible_env, redis_server):  # noqa: F811
    port, client = redis_server
    rc, result = run_ansible_module(ansible_env, "shipshape.ops.redis_publish",
                                    {"port": port, "channel": "a\r\nFLUSHALL", "payload": "x"})
    assert rc != 0 and "holds a control character" in result["msg"]
