"""shipshape.ops.redis_flag against an in-memory fake Redis, and the clients' GET and SET."""

from __future__ import annotations

import io

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import redis_client
from ansible_collections.shipshape.ops.plugins.modules import redis_flag

KEY = "sample_app:outbox:paused"


class FakeRedis(object):
    """GET, SET, UNLINK, EXISTS over a dict of bytes, recording every command so tests can check what was (not) sent."""

    def __init__(self, data=None, fail_on=None):
        self.data = dict((k.encode(), v.encode()) for k, v in (data or {}).items())
        self.calls = []
        self.fail_on = fail_on
        self.closed = False

    def _record(self, name, *args):
        self.calls.append((name,) + args)
        if name == self.fail_on:
            raise redis_client.RedisError("NOPERM this user has no permissions to run the '%s' command" % name)

    @staticmethod
    def _bytes(value):
        return value if isinstance(value, bytes) else str(value).encode("utf-8")

    def get(self, key):
        self._record("get", key)
        return self.data.get(self._bytes(key))

    def set(self, key, value, nx=False):
        self._record("set", key, value)
        if nx and self._bytes(key) in self.data:
            return False
        self.data[self._bytes(key)] = self._bytes(value)
        return True

    def exists(self, key):
        self._record("exists", key)
        return int(self._bytes(key) in self.data)

    def unlink(self, *keys):
        self._record("unlink", *keys)
        removed = [k for k in set(self._bytes(k) for k in keys) if k in self.data]
        for k in removed:
            del self.data[k]
        return len(removed)

    def close(self):
        self.closed = True

    def names(self, *names):
        return [c for c in self.calls if c[0] in names]


@pytest.fixture
def fake_redis(redis_server):
    def install(data=None, fail_on=None):
        return redis_server(FakeRedis(data, fail_on))

    return install


WRITES = ("set", "unlink", "del", "delete", "flushdb", "flushall")


def test_present_sets_a_missing_key(fake_redis, run_module):
    server = fake_redis({"other": "x"})
    failed, result = run_module(redis_flag, {"key": KEY, "value": "alice at 10:00: webhooks down"})
    assert not failed, result
    assert result["changed"] is True
    assert result["key"] == KEY
    assert result["before"] is None
    assert result["after"] == "alice at 10:00: webhooks down"
    assert server.data == {b"other": b"x", KEY.encode(): b"alice at 10:00: webhooks down"}
    assert server.names("set") == [("set", KEY, "alice at 10:00: webhooks down")]
    assert server.closed


def test_present_default_value_is_1(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_flag, {"key": KEY})
    assert not failed and result["changed"] and result["after"] == "1"
    assert server.data == {KEY.encode(): b"1"}


@pytest.mark.parametrize("old", ["bob at 09:00: first pauser", "", "1"])
def test_present_keeps_an_existing_value(fake_redis, run_module, old):
    server = fake_redis({KEY: old})
    failed, result = run_module(redis_flag, {"key": KEY, "value": "alice at 10:00: second"})
    assert not failed, result
    assert result["changed"] is False
    assert result["before"] == old and result["after"] == old
    assert server.data == {KEY.encode(): old.encode()}
    assert not server.names(*WRITES)
    assert server.closed


def test_a_flag_set_by_another_run_between_the_read_and_the_write_is_kept(fake_redis, run_module):
    # The other run's SET lands after this run's GET found nothing: SET NX refuses, and the first value stays.
    server = fake_redis()
    real_get = server.get

    def get_then_other_run_sets(key):
        found = real_get(key)
        if found is None:
            server.data[KEY.encode()] = b"bob at 09:59: first"
        return found
    server.get = get_then_other_run_sets
    failed, result = run_module(redis_flag, {"key": KEY, "value": "alice at 10:00: second"})
    assert not failed, result
    assert result["changed"] is False
    assert result["before"] == result["after"] == "bob at 09:59: first"
    assert server.data == {KEY.encode(): b"bob at 09:59: first"}


def test_absent_deletes_an_existing_key(fake_redis, run_module):
    server = fake_redis({KEY: "bob", "other": "x"})
    failed, result = run_module(redis_flag, {"key": KEY, "state": "absent"})
    assert not failed, result
    assert result["changed"] is True
    assert result["before"] == "bob" and result["after"] is None
    assert server.data == {b"other": b"x"}
    assert server.names("unlink") == [("unlink", KEY)]
    assert server.closed


