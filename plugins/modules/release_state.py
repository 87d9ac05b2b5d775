#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_state
short_description: Read an app's releases, switch its current link atomically, or prune old releases
description:
  - An app root holds C(releases/<id>/), a C(current) link and a C(previous) link.
  - O(action=read) returns every release with its status (complete, failed, unfinished), the release
    C(current) and C(previous) name, what keep-N would prune, and the release the running service runs
    (the working directory of the unit's main process or, where that cannot be read, the copy of C(current)
    that the unit makes at every start, C(<root>/.shipshape-running)), so a caller sees when C(current) names
    a release that is not running (a run killed between the switch and the restart).
  - O(action=switch) points C(previous) at the release C(current) named and C(current) at O(target), each link
    made under a temporary name and renamed over the old one (C(rename(2)) is atomic). The target must be one
    path component naming a directory inside C(<root>/releases); anything else is refused. When C(current) names no
    release directory of C(<root>/releases) (a link to nothing, or to another root), C(previous) is left as it is.
  - With O(manage_units), the switch also does systemd's part in the same run (see O(manage_units)), so that a
    rollback is one module run from the links to the restarted service.
  - O(action=prune) removes the releases beyond the keep counts and those that never finished building, oldest
    first; never C(current), C(previous), the release the service runs, or a release named in O(protect) (the deploy
    passes the last good release from its history).
  - Order is by C(built_at) from C(release.json), never by file times; C(current) and C(previous) are never
    pruned; failed and unfinished releases do not take the slots of complete ones.
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description: The app root (absolute, without C(.) or C(..) components).
    type: path
    required: true
  action:
    description: C(read) returns the state; C(switch) points C(current) at O(target); C(prune) removes what keep-N prunes.
    type: str
    choices: [read, switch, prune]
    default: read
  target:
    description: With O(action=switch), the release id to switch to (one path component under C(releases/)).
    type: str
    default: ""
  force:
    description:
      - With O(action=switch), switch to a release marked failed too. An unfinished release (a build that did not
        end) is always refused, and so is a failed one without O(force).
    type: bool
    default: false
  keep:
    description: Complete releases to keep (for the C(prune) list).
    type: int
    default: 5
  keep_failed:
    description: Failed releases to keep (for the C(prune) list).
    type: int
    default: 2
  protect:
    description:
      - Release ids never pruned, besides C(current), C(previous) and the release the service runs (for example the
        last good release of the deploy history, which a rollback goes back to).
    type: list
    elements: str
    default: []
  venvs_dir:
    description:
      - With O(action=prune), the directory of the venvs that releases share (systemd_release's C(shared/venvs)),
        inside O(root). Once the releases are pruned, each directory directly in it named as a venv key (16 hex
        digits) that no remaining release links to (a symlink at the top of a release that resolves into it) is
        removed too. Empty, no venv is removed.
    type: path
    default: ""
  wheelhouses_dir:
    description:
      - With O(action=prune), the directory that holds the wheelhouses systemd_release puts on the host (its
        C(shared)), inside O(root). Once the releases are pruned, each directory directly in it named
        C(wheelhouse-) and 16 hex digits that no remaining release links to (a symlink at the top of a release that
        resolves into it) is removed too. Empty, no wheelhouse is removed.
    type: path
    default: ""
  service:
    description:
      - The systemd unit that runs C(current). When set, C(running) names the release its main process runs
        in. Empty, C(running) is empty.
    type: str
    default: ""
  units:
    description:
      - systemd units whose state to report in RV(units) (read with C(systemctl show), after any switch), so a caller
        starts or enables a unit only when it is not already active and enabled.
    type: list
    elements: str
    default: []
  unit_files:
    description:
      - With O(action=switch), files (the systemd units, rendered on the controller) written after C(current) moved,
        in the same module run, as M(shipshape.ops.config_files) writes them; only what differs is written. Every entry
        is checked and read before the switch, so an invalid or unreadable one fails the run with no link moved and
        nothing written.
      - RV(units) is read after they are written.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The file, an absolute path. Its directory must exist; a symlink or a non-regular file there fails.
        type: path
        required: true
      content:
        description: The whole content of the file (never returned).
        type: str
        required: true
      mode:
        description: The file's mode, a quoted octal string such as C("0644").
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
  unit_files_others:
    description:
      - With O(action=switch), a shell-style pattern of absolute paths (for example
        C(/etc/systemd/system/app.worker-*.service)); the files matching it that are not in O(unit_files) are returned
        in RV(unit_files_others). Without O(manage_units) they are never touched; with it, they are retired (see
        O(manage_units)).
    type: str
    default: ''
  unit_files_absent:
    description:
      - With O(action=switch) and O(manage_units), unit files that must not exist (for example the socket unit once
        socket activation is off); each one present is retired (see O(manage_units)). Each must be an absolute path
        whose name is a systemd unit name ending in C(.service), C(.socket), C(.timer) or C(.target), and not one of
        O(unit_files), nor named as O(service) or in O(units). So must each file that O(unit_files_others) matches,
        with O(manage_units).
    type: list
    elements: path
    default: []
  manage_units:
    description:
      - With O(action=switch) and O(service), bring the units up in the same run, after the links moved and the unit
        files were written, in this order, each step only when needed.
      - 1. the units of RV(unit_files_others) and O(unit_files_absent) that exist are retired (C(systemctl disable
        --now)) and their files removed;
      - 2. C(systemctl daemon-reload) when a unit file was written or removed;
      - 3. each C(.socket) unit of O(units) is restarted when its file changed, started when it is not active, and
        enabled when it is not enabled; a socket that is not active while O(service) runs (socket activation turned
        on) is started once O(service) is stopped, as the service holds the port;
      - 4. O(service) is restarted when C(current) moved, when its file or a socket's file changed, when a socket was
        retired, with O(restart), or when it runs another release than O(target) (a run stopped between the switch
        and the restart); otherwise started when it is not active; enabled when it is not enabled;
      - 5. every other unit of O(units) (workers, C(PartOf) the service, so a restart of the service restarts those
        that run) is started when it is not active and enabled when it is not; when the service was not restarted, one
        that runs and whose file changed is restarted.
      - A C(systemctl) call that fails fails the run, naming the unit and the release C(current) names.
    type: bool
    default: false
  restart:
    description:
      - With O(manage_units), restart O(service) even when nothing of this run asks for it (the caller changed its
        environment file).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: >-
      O(action=switch) and O(action=prune) report what they would change and change nothing (with O(manage_units), no
      C(systemctl) call but C(systemctl show)).
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Read the releases and which one the service runs
  shipshape.ops.release_state:
    root: /srv/sample_app
    keep: 5
    service: sample_app.service
  register: state

- name: Switch current to a release
  shipshape.ops.release_state:
    root: /srv/sample_app
    action: switch
    target: 2.0.0-1a2b3c4d

- name: Switch, install the units, retire the workers no longer configured, and restart
  shipshape.ops.release_state:
    root: /srv/sample_app
    action: switch
    target: 2.0.0-1a2b3c4d
    service: sample_app.service
    units: [sample_app.socket, sample_app.service, sample_app.worker-outbox.service]
    unit_files:
      - path: /etc/systemd/system/sample_app.service
        content: "{{ lookup('ansible.builtin.template', 'app.service.j2') }}"
        mode: "0644"
    unit_files_others: /etc/systemd/system/sample_app.worker-*.service
    manage_units: true

- name: Keep five complete and two failed releases, and the last good one
  shipshape.ops.release_state:
    root: /srv/sample_app
    action: prune
    keep: 5
    keep_failed: 2
    protect: [1.9.0-0a1b2c3d]
    service: sample_app.service
"""

RETURN = r"""
root:
  description: The app root.
  returned: always
  type: str
current:
  description: The release C(current) names ('' when there is none). After a switch, the new one.
  returned: always
  type: str
previous:
  description: The release C(previous) names ('' when there is none). After a switch, the new one.
  returned: always
  type: str
running:
  description:
    - The release the service's main process runs in ('' when O(service) is empty, the service is not running,
      or its working directory is not a release of this root). With O(action=switch), read before the switch and
      any restart (moving the links does not change it).
  returned: always
  type: str
