"""The collection's RESP client (redis_client.RespClient) against a scripted server on loopback."""

from __future__ import annotations

import socket
import threading

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import redis_client


class ScriptedServer(object):
    """Accepts one connection, answers each request with the next of ``replies`` (raw RESP bytes; None closes
    the connection instead), then waits for the client to close its end: ``saw_eof`` says whether it did."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.saw_eof = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, dummy = self.listener.accept()
        conn.settimeout(5)
        try:
            for reply in self.replies:
                if not conn.recv(65536):
                    self.saw_eof.set()
                    return
                if reply is None:
                    return
                conn.sendall(reply)
            while conn.recv(65536):
                pass
            self.saw_eof.set()
        except OSError:
            pass
        finally:
            conn.close()
            self.listener.close()

    def client_closed(self, timeout=3):
        return self.saw_eof.wait(timeout)


def params(port, **kwargs):
    spec = redis_client.redis_argument_spec()
    values = dict((name, option["default"]) for name, option in spec.items())
    values.update(host="127.0.0.1", port=port, timeout=3.0, **kwargs)
    return values


@pytest.mark.parametrize(
    "options, replies, message",
    [
        ({"password": "wrong"}, [b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"], "WRONGPASS"),
        ({"username": "app", "password": "wrong"}, [b"-WRONGPASS invalid username-password pair\r\n"], "WRONGPASS"),
        ({"db": 99}, [b"-ERR DB index is out of range\r\n"], "DB index"),
        ({"password": "x", "db": 3}, [b"+OK\r\n", b"-ERR DB index is out of range\r\n"], "DB index"),
        ({"password": "x"}, [b"HTTP/1.1 400 Bad Request\r\n"], "unexpected reply"),
    ],
    ids=["auth", "acl-auth", "select", "select-after-auth", "not-redis"],
)
def test_a_failed_handshake_closes_the_socket(options, replies, message):
    """The connection was left open (to be closed whenever the garbage collector got to it) when AUTH or SELECT
    failed: a run against a server with the wrong password kept one idle connection per host open."""
    server = ScriptedServer(replies)
    with pytest.raises(redis_client.RedisError, match=message) as caught:
        redis_client.RespClient(params(server.port, **options))
    assert server.client_closed(), "the socket is still open after %s" % caught.value


def test_a_server_closing_during_the_handshake_closes_the_socket():
    server = ScriptedServer([None])
    with pytest.raises(redis_client.RedisError, match="connection closed"):
        redis_client.RespClient(params(server.port, password="x"))
    server.thread.join(5)


def test_close_closes_the_connection():
    """close() closed the socket object but not the file read from it, which kept the connection open."""
    server = ScriptedServer([b"+OK\r\n"])
    client = redis_client.RespClient(params(server.port, password="x"))
    client.close()
    assert server.client_closed()
    client.close()  # twice is harmless


def test_the_password_is_not_in_the_error():
    server = ScriptedServer([b"-WRONGPASS invalid username-password pair\r\n"])
    with pytest.raises(redis_client.RedisError) as caught:
        redis_client.RespClient(params(server.port, password="s3cret-pw"))
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"port": 70000}, "port: 70000 is out of range: expected 1 to 65535"),
        ({"port": 0}, "port: 0 is out of range: expected 1 to 65535"),
        ({"timeout": -1.0}, "timeout: -1.0 is not a number of seconds above 0"),
        ({"timeout": 0.0}, "timeout: 0.0 is not a number of seconds above 0"),
        ({"timeout": float("nan")}, "timeout: nan is not a number of seconds above 0"),
    ],
    ids=["port-too-big", "port-0", "negative-timeout", "zero-timeout", "nan-timeout"],
)
@pytest.mark.parametrize("client", [redis_client.RespClient, redis_client.connect], ids=["socket", "connect"])
def test_options_out_of_range_are_one_clear_error(client, options, message):
    """A port above 65535 was taken modulo 65536 (70000 reached port 4464); a negative timeout raised a ValueError
    (a traceback), a zero one made the socket non-blocking ('Operation now in progress')."""
    with pytest.raises(redis_client.RedisError) as caught:
        client(dict(params(6379), **options))
    assert str(caught.value) == message


def test_text_holding_bytes_that_are_not_utf8_is_sent_as_those_bytes():
    """Ansible hands bytes that are not UTF-8 (a payload read from a file) to a module as lone surrogates: encoding
    them raised a UnicodeEncodeError, a traceback instead of the message being sent."""
    assert redis_client.RespClient.encode("PUBLISH", "ch", "caf\udce9") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$4\r\ncaf\xe9\r\n"


def test_redis_py_gets_bytes_for_text_that_is_not_utf8():
    class Recorder(object):
        def __init__(self):
            self.calls = []

        def publish(self, *args):
            self.calls.append(args)
            return 1

        def set(self, *args, **kwargs):
            self.calls.append(args)
            return True

    client = redis_client.RedisPyClient.__new__(redis_client.RedisPyClient)
    client.client = Recorder()
    assert client.publish("ch", "caf\udce9") == 1
    assert client.set("flag\udcff", "1", nx=True)
    assert client.client.calls == [("ch", b"caf\xe9"), (b"flag\xff", "1")]
