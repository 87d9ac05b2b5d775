"""shipshape.ops.redis_invalidate against an in-memory fake Redis, and the socket client's protocol code."""

from __future__ import annotations

import fnmatch
import io

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import redis_client
from ansible_collections.shipshape.ops.plugins.modules import redis_invalidate


class FakeRedis(object):
    """SCAN, UNLINK, EXISTS, DBSIZE, FLUSHDB, recording every command so tests can check what was (not) sent.

    SCAN's cursor is an offset into a fixed list of slots (like Redis's hash buckets), so deleting keys
    during a scan does not make it skip any, as with the real server."""

    def __init__(self, keys, fail_on=None):
        self.data = set(k.encode() for k in keys)
        self.slots = sorted(self.data)
        self.calls = []
        self.fail_on = fail_on
        self.closed = False

    def _record(self, name, *args):
        self.calls.append((name,) + args)
        if name == self.fail_on:
            raise redis_client.RedisError("NOPERM this user has no permissions to run the '%s' command" % name)

    def scan(self, cursor, match, count):
        self._record("scan", cursor, match, count)
        page = [k for k in self.slots[cursor:cursor + count] if k in self.data]
        nxt = cursor + count if cursor + count < len(self.slots) else 0
        return nxt, [k for k in page if fnmatch.fnmatchcase(k.decode(), match.decode())]

    def unlink(self, *keys):
        self._record("unlink", *keys)
        removed = [k for k in set(keys) if k in self.data]
        self.data.difference_update(removed)
        return len(removed)

    def exists(self, key):
        self._record("exists", key)
        return int(key in self.data)

    def dbsize(self):
        self._record("dbsize")
        return len(self.data)

    def flushdb(self):
        self._record("flushdb")
        self.data.clear()
        return True

    def close(self):
        self.closed = True

    def names(self, name):
        return [c for c in self.calls if c[0] == name]


KEYS = ["cache:user:%d" % i for i in range(1, 1201)] + ["cache:page:home", "session:x", "keep:me"]


@pytest.fixture
def fake_redis(redis_server):
    def install(keys=KEYS, fail_on=None):
        return redis_server(FakeRedis(keys, fail_on))

    return install


@pytest.mark.parametrize(
    "args, deleted, left",
    [
        ({"patterns": ["cache:user:*"]}, {"cache:user:*": 1200}, 3),
        ({"patterns": ["cache:*"], "keys": ["session:x"]}, {"cache:*": 1201, "session:x": 1}, 1),
        ({"keys": ["session:x", "nope"]}, {"session:x": 1, "nope": 0}, 1202),
        ({"patterns": ["cache:user:1*", "cache:user:*"]}, {"cache:user:1*": 312, "cache:user:*": 888}, 3),
        ({"patterns": ["nothing:*"]}, {"nothing:*": 0}, 1203),
    ],
    ids=["one-pattern", "pattern-and-key", "keys-only", "overlapping-patterns", "no-match"],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_deletes_by_pattern_and_key(fake_redis, run_module, args, deleted, left, check_mode):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, dict(args, batch_size=100), check_mode=check_mode)
    assert not failed
    assert result["deleted"] == deleted
    assert result["total"] == sum(deleted.values()) == result["matched"]
    assert result["changed"] is (result["total"] > 0)
    if check_mode:
        assert len(server.data) == 1203 and not server.names("unlink")
    else:
        assert len(server.data) == left
        assert b"keep:me" in server.data
    assert server.closed
    # never KEYS or FLUSHALL, and FLUSHDB only when asked
    assert not [c for c in server.calls if c[0] in ("keys", "flushall", "flushdb")]


@pytest.mark.parametrize("batch_size, unlinks", [(500, 3), (100, 12), (1, 1200), (5000, 1)])
def test_unlink_batches_never_exceed_batch_size(fake_redis, run_module, batch_size, unlinks):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:user:*"], "batch_size": batch_size})
    assert not failed and result["total"] == 1200
    sizes = [len(c) - 1 for c in server.names("unlink")]
    assert max(sizes) <= batch_size and sum(sizes) == 1200
    assert len(sizes) == unlinks
    assert all(c[3] == batch_size for c in server.names("scan"))