releases:
  description: Every release directory, oldest build first.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "2.0.0-1a2b3c4d", "path": "/srv/app/releases/2.0.0-1a2b3c4d", "status": "complete", "version": "2.0.0",
            "sha": "1a2b...", "built_at": "2026-11-25T09:00:00Z", "failed": null, "current": true}]
unfinished:
  description: Releases that never finished building (neither current nor previous).
  returned: always
  type: list
  elements: str
prune:
  description:
    - Releases beyond the keep counts, oldest first (never current, previous, the running release or O(protect)).
      After O(action=prune), what is left to prune (empty unless a removal failed).
  returned: always
  type: list
  elements: str
pruned_venvs:
  description: With O(action=prune) and O(venvs_dir), the shared venvs removed (in check mode, that would be removed).
  returned: action=prune
  type: list
  elements: str
  sample: [3f9a0c2b7d1e4a65]
pruned_wheelhouses:
  description: With O(action=prune) and O(wheelhouses_dir), the wheelhouses removed (in check mode, that would be removed).
  returned: action=prune
  type: list
  elements: str
  sample: [wheelhouse-54d9b7f8d9a7332c]
pruned:
  description: With O(action=prune), the releases removed (in check mode, that would be removed), oldest first.
  returned: action=prune
  type: list
  elements: str
