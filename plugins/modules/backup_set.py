#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backup_set
short_description: Seal, verify and make private a shipshape backup set (its sha256 files)
description:
  - The one checksum mechanism of the collection, used by the backup, restore and disaster_recovery roles (and,
    through the same module_utils, by M(shipshape.ops.pg_drill)).
  - A set is the directory O(path). Each part has a C(<file>.sha256) file beside it in the format of
    C(sha256sum) (a directory part lists every regular file under it, sorted bytewise), so sets written by
    earlier releases verify, and C(sha256sum --check) verifies sets written here.
  - O(action=seal) writes the C(.sha256) file of every part of O(parts) and of every file of O(files), re-reads
    them, checks that each part is readable by its own tool (C(pg_restore --list) for the C(custom) and
    C(directory) formats of the C(postgres) part, C(gzip --test) or C(zstd --test) for a compressed plain dump,
    C(tar --list) for the C(files) part, the C(REDIS) header of the C(redis) part), and returns each part's
    sha256 and size.
  - O(action=verify) re-reads every part and the deploy history that the set's manifest (or O(manifest)) lists
    and reports each mismatch by part and file. A name in the manifest or in a C(.sha256) file that is absolute,
    contains C(..), or resolves outside O(path) is refused and reported; nothing outside the set is ever read.
  - O(action=private) gives every file and directory of the set to O(owner) and O(group) (when given) with modes
    C(0600) and C(0700) (C(chmod -R u=rwX,go=)); symlinks are neither followed nor changed, each file is changed
    through a descriptor opened without following links, and a regular file with more than one hard link (which may
    be a file outside the set) fails the module naming it and is left as it is.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  action:
    description: What to do with the set.
    type: str
    required: true
    choices: [seal, verify, private]
  path:
    description: The set's directory.
    type: path
    required: true
  parts:
    description:
      - For O(action=seal), the parts, by name, each a dict with C(file) (relative to O(path)) and, for the
        C(postgres) part, C(format) (C(custom), C(directory) or C(plain)) and C(compression) (C(gzip), C(zstd) or
        C(none)). Other keys are ignored.
    type: dict
    default: {}
  files:
    description: For O(action=seal), files of the set that are not parts (the deploy history) to write a C(.sha256) for.
    type: list
    elements: str
    default: []
  manifest:
    description:
      - For O(action=verify), the manifest to check the set against (C(parts), and C(deploy_history) when set).
        Empty to read C(manifest.json) of the set.
    type: dict
    default: {}
  fail_on_mismatch:
    description:
      - For O(action=verify), fail when a part does not check. With V(false) the module returns RV(ok) and
        RV(problems) and the caller words the failure; it still fails on an unreadable manifest.
    type: bool
    default: true
  owner:
    description: For O(action=private), the owner to give every file (empty to keep the owners).
    type: str
    default: ""
  group:
    description: For O(action=private), the group to give every file (empty to keep the groups).
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    details: O(action=seal) computes the sums and writes nothing; O(action=private) reports what it would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
seealso:
  - module: shipshape.ops.backup_sets
  - module: shipshape.ops.pg_drill
"""

EXAMPLES = r"""
- name: Write and check the sha256 files of a new set
  shipshape.ops.backup_set:
    action: seal
    path: /var/backups/shipshape/.partial-sample_app-20261125T030000Z
    parts:
      postgres: {file: postgres.dump, format: custom, compression: gzip}
      redis: {file: redis.rdb}
    files: [deploy-history.jsonl]
  register: sealed

- name: Re-read a set before restoring it (a mismatch is reported, the caller stops)
  shipshape.ops.backup_set:
    action: verify
    path: /var/backups/shipshape/sample_app-20261125T030000Z
    fail_on_mismatch: false
  register: checked

- name: Make the set private to the backup user
  shipshape.ops.backup_set:
    action: private
    path: /var/backups/shipshape/sample_app-20261125T030000Z
    owner: postgres
    group: postgres
"""

RETURN = r"""
parts:
  description:
    - For O(action=seal), per part name, C(sha256) (of the file, or of the listing of a directory part), C(size)
      in bytes (as C(du -sb)) and C(sha256_file).
    - For O(action=verify), per part name (and C(deploy_history)), C(file), C(sha256_file), C(actual) (the sha256
      now, C(missing) or C(refused)), C(listed_ok) (its C(.sha256) file checks), C(ok) and C(problems).
  returned: success
  type: dict
  sample: {"postgres": {"sha256": "9f86d0...", "size": 20480, "sha256_file": "postgres.dump.sha256"}}
files:
  description: For O(action=seal), per file of O(files), C(sha256), C(size) and C(sha256_file).
  returned: success
  type: dict
readable:
  description: For O(action=seal), per part, how it was found readable (the command that read it, or C(header)).
  returned: success
  type: dict
  sample: {"postgres": "pg_restore --list", "redis": "header"}
ok:
  description: For O(action=verify), whether every part checked.
  returned: success
  type: bool
problems:
  description: "For O(action=verify), one line per problem: C(<part> (<file>): <what>)."
  returned: always
  type: list
  elements: str
  sample: ["postgres (postgres.dump): postgres.dump.sha256: postgres.dump FAILED (sha256 1f2e..., listed 9f86...)"]
