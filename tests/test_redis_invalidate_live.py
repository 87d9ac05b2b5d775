"""shipshape.ops.redis_invalidate against a real redis-server on loopback, run through Ansible.

Fails (does not skip) without redis-server: install it with `apt-get install -y redis-server`.
Runs the module twice over: with the controller's Python (redis-py) and, when /usr/bin/python3 lacks
redis-py, with that interpreter, which makes the module speak the protocol over a plain socket.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from module_runner import run_ansible_module
import redis  # the venv's client (a pinned dependency), only to fill and inspect the server

SYSTEM_PYTHON = "/usr/bin/python3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: apt-get install -y redis-server (this test needs a real Redis)"
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    log = (workdir / "redis.log").open("w")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir), "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("redis-server did not start:\n" + (workdir / "redis.log").read_text())
            time.sleep(0.05)
    yield port, client
    client.close()
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


def interpreters():
    """The controller's Python (redis-py), and the system Python when it lacks redis-py (socket client)."""
    params = [pytest.param(None, "redis-py", id="redis-py")]
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import redis"], capture_output=True, check=False) \
        if shutil.which(SYSTEM_PYTHON) else None
    if probe is not None and probe.returncode != 0:
        params.append(pytest.param(SYSTEM_PYTHON, "socket", id="socket"))
    return params


@pytest.fixture
def filled(redis_server):
    port, client = redis_server
    client.flushall()
    pipe = client.pipeline(transaction=False)
    for i in range(1, 1201):
        pipe.set("cache:user:%d" % i, "u%d" % i)
    pipe.set("session:x", "s")
    pipe.set("keep:me", "k")
    pipe.set("other:db", "in db 1")  # below, moved to db 1
    pipe.execute()
    client.move("other:db", 1)
    return port, client


def run(ansible_env, args: dict, check: bool = False, interpreter: str | None = None) -> tuple[int, dict]:
    return run_ansible_module(ansible_env, "shipshape.ops.redis_invalidate", args, check, interpreter)


@pytest.mark.parametrize("interpreter, client_name", interpreters())
def test_patterns_and_keys_are_deleted_in_batches(filled, ansible_env, interpreter, client_name):
    port, client = filled
    args = {"host": "127.0.0.1", "port": port, "patterns": ["cache:user:*"], "keys": ["session:x", "absent:key"], "batch_size": 100}

    rc, checked = run(ansible_env, args, check=True, interpreter=interpreter)
    assert rc == 0, checked
    assert checked["client"] == client_name
    assert checked["changed"] and checked["matched"] == 1201 and checked["total"] == 1201
    assert checked["deleted"] == {"cache:user:*": 1200, "session:x": 1, "absent:key": 0}
    assert client.dbsize() == 1202, "check mode deleted keys"

    rc, result = run(ansible_env, args, interpreter=interpreter)
    assert rc == 0, result
    assert result["changed"] and result["total"] == 1201
    assert result["deleted"] == {"cache:user:*": 1200, "session:x": 1, "absent:key": 0}
    assert client.keys("*") == [b"keep:me"]
    other = redis.Redis(host="127.0.0.1", port=port, db=1)
    assert other.get("other:db") == b"in db 1"  # other databases untouched
    other.close()

    rc, again = run(ansible_env, args, interpreter=interpreter)
    assert rc == 0 and not again["changed"] and again["total"] == 0


@pytest.mark.parametrize("interpreter, client_name", interpreters())
def test_flush_db_empties_only_the_named_db(filled, ansible_env, interpreter, client_name):
    port, client = filled
    rc, checked = run(ansible_env, {"port": port, "flush_db": True}, check=True, interpreter=interpreter)
    assert rc == 0 and checked["deleted"] == {"FLUSHDB": 1202} and checked["changed"]
    assert client.dbsize() == 1202
    rc, result = run(ansible_env, {"port": port, "flush_db": True}, interpreter=interpreter)
    assert rc == 0 and result["total"] == 1202
    assert client.dbsize() == 0
    other = redis.Redis(host="127.0.0.1", port=port, db=1)
    assert other.get("other:db") == b"in db 1"
    other.close()


def test_password_is_required_and_not_logged(redis_server, ansible_env):
    port, client = redis_server
    client.config_set("requirepass", "s3cret-pw")
    try:
        authed = redis.Redis(host="127.0.0.1", port=port, password="s3cret-pw")
        authed.set("cache:a", "1")
        rc, refused = run(ansible_env, {"port": port, "patterns": ["cache:*"]})
        assert rc != 0
        assert "auth" in refused["msg"].lower(), refused["msg"]  # NOAUTH, or redis-py 8's HELLO refusal
        rc, result = run(ansible_env, {"port": port, "patterns": ["cache:*"], "password": "s3cret-pw"})
        assert rc == 0 and result["total"] == 1
        assert "s3cret-pw" not in json.dumps(result)
    finally:
        authed.config_set("requirepass", "")
        authed.close()


def test_connection_refused_fails_clearly(ansible_env):
    rc, result = run(ansible_env, {"port": free_port(), "keys": ["a"]})
    assert rc != 0 and result["msg"].startswith("Cannot connect to Redis at localhost:")


@pytest.mark.parametrize("pattern", ["[^]*", "*[^", "*[^]"])
def test_a_class_matching_any_character_is_refused_like_a_star(filled, ansible_env, pattern):
    """Redis reads '[^]' (and an unclosed '[^') as any one character: SCAN MATCH '[^]*' returns every key."""
    port, client = filled
    assert len(list(client.scan_iter(match=pattern))) == 1202  # what the server would have deleted
    rc, result = run(ansible_env, {"host": "127.0.0.1", "port": port, "patterns": [pattern]})
    assert rc != 0 and "matches every key" in result["msg"], result
    assert client.dbsize() == 1202


@pytest.mark.parametrize("interpreter, client_name", interpreters())
def test_an_acl_user_without_password_keeps_its_own_rights(filled, ansible_env, interpreter, client_name):
    """A nopass ACL user denied FLUSHDB: the module runs as that user, not as 'default', and cannot flush."""
    port, client = filled
    client.execute_command("ACL", "SETUSER", "cacheonly", "reset", "on", "nopass", "~*", "+@all", "-flushdb")
    try:
        rc, result = run(ansible_env, {"host": "127.0.0.1", "port": port, "username": "cacheonly", "flush_db": True},
                         interpreter=interpreter)
        assert rc != 0, result
        assert result["client"] == client_name
        assert "flushdb" in result["msg"].lower(), result["msg"]
        assert client.dbsize() == 1202
    finally:
        client.execute_command("ACL", "DELUSER", "cacheonly")