def test_absent_with_no_key_is_no_change(fake_redis, run_module):
    server = fake_redis({"other": "x"})
    failed, result = run_module(redis_flag, {"key": KEY, "state": "absent"})
    assert not failed, result
    assert result["changed"] is False
    assert result["before"] is None and result["after"] is None
    assert server.data == {b"other": b"x"}
    assert not server.names(*WRITES)


@pytest.mark.parametrize(
    "data, args, changed, before, after",
    [
        ({}, {"value": "alice"}, True, None, "alice"),
        ({KEY: "bob"}, {"value": "alice"}, False, "bob", "bob"),
        ({KEY: "bob"}, {"state": "absent"}, True, "bob", None),
        ({}, {"state": "absent"}, False, None, None),
    ],
    ids=["set-missing", "set-existing", "clear-existing", "clear-missing"],
)
def test_check_mode_reports_and_writes_nothing(fake_redis, run_module, data, args, changed, before, after):
    server = fake_redis(dict(data))
    failed, result = run_module(redis_flag, dict(args, key=KEY), check_mode=True)
    assert not failed, result
    assert result["changed"] is changed
    assert result["before"] == before and result["after"] == after
    assert server.data == dict((k.encode(), v.encode()) for k, v in data.items())
    assert not server.names(*WRITES)
    assert server.names("get")  # it did read, to tell
    assert server.closed


def test_present_then_absent_round_trip(fake_redis, run_module):
    server = fake_redis()
    assert run_module(redis_flag, {"key": KEY, "value": "a"})[1]["changed"]
    assert not run_module(redis_flag, {"key": KEY, "value": "b"})[1]["changed"]
    assert server.data == {KEY.encode(): b"a"}
    assert run_module(redis_flag, {"key": KEY, "state": "absent"})[1]["changed"]
    assert not run_module(redis_flag, {"key": KEY, "state": "absent"})[1]["changed"]
    assert server.data == {}


@pytest.mark.parametrize(
    "key",
    ["", "a b", "a\nb", "a\tb", "a\x00b", "a\x7fb", "a\u00a0b", "k" * 600, "k" * 513],
    ids=["empty", "space", "newline", "tab", "nul", "del", "nbsp", "600-chars", "513-chars"],
)
@pytest.mark.parametrize("state", ["present", "absent"])
def test_bad_keys_are_refused_without_connecting(fake_redis, run_module, key, state):
    server = fake_redis({key: "x"} if key else {})
    failed, result = run_module(redis_flag, {"key": key, "state": state})
    assert failed
    assert result["msg"].startswith("redis_flag: key %r" % key[:80])
    assert " must be " in result["msg"]
    assert "\n" not in result["msg"] and "\t" not in result["msg"]
    assert len(result["msg"]) < 300
    assert "params" not in server.params and not server.calls


def test_a_key_of_512_characters_is_accepted(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_flag, {"key": "k" * 512})
    assert not failed and result["changed"]
    assert server.data == {b"k" * 512: b"1"}


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "\x1b[31m", "a\x00"])
def test_control_characters_in_value_are_refused(fake_redis, run_module, value):
    server = fake_redis()
    failed, result = run_module(redis_flag, {"key": KEY, "value": value})
    assert failed
    assert result["msg"].startswith("redis_flag: value %r must " % value)
    assert "\n" not in result["msg"] and "\r" not in result["msg"] and "\x1b" not in result["msg"]
    assert not server.calls


def test_connection_failure(monkeypatch, run_module):
    def refuse(params):
        raise redis_client.RedisError("cannot connect to redis.internal:6380: [Errno 111] Connection refused")

    monkeypatch.setattr(redis_client, "connect", refuse)
    failed, result = run_module(redis_flag, {"key": KEY, "host": "redis.internal", "port": 6380,
                                             "password": "hunter2"})
    assert failed
    assert result["msg"] == ("redis_flag: cannot reach Redis at redis.internal:6380: cannot connect to "
                             "redis.internal:6380: [Errno 111] Connection refused")
    assert not result["changed"]
    assert "hunter2" not in str(result)