switched_from:
  description: With O(action=switch), the release C(current) named before.
  returned: action=switch
  type: str
switched:
  description: With O(action=switch), whether C(current) moved (or, in check mode, would).
  returned: action=switch
  type: bool
unit_files:
  description: With O(action=switch), one entry per file of O(unit_files), as M(shipshape.ops.config_files) returns it.
  returned: action=switch
  type: list
  elements: dict
  sample: [{"path": "/etc/systemd/system/app.service", "changed": false, "created": false, "content_changed": false,
            "attributes_changed": false}]
unit_files_changed:
  description: With O(action=switch), the paths of O(unit_files) that changed (or would), in their order.
  returned: action=switch
  type: list
  elements: str
unit_files_others:
  description: With O(action=switch), the paths matching O(unit_files_others) that are not in O(unit_files), sorted.
  returned: action=switch
  type: list
  elements: str
retired:
  description: With O(manage_units), the units retired (stopped, disabled, their files removed), sorted.
  returned: action=switch
  type: list
  elements: str
daemon_reloaded:
  description: With O(manage_units), whether C(systemctl daemon-reload) ran (or, in check mode, would).
  returned: action=switch
  type: bool
restarted:
  description: With O(manage_units), the units restarted, in the order they were (or, in check mode, would be).
  returned: action=switch
  type: list
  elements: str
  sample: [sample_app.service]
started:
  description: With O(manage_units), the units started because they were not active.
  returned: action=switch
  type: list
  elements: str
enabled:
  description: With O(manage_units), the units enabled because they were not.
  returned: action=switch
  type: list
  elements: str
units:
  description:
    - For each unit of O(units), its C(active) state (C(ActiveState), for example C(active), C(inactive), C(failed))
      and its C(enabled) state (C(UnitFileState), for example C(enabled), C(disabled); empty for a unit that is not
      installed). With O(manage_units), read after the units were brought up.
  returned: always
  type: dict
  sample: {"app.service": {"active": "active", "enabled": "enabled"}, "app.socket": {"active": "active", "enabled": "enabled"}}
