#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_flag
short_description: Set or clear an app's runtime flag kept as a Redis key
description:
  - Keeps one of an app's runtime flags, a Redis key whose existence the app reads, for example the key whose
    presence makes an outbox worker skip delivery (C(sample_app:outbox:paused)).
  - With O(state=present), reads the key (C(GET)) and, when it does not exist, sets it to O(value) (C(SET NX),
    without expiry). A key that already exists is left as it is, whatever its value, so the first setter's value
    (who paused the app and why, say) is kept, and the module reports no change.
  - With O(state=absent), deletes the key (C(UNLINK)) when it exists.
  - In check mode, reads the key and reports the change it would make, writing and deleting nothing.
  - Uses redis-py when the host has it (Debian C(python3-redis)), else speaks the Redis protocol over a plain
    socket itself.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.redis
options:
  key:
    description:
      - The flag's key, for example C(sample_app:outbox:paused).
      - An empty key, one longer than 512 characters, or one holding whitespace or control characters is refused
        before connecting.
    type: str
    required: true
  state:
    description:
      - V(present) sets the flag (the key exists), V(absent) clears it (the key does not exist).
    type: str
    choices: [present, absent]
    default: present
  value:
    description:
      - The value the key is set to when O(state=present) finds it missing, for example who set the flag, when and
        why. A key that already exists keeps its own value.
      - Control characters (newlines, tabs...) are refused. Not used with O(state=absent).
    type: str
    default: "1"
attributes:
  check_mode:
    support: full
    details: Reads the key and reports the change it would make (RV(after)); writes and deletes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The key is set with C(SET NX), so of two runs that find it missing at the same moment only one sets it and reports a
    change; the other reports the first one's value.
seealso:
  - module: shipshape.ops.redis_invalidate
  - module: shipshape.ops.redis_publish
"""

EXAMPLES = r"""
- name: Pause the app's outbox delivery, recording who paused it and why
  shipshape.ops.redis_flag:
    host: redis.internal
    password: "{{ vault_redis_password }}"
    key: "sample_app:outbox:paused"
    value: "alice at 2024-05-01T10:00:00Z, webhook endpoint down"
  register: pause

- name: Say who paused it (an outbox already paused keeps its first value)
  ansible.builtin.debug:
    msg: "Paused by {{ pause.after }}"

- name: Resume the delivery
  shipshape.ops.redis_flag:
    host: redis.internal
    password: "{{ vault_redis_password }}"
    key: "sample_app:outbox:paused"
    state: absent
"""

RETURN = r"""
key:
  description: The flag's key.
  returned: always
  type: str
  sample: "sample_app:outbox:paused"
before:
  description: The key's value before the task, or V(null) when the key did not exist.
  returned: always
  type: str
  sample: "alice at 2024-05-01T10:00:00Z, webhook endpoint down"
after:
  description:
    - The key's value after the task, or V(null) when the key does not exist (in check mode, what it would be).
    - With O(state=present) and a key that existed, the value it already had.
  returned: always
  type: str
  sample: "alice at 2024-05-01T10:00:00Z, webhook endpoint down"
client:
  description: How the module talked to Redis, C(redis-py) or C(socket).
  returned: always
  type: str
  sample: redis-py
"""

import traceback
import unicodedata

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import redis_client

MAX_KEY_LENGTH = 512


def _control(char):
    return unicodedata.category(char) == "Cc"


def _shown(text, limit=80):
    """The repr of text for a message, cut short when long."""
    if len(text) <= limit:
        return repr(text)
    return "%r... (%d characters)" % (text[:limit], len(text))


def _text(value):
    """A value read from Redis as text (None stays None)."""
    if value is None or isinstance(value, str):
        return value
    return value.decode("utf-8", "replace")


def main():
    argument_spec = redis_client.redis_argument_spec()
    argument_spec.update(
        key=dict(type="str", required=True, no_log=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        value=dict(type="str", default="1"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    key = p["key"] or ""  # a null key is refused as an empty one
    value = "1" if p["value"] is None else p["value"]

    if not key or len(key) > MAX_KEY_LENGTH or any(_control(c) or c.isspace() for c in key):
        module.fail_json(msg="redis_flag: key %s must be a name of 1 to %d characters without whitespace or control "
                             "characters, such as 'sample_app:outbox:paused'" % (_shown(key), MAX_KEY_LENGTH))
    if any(_control(c) for c in value):
        module.fail_json(msg="redis_flag: value %s must not hold control characters (newlines, tabs...)" % _shown(value))

    where = "%s:%s" % (p["host"], p["port"])
    result = dict(changed=False, key=key, before=None, after=None, client=redis_client.client_name())

    try:
        client = redis_client.connect(p)
    except redis_client.RedisError as exc:
        module.fail_json(msg="redis_flag: cannot reach Redis at %s: %s" % (where, exc), **result)

    doing = "reading"
    try:
        result["before"] = result["after"] = _text(client.get(key))
        if p["state"] == "present" and result["before"] is None:
            result["changed"] = True
            result["after"] = value
            if not module.check_mode:
                doing = "setting"
                # NX: a flag another run set since the GET keeps its value, and this run reports no change.
                if not client.set(key, value, nx=True):
                    doing = "reading"
                    result["before"] = result["after"] = _text(client.get(key))
                    result["changed"] = False
        elif p["state"] == "absent" and result["before"] is not None:
            result["changed"] = True
            result["after"] = None
            if not module.check_mode:
                doing = "deleting"
                client.unlink(key)
    except redis_client.RedisError as exc:
        result.update(changed=False, after=result["before"])
        module.fail_json(msg="redis_flag: Redis at %s db %s, %s key %s: %s" % (where, p["db"], doing, _shown(key), exc),
                         exception=traceback.format_exc(), **result)
    except Exception as exc:
        result.update(changed=False, after=result["before"])
        module.fail_json(msg="redis_flag: unexpected error talking to Redis at %s: %s" % (where, exc),
                         exception=traceback.format_exc(), **result)
    finally:
        client.close()

    module.exit_json(**result)


if __name__ == "__main__":
    main()