def test_connection_failure_of_the_socket_client(monkeypatch, run_module):
    def refuse(address, timeout):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(redis_client, "redis_py", None)
    monkeypatch.setattr(redis_client.socket, "create_connection", refuse)
    failed, result = run_module(redis_flag, {"key": KEY, "port": 1, "password": "hunter2"})
    assert failed
    assert result["msg"].startswith("redis_flag: cannot reach Redis at localhost:1: ")
    assert "Connection refused" in result["msg"]
    assert "hunter2" not in str(result)


@pytest.mark.parametrize(
    "data, state, command, doing",
    [({}, "present", "set", "setting"), ({KEY: "b"}, "absent", "unlink", "deleting"), ({}, "present", "get", "reading")],
)
def test_redis_errors_fail_with_the_server_message(fake_redis, run_module, data, state, command, doing):
    server = fake_redis(data, fail_on=command)
    failed, result = run_module(redis_flag, {"key": KEY, "state": state, "db": 2})
    assert failed
    assert result["msg"].startswith("redis_flag: Redis at localhost:6379 db 2, %s key %r: NOPERM" % (doing, KEY))
    assert result["changed"] is False
    assert "Traceback" in result["exception"]
    assert server.closed


def test_connection_options_are_passed_on(fake_redis, run_module):
    server = fake_redis()
    run_module(redis_flag, {"key": KEY, "host": "r", "port": 7000, "db": 5, "tls": True})
    params = server.params["params"]
    assert (params["host"], params["port"], params["db"], params["tls"]) == ("r", 7000, 5, True)


# --- the clients' GET and SET ----------------------------------------------------------------


class FakeSocket(object):
    def __init__(self, replies):
        self.sent = []
        self.replies = replies
        self.closed = False

    def sendall(self, data):
        self.sent.append(data)

    def makefile(self, mode):
        return io.BytesIO(self.replies)

    def close(self):
        self.closed = True


def resp_client(monkeypatch, replies):
    sock = FakeSocket(replies)
    monkeypatch.setattr(redis_client.socket, "create_connection", lambda address, timeout: sock)
    options = dict(host="localhost", port=6379, db=0, username="", password="", tls=False, ca_cert="",
                   validate_certs=True, timeout=1.0)
    return redis_client.RespClient(options), sock


def test_resp_get_and_set(monkeypatch):
    client, sock = resp_client(monkeypatch, b"$-1\r\n+OK\r\n$5\r\nalice\r\n+OK\r\n$-1\r\n")
    assert client.get("k:1") is None
    assert client.set("k:1", "alice at 10:00") is True
    assert client.get("k:1") == b"alice"
    assert client.set("k:1", "bob", nx=False) is True
    # SET NX on a key that exists: a nil reply, nothing set
    assert client.set("k:1", "carol", nx=True) is False
    assert sock.sent == [
        b"*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n",
        b"*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$14\r\nalice at 10:00\r\n",
        b"*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n",
        b"*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$3\r\nbob\r\n",
        b"*4\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$5\r\ncarol\r\n$2\r\nNX\r\n",
    ]


def test_resp_set_error_reply(monkeypatch):
    client, dummy = resp_client(monkeypatch, b"-READONLY You can't write against a read only replica.\r\n")
    with pytest.raises(redis_client.RedisError, match="READONLY"):
        client.set("k", "v")


class FakeRedisPy(object):
    class RedisError(Exception):
        pass

    class Redis(object):
        def __init__(self, **kwargs):
            self.kwargs = kwargs
            self.data = {}

        def ping(self):
            return True

        def get(self, key):
            return self.data.get(key)

        def set(self, key, value, nx=False):
            if key == "readonly":
                raise FakeRedisPy.RedisError("READONLY You can't write against a read only replica.")
            if nx and key in self.data:
                return None  # redis-py's answer when NX finds the key
            self.data[key] = value.encode()
            return True


def test_redis_py_get_and_set(monkeypatch):
    monkeypatch.setattr(redis_client, "redis_py", FakeRedisPy)
    client = redis_client.connect(dict(host="h", port=1, db=0, username="", password="", tls=False, ca_cert="",
                                       validate_certs=True, timeout=2.0))
    assert isinstance(client, redis_client.RedisPyClient)
    assert client.get("k") is None
    assert client.set("k", "v") is True
    assert client.get("k") == b"v"
    assert client.set("k", "w", nx=True) is False and client.get("k") == b"v"
    with pytest.raises(redis_client.RedisError, match="READONLY"):
        client.set("readonly", "v")
