#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_publish
short_description: Publish a message on a Redis channel, so the other instances of an app hear of a change
description:
  - Sends C(PUBLISH <channel> <message>), as the FastPrep runbook does after invalidating a user's cache
    (C(PUBLISH authz.user.updated <user id>)) so that every instance drops its in-process copy too.
  - Returns how many subscribers received it. With O(min_receivers), a message nobody (or too few) received fails
    the task, which tells that the instances it was meant for are not listening.
  - A publish is an action, not a state, so it reports a change every time it sends. In check mode nothing is sent.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.redis
options:
  channel:
    description: The channel, for example C(authz.user.updated). Control characters are refused.
    type: str
    required: true
  payload:
    description:
      - The message, for example the id of the user whose cache was invalidated. (Ansible reserves the option name
        C(message).)
    type: str
    required: true
  min_receivers:
    description: Fail when fewer subscribers than this received the message; 0 accepts none.
    type: int
    default: 0
attributes:
  check_mode:
    support: full
    details: Sends nothing and reports the change it would make.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: shipshape.ops.redis_invalidate
"""

EXAMPLES = r"""
- name: Tell every instance that user 42's permissions changed
  shipshape.ops.redis_publish:
    channel: authz.user.updated
    payload: "42"
    min_receivers: 1
"""

RETURN = r"""
receivers:
  description: The subscribers that received the message (0 in check mode).
  returned: always
  type: int
  sample: 3
client:
  description: C(redis-py) or C(socket).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import redis_client


def main():
    argument_spec = redis_client.redis_argument_spec()
    argument_spec.update(
        channel=dict(type="str", required=True),
        payload=dict(type="str", required=True),
        min_receivers=dict(type="int", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    if not p["channel"] or any(ord(c) < 32 or ord(c) == 127 for c in p["channel"]):
        module.fail_json(msg="channel: %r is empty or holds a control character: expected a channel name such as "
                             "'authz.user.updated'" % p["channel"])
    if p["min_receivers"] < 0:
        module.fail_json(msg="min_receivers: %s is negative: expected 0 or more" % p["min_receivers"])
    result = dict(changed=True, receivers=0, client=redis_client.client_name(), channel=p["channel"])
    if module.check_mode:
        module.exit_json(**result)
    try:
        client = redis_client.connect(p)
        try:
            result["receivers"] = int(client.publish(p["channel"], p["payload"]))
        finally:
            client.close()
    except redis_client.RedisError as exc:
        result["changed"] = False
        module.fail_json(msg="Cannot publish on %s: %s" % (p["channel"], exc), **result)
    if result["receivers"] < p["min_receivers"]:
        message = ("Published on %s, but %d subscribers received it, fewer than min_receivers (%d): the instances "
                   "meant to hear it are not listening." % (p["channel"], result["receivers"], p["min_receivers"]))
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
