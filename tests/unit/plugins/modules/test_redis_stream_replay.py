"""shipshape.ops.redis_stream_replay against an in-memory fake Redis speaking the module's commands."""

from __future__ import annotations

import json

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import redis_client
from ansible_collections.shipshape.ops.plugins.modules import redis_stream_replay


def b(value):
    return value if isinstance(value, bytes) else str(value).encode()


class FakeStreams(object):
    """Streams (ordered lists of (id, fields)), hashes, and the commands the module sends, recorded.

    ``crash_after_eval`` raises after that many EVALs have run (the add and its record are written), as if
    the run were killed between XADD and XDEL."""

    def __init__(self, dead=0, crash_after_eval=None, groups=True):
        self.streams = {b"events": [], b"events:dead": []}
        self.hashes = {}
        self.calls = []
        self.seq = 1000
        self.crash_after_eval = crash_after_eval
        self.evals = 0
        self.closed = False
        for i in range(dead):
            self.streams[b"events:dead"].append((b"%d-0" % (i + 1), [b"type", b"order.created", b"n", b(i)]))
        self.groups = [[b"name", b"workers", b"consumers", 2, b"pending", 0, b"last-delivered-id", b"0-0",
                        b"entries-read", 0, b"lag", 0]] if groups else []

    @staticmethod
    def _after(start):
        if start == b"-":
            return lambda i: True
        bound = tuple(int(x) for x in start.lstrip(b"(").split(b"-"))
        exclusive = start.startswith(b"(")
        return lambda i: (tuple(int(x) for x in i.split(b"-")) > bound) if exclusive else (
            tuple(int(x) for x in i.split(b"-")) >= bound)

    def command(self, name, *args):
        args = [b(a) for a in args]
        self.calls.append((name,) + tuple(args))
        if name == "EXISTS":
            return int(bool(self.streams.get(args[0])))
        if name == "XLEN":
            return len(self.streams.get(args[0], []))
        if name == "XINFO":
            return self.groups
        if name == "XRANGE":
            key, start, dummy, dummy_count, count = args
            keep = self._after(start)
            return [[i, list(f)] for i, f in self.streams.get(key, []) if keep(i)][:int(count)]
        if name == "HMGET":
            table = self.hashes.get(args[0], {})
            return [table.get(k) for k in args[1:]]
        if name == "EVAL":
            dummy_script, dummy_nkeys, target, record, entry_id = args[:5]
            fields = args[5:]
            if entry_id in self.hashes.get(record, {}):
                return None
            self.seq += 1
            new_id = b"%d-0" % self.seq
            self.streams.setdefault(target, []).append((new_id, fields))
            self.hashes.setdefault(record, {})[entry_id] = new_id
            self.evals += 1
            if self.crash_after_eval is not None and self.evals >= self.crash_after_eval:
                raise redis_client.RedisError("connection closed by the server")
            return new_id
        if name == "XDEL":
            before = len(self.streams[args[0]])
            self.streams[args[0]] = [(i, f) for i, f in self.streams[args[0]] if i not in args[1:]]
            return before - len(self.streams[args[0]])
        raise AssertionError("unexpected command %s" % name)

    def close(self):
        self.closed = True

    def names(self, name):
        return [c for c in self.calls if c[0] == name]


@pytest.fixture
def fake(monkeypatch):
    def install(**kwargs):
        server = FakeStreams(**kwargs)
        monkeypatch.setattr(redis_stream_replay, "connect", lambda params: server)
        return server
    return install


@pytest.mark.parametrize(
    "dead, batch_size, max_entries, replayed, xranges",
    [
        (5, 100, 0, 5, 1),
        (5, 2, 0, 5, 3),
        (6, 2, 0, 6, 4),  # the last, full batch needs one more read to see the end
        (5, 2, 3, 3, 2),
        (0, 100, 0, 0, 1),
    ],
    ids=["one-batch", "batches", "exact-batches", "max-entries", "empty"],
)
def test_replays_and_deletes(fake, run_module, dead, batch_size, max_entries, replayed, xranges):
    server = fake(dead=dead)
    failed, result = run_module(redis_stream_replay, {"batch_size": batch_size, "max_entries": max_entries})
    assert not failed, result
    assert result["replayed"] == result["deleted"] == replayed and result["already_replayed"] == 0
    assert result["changed"] is (replayed > 0)
    assert len(server.streams[b"events"]) == replayed
    assert len(server.streams[b"events:dead"]) == dead - replayed
    assert result["before"]["source_length"] == dead and result["after"]["source_length"] == dead - replayed
    assert result["after"]["target_length"] == replayed
    assert len(result["ids"]) == replayed
    assert len(server.names("XRANGE")) == xranges
    # fields kept in order; every deleted id was added first
    if replayed:
        assert server.streams[b"events"][0][1] == [b"type", b"order.created", b"n", b"0"]
    assert server.closed