paths:
  description: For O(action=private), the paths whose owner or mode changed (or would change, in check mode).
  returned: success
  type: list
  elements: str
"""

import grp
import json
import os
import pwd
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import checksums


def _readable(module, set_dir, name, part):
    """How part ``name`` was read by its own tool; fails the module when it cannot be."""
    path = checksums.member(set_dir, part["file"])
    cmd = None
    if name == "postgres":
        fmt = part.get("format") or "custom"
        compression = part.get("compression") or "none"
        if fmt in ("custom", "directory"):
            cmd = ["pg_restore", "--list", path]
        elif compression == "gzip":
            cmd = ["gzip", "--test", path]
        elif compression == "zstd":
            cmd = ["zstd", "-q", "--test", path]
    elif name == "files":
        cmd = ["tar", "--list", "--gzip", "--file", path]
    elif name == "redis":
        with checksums.open_regular(path) as fh:
            if fh.read(5) != b"REDIS":
                module.fail_json(msg="parts: the redis part %s does not start with the REDIS header" % part["file"])
        return "header"
    if cmd is None:
        return "checksum only"
    rc, dummy, err = module.run_command(cmd, cwd=set_dir)
    if rc != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        module.fail_json(msg="parts: the %s part %s is not readable by %s (rc %s): %s" % (name, part["file"], cmd[0], rc, tail))
    return " ".join(cmd[:-1])


def seal(module, p):
    set_dir = p["path"]
    if not p["parts"]:
        module.fail_json(msg="parts: action=seal needs at least one part, got none")
    out = dict(changed=not module.check_mode, parts={}, files={}, readable={}, problems=[])
    entries = [("parts", name, part) for name, part in sorted(p["parts"].items())]
    entries += [("files", name, {"file": name}) for name in p["files"]]
    for kind, name, part in entries:
        if not isinstance(part, dict) or not isinstance(part.get("file"), str) or not part["file"]:
            module.fail_json(msg="%s: %s has no file, expected a dict with file (got %r)" % (kind, name, part))
        try:
            if module.check_mode:
                text = checksums.listing(set_dir, part["file"])
                sums = {"sha256": checksums.part_sha256(set_dir, part["file"], text),
                        "size": checksums.size(set_dir, part["file"]), "sha256_file": part["file"] + checksums.SUFFIX}
            else:
                sums = checksums.write(set_dir, part["file"])
                problems = checksums.check_listed(set_dir, sums["sha256_file"])
                if problems:
                    module.fail_json(msg="%s: %s did not re-read as written: %s" % (kind, name, "; ".join(problems)))
        except checksums.Refused as exc:
            module.fail_json(msg="%s: %s file %r refused: %s" % (kind, name, part["file"], exc))
        except OSError as exc:
            module.fail_json(msg="%s: %s file %r cannot be read: %s" % (kind, name, part["file"], exc))
        out[kind][name] = sums
        if kind == "parts":
            out["readable"][name] = _readable(module, set_dir, name, part)
    return out


def verify(module, p):
    set_dir = p["path"]
    manifest = p["manifest"]
    if not manifest:
        try:
            with checksums.open_regular(checksums.member(set_dir, "manifest.json"), "r", encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError, checksums.Refused) as exc:
            module.fail_json(msg="path: the set %s has no readable manifest.json (%s)" % (set_dir, exc), problems=[])
    try:
        results = checksums.verify_manifest(set_dir, manifest)
    except checksums.Refused as exc:
        module.fail_json(msg="manifest: the set %s cannot be checked: %s" % (set_dir, exc), problems=[])
    problems = ["%s (%s): %s" % (r["name"], r["file"], problem) for r in results for problem in r["problems"]]
    out = dict(changed=False, ok=not problems, problems=problems, parts=dict((r["name"], r) for r in results))
    if problems and p["fail_on_mismatch"]:
        module.fail_json(msg="The set %s failed its checksum check: %s" % (set_dir, "; ".join(problems)), **out)
    return out


def private(module, p):
    uid = gid = -1
    if p["owner"]:
        try:
            uid = pwd.getpwnam(p["owner"]).pw_uid
        except KeyError:
            module.fail_json(msg="owner: no user %r on this host" % p["owner"])
    if p["group"]:
        try:
            gid = grp.getgrnam(p["group"]).gr_gid
        except KeyError:
            module.fail_json(msg="group: no group %r on this host" % p["group"])
    paths = checksums.make_private(p["path"], uid, gid, check_mode=module.check_mode)
    return dict(changed=bool(paths), paths=paths, problems=[])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["seal", "verify", "private"]),
            path=dict(type="path", required=True),
            parts=dict(type="dict", default={}),
            files=dict(type="list", elements="str", default=[]),
            manifest=dict(type="dict", default={}),
            fail_on_mismatch=dict(type="bool", default=True),
            owner=dict(type="str", default=""),
            group=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isdir(p["path"]) or os.path.islink(p["path"]):
        module.fail_json(msg="path: %s is not a directory (expected the backup set's directory)" % p["path"], problems=[])
    try:
        result = {"seal": seal, "verify": verify, "private": private}[p["action"]](module, p)
    except (OSError, checksums.Refused) as exc:
        module.fail_json(msg="%s of %s failed: %s" % (p["action"], p["path"], exc), problems=[], exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