"""

import os
import re
import shutil
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.config_files import (
    FILE_OPTIONS, Invalid, ReadFailed, WriteFailed, apply, changed_paths, find_others, plan, validate,
)
from ansible_collections.shipshape.ops.plugins.module_utils.names import UNIT_SUFFIXES, is_unit_name
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import (
    RUNNING_MARKER, UNFINISHED_MARKER as UNFINISHED, component_problem, lies_under, link_target, path_problem, read_json,
    replace_symlink,
)

FAILED = ".shipshape-failed"


def check_release_id(rid):
    """Return why RID is not a release id, or None."""
    return component_problem(rid or "")


def release_of(path, releases_dir):
    """The release id PATH lies in (releases_dir/<id>[/...]), or ''."""
    real_releases = os.path.realpath(releases_dir)
    rel = os.path.relpath(os.path.realpath(path), real_releases)
    if rel == "." or rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
        return ""
    return rel.split(os.sep)[0]


def running_release(module, service, releases_dir):
    """The release the unit's main process runs in ('' if it is not running or unknown).

    The process's working directory says it (the unit's WorkingDirectory is current, resolved when the process
    starts); where /proc/<pid>/cwd cannot be read (root without CAP_SYS_PTRACE, as in containers), the link
    the unit's ExecStartPre copies from current at every start (<root>/.shipshape-running) does.
    """
    if not service:
        return ""
    rc, out, dummy = module.run_command(["systemctl", "show", "--property", "MainPID", "--value", "--", service])
    pid = out.strip()
    if rc != 0 or not pid.isdigit() or int(pid) <= 0:
        return ""
    try:
        return release_of(os.readlink("/proc/%s/cwd" % pid), releases_dir)
    except OSError:
        pass
    marker = os.path.join(os.path.dirname(releases_dir), RUNNING_MARKER)
    if not os.path.islink(marker):
        return ""
    return release_of(os.path.join(os.path.dirname(releases_dir), os.readlink(marker)), releases_dir)


def unit_states(module, units):
    """ActiveState and UnitFileState of each unit, one systemctl call for all of them."""
    if not units:
        return {}
    rc, out, err = module.run_command(["systemctl", "show", "--property", "ActiveState,UnitFileState", "--"] + list(units))
    if rc != 0:
        module.fail_json(msg="release_state: systemctl show %s failed: %s" % (" ".join(units), (err or out).strip()))
    # One block of properties per unit, in the order asked, separated by an empty line.
    blocks = out.strip("\n").split("\n\n")
    states = {}
    for unit, block in zip(units, blocks + [""] * (len(units) - len(blocks))):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[unit] = {"active": props.get("ActiveState", ""), "enabled": props.get("UnitFileState", "")}
    return states


def read_state(root, keep, keep_failed, protect=()):
    releases_dir = os.path.join(root, "releases")
    current = link_target(os.path.join(root, "current"))
    previous = link_target(os.path.join(root, "previous"))
    releases = []
    for name in sorted(os.listdir(releases_dir)) if os.path.isdir(releases_dir) else []:
        path = os.path.join(releases_dir, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        meta = read_json(os.path.join(path, "release.json"))
        meta = meta if isinstance(meta, dict) else {}  # a record that is not an object says nothing of the build
        failed = read_json(os.path.join(path, FAILED))
        if os.path.exists(os.path.join(path, UNFINISHED)) or not meta:
            status = "unfinished"
        elif os.path.exists(os.path.join(path, FAILED)):
            # The marker marks the release failed (as release_status reads it), even empty: its JSON only says why.
            status = "failed"
            failed = failed if failed is not None else {}
        else:
            status = "complete"
        releases.append({
            "id": name,
            "path": path,
            "status": status,
            "version": meta.get("version"),
            "sha": meta.get("sha"),
            "built_at": str(meta.get("built_at") or ""),  # a string, so that releases always sort
            "failed": failed,
            "current": name == current,
        })
    releases.sort(key=lambda r: (r["built_at"], r["id"]))
    protected = {current, previous} | set(protect)
    prune = []
    for status, limit in (("complete", keep), ("failed", keep_failed)):
        group = [r for r in releases if r["status"] == status]
        excess = len(group) - limit
        for r in group:  # oldest first
            if excess <= 0:
                break
            if r["id"] in protected:
                continue
            prune.append(r["id"])
            excess -= 1
    return {
        "root": root,
        "current": current,
        "previous": previous,
        "releases": releases,
        "unfinished": [r["id"] for r in releases if r["status"] == "unfinished" and r["id"] not in protected],
        "prune": prune,
    }


class SystemctlFailed(Exception):
    """A systemctl call of the units' bring-up failed."""


def systemctl(module, args, units=()):
    """Run ``systemctl ARGS -- UNITS`` (nothing in check mode); SystemctlFailed names the call and what it printed."""
    if module.check_mode:
        return
    argv = ["systemctl"] + list(args) + (["--"] + list(units) if units else [])
    rc, out, err = module.run_command(argv)
    if rc != 0:
        raise SystemctlFailed("systemctl %s failed: %s" % (" ".join(argv[1:]), (err or out).strip()))


