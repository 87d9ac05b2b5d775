#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_env
short_description: Read named variables from the environment a running service was started with
description:
  - Reads the environment of a running systemd service's main process (C(/proc/<MainPID>/environ)) or of the
    running container of a docker compose service (C(docker inspect)), and returns only the variables named in
    O(names), never the rest of the environment (which holds secrets).
  - Commands run as argument lists; no value reaches a shell.
  - Changes nothing.
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  names:
    description: The variables to return (environment variable names).
    type: list
    elements: str
    required: true
  service:
    description: The systemd unit whose main process is read. Exactly one of O(service) and O(compose_service).
    type: str
  compose_service:
    description: The docker compose service whose running container is read (its first one).
    type: str
  compose_project_dir:
    description: The compose project directory (with O(compose_service)).
    type: path
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
- name: Read the mode variables of the running service
  shipshape.ops.service_env:
    service: sample_app.service
    names: [MAINTENANCE_MODE, READ_ONLY_MODE]
  register: running_env

- name: Read them from the running container of a compose service
  shipshape.ops.service_env:
    compose_project_dir: /srv/sample_app
    compose_service: app
    names: [MAINTENANCE_MODE, READ_ONLY_MODE]
"""

RETURN = r"""
running:
  description: Whether the service (or a container of the compose service) is running.
  returned: always
  type: bool
env:
  description: The variables of O(names) that the running process or container has, with their values.
  returned: always
  type: dict
  sample: {"MAINTENANCE_MODE": "1"}
entries:
  description: The same variables as C(NAME=value) strings, one per variable, sorted by name.
  returned: always
  type: list
  elements: str
  sample: ["MAINTENANCE_MODE=1"]
pid:
  description: The main process read (systemd), 0 when none.
  returned: with O(service)
  type: int
container:
  description: The container read (compose), '' when none.
  returned: with O(compose_service)
  type: str
"""

import json
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.names import is_compose_service, is_unit_name

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def pick(entries, names):
    """The NAME=value entries whose name is in NAMES, as a dict (the last one wins, as in an environment)."""
    wanted = set(names)
    out = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if sep and name in wanted:
            out[name] = value
    return out


def read_systemd(module, service, names):
    rc, out, dummy = module.run_command(["systemctl", "show", "--property", "MainPID", "--value", "--", service])
    pid = out.strip()
    if rc != 0 or not pid.isdigit() or int(pid) <= 0:
        return dict(running=False, env={}, pid=0)
    try:
        with open("/proc/%s/environ" % pid, "rb") as fh:
            raw = fh.read()
    except OSError:
        return dict(running=False, env={}, pid=0)
    entries = [e.decode("utf-8", "replace") for e in raw.split(b"\0") if e]
    return dict(running=True, env=pick(entries, names), pid=int(pid))


def read_compose(module, project_dir, service, names):
    rc, out, dummy = module.run_command(
        ["docker", "compose", "--project-directory", project_dir, "ps", "--quiet", "--status", "running", "--", service])
    ids = out.split()
    if rc != 0 or not ids:
        return dict(running=False, env={}, container="")
    container = ids[0]
    rc, out, dummy = module.run_command(["docker", "inspect", "--format", "{{json .Config.Env}}", "--", container])
    try:
        entries = json.loads(out) if rc == 0 else None
    except ValueError:
        entries = None
    if not isinstance(entries, list):
        return dict(running=False, env={}, container="")
    return dict(running=True, env=pick([e for e in entries if isinstance(e, str)], names), container=container)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            service=dict(type="str"),
            compose_service=dict(type="str"),
            compose_project_dir=dict(type="path"),
        ),
        mutually_exclusive=[("service", "compose_service")],
        required_one_of=[("service", "compose_service")],
        required_together=[("compose_service", "compose_project_dir")],
        supports_check_mode=True,
    )
    params = module.params
    for name in params["names"]:
        if not NAME.fullmatch(name):
            module.fail_json(msg="service_env: names item '%s' must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                             % name)
    if params["service"] is not None:
        if not is_unit_name(params["service"]):
            module.fail_json(msg="service_env: service '%s' must be a systemd unit name" % params["service"])
        result = read_systemd(module, params["service"], params["names"])
    else:
        if not is_compose_service(params["compose_service"]):
            module.fail_json(msg="service_env: compose_service '%s' must be a compose service name" % params["compose_service"])
        result = read_compose(module, params["compose_project_dir"], params["compose_service"], params["names"])
    result["entries"] = ["%s=%s" % item for item in sorted(result["env"].items())]
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
