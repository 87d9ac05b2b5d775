#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_release_state
short_description: Read a compose app's deployed tag, its image tags and the failed ones, or prune old image tags
description:
  - A compose app's project directory O(root) holds C(.env) (C(APP_TAG=<tag>), the deployed tag) and C(failed/<tag>.json)
    (the tags marked failed, with their reason); its releases are the tags of the image O(image) on the engine.
  - O(action=read) returns the deployed tag, whether the service has a running container, and every tag of the image
    (complete or failed), in one run (the docker CLI with argv, never a shell).
  - O(action=prune) removes the image tags beyond the keep counts with C(docker image rm), never forced. The newest
    O(keep) complete tags and O(keep_failed) failed tags stay, by the image's creation time; the deployed
    tag and the tags in O(protect) (the deploy passes the release it switched from and the last good one of its
    history) always stay. A tag whose image a container still uses is kept, with a warning. The failed marker of a
    removed tag stays, so the tag is still refused if it comes back.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description: The compose project directory (absolute, without C(.) or C(..) components).
    type: path
    required: true
  image:
    description: The image repository whose tags are the releases (for example C(registry.example.com/app)).
    type: str
    required: true
  service:
    description: The compose service of the app (for C(running)); empty skips that question.
    type: str
    default: ""
  action:
    description: C(read) returns the state; C(prune) removes what keep-N prunes.
    type: str
    choices: [read, prune]
    default: read
  keep:
    description: Complete tags to keep (at least 1).
    type: int
    default: 5
  keep_failed:
    description: Failed tags to keep.
    type: int
    default: 2
  protect:
    description: Tags never pruned, besides the deployed one.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    details: O(action=prune) reports what it would remove and removes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - The docker CLI must be on the host's PATH; the task's C(environment) reaches it (C(DOCKER_HOST) and the like).
"""

EXAMPLES = r"""
- name: Read the deployed tag and the tags on the engine
  shipshape.ops.compose_release_state:
    root: /srv/sample_app
    image: registry.example.com/sample_app
    service: app
  register: state

- name: Keep five complete and two failed tags, and the one rolled back to
  shipshape.ops.compose_release_state:
    root: /srv/sample_app
    image: registry.example.com/sample_app
    action: prune
    keep: 5
    keep_failed: 2
    protect: [v1.9.0]
"""

RETURN = r"""
current:
  description: The tag C(.env) names ('' before the first deploy).
  returned: always
  type: str
running:
  description: Whether O(service) has a running container (false when O(service) is empty).
  returned: always
  type: bool
releases:
  description: The tags of the image on the engine, sorted by name.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "v2.0.0", "status": "complete", "failed": {}, "created": "2026-12-04 10:00:00 +0000 UTC",
            "image_id": "sha256:..."}]
failed_tags:
  description: The tags marked failed, each with its marker ({reason, at}); a tag whose image is gone is still here.
  returned: always
  type: dict
prune:
  description: The tags keep-N prunes, oldest first. After O(action=prune), those that could not be removed.
  returned: always
  type: list
  elements: str
pruned:
  description: With O(action=prune), the tags removed (in check mode, that would be removed), oldest first.
  returned: action=prune
  type: list
  elements: str