def test_check_mode_counts_and_changes_nothing(fake, run_module):
    server = fake(dead=7)
    server.hashes[b"events:dead:replayed"] = {b"2-0": b"999-0"}
    failed, result = run_module(redis_stream_replay, {"batch_size": 3}, check_mode=True)
    assert not failed
    assert (result["replayed"], result["already_replayed"], result["deleted"]) == (6, 1, 0)
    assert result["changed"] is True
    assert not server.names("EVAL") and not server.names("XDEL")
    assert len(server.streams[b"events:dead"]) == 7 and not server.streams[b"events"]


def test_a_run_interrupted_between_add_and_delete_resumes_without_duplicates(fake, run_module):
    server = fake(dead=5, crash_after_eval=2)
    failed, result = run_module(redis_stream_replay, {})
    assert failed and "run again to resume" in result["msg"]
    # two entries were added and recorded, none deleted
    assert len(server.streams[b"events"]) == 2 and len(server.streams[b"events:dead"]) == 5
    server.crash_after_eval = None
    failed, result = run_module(redis_stream_replay, {})
    assert not failed
    assert (result["replayed"], result["already_replayed"], result["deleted"]) == (3, 2, 5)
    assert len(server.streams[b"events"]) == 5 and not server.streams[b"events:dead"]
    originals = sorted(f[3] for dummy, f in server.streams[b"events"])
    assert originals == [b"0", b"1", b"2", b"3", b"4"]


def test_second_run_is_a_no_op(fake, run_module):
    server = fake(dead=3)
    assert run_module(redis_stream_replay, {})[1]["changed"] is True
    failed, result = run_module(redis_stream_replay, {})
    assert not failed and result["changed"] is False and result["replayed"] == 0
    assert len(server.streams[b"events"]) == 3


def test_groups_are_reported_and_absent_target_has_none(fake, run_module):
    server = fake(dead=1)
    failed, result = run_module(redis_stream_replay, {})
    assert result["before"]["groups"] == []  # events did not exist yet
    assert result["after"]["groups"][0]["name"] == "workers"
    assert result["after"]["groups"][0]["consumers"] == 2
    assert not failed and server.closed


@pytest.mark.parametrize(
    "args, message",
    [
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"max_entries": -1}, "max_entries cannot be negative"),
        ({"target": "events:dead"}, "three different keys"),
        ({"replayed_key": "events"}, "three different keys"),
    ],
)
def test_bad_options_fail_before_connecting(fake, run_module, args, message):
    server = fake(dead=1)
    failed, result = run_module(redis_stream_replay, args)
    assert failed and message in result["msg"]
    assert not server.calls


def test_custom_record_key(fake, run_module):
    server = fake(dead=2)
    failed, result = run_module(redis_stream_replay, {"replayed_key": "dlq:done"})
    assert not failed and result["replayed_key"] == "dlq:done"
    assert set(server.hashes[b"dlq:done"]) == {b"1-0", b"2-0"}


def test_connection_failure(monkeypatch, run_module):
    def refuse(params):
        raise redis_client.RedisError("cannot connect to localhost:6379: refused")
    monkeypatch.setattr(redis_stream_replay, "connect", refuse)
    failed, result = run_module(redis_stream_replay, {})
    assert failed and "Cannot connect to Redis at localhost:6379 db 0" in result["msg"]


def test_script_is_atomic_add_and_record():
    script = redis_stream_replay.REPLAY_SCRIPT
    assert script.index("HEXISTS") < script.index("XADD") < script.index("HSET")


def test_result_has_no_key_ansible_reads_as_a_task_status(fake, run_module):
    """A result key named skipped (or failed, unreachable) would make Ansible show and register the task as such."""
    fake(dead=2)
    dummy, result = run_module(redis_stream_replay, {})
    assert not set(result) & {"skipped", "unreachable", "rc", "results"}


def test_a_group_name_that_is_not_utf8_is_shown_escaped(fake, run_module):
    """A consumer group named with bytes that are not UTF-8: the result must stay valid UTF-8 (Ansible refuses a
    lone surrogate and the task failed, after the replay, losing its counts)."""
    server = fake(dead=1)
    server.groups = [[b"name", b"gr\xffoup", b"consumers", 0, b"pending", 0, b"last-delivered-id", b"0-0",
                      b"entries-read", None, b"lag", 1]]
    failed, result = run_module(redis_stream_replay, {})
    assert not failed and result["replayed"] == 1
    assert result["after"]["groups"][0]["name"] == "gr\\xffoup"
    json.dumps(result).encode("utf-8")  # no surrogates left


