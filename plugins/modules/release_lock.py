#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_lock
short_description: Take or release a run lock (deploys, rollbacks, backups, restores, drills, recoveries)
description:
  - Creates a lock directory atomically (C(mkdir)), with C(owner.json) inside naming who holds it, since when,
    the version being deployed, a message, and the controller and process of the run that took it.
  - A second run is refused with one message naming the holder, the lock's age and how to break it (the
    variables named by O(break_var) and O(max_age_var)).
  - With O(break_stale=true) a lock is broken when it is older than O(max_age), or when the action plugin has proved
    its holder dead (same controller, process gone) and passes O(holder_state=dead) with its O(holder_token). Breaking renames the lock aside first
    and checks that what it moved is still the lock it judged, so a lock taken in between is never broken.
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
    description: Who takes the lock (user@host). Unset, the action plugin names the controller's user and host.
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
  wait:
    description: Seconds to wait for a held lock to be released before refusing (0 refuses at once).
    type: int
    default: 0
  what:
    description: What the lock serialises (C(deploy), C(backup), C(restore) ...), for the refusal message.
    type: str
    default: deploy
  break_var:
    description: The variable that sets O(break_stale), named in the refusal message.
    type: str
    default: deploy_lock_break
  max_age_var:
    description: The variable that sets O(max_age), named in the refusal message.
    type: str
    default: deploy_lock_max_age
  controller:
    description: The controller's host name, recorded in the lock (the action plugin sets it).
    type: str
    default: ""
  controller_pid:
    description: The controller's C(ansible-playbook) process, recorded in the lock (the action plugin sets it).
    type: int
    default: 0
  controller_pid_start:
    description: That process's start time (clock ticks since boot), recorded to tell a reused pid apart.
    type: str
    default: ""
  holder_state:
    description: >-
      What the action plugin proved of the holder, for the refusal's wording: C(dead) (its process on this controller
      is gone), C(alive) (it still runs), or empty (not known: another controller).
    type: str
    choices: ["", dead, alive]
    default: ""
  holder_token:
    description: >-
      The token of the holder that O(holder_state) is about; another holder is worded as unknown. With
      O(holder_state=dead) and O(break_stale=true), that holder's lock (and no other) is broken at any age.
    type: str
    default: ""
  parent_mode:
    description:
      - When set (an octal mode such as C("0755")), the directory that holds the lock is created with this mode when
        it is missing (not in check mode), so a first deploy needs no task of its own for it. Empty, it must exist.
    type: str
    default: ""
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
  description: Whether a stale (or dead) holder's lock was broken.
  returned: state=present
  type: bool
lock_held:
  description: Set when the run was refused because another run holds the lock.
  returned: when refused
  type: bool
refusal:
  description: The first sentence of the refusal (who holds the lock, since when), without the advice.
  returned: when refused
  type: str
stale:
  description: Whether the refusing holder's lock is older than O(max_age).
  returned: when refused
  type: bool
holder_dead:
  description: Set by the action plugin when it proved the refusing holder dead (same controller, process gone).
  returned: when refused
  type: bool
"""

import json
import os
import shutil
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.files import parse_mode

OWNER_FILE = "owner.json"
POLL_S = 2


def read_holder(path):
    try:
        with open(os.path.join(path, OWNER_FILE), encoding="utf-8") as fh:
            holder = json.load(fh)
        if isinstance(holder, dict):
            return holder
    except (OSError, ValueError):
        pass
    # A lock directory without a readable owner file (a run killed between mkdir and writing it): age from the
    # directory itself.
    try:
        epoch = int(os.stat(path).st_mtime)
    except OSError:
        return None
    return {"owner": "unknown", "since": "", "epoch": epoch, "version": "", "message": "", "token": ""}


def holder_age(holder, now):
    try:
        return now - int(holder.get("epoch", now))
    except (TypeError, ValueError):
        return 0


def doing(what, version):
    """', deploying 2.0.0', ', backup sample_app-20261203T010000Z', ', rollback to previous' or ''."""
    if not version:
        return ""
    if what == "deploy":
        return ", deploying %s" % version
    return ", %s" % version if str(version).startswith(what) else ", %s %s" % (what, version)


def refusal(params, holder, age, stale):
    """The one message a refused run shows: who holds the lock, since when, and how to break it."""
    what, path = params["what"], params["path"]
    # What the holder does (a drill refused by a backup's lock names the backup), when the lock says.
    activity = doing(holder.get("what") or what, holder.get("version"))
    proved = params["holder_state"] if params["holder_token"] and holder.get("token") == params["holder_token"] else ""
    where = ""
    if holder.get("controller"):
        where = " (run %s on %s)" % (holder.get("controller_pid") or "?", holder["controller"])
    head = "Refused: the lock %s is held by %s%s since %s (%ss ago)%s%s." % (
        path,
        holder.get("owner", "unknown"),
        where,
        holder.get("since") or "?",
        age,
        activity,
        ": %s" % holder["message"] if holder.get("message") and ", " + holder["message"] != activity else "",
    )
    if proved == "dead":
        return head, (
            "That run is gone: its process %s on this controller (%s) no longer exists. Run again with -e %s=true "
            "to break the lock." % (holder.get("controller_pid") or "?", holder.get("controller") or "?",
                                    params["break_var"]))
    if stale:
        advice = (
            "It is older than %s (%ss), so stale: once that run is known to be gone, run again with -e %s=true "
            "to break it." % (params["max_age_var"], params["max_age"], params["break_var"])
        )
    else:
        advice = (
            "Wait for that run to finish. If it is gone (killed on another machine), the lock is stale after "
            "%s (%ss): then run again with -e %s=true (add -e %s=<seconds> to shorten the wait)." % (
                params["max_age_var"], params["max_age"], params["break_var"], params["max_age_var"])
        )
    if proved == "alive":
        advice += " (Its process %s on this controller is still running.)" % (holder.get("controller_pid") or "?")
    return head, advice


def break_lock(path, expected_token):
    """Move the lock aside and remove it, if what was moved is still the holder judged (its token).

    Two runs breaking the same stale lock: only one rename succeeds. A run that took the lock between our judgement
    and the rename: its token differs, so its lock is put back and not broken.
    """
    tomb = "%s.broken-%s-%s" % (path, os.getpid(), int(time.time() * 1000))
    try:
        os.rename(path, tomb)
    except FileNotFoundError:
        return True  # already gone: someone else broke or released it
    except OSError:
        return False
    moved = read_holder(tomb) or {}
    if (moved.get("token") or "") != (expected_token or ""):
        try:
            os.rename(tomb, path)
        except OSError:
            pass  # a third run took the path meanwhile; the moved lock stays aside for the operator to see
        return False
    shutil.rmtree(tomb, ignore_errors=True)
    return True


def make_parent(module, path, mode):
    """Create the lock's directory with MODE when it is missing; True when it was created."""
    parent = os.path.dirname(path)
    if not mode or module.check_mode or os.path.isdir(parent):
        return False
    try:
        os.makedirs(parent)
        os.chmod(parent, parse_mode(mode))
    except OSError as exc:
        module.fail_json(msg="Cannot create %s for the lock: %s" % (parent, exc))
    return True


