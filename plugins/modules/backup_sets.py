#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_sets
short_description: List shipshape backup sets and decide retention
description:
  - A backup set is a directory C(<id>/) in O(path) holding C(manifest.json) with C(verified=true), as the
    C(shipshape.ops.backup) role writes it. Directories named C(.partial-*) are what a failed or killed run
    left; they never count as backups.
  - Returns the sets newest first, the newest verified one with its manifest and age, and which sets
    retention would delete. It deletes nothing itself.
  - Retention keeps the newest O(keep_last), plus the newest set of each of the last O(keep_daily) days,
    O(keep_weekly) ISO weeks and O(keep_monthly) months, and never the newest verified set.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The backup directory.
    type: path
    required: true
  keep_last:
    description: How many of the newest verified sets to keep.
    type: int
    default: 7
  keep_daily:
    description: Days for which the newest set is kept.
    type: int
    default: 7
  keep_weekly:
    description: ISO weeks for which the newest set is kept.
    type: int
    default: 4
  keep_monthly:
    description: Months for which the newest set is kept.
    type: int
    default: 6
  backup_id:
    description: When set, also return this set as C(selected) (empty when it does not exist or is not verified).
    type: str
    default: ""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Find the newest verified backup
  shipshape.ops.backup_sets:
    path: /var/backups/shipshape
  register: sets

- name: Show it
  ansible.builtin.debug:
    msg: "{{ sets.newest_verified }} is {{ sets.newest_verified_age }}s old"
"""

RETURN = r"""
sets:
  description: Every set, newest first, without manifests.
  returned: always
  type: list
  elements: dict
newest_verified:
  description: Id of the newest verified set, or an empty string.
  returned: always
  type: str
newest_verified_age:
  description: Its age in seconds (from the manifest's C(started_at)), or null.
  returned: always
  type: int
newest_manifest:
  description: Its manifest.
  returned: always
  type: dict
selected:
  description: The manifest of O(backup_id) when that set exists and is verified, else an empty dict.
  returned: always
  type: dict
delete:
  description: Ids that retention would delete.
  returned: always
  type: list
  elements: str
partials:
  description: Names of partial sets left by failed or killed runs.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the listing took on the host (what a restore drill counts as finding the backup).
  returned: always
  type: float
  sample: 0.004
"""

import json
import os
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule


def load_sets(root):
    sets, partials = [], []
    if not os.path.isdir(root):
        return sets, partials
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            continue
        if name.startswith(".partial-"):
            partials.append(name)
            continue
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError):
            manifest = None
        started = (manifest or {}).get("started_at", "")
        try:
            epoch = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            epoch = 0
        sets.append({
            "id": name,
            "path": path,
            "verified": bool(manifest and manifest.get("verified")),
            "started_at": started,
            "epoch": int(epoch),
            "manifest": manifest,
        })
    sets.sort(key=lambda s: (s["epoch"], s["id"]), reverse=True)
    return sets, partials


def retention(sets, keep_last, keep_daily, keep_weekly, keep_monthly):
    """Ids to keep: the newest keep_last, plus the newest of each of the last N days, ISO weeks, months."""
    verified = [s for s in sets if s["verified"]]
    keep = set(s["id"] for s in verified[:keep_last])
    buckets = (
        (keep_daily, lambda d: d.strftime("%Y-%m-%d")),
        (keep_weekly, lambda d: "%d-W%02d" % d.isocalendar()[:2]),
        (keep_monthly, lambda d: d.strftime("%Y-%m")),
    )
    for count, key in buckets:
        seen = []
        for s in verified:  # newest first: the first of each bucket is its newest
            bucket = key(datetime.fromtimestamp(s["epoch"], timezone.utc))
            if bucket in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(bucket)
            keep.add(s["id"])
    if verified:
        keep.add(verified[0]["id"])  # never the newest verified set
    return keep


def summarise(root, keep_last, keep_daily, keep_weekly, keep_monthly, backup_id="", now=None):
    now = int(time.time()) if now is None else now
    sets, partials = load_sets(root)
    keep = retention(sets, keep_last, keep_daily, keep_weekly, keep_monthly)
    verified = [s for s in sets if s["verified"]]
    newest = verified[0] if verified else None
    selected = next((s["manifest"] for s in verified if s["id"] == backup_id), None) if backup_id else None
    return {
        "sets": [dict((k, v) for k, v in s.items() if k != "manifest") for s in sets],
        "newest_verified": newest["id"] if newest else "",
        "newest_verified_age": (now - newest["epoch"]) if newest else None,
        "newest_manifest": newest["manifest"] if newest else {},
        "selected": selected or {},
        # Sets that failed verification never got a manifest with verified=true: they are not kept.
        "delete": [s["id"] for s in sets if s["id"] not in keep],
        "partials": sorted(partials),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            keep_last=dict(type="int", default=7),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            keep_monthly=dict(type="int", default=6),
            backup_id=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["keep_last"] < 1:
        module.fail_json(msg="keep_last must be at least 1, got %d" % p["keep_last"])
    started = time.time()
    result = summarise(p["path"], p["keep_last"], p["keep_daily"], p["keep_weekly"], p["keep_monthly"], p["backup_id"])
    result["elapsed"] = round(time.time() - started, 3)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
