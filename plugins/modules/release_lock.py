#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_lock
short_description: Take or release the lock that serialises deploys and rollbacks of an app
description:
  - Creates a lock directory atomically (C(mkdir)), with C(owner.json) inside naming who holds it, since when,
    the version being deployed and a message.
  - A second run is refused with the holder and the lock's age. A lock older than O(max_age) can be broken,
    but only when O(break_stale=true).
  - The lock is transient, so taking and releasing it are not reported as changes.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The lock directory.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it (only when this O(token) holds it, unless O(force)).
    type: str
    choices: [present, absent]
    default: present
  owner:
    description: Who takes the lock (user@host).
    type: str
    default: unknown
  token:
    description: A value unique to this run; releasing checks it so one run never releases another's lock.
    type: str
    required: true
  version:
    description: What is being deployed, for the holder's message.
    type: str
    default: ""
  reason:
    description: Why this run holds the lock; shown to anyone refused by it.
    type: str
    default: ""
  max_age:
    description: Age in seconds after which the lock counts as stale.
    type: int
    default: 3600
  break_stale:
    description: Break a stale lock (older than O(max_age)) instead of refusing.
    type: bool
    default: false
  force:
    description: With O(state=absent), remove the lock whoever holds it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: The lock is taken in check mode too, so a check run never reads a state that a deploy is changing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Take the deploy lock
  shipshape.ops.release_lock:
    path: /srv/sample_app/.deploy.lock
    owner: "alice@laptop"
    token: "{{ deploy_run_id }}"
    version: 2.0.0
    reason: release 2.0.0

- name: Release it
  shipshape.ops.release_lock:
    path: /srv/sample_app/.deploy.lock
    token: "{{ deploy_run_id }}"
    state: absent
"""

RETURN = r"""
acquired:
  description: Whether this run now holds the lock.
  returned: state=present
  type: bool
holder:
  description: The contents of owner.json of the lock as it stands (the refusing holder, or this run).
  returned: always
  type: dict
  sample: {"owner": "alice@laptop", "since": "2026-11-25T09:00:00Z", "version": "2.0.0", "message": "", "epoch": 1795000000}
age:
  description: Age of the held lock in seconds.
  returned: when a lock was found
  type: int
broken:
  description: Whether a stale lock was broken.
  returned: state=present
  type: bool
"""

import json
import os
import shutil
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

OWNER_FILE = "owner.json"


def read_holder(path):
    try:
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        # A lock directory without a readable owner file: age from the directory itself.
        try:
            epoch = int(os.stat(path).st_mtime)
        except OSError:
            return None
        return {"owner": "unknown", "since": "", "epoch": epoch, "version": "", "message": "", "token": ""}


def take(module, params):
    path = params["path"]
    now = int(time.time())
    info = {
        "owner": params["owner"],
        "since": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "epoch": now,
        "version": params["version"],
        "message": params["reason"],
        "token": params["token"],
        "pid": os.getpid(),
    }
    broken = False
    for _attempt in range(2):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            holder = read_holder(path) or {}
            age = now - int(holder.get("epoch", now))
            if holder.get("token") == params["token"]:
                return dict(changed=False, acquired=True, holder=holder, age=age, broken=broken)
            if age > params["max_age"] and params["break_stale"] and not broken:
                shutil.rmtree(path, ignore_errors=True)
                broken = True
                continue
            stale = age > params["max_age"]
            module.fail_json(
                msg=(
                    "Refused: the lock %s is held by %s since %s (%ss ago)%s%s. %s"
                    % (
                        path,
                        holder.get("owner", "unknown"),
                        holder.get("since", "?"),
                        age,
                        ", deploying %s" % holder["version"] if holder.get("version") else "",
                        ": %s" % holder["message"] if holder.get("message") else "",
                        "It is older than %ss; set deploy_lock_break=true to break it." % params["max_age"]
                        if stale
                        else "Wait for that run to finish.",
                    )
                ),
                acquired=False,
                holder=holder,
                age=age,
                lock_held=True,
            )
        except OSError as exc:
            module.fail_json(msg="Cannot create the lock %s: %s" % (path, exc))
        tmp = os.path.join(path, OWNER_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        os.rename(tmp, os.path.join(path, OWNER_FILE))
        return dict(changed=False, acquired=True, holder=info, age=0, broken=broken)
    module.fail_json(msg="Could not take the lock %s" % path)


def release(module, params):
    path = params["path"]
    holder = read_holder(path)
    if holder is None:
        return dict(changed=False, holder={})
    if holder.get("token") != params["token"] and not params["force"]:
        module.fail_json(
            msg="Not releasing %s: it is held by %s (another run)" % (path, holder.get("owner", "unknown")),
            holder=holder,
        )
    shutil.rmtree(path, ignore_errors=True)
    return dict(changed=False, holder=holder)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            owner=dict(type="str", default="unknown"),
            token=dict(type="str", required=True, no_log=False),
            version=dict(type="str", default=""),
            reason=dict(type="str", default=""),
            max_age=dict(type="int", default=3600),
            break_stale=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["state"] == "present":
        result = take(module, params)
    else:
        result = release(module, params)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