def take(module, params):
    path = params["path"]
    created = make_parent(module, path, params["parent_mode"])
    deadline = time.time() + params["wait"]
    broken = False
    while True:
        now = int(time.time())
        info = {
            "owner": params["owner"],
            "since": datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "epoch": now,
            "version": params["version"],
            "message": params["reason"],
            "what": params["what"],
            "token": params["token"],
            "controller": params["controller"],
            "controller_pid": params["controller_pid"],
            "controller_pid_start": params["controller_pid_start"],
        }
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
                # A link (which may lead nowhere: every read fails and the run would retry forever) or a file is
                # not a lock this module took: never read through it, never break it.
                module.fail_json(msg="Cannot take the lock %s (%s): it is %s; expected a lock directory or nothing "
                                 "there" % (path, params["what"], "a symlink" if os.path.islink(path) else "not a directory"),
                                 acquired=False)
            holder = read_holder(path)
            if holder is None:
                continue  # released between mkdir and reading it: try again
            age = holder_age(holder, now)
            if holder.get("token") == params["token"]:
                return dict(changed=created, acquired=True, holder=holder, age=age, broken=broken)
            stale = age > params["max_age"]
            proven_dead = (params["holder_state"] == "dead" and bool(params["holder_token"])
                           and holder.get("token") == params["holder_token"])
            if params["break_stale"] and (stale or proven_dead) and not broken:
                if break_lock(path, holder.get("token")):
                    broken = True
                    continue
            if time.time() < deadline:
                time.sleep(min(POLL_S, max(0.0, deadline - time.time())))
                continue
            head, advice = refusal(params, holder, age, stale)
            module.fail_json(msg="%s %s" % (head, advice), refusal=head, acquired=False, holder=holder, age=age,
                             stale=stale, lock_held=True)
        except OSError as exc:
            module.fail_json(msg="Cannot create the lock %s (%s): %s" % (path, params["what"], exc))
        tmp = os.path.join(path, OWNER_FILE + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(info, fh)
            os.rename(tmp, os.path.join(path, OWNER_FILE))
        except OSError as exc:
            # Left there, a lock without its owner (a full disk) would refuse every run until it went stale.
            shutil.rmtree(path, ignore_errors=True)
            module.fail_json(msg="Cannot take the lock %s (%s): cannot write its owner file: %s"
                             % (path, params["what"], exc.strerror or exc), acquired=False)
        return dict(changed=created, acquired=True, holder=info, age=0, broken=broken)


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
            wait=dict(type="int", default=0),
            what=dict(type="str", default="deploy"),
            break_var=dict(type="str", default="deploy_lock_break"),
            max_age_var=dict(type="str", default="deploy_lock_max_age"),
            controller=dict(type="str", default=""),
            controller_pid=dict(type="int", default=0),
            controller_pid_start=dict(type="str", default=""),
            holder_state=dict(type="str", choices=["", "dead", "alive"], default=""),
            holder_token=dict(type="str", default="", no_log=False),
            parent_mode=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # '<lock>/' names the lock too; kept, its tomb would be '<lock>/.broken-...', a rename into itself.
    params["path"] = params["path"].rstrip("/")
    if not params["path"]:
        module.fail_json(msg="path: '/' is not a lock: expected a lock directory such as /srv/app/.deploy.lock")
    if not params["token"]:
        module.fail_json(msg="token: '' is empty: expected a value unique to this run")
    if params["max_age"] < 1:
        module.fail_json(msg="%s: '%s' is not an age: expected a number of seconds >= 1" % (
            params["max_age_var"], params["max_age"]))
    if params["parent_mode"] and parse_mode(params["parent_mode"]) is None:
        module.fail_json(msg="parent_mode: '%s' is not a mode: expected an octal string such as '0755'"
                         % params["parent_mode"])
    if params["wait"] < 0:
        module.fail_json(msg="wait: '%s' is negative: expected a number of seconds >= 0" % params["wait"])
    if params["state"] == "present":
        result = take(module, params)
    else:
        result = release(module, params)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