"""

import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.names import is_compose_service
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import path_problem

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# A repository reference without tag or digest: lower-case path components, an optional registry host[:port].
IMAGE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*")
APP_TAG = re.compile(r"^APP_TAG=(\S+)$", re.MULTILINE)


def check_params(params):
    """The first problem with the parameters, naming the value and what was expected, or None."""
    root = params["root"]
    why = path_problem(root)
    if why:
        return "root '%s' %s" % (root, why)
    if not IMAGE.fullmatch(params["image"]):
        return "image '%s' must be an image repository without tag or digest (lower case, for example registry/app)" % params["image"]
    if params["service"] and not is_compose_service(params["service"]):
        return "service '%s' must be a compose service name (letters, digits, '_', '.', '-')" % params["service"]
    if params["keep"] < 1 or params["keep_failed"] < 0:
        return "keep (%s) must be at least 1 and keep_failed (%s) at least 0" % (params["keep"], params["keep_failed"])
    for tag in params["protect"]:
        if tag and not TAG.fullmatch(tag):
            return "protect entry '%s' must be an image tag" % tag
    return None


def read_current(root):
    try:
        with open(os.path.join(root, ".env"), encoding="utf-8") as handle:
            found = APP_TAG.search(handle.read())
    except FileNotFoundError:
        return ""
    return found.group(1) if found else ""


def read_failed(root):
    failed = {}
    directory = os.path.join(root, "failed")
    if not os.path.isdir(directory) or os.path.islink(directory):
        return failed
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".json") or not TAG.fullmatch(name[:-5]):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                marker = json.load(handle)
        except (OSError, ValueError):
            marker = {}
        failed[name[:-5]] = marker if isinstance(marker, dict) else {}
    return failed


def list_tags(module, image):
    """[{id, image_id, created}] of the image's tags on the engine."""
    rc, out, err = module.run_command(
        ["docker", "image", "ls", "--no-trunc", "--format", "{{.Tag}}\t{{.ID}}\t{{.CreatedAt}}", image])
    if rc != 0:
        module.fail_json(msg="compose_release_state: docker image ls %s failed: %s" % (image, (err or out).strip()))
    tags = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] != "<none>" and TAG.fullmatch(parts[0]):
            tags[parts[0]] = {"id": parts[0], "image_id": parts[1], "created": parts[2]}
    return [tags[tag] for tag in sorted(tags)]


def service_running(module, root, service):
    if not service:
        return False
    rc, out, _err = module.run_command(
        ["docker", "compose", "--project-directory", root, "ps", "--quiet", "--status", "running", service])
    return rc == 0 and bool(out.strip())


def plan_prune(releases, failed, current, keep, keep_failed, protect):
    """The tags keep-N removes, oldest first: beyond the newest `keep` complete and `keep_failed` failed tags."""
    kept = {current} | set(protect)
    doomed = []
    for status, limit in (("complete", keep), ("failed", keep_failed)):
        # Newest first by the engine's creation time ("YYYY-MM-DD HH:MM:SS +ZZZZ ..." sorts as text), then by tag.
        group = sorted((r for r in releases if (r["id"] in failed) == (status == "failed")),
                       key=lambda r: (r["created"], r["id"]), reverse=True)
        doomed.extend(r for r in group[limit:] if r["id"] not in kept)
    return [r["id"] for r in sorted(doomed, key=lambda r: (r["created"], r["id"]))]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            image=dict(type="str", required=True),
            service=dict(type="str", default=""),
            action=dict(type="str", choices=["read", "prune"], default="read"),
            keep=dict(type="int", default=5),
            keep_failed=dict(type="int", default=2),
            protect=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problem = check_params(params)
    if problem:
        module.fail_json(msg="compose_release_state: %s" % problem)
    root = params["root"].rstrip("/") or "/"

    current = read_current(root)
    failed = read_failed(root)
    releases = list_tags(module, params["image"])
    for release in releases:
        release["status"] = "failed" if release["id"] in failed else "complete"
        release["failed"] = failed.get(release["id"], {})
    doomed = plan_prune(releases, failed, current, params["keep"], params["keep_failed"],
                        [tag for tag in params["protect"] if tag])
    result = {"current": current, "failed_tags": failed, "prune": doomed}
    changed = False
    if params["action"] == "prune":
        removed, left = [], []
        for tag in doomed:
            if not module.check_mode:
                rc, out, err = module.run_command(["docker", "image", "rm", "%s:%s" % (params["image"], tag)])
                if rc != 0:  # a container still uses it, or the engine refused: keep it, say why
                    module.warn("compose_release_state: kept %s:%s: %s" % (params["image"], tag, (err or out).strip()))
                    left.append(tag)
                    continue
            removed.append(tag)
        changed = bool(removed)
        result["pruned"] = removed
        result["prune"] = left
        releases = [r for r in releases if r["id"] not in removed]
    result["releases"] = releases
    result["running"] = service_running(module, root, params["service"])
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