@pytest.mark.parametrize("check_mode", [False, True])
def test_flush_db_only_by_name(fake_redis, run_module, check_mode):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"flush_db": True, "db": 3}, check_mode=check_mode)
    assert not failed
    assert result["deleted"] == {"FLUSHDB": 1203} and result["total"] == 1203 and result["changed"]
    assert bool(server.names("flushdb")) is not check_mode
    assert len(server.data) == (1203 if check_mode else 0)
    assert server.params["params"]["db"] == 3


def test_flush_db_of_an_empty_database_is_no_change(fake_redis, run_module):
    server = fake_redis(keys=[])
    failed, result = run_module(redis_invalidate, {"flush_db": True})
    assert not failed and not result["changed"] and result["total"] == 0
    assert not server.names("flushdb")


@pytest.mark.parametrize(
    "args, msg",
    [
        ({"flush_db": True, "patterns": ["a*"]}, "flush_db empties the whole database"),
        ({"flush_db": True, "keys": ["a"]}, "flush_db empties the whole database"),
        ({"patterns": ["a*"], "batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_refused_arguments(fake_redis, run_module, args, msg):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, args)
    assert failed and msg in result["msg"]
    assert not server.calls


def test_nothing_to_do_does_not_connect(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {})
    assert not failed and not result["changed"] and result["total"] == 0
    assert "params" not in server.params


def test_redis_errors_fail_with_the_server_message(fake_redis, run_module):
    fake_redis(fail_on="unlink")
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:*"], "port": 6380})
    assert failed
    assert result["msg"].startswith("Redis at localhost:6380 db 0: NOPERM")
    assert "Traceback" in result["exception"]


class FailsOnThirdUnlink(FakeRedis):
    """A run that loses its connection (or meets a NOPERM key, a failover) after two batches were unlinked."""

    def unlink(self, *keys):
        if len(self.names("unlink")) == 2:
            raise redis_client.RedisError("connection closed by the server")
        return super(FailsOnThirdUnlink, self).unlink(*keys)


def test_a_run_failing_half_way_reports_what_it_deleted(redis_server, run_module):
    server = redis_server(FailsOnThirdUnlink(KEYS))
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:*"], "batch_size": 100})
    assert failed
    assert len(server.data) == 1003  # 200 keys are gone
    assert result["changed"] is True
    assert result["deleted"] == {"cache:*": 200} and result["total"] == 200
    assert result["msg"].endswith("(200 keys were deleted before the error)")


def test_connection_failure(monkeypatch, run_module):
    def refuse(params):
        raise redis_client.RedisError("cannot connect to localhost:6379: [Errno 111] Connection refused")

    monkeypatch.setattr(redis_client, "connect", refuse)
    failed, result = run_module(redis_invalidate, {"keys": ["a"], "password": "hunter2"})
    assert failed and "Connection refused" in result["msg"]
    assert "hunter2" not in str(result)


# --- the socket (RESP2) client -------------------------------------------------------------


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


def resp_client(monkeypatch, replies, **params):
    sock = FakeSocket(replies)
    monkeypatch.setattr(redis_client.socket, "create_connection", lambda address, timeout: sock)
    options = dict(host="localhost", port=6379, db=0, username="", password="", tls=False, ca_cert="",
                   validate_certs=True, timeout=1.0)
    options.update(params)
    return redis_client.RespClient(options), sock


@pytest.mark.parametrize(
    "args, wire",
    [
        (("PING",), b"*1\r\n$4\r\nPING\r\n"),
        (("SCAN", 0, "MATCH", b"cache:*", "COUNT", 500),
         b"*6\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$7\r\ncache:*\r\n$5\r\nCOUNT\r\n$3\r\n500\r\n"),
        (("UNLINK", "k\u00e9y"), b"*2\r\n$6\r\nUNLINK\r\n$4\r\nk\xc3\xa9y\r\n"),
    ],
)
def test_resp_encoding(args, wire):
    assert redis_client.RespClient.encode(*args) == wire


@pytest.mark.parametrize(
    "reply, value",
    [
        (b"+OK\r\n", b"OK"),
        (b":42\r\n", 42),
        (b"$3\r\nfoo\r\n", b"foo"),
        (b"$-1\r\n", None),
        (b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\na\r\n$2\r\nb\n\r\n", [b"0", [b"a", b"b\n"]]),
        (b"*0\r\n", []),
    ],
)
def test_resp_replies(monkeypatch, reply, value):
    client, dummy = resp_client(monkeypatch, reply)
    assert client.read_reply() == value


@pytest.mark.parametrize("reply", [
    b"-WRONGPASS invalid username-password pair\r\n", b"", b"?x\r\n",
    # closed in the middle of a bulk string, or a bulk string without its CRLF: never a truncated value
    b"$5\r\nfo", b"$3\r\nfoo", b"$3\r\nfooxx",
    # a length or an integer that is not one (another service on the port): one RedisError, not a ValueError
    b":4x\r\n", b"$abc\r\n", b"*?\r\n",
])
def test_resp_errors(monkeypatch, reply):
    client, dummy = resp_client(monkeypatch, reply)
    with pytest.raises(redis_client.RedisError):
        client.read_reply()


@pytest.mark.parametrize(
    "params, sent",
    [
        ({}, []),
        ({"password": "pw"}, [b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"]),
        ({"password": "pw", "username": "ops", "db": 2},
         [b"*3\r\n$4\r\nAUTH\r\n$3\r\nops\r\n$2\r\npw\r\n", b"*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"]),
        # An ACL user without a password (nopass) is still logged in as that user, not left as 'default'.
        ({"username": "ops"}, [b"*3\r\n$4\r\nAUTH\r\n$3\r\nops\r\n$0\r\n\r\n"]),
    ],
)
def test_resp_login(monkeypatch, params, sent):
    dummy, sock = resp_client(monkeypatch, b"+OK\r\n+OK\r\n", **params)
    assert sock.sent == sent


def test_resp_scan_and_unlink(monkeypatch):
    client, sock = resp_client(monkeypatch, b"*2\r\n$2\r\n17\r\n*1\r\n$3\r\nk:1\r\n:1\r\n")
    assert client.scan(0, b"k:*", 10) == (17, [b"k:1"])
    assert client.unlink(b"k:1") == 1
    client.close()
    assert sock.closed


class FakeRedisPy(object):
    class RedisError(Exception):
        pass

    class Redis(object):
        made = []

        def __init__(self, **kwargs):
            self.kwargs = kwargs
            FakeRedisPy.Redis.made.append(self)

        def ping(self):
            return True


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, {}),
        ({"password": "pw", "username": "ops"}, {"password": "pw", "username": "ops"}),
        ({"tls": True}, {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True}),
        ({"tls": True, "validate_certs": False, "ca_cert": "/etc/ca.pem"},
         {"ssl": True, "ssl_cert_reqs": "none", "ssl_check_hostname": False, "ssl_ca_certs": "/etc/ca.pem"}),
    ],
)
def test_redis_py_options(monkeypatch, params, expected):
    monkeypatch.setattr(redis_client, "redis_py", FakeRedisPy)
    options = dict(host="h", port=1, db=4, username="", password="", tls=False, ca_cert="",
                   validate_certs=True, timeout=2.0)
    options.update(params)
    client = redis_client.connect(options)
    assert isinstance(client, redis_client.RedisPyClient)
    base = dict(host="h", port=1, db=4, socket_timeout=2.0, socket_connect_timeout=2.0)
    assert client.client.kwargs == dict(base, **expected)


def test_socket_client_without_redis_py(monkeypatch):
    monkeypatch.setattr(redis_client, "redis_py", None)
    assert redis_client.client_name() == "socket"
    client, dummy = resp_client(monkeypatch, b"")
    assert isinstance(client, redis_client.RespClient)


# --- patterns that match every key, and the max_keys threshold ------------------------------


@pytest.mark.parametrize(
    "pattern, everything",
    [
        ("*", True), ("**", True), ("?*", True), ("*?", True), ("*?*", True), ("??*", True), (b"*", True),
        ("cache:*", False), ("*:user", False), ("?", False), ("??", False), ("", False), ("\\*", False),
        ("[a-z]*", False), ("*[*]", False), ("a*", False),
        # Classes Redis reads as 'any one byte' (util.c stringmatchlen): an empty negated class, an unclosed
        # negated one, a range over every (signed) byte.
        ("[^]*", True), ("*[^]", True), ("*[^", True), ("[^]?*", True), (b"[\x80-\x7f]*", True),
        # Classes that leave some byte out, or match nothing.
        ("[^a]*", False), ("[]*", False), ("*[", False), ("[\\^]*", False), ("[^\\]]*", False),
        (b"[\x00-\xff]*", False), ("*\\", False),
    ],
)
def test_pattern_matches_everything(pattern, everything):
    assert redis_client.pattern_matches_everything(pattern) is everything


@pytest.mark.parametrize("pattern", ["*", "**", "?*", "*?*", "[^]*", "*[^"])
@pytest.mark.parametrize("check_mode", [False, True])
def test_a_pattern_matching_every_key_needs_allow_match_all(fake_redis, run_module, pattern, check_mode):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:*", pattern], "db": 2}, check_mode=check_mode)
    assert failed
    assert result["msg"] == ("patterns: '%s' matches every key of db 2, as a FLUSHDB would; expected a narrower pattern "
                             "such as 'cache:*', or allow_match_all=true to delete every key" % pattern)
    assert not server.calls and len(server.data) == 1203


def test_allow_match_all_deletes_every_key(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["*"], "allow_match_all": True})
    assert not failed and result["total"] == 1203 and not server.data
    assert not server.names("flushdb")


def test_an_empty_pattern_is_refused(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": [""]})
    assert failed and result["msg"].startswith("patterns: an empty pattern ('')")
    assert not server.calls


@pytest.mark.parametrize("check_mode", [False, True])
def test_more_keys_than_max_keys_deletes_nothing(fake_redis, run_module, check_mode):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:*"], "keys": ["session:x"], "max_keys": 1000},
                                check_mode=check_mode)
    assert failed
    assert result["msg"].startswith("Refusing to delete 1202 keys, more than max_keys (1000); nothing was deleted.")
    assert result["matched"] == 1202
    assert len(server.data) == 1203 and not server.names("unlink")
    assert server.closed


@pytest.mark.parametrize("max_keys", [1202, 5000, 0])
def test_at_most_max_keys_are_deleted(fake_redis, run_module, max_keys):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:*"], "keys": ["session:x"], "max_keys": max_keys})
    assert not failed and result["total"] == 1202 and server.data == {b"keep:me"}


def test_max_keys_applies_to_a_flush(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"flush_db": True, "max_keys": 10})
    assert failed and "Refusing to delete 1203 keys, more than max_keys (10)" in result["msg"]
    assert not server.names("flushdb")


def test_negative_max_keys_is_refused(fake_redis, run_module):
    server = fake_redis()
    failed, result = run_module(redis_invalidate, {"patterns": ["a*"], "max_keys": -1})
    assert failed and result["msg"] == "max_keys must be 0 (no limit) or more, got -1"
    assert not server.calls


class ScanRepeats(FakeRedis):
    """SCAN may return a key more than once: this one returns, with each page, the keys of the page before that
    still exist (found, but not unlinked yet)."""

    def __init__(self, keys):
        super(ScanRepeats, self).__init__(keys)
        self.previous = []

    def scan(self, cursor, match, count):
        nxt, keys = super(ScanRepeats, self).scan(cursor, match, count)
        again = [k for k in self.previous if k in self.data]
        self.previous = keys
        return nxt, again + keys


@pytest.mark.parametrize("check_mode", [False, True])
def test_keys_scan_returns_twice_are_deleted_and_reported(redis_server, run_module, check_mode):
    """The real run counted each key every time SCAN returned it and, above max_keys, failed after deleting the
    keys, saying 'nothing was deleted' with changed=false."""
    server = redis_server(ScanRepeats(KEYS))
    failed, result = run_module(redis_invalidate, {"patterns": ["cache:user:1*"], "max_keys": 400, "batch_size": 100},
                                check_mode=check_mode)
    assert not failed, result
    assert result["total"] == result["matched"] == 312 and result["changed"] is True
    assert len(server.data) == (1203 if check_mode else 1203 - 312)
