# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small Redis client for the shipshape.ops modules: redis-py when importable, else RESP2 over a
plain (optionally TLS) socket, so a host without python3-redis can still run the modules.

Both expose the few commands the modules use: ``scan``, ``unlink``, ``exists``, ``get``, ``set``,
``dbsize``, ``flushdb``, ``publish`` and ``close``. Keys (and ``get``'s values) are returned as ``bytes`` by both.
"""

from __future__ import annotations

import socket
import ssl
import traceback

REDIS_PY_IMPORT_ERROR = None
try:
    import redis as redis_py
except ImportError:
    redis_py = None
    REDIS_PY_IMPORT_ERROR = traceback.format_exc()


class RedisError(Exception):
    """A connection failure or an error reply, whichever client raised it."""


def to_wire(value):
    """A command argument as bytes. Text holding bytes that are not UTF-8 (Ansible hands them over as lone
    surrogates) goes as those bytes, rather than failing with a UnicodeEncodeError."""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogateescape")


def _signed(byte):
    """A byte as Redis's stringmatchlen() compares it in a class range (a C char, signed on x86 and most builds)."""
    return byte - 256 if byte > 127 else byte


def _class_matches_every_byte(pattern, i):
    """Whether the C([...]) class starting after the C([) at i matches every byte, read as Redis's stringmatchlen()
    reads it; and the index just past the class. A C([^]) (an empty negated class), an unclosed C([^) or a range
    covering every byte match any one character, as C(?) does."""
    size = len(pattern)
    negate = i < size and pattern[i:i + 1] == b"^"
    if negate:
        i += 1
    singles = set()
    ranges = []
    while True:
        if i < size and pattern[i:i + 1] == b"\\" and size - i >= 2:
            singles.add(pattern[i + 1])
            i += 2
        elif i < size and pattern[i:i + 1] == b"]":
            i += 1
            break
        elif i >= size:  # unclosed: the class ends with the pattern
            break
        elif size - i >= 3 and pattern[i + 1:i + 2] == b"-":
            start, end = _signed(pattern[i]), _signed(pattern[i + 2])
            ranges.append((min(start, end), max(start, end)))
            i += 3
        else:
            singles.add(pattern[i])
            i += 1
    for byte in range(256):
        hit = byte in singles or any(low <= _signed(byte) <= high for low, high in ranges)
        if hit == negate:  # this byte is not matched
            return False, i
    return True, i


def pattern_matches_everything(pattern):
    """Whether a glob-style pattern (as C(SCAN MATCH) and C(KEYS) read it) matches every key, or every key but
    the shortest: a pattern of wildcards only (C(*), C(**), C(?*), C(*?*)...) with at least one C(*).

    A backslash escapes the next character, which is then literal. A C([...]) class that matches any byte (C([^]),
    an unclosed C([^), C([^]*), a range over every byte) is a C(?) under another spelling; any other class is a
    constraint. Deleting by such a pattern is a FLUSHDB under another name, so the modules want the same explicit
    confirmation for it."""
    if not isinstance(pattern, bytes):
        pattern = pattern.encode("utf-8", "surrogateescape")
    star = False
    i = 0
    while i < len(pattern):
        char = pattern[i:i + 1]
        if char == b"*":
            star = True
            i += 1
        elif char == b"?":
            i += 1
        elif char == b"[":
            everything, i = _class_matches_every_byte(pattern, i + 1)
            if not everything:
                return False
        else:  # a literal, escaped or not, constrains the key
            return False
    return star


def redis_argument_spec():
    return dict(
        host=dict(type="str", default="localhost"),
        port=dict(type="int", default=6379),
        db=dict(type="int", default=0),
        username=dict(type="str", default=""),
        password=dict(type="str", default="", no_log=True),
        tls=dict(type="bool", default=False),
        ca_cert=dict(type="path", default=""),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=10.0),
    )


def check_params(params):
    """Raise RedisError for a port or timeout no socket can use: a port above 65535 is taken modulo 65536 (70000
    reaches 4464), a timeout of 0 makes the socket non-blocking and a negative one raises a ValueError."""
    if not 1 <= params["port"] <= 65535:
        raise RedisError("port: %s is out of range: expected 1 to 65535" % params["port"])
    if not params["timeout"] > 0 or params["timeout"] == float("inf"):
        raise RedisError("timeout: %s is not a number of seconds above 0" % params["timeout"])


