#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_invalidate
short_description: Delete Redis keys by pattern and by name, in batches, without blocking the server
description:
  - Deletes the keys matching each of O(patterns) by walking the keyspace with C(SCAN MATCH) and removing what it
    finds with C(UNLINK) in batches of O(batch_size) (never C(KEYS), which blocks the server), then the keys
    named in O(keys).
  - Empties the whole database (C(FLUSHDB)) only when O(flush_db=true) is given; never C(FLUSHALL).
  - A pattern that matches every key (wildcards only, such as C(*), C(**) or C(?*), or classes that match any
    character, such as C([^]*)) empties the database as C(FLUSHDB) would, so it is refused unless
    O(allow_match_all=true) says so as explicitly.
  - With O(max_keys), counts first and deletes nothing when more keys match than that.
  - In check mode, counts the keys that would be deleted and deletes nothing.
  - Uses redis-py when the host has it (Debian C(python3-redis)), else speaks the Redis protocol over a plain
    socket itself.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.redis
options:
  patterns:
    description:
      - Glob-style patterns (as C(SCAN MATCH) takes them) whose keys to delete, for example C(cache:user:*).
      - An empty pattern is refused; one made of wildcards only (C(*), C(?*)...) needs O(allow_match_all=true).
    type: list
    elements: str
    default: []
  keys:
    description: Exact key names to delete.
    type: list
    elements: str
    default: []
  batch_size:
    description:
      - The C(COUNT) hint of each C(SCAN) and the most keys deleted by one C(UNLINK).
    type: int
    default: 500
  flush_db:
    description:
      - Empty the whole database O(db) with C(FLUSHDB). Cannot be combined with O(patterns) or O(keys).
    type: bool
    default: false
  allow_match_all:
    description:
      - Accept patterns that match every key (wildcards only, such as C(*), C(**), C(?*)). Without it they are
        refused before connecting, as a flush is without O(flush_db=true).
    type: bool
    default: false
  max_keys:
    description:
      - The most keys one run may delete. When more match (counted with C(SCAN) first), the module fails naming
        the count and deletes nothing. V(0) for no limit.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Counts the keys that would be deleted (RV(matched)) and deletes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - A key matched by more than one pattern (or also named in O(keys)) is counted once, under the first that
    matched it.
  - Keys written while the module runs may or may not be deleted; C(SCAN) only guarantees to return the keys
    that exist for the whole scan.
  - With nothing to delete (O(patterns) and O(keys) empty and O(flush_db=false)), the module does nothing.
"""

EXAMPLES = r"""
- name: Drop the cached user pages and one session after a deploy
  shipshape.ops.redis_invalidate:
    patterns:
      - "cache:user:*"
      - "cache:page:*"
    keys:
      - "session:maintenance"

- name: How many keys would go (check mode counts, deletes nothing)
  shipshape.ops.redis_invalidate:
    host: redis.internal
    password: "{{ vault_redis_password }}"
    db: 2
    patterns: ["cache:*"]
  check_mode: true
  register: would_invalidate

- name: Drop the caches, but not if more than 10000 keys match
  shipshape.ops.redis_invalidate:
    patterns: ["cache:*"]
    max_keys: 10000

- name: Empty the cache database, by name only
  shipshape.ops.redis_invalidate:
    db: 3
    flush_db: true
"""

RETURN = r"""
deleted:
  description:
    - Keys deleted per pattern or key name (in check mode, the keys that would be deleted).
    - With O(flush_db=true), a single entry C(FLUSHDB) with the database's size before.
  returned: always
  type: dict
  sample: {"cache:user:*": 1200, "session:maintenance": 1}
total:
  description: The number of keys deleted (in check mode, that would be deleted).
  returned: always
  type: int
  sample: 1201
matched:
  description:
    - The number of distinct keys found by the patterns and names. Outside check mode it can exceed RV(total)
      when a key expired or was deleted between being found and being unlinked.
  returned: always
  type: int
  sample: 1201
client:
  description: How the module talked to Redis, C(redis-py) or C(socket).
  returned: always
  type: str
  sample: redis-py
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes
from ansible_collections.shipshape.ops.plugins.module_utils import redis_client


class Invalidator(object):
    """Deletes (or, in check mode, counts) keys; counts each key once, under the first source that
    matched it."""

    def __init__(self, client, batch_size, check_mode):
        self.client = client
        self.batch_size = batch_size
        self.check_mode = check_mode
        self.seen = set()  # check mode only: keys already counted
        self.matched = 0

    def _take(self, keys):
        """In check mode, the keys not counted yet; else all of them (UNLINK counts each once), each once."""
        if not self.check_mode:
            return list(dict.fromkeys(keys))
        fresh = [k for k in dict.fromkeys(keys) if k not in self.seen]
        self.seen.update(fresh)
        return fresh

    def _remove(self, keys):
        if not keys:
            return 0
        self.matched += len(keys)
        if self.check_mode:
            return len(keys)
        return int(self.client.unlink(*keys))

    def pattern(self, pattern, deleted=None, name=None):
        """Keys deleted (counted) by a pattern; with deleted, also added to deleted[name] batch by batch."""
        deleted = {} if deleted is None else deleted
        name = pattern if name is None else name
        deleted.setdefault(name, 0)
        start = deleted[name]
        batch = []
        pending = set()  # SCAN returns a key again when it is still there: found, but not unlinked yet
        cursor = 0
        while True:
            cursor, keys = self.client.scan(cursor, pattern, self.batch_size)
            fresh = [k for k in self._take(keys) if k not in pending]
            pending.update(fresh)
            batch.extend(fresh)
            while len(batch) >= self.batch_size:
                deleted[name] += self._remove(batch[:self.batch_size])
                pending.difference_update(batch[:self.batch_size])
                batch = batch[self.batch_size:]
            if cursor == 0:
                break
        deleted[name] += self._remove(batch)
        return deleted[name] - start

    def key(self, key):
        if not self.client.exists(key):
            return 0
        return self._remove(self._take([key]))

    def flush(self):
        size = int(self.client.dbsize())
        self.matched += size
        if not self.check_mode and size:
            self.client.flushdb()
        return size


