#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Write several small files, rendered on the controller, in one module run
description:
  - Writes each file of O(files) with the given content, mode, owner and group, in one module run (instead of two
    per file with M(ansible.builtin.template)). Render the content on the controller, for example with
    C(lookup('ansible.builtin.template', ...)).
  - A file whose content, mode, owner and group are already as given is left alone. A file whose content differs is
    replaced atomically by a temp file in the same directory that is given its mode and owner before the content is
    written, so a secret is never readable by others, not even briefly. A file whose mode or owner alone differs is
    fixed in place.
  - Every entry is checked before anything is written; one invalid entry fails the run and no file is written.
  - Never follows a symlink at a path, and never creates a directory.
  - The content is never returned (it may hold secrets).
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  files:
    description: The files to write. Each path at most once.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The file, an absolute path. Its directory must exist; a symlink or a non-regular file there fails.
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description:
          - The file's mode, an octal string such as C("0644") or C("0600") (C(0?[0-7]{3}), nothing else).
          - Quote it; an unquoted C(0640) is read by YAML as the number 416, which is refused.
        type: raw
        required: true
      owner:
        description: The user that owns the file (a name).
        type: str
        default: root
      group:
        description: The group of the file (a name).
        type: str
        default: root
  others:
    description:
      - A shell-style pattern of absolute paths (for example C(/etc/systemd/system/app.worker-*.service)) naming the
        files of this kind that a caller owns. The files matching it that are not in O(files) are returned in
        RV(others), so that the caller can retire them (stop a unit, then remove its file). They are never touched
        here.
    type: str
    default: ''
attributes:
  check_mode:
    support: full
    details: Reports which files would change; writes nothing.
  diff_mode:
    support: none
    details: The contents may be secrets, so no diff is shown.
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Write the service's units and environment file
  shipshape.ops.config_files:
    files:
      - path: /etc/systemd/system/sample_app.service
        content: "{{ lookup('ansible.builtin.template', 'app.service.j2') }}"
        mode: "0644"
      - path: /etc/systemd/system/sample_app.socket
        content: "{{ lookup('ansible.builtin.template', 'app.socket.j2') }}"
        mode: "0644"
      - path: /etc/sample_app/sample_app.env
        content: "{{ lookup('ansible.builtin.template', 'app.env.j2') }}"
        mode: "0600"
        owner: root
        group: sample_app
  register: release_files_result

- name: Reload systemd when a unit changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: release_files_result.changed_paths | select('match', '/etc/systemd/') | list | length > 0
"""

RETURN = r"""
files:
  description: One entry per file of O(files), in the same order. Never the content.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    changed:
      description: Whether the file was (or, in check mode, would be) created or changed.
      type: bool
    created:
      description: Whether the file did not exist.
      type: bool
    content_changed:
      description: Whether the content was (or would be) written.
      type: bool
    attributes_changed:
      description: Whether the mode, owner or group differed (on a created file, always false).
      type: bool
  sample:
    - {"path": "/etc/sample_app/sample_app.env", "changed": true, "created": false, "content_changed": true,
       "attributes_changed": false}
others:
  description: The paths matching O(others) that are not in O(files), sorted; empty without O(others).
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/system/sample_app.worker-mailer.service"]
changed_paths:
  description: The paths of the files that changed (or would), in the order of O(files).
  returned: always
  type: list
  elements: str
  sample: ["/etc/sample_app/sample_app.env"]
