#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_layout
short_description: Say how an app host's service account and app root differ from what they should be
description:
  - Reads, in one run, what the app_host role makes. The service group; the service user with its primary group,
    shell and home; the app root with C(releases/) and C(shared/), owned by root and the service group, with
    O(root_mode); the directories under C(shared/) that the service writes to, owned by the service user and group,
    with O(shared_mode).
  - Returns each difference as a sentence in RV(drift); an empty list means everything is in place, so the role
    skips the tasks that would create or fix them (a deploy then costs one module run here instead of one per user,
    group and directory).
  - Changes nothing.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description: The app root (an absolute path).
    type: path
    required: true
  user:
    description: The service user.
    type: str
    required: true
  group:
    description: The service group (the user's primary group).
    type: str
    required: true
  shell:
    description: The service user's shell.
    type: str
    default: /usr/sbin/nologin
  shared_dirs:
    description: The directories under C(<root>/shared) that the service writes to (one path component each).
    type: list
    elements: str
    default: []
  root_mode:
    description: The mode of the app root, C(releases/) and C(shared/) (octal).
    type: str
    default: "0755"
  shared_mode:
    description: The mode of each of O(shared_dirs) (octal).
    type: str
    default: "0750"
attributes:
  check_mode:
    support: full
    details: Reads only; runs the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Look at the service account and the app root
  shipshape.ops.app_layout:
    root: /srv/sample_app
    user: sample_app
    group: sample_app
    shared_dirs: [log, uploads]
  register: layout

- name: Create what is missing
  ansible.builtin.include_tasks: layout.yml
  when: layout.drift | length > 0
"""

RETURN = r"""
drift:
  description: What differs from the expected account and directories, one sentence each; empty when all is in place.
  returned: always
  type: list
  elements: str
  sample: ["user sample_app does not exist", "/srv/sample_app/shared/log: mode 0755, expected 0750"]
"""

import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.files import parse_mode
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import path_problem


def account_drift(user, group, shell, home):
    """(uid, gid, what differs) of the service user and group; an id is None when its account is missing."""
    drift = []
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = None
        drift.append("group %s does not exist" % group)
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None, gid, drift + ["user %s does not exist" % user]
    if gid is not None and entry.pw_gid != gid:
        drift.append("user %s: primary group id %d, expected %s's %d" % (user, entry.pw_gid, group, gid))
    if entry.pw_shell != shell:
        drift.append("user %s: shell %s, expected %s" % (user, entry.pw_shell, shell))
    if os.path.normpath(entry.pw_dir) != home:
        drift.append("user %s: home %s, expected %s" % (user, entry.pw_dir, home))
    return entry.pw_uid, gid, drift


def directory_drift(path, uid, gid, mode):
    """What differs in one directory: it must be a real directory (not a link) with this owner, group and mode."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return ["%s does not exist" % path]
    if not stat.S_ISDIR(st.st_mode):
        return ["%s is not a directory" % path]
    drift = []
    if uid is not None and st.st_uid != uid:
        drift.append("%s: owner id %d, expected %d" % (path, st.st_uid, uid))
    if gid is not None and st.st_gid != gid:
        drift.append("%s: group id %d, expected %d" % (path, st.st_gid, gid))
    if stat.S_IMODE(st.st_mode) != mode:
        drift.append("%s: mode %04o, expected %04o" % (path, stat.S_IMODE(st.st_mode), mode))
    return drift


def layout_drift(root, user, group, shell, shared_dirs, root_mode, shared_mode):
    uid, gid, drift = account_drift(user, group, shell, root)
    for path in (root, os.path.join(root, "releases"), os.path.join(root, "shared")):
        drift += directory_drift(path, 0, gid, root_mode)
    for name in shared_dirs:
        drift += directory_drift(os.path.join(root, "shared", name), uid, gid, shared_mode)
    return drift


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            user=dict(type="str", required=True),
            group=dict(type="str", required=True),
            shell=dict(type="str", default="/usr/sbin/nologin"),
            shared_dirs=dict(type="list", elements="str", default=[]),
            root_mode=dict(type="str", default="0755"),
            shared_mode=dict(type="str", default="0750"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    why = path_problem(params["root"])
    if why:
        module.fail_json(msg="app_layout: root '%s' %s" % (params["root"], why))
    root = os.path.normpath(params["root"])
    modes = dict((name, parse_mode(params[name])) for name in ("root_mode", "shared_mode"))
    for name, mode in modes.items():
        if mode is None:
            module.fail_json(msg="app_layout: %s '%s' must be an octal mode such as 0755" % (name, params[name]))
    for name in params["shared_dirs"]:
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            module.fail_json(msg="app_layout: shared_dirs entry '%s' must be one path component" % name)
    drift = layout_drift(root, params["user"], params["group"], params["shell"], params["shared_dirs"],
                         modes["root_mode"], modes["shared_mode"])
    module.exit_json(changed=False, drift=drift)


if __name__ == "__main__":
    main()
