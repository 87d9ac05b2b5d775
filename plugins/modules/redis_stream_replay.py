#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_stream_replay
short_description: Replay a Redis Streams dead-letter stream into its stream, once per entry
description:
  - Reads the dead-letter stream O(source) in batches of O(batch_size) (C(XRANGE ... COUNT)), adds each entry's
    fields to O(target) (C(XADD)) and deletes it from O(source) (C(XDEL)) only after the add succeeded.
  - Each add and its record in the hash O(replayed_key) (original id -> new id) are written by one Lua script,
    atomically, before the C(XDEL). An entry whose id is already in the hash is not added again, only deleted,
    so a run interrupted between the add and the delete, or run twice, does not duplicate entries.
  - An entry of more than 2,000 fields (too many for one Lua call) is added and recorded by one C(MULTI)/C(EXEC)
    transaction instead, under a C(WATCH) of O(replayed_key), with the same guarantees.
  - Reports both streams' lengths and the consumer groups of O(target) (C(XINFO GROUPS)) before and after.
  - In check mode, counts the entries that would be replayed and those that would only be deleted, and changes
    nothing.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.redis
options:
  source:
    description: The dead-letter stream to read and empty.
    type: str
    default: events:dead
  target:
    description: The stream the entries are added to (with new ids, C(XADD *)).
    type: str
    default: events
  replayed_key:
    description:
      - The hash recording each replayed entry, original id -> new id in O(target).
      - Empty for C(<source>:replayed).
    type: str
    default: ""
  batch_size:
    description: Entries read by one C(XRANGE) (its C(COUNT)) and deleted by one C(XDEL).
    type: int
    default: 100
  max_entries:
    description: The most entries to handle in this run (replayed or only deleted); 0 for all.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Counts what would be replayed (RV(replayed)) and only deleted (RV(already_replayed)), and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Speaks the Redis protocol over a plain (optionally TLS) socket, the collection's own client, so that the
    commands of one run share one connection; redis-py is not needed.
  - Needs Redis 6.2 or later (exclusive C(XRANGE) ranges) and the right to run C(EVAL).
  - The record hash keeps growing; it is what makes the replay safe to repeat, delete it only when no replay
    is running and the dead-letter stream is empty.
  - Entries added to O(source) while the module runs may or may not be replayed by this run.
"""

EXAMPLES = r"""
- name: Replay the dead letters of the events stream
  shipshape.ops.redis_stream_replay:
    source: events:dead
    target: events
  register: replay

- name: How many would be replayed (check mode counts, changes nothing)
  shipshape.ops.redis_stream_replay:
    host: redis.internal
    password: "{{ vault_redis_password }}"
    source: orders:dead
    target: orders
  check_mode: true

- name: Replay at most 1000, in batches of 200
  shipshape.ops.redis_stream_replay:
    max_entries: 1000
    batch_size: 200
"""

RETURN = r"""
replayed:
  description: Entries added to O(target) and deleted from O(source) (in check mode, that would be).
  returned: always
  type: int
  sample: 12
already_replayed:
  description:
    - Entries already recorded as replayed by an earlier run, only deleted from O(source) (in check mode, that
      would be).
  returned: always
  type: int
  sample: 1
deleted:
  description: Entries deleted from O(source) (0 in check mode).
  returned: always
  type: int
  sample: 13
ids:
  description: Original id -> new id of the entries replayed by this run (the first 1000).
  returned: always
  type: dict
  sample: {"1764061200000-0": "1764064800123-0"}
replayed_key:
  description: The hash recording the replayed entries.
  returned: always
  type: str
  sample: events:dead:replayed
before:
  description: The streams before the run.
  returned: always
  type: dict
  contains:
    source_length:
      description: C(XLEN) of O(source).
      type: int
    target_length:
      description: C(XLEN) of O(target).
      type: int
    groups:
      description: C(XINFO GROUPS) of O(target), one dict per group (C(name), C(consumers), C(pending),
        C(last-delivered-id), and on Redis 7 C(entries-read), C(lag)); empty when O(target) does not exist.
      type: list
      elements: dict
  sample: {"source_length": 13, "target_length": 200, "groups": [{"name": "workers", "consumers": 2, "pending": 0,
           "last-delivered-id": "1764064800000-0", "entries-read": 200, "lag": 0}]}
