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

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.config_files import (
    FILE_OPTIONS, Invalid, ReadFailed, WriteFailed, apply, changed_paths, find_others, plan, validate,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=FILE_OPTIONS),
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
    try:
        plans = plan(wanted)
    except ReadFailed as err:
        module.fail_json(msg=str(err), exception=traceback.format_exc())
    try:
        results = apply(plans, module.check_mode)
    except WriteFailed as err:
        done = changed_paths(err.results)
        module.fail_json(msg=str(err), exception=traceback.format_exc(), changed=bool(done), files=err.results,
                         changed_paths=done)
    done = changed_paths(results)
    module.exit_json(changed=bool(done), files=results, changed_paths=done, others=others)


if __name__ == "__main__":
    main()