class FakeTransactions(FakeStreams):
    """FakeStreams with WATCH/MULTI/EXEC, for entries too big for the script; ``race`` records the entry (as another
    run would) between the first WATCH and EXEC, which then aborts."""

    def __init__(self, race=False, **kwargs):
        super(FakeTransactions, self).__init__(**kwargs)
        self.race = race
        self.queued = None

    def command(self, name, *args):
        if self.queued is not None and name not in ("EXEC",):
            self.calls.append((name,) + tuple(b(a) for a in args))
            self.queued.append((name, [b(a) for a in args]))
            return b"QUEUED"
        if name in ("WATCH", "UNWATCH"):
            return b"OK"
        if name == "HEXISTS":
            return int(b(args[1]) in self.hashes.get(b(args[0]), {}))
        if name == "MULTI":
            self.queued = []
            return b"OK"
        if name == "EXEC":
            queued, self.queued = self.queued, None
            if self.race:
                self.race = False
                self.hashes.setdefault(b"events:dead:replayed", {})[self.streams[b"events:dead"][0][0]] = b"7-7"
                return None
            replies = []
            for command, cargs in queued:
                if command == "XADD":
                    self.seq += 1
                    self.streams.setdefault(cargs[0], []).append((b"%d-0" % self.seq, cargs[2:]))
                    replies.append(b"%d-0" % self.seq)
                else:  # the record script
                    assert command == "EVAL" and cargs[0] == b(redis_stream_replay.RECORD_LAST_SCRIPT)
                    self.hashes.setdefault(cargs[3], {})[cargs[4]] = self.streams[cargs[2]][-1][0]
                    replies.append(self.streams[cargs[2]][-1][0])
            return replies
        return super(FakeTransactions, self).command(name, *args)


@pytest.mark.parametrize("race", [False, True], ids=["alone", "recorded-meanwhile"])
def test_an_entry_too_big_for_the_script_is_added_by_a_transaction(monkeypatch, run_module, race):
    server = FakeTransactions(race=race)
    wide = []
    for i in range(3000):
        wide += [b"f%d" % i, b"v%d" % i]
    server.streams[b"events:dead"].append((b"1-0", wide))
    monkeypatch.setattr(redis_stream_replay, "connect", lambda params: server)
    failed, result = run_module(redis_stream_replay, {})
    assert not failed, result
    assert not server.names("EVAL") or all(c[1] == b(redis_stream_replay.RECORD_LAST_SCRIPT) for c in server.names("EVAL"))
    assert result["deleted"] == 1 and not server.streams[b"events:dead"]
    if race:
        assert (result["replayed"], result["already_replayed"]) == (0, 1) and not server.streams[b"events"]
    else:
        assert (result["replayed"], result["already_replayed"]) == (1, 0)
        assert server.streams[b"events"] == [(b"1001-0", wide)]
        assert server.hashes[b"events:dead:replayed"] == {b"1-0": b"1001-0"} and result["ids"] == {"1-0": "1001-0"}


def test_a_run_failing_half_way_reports_what_it_changed(fake, run_module):
    """A run that replayed (and deleted) entries before an error reported changed=false, as if nothing was done."""
    server = fake(dead=5)
    real_command = server.command

    def fails_on_the_second_xrange(name, *args):
        if name == "XRANGE" and server.names("XRANGE"):
            raise redis_client.RedisError("connection closed by the server")
        return real_command(name, *args)
    server.command = fails_on_the_second_xrange
    failed, result = run_module(redis_stream_replay, {"batch_size": 2})
    assert failed and "replayed 2 so far" in result["msg"]
    assert (result["replayed"], result["deleted"], result["changed"]) == (2, 2, True), result
    assert len(server.streams[b"events"]) == 2


def test_an_unexpected_error_reports_what_it_changed(fake, run_module):
    server = fake(dead=3)
    real_command = server.command

    def breaks_on_the_second_xrange(name, *args):
        if name == "XRANGE" and server.names("XRANGE"):
            raise ValueError("something unexpected")
        return real_command(name, *args)
    server.command = breaks_on_the_second_xrange
    failed, result = run_module(redis_stream_replay, {"batch_size": 1})
    assert failed and "something unexpected" in result["msg"]
    assert (result["replayed"], result["deleted"], result["changed"]) == (1, 1, True), result
