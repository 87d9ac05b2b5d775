#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_history
short_description: Append to or read an app's deploy history (JSON lines)
description:
  - The deploy history of an app on a host is a JSON-lines file; each deploy or rollback appends one record
    (who, when, from, to, result, duration).
  - Reading it returns the records and the previous good release, which is what a rollback goes back to
    (from history, never from file times), and the rollback that put the current release in place when nothing
    has been switched since (so a second rollback right after the first one changes nothing).
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The history file.
    type: path
    required: true
  action:
    description: C(append) adds O(record); C(read) returns the history.
    type: str
    choices: [append, read]
    default: read
  record:
    description: The record to append. C(at) is filled in when missing.
    type: dict
    default: {}
  report_change:
    description:
      - Whether an append reports a change. A deploy that changed nothing still records its run, without
        reporting a change.
    type: bool
    default: true
  current:
    description:
      - With O(action=read), the release running now. C(previous_good) is the newest other release that a
        successful deploy or rollback switched to, leaving out any release a rollback moved away from (or set out
        to, by its C(started) record), unless a successful deploy switched to it again after that rollback.
    type: str
    default: ""
  exclude:
    description: With O(action=read), release ids never to return as C(previous_good) (for example failed ones).
    type: list
    elements: str
    default: []
  limit:
    description: With O(action=read), how many of the newest records to return (0 for all).
    type: int
    default: 50
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record a deploy
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    action: append
    record: {kind: deploy, user: alice, from: 1.0.0-ab12cd34, to: 2.0.0-ef56ab78, result: success, duration_s: 42}

- name: Find the previous good release
  shipshape.ops.release_history:
    path: /srv/sample_app/deploy-history.jsonl
    current: 2.0.0-ef56ab78
  register: history
"""

RETURN = r"""
entries:
  description: The newest records, oldest first.
  returned: action=read
  type: list
  elements: dict
previous_good:
  description: The release to roll back to, or an empty string when the history names none.
  returned: action=read
  type: str
rollback_in_effect:
  description:
    - With O(action=read), the record of the rollback that switched to O(current), when no successful deploy or
      rollback has switched since (a rollback retried right after it finds this and changes nothing); else C({}).
      A rollback whose release then failed its health gate (C(unhealthy)) counts, since it switched.
      So does a rollback's C(started) record (written before its switch) when O(current) is its target - the rollback
      was stopped after its switch, and a retry finishes it rather than going one release further back.
  returned: action=read
  type: dict
  sample: {"kind": "rollback", "from": "2.0.0-ef56ab78", "to": "1.0.0-ab12cd34", "result": "success",
           "user": "alice@laptop", "at": "2026-12-02T15:00:00Z"}
record:
  description: The record appended.
  returned: action=append
  type: dict
"""

import json
import os
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

GOOD = ("success",)
# A rollback records its intent (from, to) before it switches; its outcome follows as a second record.
STARTED = "started"


def read_entries(path):
    entries = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue  # a torn last line from a killed run must not hide the rest
    except FileNotFoundError:
        pass
    return entries


def previous_good(entries, current, exclude):
    """The newest release a successful run switched to, other than current, the excluded ones, and any
    release a rollback moved away from (it was live and found wanting) unless a successful deploy has
    switched to it again since."""
    rolled_back_from = set()
    for entry in entries:
        if entry.get("kind") == "rollback" and entry.get("result") == STARTED:
            # a rollback that may have been killed after its switch: what it left is never a retry's target
            rolled_back_from.add(entry.get("from"))
        if entry.get("result") not in GOOD:
            continue
        if entry.get("kind") == "rollback":
            rolled_back_from.add(entry.get("from"))
        elif entry.get("kind") == "deploy":
            rolled_back_from.discard(entry.get("to"))
    skip = set(exclude) | rolled_back_from | {current}
    for entry in reversed(entries):
        target = entry.get("to") or ""
        if entry.get("result") in GOOD and target and target not in skip:
            return target
    return ""


def rollback_in_effect(entries, current):
    """The rollback record that switched to CURRENT, if the newest run that switched anything is that rollback; a
    rollback's 'started' record when it was stopped after its switch (CURRENT is its target), so a retry finishes it
    instead of going one release further back."""
    if not current:
        return {}
    for entry in reversed(entries):
        rollback = entry.get("kind") == "rollback"
        if rollback and entry.get("result") == STARTED and entry.get("to") != current:
            continue  # stopped before its switch: what runs did not change
        switched = entry.get("result") in GOOD or (rollback and entry.get("result") in ("unhealthy", STARTED))
        if not switched:
            continue  # unchanged, refused, rolled back by the deploy itself: what runs did not change
        if entry.get("kind") == "rollback" and entry.get("to") == current:
            return entry
        return {}
    return {}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            action=dict(type="str", choices=["append", "read"], default="read"),
            record=dict(type="dict", default={}),
            report_change=dict(type="bool", default=True),
            current=dict(type="str", default=""),
            exclude=dict(type="list", elements="str", default=[]),
            limit=dict(type="int", default=50),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["action"] == "read":
        entries = read_entries(p["path"])
        newest = entries[-p["limit"]:] if p["limit"] else entries
        module.exit_json(changed=False, entries=newest, previous_good=previous_good(entries, p["current"], p["exclude"]),
                         rollback_in_effect=rollback_in_effect(entries, p["current"]))

    record = dict(p["record"])
    record.setdefault("at", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if not module.check_mode:
        directory = os.path.dirname(p["path"])
        if directory and not os.path.isdir(directory):
            module.fail_json(msg="The history directory %s does not exist" % directory)
        line = json.dumps(record, sort_keys=True) + "\n"
        fd = os.open(p["path"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
    module.exit_json(changed=p["report_change"], record=record)


if __name__ == "__main__":
    main()