"""

import glob
import grp
import os
import pwd
import stat
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.files import parse_mode, write_atomically


class Invalid(Exception):
    pass


def resolve_ids(entry, what):
    try:
        uid = pwd.getpwnam(entry["owner"]).pw_uid
    except (KeyError, TypeError):
        raise Invalid("%s: owner '%s' is not a user on this host; expected an existing user name"
                      % (what, entry["owner"]))
    try:
        gid = grp.getgrnam(entry["group"]).gr_gid
    except (KeyError, TypeError):
        raise Invalid("%s: group '%s' is not a group on this host; expected an existing group name"
                      % (what, entry["group"]))
    return uid, gid


def validate(files):
    """Each entry as {path, data, mode, uid, gid}; Invalid naming the first bad entry, before anything is written."""
    wanted, seen = [], set()
    for index, entry in enumerate(files):
        path, mode = entry["path"], entry["mode"]
        what = "files[%d] (%s)" % (index, path)
        if not os.path.isabs(path) or path.endswith("/"):
            raise Invalid("%s: path '%s' is not an absolute path to a file; expected one such as /etc/app.env"
                          % (what, path))
        if path in seen:
            raise Invalid("%s: path '%s' is listed twice; expected each path once" % (what, path))
        seen.add(path)
        # Only a string: YAML reads an unquoted 0640 as the number 416, which would pass as mode 0416.
        if not isinstance(mode, str):
            raise Invalid("%s: mode %r is not a string (YAML reads an unquoted 0640 as the number 416); expected a "
                          "quoted octal string such as '0644' or '0600'" % (what, mode))
        bits = parse_mode(mode)
        if bits is None:
            raise Invalid("%s: mode %r is not valid; expected an octal string such as '0644' or '0600'" % (what, mode))
        if not isinstance(entry["content"], str):
            raise Invalid("%s: content is %s; expected a string" % (what, type(entry["content"]).__name__))
        uid, gid = resolve_ids(entry, what)
        if not os.path.isdir(os.path.dirname(path)):
            raise Invalid("%s: directory '%s' does not exist; expected an existing directory (none is created)"
                          % (what, os.path.dirname(path)))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise Invalid("%s: cannot stat '%s': %s" % (what, path, err))
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise Invalid("%s: '%s' is %s; expected a regular file or no file (symlinks are never followed)"
                          % (what, path, kind))
        wanted.append(dict(path=path, data=entry["content"].encode("utf-8"), mode=bits, uid=uid, gid=gid))
    return wanted


def find_others(pattern, paths):
    """The paths matching PATTERN (a glob of absolute paths) that are not in PATHS, sorted."""
    if not pattern:
        return []
    if not os.path.isabs(pattern) or "\x00" in pattern:
        raise Invalid("others: '%s' is not an absolute path pattern; expected one such as /etc/app.d/*.conf" % pattern)
    return sorted(set(glob.glob(pattern)) - set(paths))


def compare(want):
    """(created, content_changed, attributes_changed) of the file as it stands."""
    try:
        fd = os.open(want["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return True, True, False
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        data = fh.read(len(want["data"]) + 1)  # one byte more tells a longer file apart
    attributes = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (want["mode"], want["uid"], want["gid"])
    return False, data != want["data"], attributes


def fix_attributes(want):
    fd = os.open(want["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, want["uid"], want["gid"])
        os.fchmod(fd, want["mode"])
    finally:
        os.close(fd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True, no_log=True),
                mode=dict(type="raw", required=True),
                owner=dict(type="str", default="root"),
                group=dict(type="str", default="root"),
            )),
            others=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    try:
        wanted = validate(module.params["files"])
        others = find_others(module.params["others"], [want["path"] for want in wanted])
    except Invalid as err:
        module.fail_json(msg=str(err))
    # Every file is read before any is written, so a file that cannot be read fails the run with nothing written.
    plans = []
    for want in wanted:
        try:
            plans.append((want, compare(want)))
        except OSError as err:
            module.fail_json(msg="cannot read %s: %s" % (want["path"], err), exception=traceback.format_exc())
    results = []
    for want, (created, content_changed, attributes_changed) in plans:
        if not module.check_mode:
            try:
                if content_changed:
                    write_atomically(want["path"], want["data"], want["mode"], (want["uid"], want["gid"]))
                elif attributes_changed:
                    fix_attributes(want)
            except Exception as err:  # any failure names the file; the files before it stay written
                done = [r["path"] for r in results if r["changed"]]
                module.fail_json(msg="cannot write %s: %s" % (want["path"], err), exception=traceback.format_exc(),
                                 changed=bool(done), files=results, changed_paths=done)
        results.append(dict(path=want["path"], changed=content_changed or attributes_changed, created=created,
                            content_changed=content_changed, attributes_changed=attributes_changed))
    changed_paths = [r["path"] for r in results if r["changed"]]
    module.exit_json(changed=bool(changed_paths), files=results, changed_paths=changed_paths, others=others)


if __name__ == "__main__":
    main()
