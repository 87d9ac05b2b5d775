#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_sets
short_description: List shipshape backup sets and decide retention
description:
  - A backup set is a directory C(<id>/) in O(path) (never a symlink) holding a regular file (not a symlink) C(manifest.json) with
    C(verified) JSON V(true), as the C(shipshape.ops.backup) role writes it. Directories named C(.partial-*) are what a failed or killed run
    left; they never count as backups.
  - Returns the sets newest first, the newest verified one with its manifest and age, and which sets
    retention would delete. It deletes nothing itself.
  - Retention keeps the newest O(keep_last), plus the newest set of each of the last O(keep_daily) days,
    O(keep_weekly) ISO weeks and O(keep_monthly) months, and never the newest verified set.
  - With O(name), only the sets of that name count, and retention only ever names them. A set of that name
    is a directory C(<name>-<YYYYmmddTHHMMSSZ>) whose C(manifest.json) names O(name). Other apps' sets,
    directories without such a manifest and other names' partial sets are returned in C(foreign) and
    never in C(delete) or C(partials).
  - Without O(name), every set is listed and C(delete) and C(partials) are empty, since nothing may be deleted
    without knowing whose sets these are.
  - Sets are namespaced by their name (one database or app each). C(names) lists the names of the verified sets in
    O(path). With O(choose_name) and no O(name) (what restores and drills do), the name is chosen for the caller
    rather than guessed - O(backup_id)'s name when given, else the only name there is - and newest, selection and
    the listing are that name's; with several names and neither O(name) nor O(backup_id), the module fails listing
    the names (C(name_required=true)), naming O(name_option) as the way to choose.
  - Every option is validated (an absolute O(path) without C(..), a O(name) and O(backup_id) that are one
    path component, keep counts that are not negative) and a bad value fails naming the option and the value.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The backup directory (absolute, without C(..)).
    type: path
    required: true
  name:
    description:
      - The backup name (the C(shipshape.ops.backup) role's C(backup_name)) whose sets are listed and retained.
      - One path component, C([A-Za-z0-9][A-Za-z0-9._+-]*) up to 100 characters, without C(..).
      - Empty lists every set and never proposes a deletion.
    type: str
    default: ""
  keep_last:
    description: How many of the newest verified sets to keep (at least 1).
    type: int
    default: 7
  keep_daily:
    description: Days for which the newest set is kept (0 or more).
    type: int
    default: 7
  keep_weekly:
    description: ISO weeks for which the newest set is kept (0 or more).
    type: int
    default: 4
  keep_monthly:
    description: Months for which the newest set is kept (0 or more).
    type: int
    default: 6
  backup_id:
    description:
      - When set, also return this set as C(selected) (empty when it does not exist or is not verified).
      - One path component, C([A-Za-z0-9][A-Za-z0-9._+-]*) up to 128 characters, without C(..).
    type: str
    default: ""
  choose_name:
    description:
      - Without O(name), choose the name whose sets count (see the description), and refuse to guess between
        several names.
    type: bool
    default: false
  name_option:
    description: How the caller chooses a name, shown in the refusal (for example C(--name or restore_backup_name)).
    type: str
    default: name
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

- name: Decide retention for the sets of sample_app only
  shipshape.ops.backup_sets:
    path: /var/backups/shipshape
    name: sample_app
    keep_last: 3
  register: retained
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
  description: Ids that retention would delete, only sets of O(name); empty without O(name).
  returned: always
  type: list
  elements: str
partials:
  description:
    - Names of partial sets of O(name) (C(.partial-<name>-<YYYYmmddTHHMMSSZ>)); empty without O(name).
    - Only a run that holds the backup lock of O(name) may remove them (no other run of that name is then
      writing one).
  returned: always
  type: list
  elements: str
foreign:
  description: The symlinks in O(path), and with O(name) the entries that are not sets or partial sets of O(name)
    (other apps' sets, directories without a manifest naming O(name), other partial sets); they are never touched.
  returned: always
  type: list
  elements: str
name:
  description: The name whose sets were listed (O(name), or the one O(choose_name) chose); empty for every set.
  returned: always
  type: str
  sample: sample_app
names:
  description: The names of the verified sets in O(path) (each manifest's C(name)), sorted.
  returned: always
  type: list
  elements: str
  sample: [ledger, sample_app]
name_required:
  description: True when the module failed because several names are there and none was chosen.
  returned: failure
  type: bool
elapsed:
  description: Seconds the listing took on the host (what a restore drill counts as finding the backup).
  returned: always
  type: float
  sample: 0.004
"""

import json
import os
import re
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.checksums import open_regular

# One path component: what a backup name and a backup id may be.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
STAMP = r"-[0-9]{8}T[0-9]{6}Z"


def check_params(p):
    """The first bad option as one line naming it, its value and what was expected; None when all are good."""
    path = p["path"]
    if not os.path.isabs(path) or ".." in path.split("/"):
        return "path must be an absolute path without '..', got %r" % path
    if p["name"] and (not NAME_RE.match(p["name"]) or ".." in p["name"]):
        return ("name must be one path component ([A-Za-z0-9][A-Za-z0-9._+-]*, at most 100 characters, "
                "no '..'), got %r" % p["name"])
    if p["backup_id"] and (not ID_RE.match(p["backup_id"]) or ".." in p["backup_id"]):
        return ("backup_id must be one path component ([A-Za-z0-9][A-Za-z0-9._+-]*, at most 128 characters, "
                "no '..'), got %r" % p["backup_id"])
    if p["keep_last"] < 1:
        return "keep_last must be at least 1, got %d" % p["keep_last"]
    for key in ("keep_daily", "keep_weekly", "keep_monthly"):
        if p[key] < 0:
            return "%s must be 0 or more, got %d" % (key, p[key])
    return None


def read_manifest(path):
    try:
        # A FIFO named manifest.json would hang the listing: regular files only. A symlink is not followed: one to a
        # JSON file outside the set (a secret) would be returned as the set's manifest.
        with open_regular(os.path.join(path, "manifest.json"), "r", follow=False, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def set_names(root):
    """The names of the verified sets in root (their manifests' name), sorted."""
    names = set()
    if not os.path.isdir(root):
        return []
    for entry in os.listdir(root):
        path = os.path.join(root, entry)
        if entry.startswith(".") or os.path.islink(path) or not os.path.isdir(path):
            continue
        manifest = read_manifest(path)
        if manifest and manifest.get("verified") is True and isinstance(manifest.get("name"), str) and manifest["name"]:
            names.add(manifest["name"])
    return sorted(names)


def choose(root, name, backup_id, name_option):
    """(name, problem): the name whose sets a restore or drill uses, never a guess between several."""
    if name:
        return name, None
    names = set_names(root)
    if backup_id:
        manifest = {} if os.path.islink(os.path.join(root, backup_id)) else read_manifest(os.path.join(root, backup_id)) or {}
        return (manifest.get("name") or "") if isinstance(manifest.get("name"), str) else "", None
    if len(names) > 1:
        return "", "several backups in %s: %s; choose one with %s" % (root, ", ".join(names), name_option)
    return (names[0] if names else ""), None


def load_sets(root, name=None):
    """(sets, partials, foreign). With a name, only that name's sets and partials; everything else is foreign."""
    sets, partials, foreign = [], [], []
    if not os.path.isdir(root):
        return sets, partials, foreign
    own_set = re.compile("^" + re.escape(name) + STAMP + "$") if name else None
    own_partial = re.compile(r"^\.partial-" + re.escape(name) + STAMP + "$") if name else None
    for entry in sorted(os.listdir(root)):
        path = os.path.join(root, entry)
        if not os.path.isdir(path):
            continue
        if os.path.islink(path):
            # A link is never a set, of any name: retention would follow it, and a restore, a drill or a disaster
            # recovery choosing it (newest, or by id) would read a directory outside the backup directory.
            foreign.append(entry)
            continue
        if entry.startswith(".partial-"):
            if own_partial is None or own_partial.match(entry):
                partials.append(entry)
            else:
                foreign.append(entry)
            continue
        if entry.startswith("."):
            continue
        manifest = read_manifest(path)
        if own_set is not None and not (own_set.match(entry) and manifest is not None and manifest.get("name") == name):
            foreign.append(entry)
            continue
        started = (manifest or {}).get("started_at", "")
        try:
            epoch = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except (TypeError, ValueError):
            epoch = 0
        sets.append({
            "id": entry,
            "name": (manifest or {}).get("name", ""),
            "path": path,
            "verified": bool(manifest) and manifest.get("verified") is True,  # JSON true, not "false" or 1
            "started_at": started,
            "epoch": int(epoch),
            "manifest": manifest,
        })
    sets.sort(key=lambda s: (s["epoch"], s["id"]), reverse=True)
    return sets, partials, foreign


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


def summarise(root, keep_last, keep_daily, keep_weekly, keep_monthly, backup_id="", now=None, name=None):
    """The listing and the retention decision. name=None (the library's default) considers every directory
    with a manifest.json; the module passes the name, and without one proposes no deletion (see main)."""
    now = int(time.time()) if now is None else now
    sets, partials, foreign = load_sets(root, name or None)
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
        # Only shipshape sets (a manifest.json) are ever proposed; those that failed verification never got
        # verified=true and are not kept.
        "delete": [s["id"] for s in sets if s["id"] not in keep and s["manifest"] is not None],
        "partials": sorted(partials),
        "foreign": sorted(foreign),
        "name": name or "",
        "names": set_names(root),
    }


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            name=dict(type="str", default=""),
            keep_last=dict(type="int", default=7),
            keep_daily=dict(type="int", default=7),
            keep_weekly=dict(type="int", default=4),
            keep_monthly=dict(type="int", default=6),
            backup_id=dict(type="str", default=""),
            choose_name=dict(type="bool", default=False),
            name_option=dict(type="str", default="name"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problem = check_params(p)
    if problem:
        module.fail_json(msg=problem)
    started = time.time()
    name = p["name"]
    if p["choose_name"]:
        name, problem = choose(p["path"], name, p["backup_id"], p["name_option"])
        if problem:
            module.fail_json(msg=problem, names=set_names(p["path"]), name_required=True)
    keep = (p["path"], p["keep_last"], p["keep_daily"], p["keep_weekly"], p["keep_monthly"], p["backup_id"])
    result = summarise(*keep, name=name or None)
    if p["choose_name"] and p["backup_id"] and not result["selected"] and name:
        # A set chosen by id is found even when its directory is not named <name>-<time> (a copy, a rename) as long
        # as its manifest names this name: the id says which set; the newest of its name comes from that name's sets.
        every = summarise(*keep, name=None)
        if every["selected"].get("name") == name:
            result["selected"] = every["selected"]
            result["sets"] += [x for x in every["sets"] if x["id"] == p["backup_id"]]
    if not p["name"]:
        # Whose sets these are is unknown: nothing is proposed for deletion.
        result["delete"], result["partials"] = [], []
    result["elapsed"] = round(time.time() - started, 3)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