def retirees(others, absent, files, to_run=()):
    """The unit files to retire: every one of OTHERS and those of ABSENT that exist. Invalid for an entry that is
    not a unit file (its name goes to systemctl), or that is one of the units TO_RUN, before anything moves."""
    paths = set(os.path.normpath(want["path"]) for want in files)  # '/etc//app.service' is '/etc/app.service'
    found = []
    for name, path in [("unit_files_others", p) for p in others] + [("unit_files_absent", p) for p in absent]:
        # With its suffix: systemctl reads a bare 'app' as app.service, another unit than the file's.
        if path_problem(path) or not is_unit_name(os.path.basename(path), UNIT_SUFFIXES):
            raise Invalid("%s: '%s' is not an absolute path to a systemd unit file; expected one such as "
                          "/etc/systemd/system/app.socket" % (name, path))
        if os.path.normpath(path) in paths:
            raise Invalid("%s: '%s' is in unit_files too; expected a file either written or retired" % (name, path))
        if os.path.isdir(path) and not os.path.islink(path):
            raise Invalid("%s: '%s' is a directory; expected a unit file" % (name, path))
        # Retired first, a unit the bring-up then starts would be stopped, disabled and its file gone.
        if os.path.lexists(path) and os.path.basename(path) in to_run:
            raise Invalid("%s: '%s' is also one of the units to run (service, units); expected a unit file either run "
                          "or retired" % (name, path))
        if os.path.lexists(path) and os.path.normpath(path) not in [os.path.normpath(p) for p in found]:
            found.append(path)
    return found


def bring_up(module, params, switched, running, written, retire):
    """systemd's part of the switch (see the manage_units option): retire, reload, then start or restart the sockets,
    the service and its workers, each only when needed. Returns what was done (in check mode, what would be) and the
    units' states afterwards."""
    service = params["service"]
    units = [u for u in params["units"] if u]
    sockets = [u for u in units if u.endswith(".socket")]
    workers = [u for u in units if u != service and u not in sockets]
    done = dict(retired=sorted(os.path.basename(p) for p in retire), daemon_reloaded=False, restarted=[], started=[],
                enabled=[])
    if retire:
        systemctl(module, ["disable", "--now"], done["retired"])
        for path in retire if not module.check_mode else []:
            os.unlink(path)
    changed = set(os.path.basename(p) for p in changed_paths(written))
    if changed or retire:
        systemctl(module, ["daemon-reload"])
        done["daemon_reloaded"] = True
    everything = sockets + [service] + workers
    states = unit_states(module, everything)  # after the reload: a new unit reads inactive and disabled

    def inactive(unit):
        return states[unit]["active"] != "active"

    restart_service = bool(
        switched or service in changed or set(sockets) & changed or [u for u in done["retired"] if u.endswith(".socket")]
        or params["restart"] or (running and running != params["target"]))
    # A socket that does not listen yet while the service runs (socket activation turned on): the service holds the
    # port, so it stops first and starts once the socket listens.
    stop_first = [service] if not inactive(service) and [u for u in sockets if inactive(u)] else []
    # (systemctl verb, units, what to report them as): a service stopped first and started again is restarted.
    steps = [
        ("stop", stop_first, None),
        ("restart", [u for u in sockets if u in changed and not inactive(u)], "restarted"),
        ("start", [u for u in sockets if inactive(u)], "started"),
        ("start" if stop_first or not restart_service else "restart",
         [service] if restart_service or stop_first or inactive(service) else [],
         "restarted" if restart_service or stop_first else "started"),
        # A restart of the service restarts the workers that run (PartOf); one that does not run is started.
        ("restart", [u for u in workers if u in changed and not inactive(u) and not restart_service], "restarted"),
        ("start", [u for u in workers if inactive(u)], "started"),
        ("enable", [u for u in everything if states[u]["enabled"] != "enabled"], "enabled"),
    ]
    for verb, names, reported in steps:
        if names:
            systemctl(module, [verb], names)
            if reported:
                done[reported] += names
    if not module.check_mode and (done["restarted"] or done["started"] or done["enabled"] or retire):
        states = unit_states(module, units)
    else:
        states = dict((u, states[u]) for u in units)
    return done, states


def replace_link(root, name, release_id):
    """Point ROOT/NAME at releases/RELEASE_ID: a new link under a temporary name, renamed over the old."""
    replace_symlink(os.path.join(root, name), "releases/%s" % release_id)