def _tls_context(params):
    context = ssl.create_default_context(cafile=params["ca_cert"] or None)
    if not params["validate_certs"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class RespClient(object):
    """Just enough RESP2 for the commands above (requests as arrays of bulk strings)."""

    def __init__(self, params):
        self.sock = None
        self.reader = None
        check_params(params)
        try:
            self.sock = socket.create_connection((params["host"], params["port"]), timeout=params["timeout"])
            if params["tls"]:
                self.sock = _tls_context(params).wrap_socket(self.sock, server_hostname=params["host"])
        except (OSError, ssl.SSLError) as exc:
            self.close()  # a refused TLS handshake leaves the plain socket open
            raise RedisError("cannot connect to %s:%s: %s" % (params["host"], params["port"], exc))
        self.reader = self.sock.makefile("rb")
        # Nobody holds the client when the handshake fails: close the connection here, not when the garbage
        # collector gets to it (one idle connection per host of a run with the wrong password).
        try:
            # An ACL user is authenticated even without a password (a nopass user): skipping AUTH would run every
            # command as the default user, with its rights rather than the ones asked for (redis-py sends AUTH too).
            if params["username"]:
                self.command("AUTH", params["username"], params["password"])
            elif params["password"]:
                self.command("AUTH", params["password"])
            if params["db"]:
                self.command("SELECT", params["db"])
        except BaseException:
            self.close()
            raise

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for arg in map(to_wire, args):
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        return b"".join(out)

    def read_reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return self._integer(line)
        if kind == b"$":
            size = self._integer(line)
            if size < 0:
                return None
            data = self.reader.read(size + 2)
            # A server (or proxy) that closes mid-value must not hand a truncated value on as the whole one.
            if len(data) != size + 2 or not data.endswith(b"\r\n"):
                raise RedisError("connection closed by the server in the middle of a reply")
            return data[:-2]
        if kind == b"*":
            size = self._integer(line)
            if size < 0:
                return None
            return [self.read_reply() for dummy in range(size)]
        raise RedisError("unexpected reply from the server: %r" % line[:80])

    @staticmethod
    def _integer(line):
        try:
            return int(line[1:-2])
        except ValueError:
            raise RedisError("unexpected reply from the server (not Redis?): %r" % line[:80])

    def command(self, *args):
        try:
            self.sock.sendall(self.encode(*args))
            return self.read_reply()
        except (OSError, ssl.SSLError) as exc:
            raise RedisError(str(exc))

    def scan(self, cursor, match, count):
        next_cursor, keys = self.command("SCAN", cursor, "MATCH", match, "COUNT", count)
        return int(next_cursor), keys

    def unlink(self, *keys):
        return self.command("UNLINK", *keys)

    def exists(self, key):
        return self.command("EXISTS", key)

    def get(self, key):
        return self.command("GET", key)

    def set(self, key, value, nx=False):
        """SET (with NX: only when the key does not exist); True when the key was set."""
        return self.command("SET", key, value, *(["NX"] if nx else [])) is not None

    def dbsize(self):
        return self.command("DBSIZE")

    def flushdb(self):
        return self.command("FLUSHDB")

    def publish(self, channel, message):
        return self.command("PUBLISH", channel, message)

    def close(self):
        # The file from makefile() holds the connection open until it is closed too.
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class RedisPyClient(object):
    """The same interface over redis-py."""

    def __init__(self, params):
        kwargs = dict(
            host=params["host"],
            port=params["port"],
            db=params["db"],
            socket_timeout=params["timeout"],
            socket_connect_timeout=params["timeout"],
        )
        if params["password"]:
            kwargs["password"] = params["password"]
        if params["username"]:
            kwargs["username"] = params["username"]
        if params["tls"]:
            kwargs["ssl"] = True
            kwargs["ssl_cert_reqs"] = "required" if params["validate_certs"] else "none"
            kwargs["ssl_check_hostname"] = bool(params["validate_certs"])
            if params["ca_cert"]:
                kwargs["ssl_ca_certs"] = params["ca_cert"]
        self.client = redis_py.Redis(**kwargs)
        try:
            self.call("ping")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _argument(arg):
        """Text as it is (redis-py encodes it as UTF-8), unless it holds bytes that are not UTF-8 (see to_wire)."""
        if isinstance(arg, str):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                return to_wire(arg)
        return arg

    def call(self, name, *args, **kwargs):
        args = [self._argument(arg) for arg in args]
        kwargs = dict((key, self._argument(arg)) for key, arg in kwargs.items())
        try:
            return getattr(self.client, name)(*args, **kwargs)
        except redis_py.RedisError as exc:
            raise RedisError(str(exc))

    def scan(self, cursor, match, count):
        next_cursor, keys = self.call("scan", cursor=cursor, match=match, count=count)
        return int(next_cursor), keys

    def unlink(self, *keys):
        return self.call("unlink", *keys)

    def exists(self, key):
        return self.call("exists", key)

    def get(self, key):
        return self.call("get", key)

    def set(self, key, value, nx=False):
        """SET (with NX: only when the key does not exist); True when the key was set."""
        return bool(self.call("set", key, value, nx=nx))

    def dbsize(self):
        return self.call("dbsize")

    def flushdb(self):
        return self.call("flushdb")

    def publish(self, channel, message):
        return self.call("publish", channel, message)

    def close(self):
        self.client.close()


def client_name():
    return "redis-py" if redis_py is not None else "socket"


def connect(params):
    """A connected client for the module's options (raises RedisError)."""
    check_params(params)
    if redis_py is not None:
        return RedisPyClient(params)
    return RespClient(params)