after:
  description: The streams after the run, as RV(before).
  returned: always
  type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.shipshape.ops.plugins.module_utils import redis_client

MAX_IDS_RETURNED = 1000

# KEYS: target, record hash; ARGV: original id, then the entry's fields and values.
# Adds the entry and records it in one step, unless it is already recorded; returns the new id, or false.
REPLAY_SCRIPT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[2], ARGV[1], id)
return id
"""

# Lua's unpack() stops at about 8,000 values ("too many results to unpack"), so a bigger entry is added by a
# MULTI/EXEC transaction instead: its XADD, then RECORD_LAST_SCRIPT, which records the id XADD just generated
# (nothing runs between the two), under a WATCH of the record hash in place of the script's HEXISTS.
MAX_SCRIPT_VALUES = 4000
MAX_WATCH_ATTEMPTS = 10

# KEYS: target, record hash; ARGV: original id.
RECORD_LAST_SCRIPT = """
local info = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then
    redis.call('HSET', KEYS[2], ARGV[1], info[i + 1])
    return info[i + 1]
  end
end
return redis.error_reply('XINFO STREAM has no last-generated-id')
"""


def connect(params):
    """One connection for the whole run (the collection's RESP client)."""
    return redis_client.RespClient(params)


def text(value):
    """Bytes from Redis as text for the result: bytes that are not UTF-8 (a group's name) shown escaped
    (C(\\xff)), never as lone surrogates, which Ansible refuses to read back (the whole result was lost)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


class Replayer(object):
    def __init__(self, client, source, target, record, batch_size, max_entries, check_mode):
        self.client = client
        self.source = to_bytes(source)
        self.target = to_bytes(target)
        self.record = to_bytes(record)
        self.batch_size = batch_size
        self.max_entries = max_entries
        self.check_mode = check_mode
        self.replayed = 0
        self.already_replayed = 0
        self.deleted = 0
        self.ids = {}

    def groups(self):
        if not self.client.command("EXISTS", self.target):
            return []
        groups = []
        for flat in self.client.command("XINFO", "GROUPS", self.target) or []:
            group = {}
            for key, value in zip(flat[0::2], flat[1::2]):
                group[text(key)] = text(value)
            groups.append(group)
        return groups

    def state(self):
        return dict(
            source_length=int(self.client.command("XLEN", self.source)),
            target_length=int(self.client.command("XLEN", self.target)),
            groups=self.groups(),
        )

    def batches(self):
        """Entries of the source, (id, [field, value, ...]), a batch at a time, up to max_entries."""
        start = b"-"
        left = self.max_entries or None
        while left is None or left > 0:
            count = self.batch_size if left is None else min(self.batch_size, left)
            entries = self.client.command("XRANGE", self.source, start, b"+", "COUNT", count) or []
            if not entries:
                return
            yield entries
            if left is not None:
                left -= len(entries)
            if len(entries) < count:
                return
            start = b"(" + entries[-1][0]

    def replay_one(self, entry_id, fields):
        if not fields:  # XADD needs at least one field; Redis never stores an empty entry
            raise redis_client.RedisError("entry %s of %s has no fields" % (text(entry_id), text(self.source)))
        if len(fields) > MAX_SCRIPT_VALUES:
            return self.replay_in_transaction(entry_id, fields)
        new_id = self.client.command("EVAL", REPLAY_SCRIPT, 2, self.target, self.record, entry_id, *fields)
        return new_id

    def replay_in_transaction(self, entry_id, fields):
        """REPLAY_SCRIPT for an entry too big for it: the new id, or None when the entry is already recorded."""
        for dummy in range(MAX_WATCH_ATTEMPTS):
            self.client.command("WATCH", self.record)
            if self.client.command("HEXISTS", self.record, entry_id):
                self.client.command("UNWATCH")
                return None
            self.client.command("MULTI")
            self.client.command("XADD", self.target, "*", *fields)
            self.client.command("EVAL", RECORD_LAST_SCRIPT, 2, self.target, self.record, entry_id)
            replies = self.client.command("EXEC")
            if replies is not None:  # None: the record hash changed (another run), nothing was written
                return replies[1]
        raise redis_client.RedisError("entry %s of %s: %s kept changing during %d attempts to replay it"
                                      % (text(entry_id), text(self.source), text(self.record), MAX_WATCH_ATTEMPTS))

    def run(self):
        for entries in self.batches():
            ids = [entry[0] for entry in entries]
            recorded = self.client.command("HMGET", self.record, *ids)
            done = []
            for (entry_id, fields), previous in zip(entries, recorded):
                if previous is not None:
                    self.already_replayed += 1
                elif self.check_mode:
                    self.replayed += 1
                else:
                    new_id = self.replay_one(entry_id, fields)
                    if new_id is None:  # recorded meanwhile by another run: that one added it
                        self.already_replayed += 1
                    else:
                        self.replayed += 1
                        if len(self.ids) < MAX_IDS_RETURNED:
                            self.ids[text(entry_id)] = text(new_id)
                done.append(entry_id)
            if done and not self.check_mode:
                self.deleted += int(self.client.command("XDEL", self.source, *done))


def partial(result, replayer, check_mode):
    """A run that failed half-way: what it did before the error, and changed when that is anything."""
    result.update(replayed=replayer.replayed, already_replayed=replayer.already_replayed,
                  deleted=replayer.deleted, ids=replayer.ids)
    result["changed"] = not check_mode and (replayer.replayed + replayer.deleted) > 0


def main():
    argument_spec = redis_client.redis_argument_spec()
    argument_spec.update(
        source=dict(type="str", default="events:dead"),
        target=dict(type="str", default="events"),
        replayed_key=dict(type="str", default="", no_log=False),
        batch_size=dict(type="int", default=100),
        max_entries=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    if p["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1, got %s" % p["batch_size"])
    if p["max_entries"] < 0:
        module.fail_json(msg="max_entries cannot be negative, got %s" % p["max_entries"])
    if not p["source"] or not p["target"]:
        module.fail_json(msg="source and target must be named")
    record = p["replayed_key"] or "%s:replayed" % p["source"]
    if len(set([p["source"], p["target"], record])) < 3:
        module.fail_json(msg="source, target and replayed_key must be three different keys, got %s, %s and %s"
                         % (p["source"], p["target"], record))

    result = dict(changed=False, replayed=0, already_replayed=0, deleted=0, ids={}, replayed_key=record, before={}, after={})
    where = "%s:%s db %s" % (p["host"], p["port"], p["db"])
    try:
        client = connect(p)
    except redis_client.RedisError as exc:
        module.fail_json(msg="Cannot connect to Redis at %s: %s" % (where, exc), **result)

    replayer = Replayer(client, p["source"], p["target"], record, p["batch_size"], p["max_entries"], module.check_mode)
    try:
        result["before"] = replayer.state()
        replayer.run()
        result["after"] = result["before"] if module.check_mode else replayer.state()
    except redis_client.RedisError as exc:
        partial(result, replayer, module.check_mode)
        module.fail_json(msg="Redis at %s, replaying %s into %s: %s (replayed %d so far; run again to resume)"
                         % (where, p["source"], p["target"], exc, replayer.replayed),
                         exception=traceback.format_exc(), **result)
    except Exception as exc:
        partial(result, replayer, module.check_mode)
        module.fail_json(msg="Unexpected error talking to Redis at %s: %s" % (where, exc),
                         exception=traceback.format_exc(), **result)
    finally:
        client.close()

    result.update(replayed=replayer.replayed, already_replayed=replayer.already_replayed,
                  deleted=replayer.deleted, ids=replayer.ids)
    result["changed"] = (replayer.replayed + replayer.already_replayed) > 0
    module.exit_json(**result)


if __name__ == "__main__":
    main()