def switch(module, root, target, state):
    """Whether current moved (or would), and the release previous names afterwards."""
    why = check_release_id(target)
    if why:
        module.fail_json(msg="release_state: target '%s' %s" % (target, why))
    releases_dir = os.path.join(root, "releases")
    path = os.path.join(releases_dir, target)
    if os.path.islink(path) or not os.path.isdir(path) or release_of(path, releases_dir) != target:
        module.fail_json(msg="release_state: target '%s' is not a release directory in %s" % (target, releases_dir))
    status = next((r["status"] for r in state["releases"] if r["id"] == target), "missing")
    if status == "unfinished" or (status == "failed" and not module.params["force"]):
        module.fail_json(msg="Cannot switch to release '%s': it is %s (releases there: %s).%s" % (
            target, status, ", ".join(r["id"] for r in state["releases"]) or "none",
            " Set force (systemd_release_force=true) to switch to a failed release." if status == "failed" else ""))
    current = state["current"]
    if current == target:
        return False, state["previous"]
    # previous keeps its release when current names none here (a link to nothing, or out of releases/): a link to
    # nothing would replace the one a rollback goes back to.
    link = os.path.join(root, "current")
    moves_previous = bool(current) and os.path.isdir(link) and release_of(link, releases_dir) == current
    if not module.check_mode:
        if moves_previous:
            replace_link(root, "previous", current)
        replace_link(root, "current", target)
    return True, current if moves_previous else state["previous"]


def remove_tree(module, path):
    """Remove PATH (nothing in check mode); False, with a warning, when it could not be removed."""
    if module.check_mode:
        return True
    try:
        shutil.rmtree(path)
    except OSError as exc:
        module.warn("release_state: could not remove %s: %s" % (path, exc))
        return False
    return True


def prune(module, root, state):
    """Remove the releases keep-N prunes and the unfinished ones; return (removed, not removed)."""
    releases_dir = os.path.join(root, "releases")
    removed, left = [], []
    for rid in state["prune"] + state["unfinished"]:
        path = os.path.join(releases_dir, rid)
        # Only ever a real directory directly inside releases/, named as a release.
        if check_release_id(rid) or os.path.islink(path) or not os.path.isdir(path) or release_of(path, releases_dir) != rid:
            left.append(rid)
            continue
        if not remove_tree(module, path):
            left.append(rid)
            continue
        removed.append(rid)
    return removed, left


# systemd_release names a shared venv by its key (16 hex digits) and a wheelhouse by its content
# (wheelhouse-<16 hex digits>). Nothing else in their directories is ever removed.
VENV_KEY = re.compile(r"[0-9a-f]{16}")
WHEELHOUSE = re.compile(r"wheelhouse-[0-9a-f]{16}")


def linked_names(releases_dir, parent, gone=()):
    """The names of the entries of PARENT that a release links to (a symlink at the top of a release that resolves
    directly inside PARENT), the releases in GONE (pruned) left out."""
    used = set()
    parent_real = os.path.realpath(parent)
    for rid in os.listdir(releases_dir) if os.path.isdir(releases_dir) else []:
        release = os.path.join(releases_dir, rid)
        if rid in gone:
            continue
        if os.path.islink(release) or not os.path.isdir(release):
            continue
        for entry in os.listdir(release):
            path = os.path.join(release, entry)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if os.path.dirname(target) == parent_real:
                    used.add(os.path.basename(target))
    return used