class TooMany(Exception):
    def __init__(self, count):
        super(TooMany, self).__init__(count)
        self.count = count


def invalidate(invalidator, p, deleted=None):
    """Keys deleted (counted) per source: the flush, each pattern, each key. Filled into deleted as each batch
    goes, so that a run failing half-way (a lost connection, a NOPERM key, a failover) reports what it did."""
    deleted = {} if deleted is None else deleted
    if p["flush_db"]:
        deleted["FLUSHDB"] = invalidator.flush()
    for pattern in p["patterns"]:
        deleted[pattern] = 0
        invalidator.pattern(to_bytes(pattern), deleted, pattern)
    for key in p["keys"]:
        deleted[key] = deleted.get(key, 0) + invalidator.key(to_bytes(key))
    return deleted


def partial(result, check_mode):
    """A run that failed half-way: what it deleted before the error, and changed when that is anything."""
    if check_mode:
        result["deleted"] = {}
    result["total"] = sum(result["deleted"].values())
    result["changed"] = result["total"] > 0


def deleted_so_far(result):
    return " (%d keys were deleted before the error)" % result["total"] if result["total"] else ""


def main():
    argument_spec = redis_client.redis_argument_spec()
    argument_spec.update(
        patterns=dict(type="list", elements="str", default=[]),
        keys=dict(type="list", elements="str", default=[], no_log=False),
        batch_size=dict(type="int", default=500),
        flush_db=dict(type="bool", default=False),
        allow_match_all=dict(type="bool", default=False),
        max_keys=dict(type="int", default=0, no_log=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params

    if p["batch_size"] < 1:
        module.fail_json(msg="batch_size must be at least 1, got %s" % p["batch_size"])
    if p["max_keys"] < 0:
        module.fail_json(msg="max_keys must be 0 (no limit) or more, got %s" % p["max_keys"])
    if p["flush_db"] and (p["patterns"] or p["keys"]):
        module.fail_json(msg="flush_db empties the whole database: give it without patterns or keys")
    for pattern in p["patterns"]:
        if not pattern:
            module.fail_json(msg="patterns: an empty pattern ('') matches no key to invalidate; expected a glob such as 'cache:*'")
        if redis_client.pattern_matches_everything(pattern) and not p["allow_match_all"]:
            module.fail_json(
                msg="patterns: '%s' matches every key of db %s, as a FLUSHDB would; expected a narrower pattern such as "
                    "'cache:*', or allow_match_all=true to delete every key" % (pattern, p["db"]))

    result = dict(changed=False, deleted={}, total=0, matched=0, client=redis_client.client_name())
    if not (p["patterns"] or p["keys"] or p["flush_db"]):
        module.exit_json(**result)

    try:
        client = redis_client.connect(p)
    except redis_client.RedisError as exc:
        module.fail_json(msg="Cannot connect to Redis at %s:%s db %s: %s" % (p["host"], p["port"], p["db"], exc), **result)

    try:
        if p["max_keys"] and not module.check_mode:
            counter = Invalidator(client, p["batch_size"], True)
            invalidate(counter, p)
            if counter.matched > p["max_keys"]:
                result["matched"] = counter.matched
                raise TooMany(counter.matched)
        invalidator = Invalidator(client, p["batch_size"], module.check_mode)
        invalidate(invalidator, p, result["deleted"])
        # Check mode: say what the real run does. A real run has deleted its keys by now (the count above
        # allowed them), and must not report that it deleted nothing.
        if module.check_mode and p["max_keys"] and invalidator.matched > p["max_keys"]:
            result["matched"] = invalidator.matched
            raise TooMany(invalidator.matched)
    except TooMany as exc:
        module.fail_json(
            msg="Refusing to delete %s keys, more than max_keys (%s); nothing was deleted. Expected at most %s: "
                "raise max_keys (0 for no limit) or narrow the patterns." % (exc.count, p["max_keys"], p["max_keys"]),
            **result)
    except redis_client.RedisError as exc:
        partial(result, module.check_mode)
        module.fail_json(msg="Redis at %s:%s db %s: %s%s" % (p["host"], p["port"], p["db"], exc, deleted_so_far(result)),
                         exception=traceback.format_exc(), **result)
    except Exception as exc:
        partial(result, module.check_mode)
        msg = "Unexpected error talking to Redis at %s:%s: %s%s" % (p["host"], p["port"], exc, deleted_so_far(result))
        module.fail_json(msg=msg, exception=traceback.format_exc(), **result)
    finally:
        client.close()

    result["total"] = sum(result["deleted"].values())
    result["matched"] = invalidator.matched
    result["changed"] = result["total"] > 0
    module.exit_json(**result)


if __name__ == "__main__":
    main()