def prune_unlinked(module, releases_dir, parent, pattern, gone=()):
    """Remove the directories directly inside PARENT named by PATTERN that no release links to; return their names.
    Never a link, never one a release still uses."""
    if not parent or not os.path.isdir(parent):
        return []
    used = linked_names(releases_dir, parent, gone)
    removed = []
    for name in sorted(os.listdir(parent)):
        path = os.path.join(parent, name)
        if not pattern.fullmatch(name) or name in used or os.path.islink(path) or not os.path.isdir(path):
            continue
        if remove_tree(module, path):
            removed.append(name)
    return removed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            action=dict(type="str", choices=["read", "switch", "prune"], default="read"),
            target=dict(type="str", default=""),
            force=dict(type="bool", default=False),
            keep=dict(type="int", default=5),
            keep_failed=dict(type="int", default=2),
            protect=dict(type="list", elements="str", default=[]),
            venvs_dir=dict(type="path", default=""),
            wheelhouses_dir=dict(type="path", default=""),
            service=dict(type="str", default=""),
            units=dict(type="list", elements="str", default=[]),
            unit_files=dict(type="list", elements="dict", default=[], options=FILE_OPTIONS),
            unit_files_others=dict(type="str", default=""),
            unit_files_absent=dict(type="list", elements="path", default=[]),
            manage_units=dict(type="bool", default=False),
            restart=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    root = params["root"].rstrip("/") or "/"
    why = path_problem(root)
    if why:
        module.fail_json(msg="release_state: root '%s' %s" % (params["root"], why))
    if params["keep"] < 1 or params["keep_failed"] < 0:
        module.fail_json(msg="release_state: keep (%s) must be at least 1 and keep_failed (%s) at least 0"
                         % (params["keep"], params["keep_failed"]))
    inside = dict((option, params[option].rstrip("/")) for option in ("venvs_dir", "wheelhouses_dir"))
    for option, path in inside.items():
        if path and (path_problem(path) or not lies_under(path, root)):
            # It removes directories: only ever inside the app root it was given.
            module.fail_json(msg="release_state: %s '%s' must be empty or a plain absolute path inside root '%s'"
                             % (option, params[option], root))
    for name, unit in [("service", params["service"])] + [("units", u) for u in params["units"]]:
        if unit and not is_unit_name(unit):
            module.fail_json(msg="release_state: %s '%s' must be a systemd unit name" % (name, unit))
    switching = params["action"] == "switch"
    if not switching and (params["unit_files"] or params["unit_files_others"] or params["manage_units"]):
        module.fail_json(msg="release_state: unit_files, unit_files_others and manage_units go with action=switch, "
                         "not action=%s" % params["action"])
    manage = params["manage_units"]
    if manage and not params["service"]:
        module.fail_json(msg="release_state: manage_units needs service (the unit that runs current)")
    if not manage and (params["unit_files_absent"] or params["restart"]):
        module.fail_json(msg="release_state: unit_files_absent and restart go with manage_units")
    try:
        # Every unit file is checked before a link moves, and so is every unit file to retire.
        unit_files = validate(params["unit_files"], "unit_files")
        others = find_others(params["unit_files_others"], [want["path"] for want in unit_files], "unit_files_others")
        retire = retirees(others, params["unit_files_absent"], unit_files, [params["service"]] + params["units"]) if manage else []
    except Invalid as err:
        module.fail_json(msg="release_state: %s" % err)
    try:
        releases_dir = os.path.join(root, "releases")
        protect = [rid for rid in params["protect"] if rid]
        running = running_release(module, params["service"], releases_dir)
        if params["action"] == "prune" and running:
            protect.append(running)  # a service still on an older release (an interrupted switch) keeps it
        state = read_state(root, params["keep"], params["keep_failed"], protect)
        changed = False
        result = {}
        if params["action"] == "prune":
            removed, left = prune(module, root, state)
            changed = bool(removed)
            result["pruned"] = removed
            state["releases"] = [r for r in state["releases"] if r["id"] not in removed]
            state["unfinished"] = [rid for rid in state["unfinished"] if rid not in removed]
            state["prune"] = [rid for rid in left if rid not in state["unfinished"]]
            # In check mode the pruned releases are still there: their links do not count.
            result["pruned_venvs"] = prune_unlinked(module, releases_dir, inside["venvs_dir"], VENV_KEY, gone=removed)
            result["pruned_wheelhouses"] = prune_unlinked(module, releases_dir, inside["wheelhouses_dir"], WHEELHOUSE, gone=removed)
            changed = changed or bool(result["pruned_venvs"]) or bool(result["pruned_wheelhouses"])
        if switching:
            try:
                plans = plan(unit_files)  # every unit file read before a link moves, as every one was checked
            except ReadFailed as exc:
                module.fail_json(msg="release_state: %s" % exc, exception=traceback.format_exc())
            changed, previous = switch(module, root, params["target"], state)
            result["switched_from"] = state["current"]
            result["switched"] = changed
            written = apply(plans, module.check_mode)
            result.update(unit_files=written, unit_files_changed=changed_paths(written), unit_files_others=others)
            changed = changed or bool(result["unit_files_changed"])
            if result["switched"]:
                state["previous"] = previous
                state["current"] = params["target"]
                for release in state["releases"]:
                    release["current"] = release["id"] == params["target"]
        state["running"] = running  # a switch moves links only: the service runs what it ran
        if manage:
            done, state["units"] = bring_up(module, params, result["switched"], state["running"], written, retire)
            result.update(done)
            changed = changed or bool(done["retired"] or done["restarted"] or done["started"] or done["enabled"])
        else:
            state["units"] = unit_states(module, [u for u in params["units"] if u])
    except (WriteFailed, SystemctlFailed) as exc:
        module.fail_json(msg="release_state: %s (current names %s)" % (exc, params["target"]), exception=traceback.format_exc())
    except OSError as exc:
        module.fail_json(msg="release_state: %s" % exc, exception=traceback.format_exc())
    result.update(state)
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
