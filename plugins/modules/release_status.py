#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_status
short_description: Say what runs on an app host (release, sha, ref, state, port, disk, memory, env keys)
description:
  - The read-only diagnostics of a release engineer's runbook, gathered in one call from an app root that
    C(shipshape.ops.systemd_release) or C(shipshape.ops.compose_release) manages.
  - O(strategy=systemd) reads C(current) and the release the unit last started (C(<root>/.shipshape-running)), the
    release's C(release.json) (id, version, sha, source with the git ref, built_at, built_by), the releases on disk,
    and the unit's state and since when it is active (C(systemctl show)).
  - O(strategy=compose) reads the deployed tag (C(APP_TAG) in C(<root>/.env)), the image's version and revision
    labels, the service's containers (C(docker compose ps)) and when they started (C(docker inspect)).
  - Both read the listening sockets of O(port) from C(/proc/net/tcp) and C(/proc/net/tcp6), disk use of O(root)
    (statvfs), memory (C(/proc/meminfo)), uptime (C(/proc/uptime)), and the names of the variables in O(env_file),
    never their values.
  - With O(ref) and O(mirror) (a git repository where this runs), the commits between the running sha and O(ref);
    without the mirror, the result says so. O(action=commits) does only that, from O(sha), for a mirror on the
    controller (delegate the task to C(localhost)).
  - Reads only; runs the same in check mode.
version_added: 0.3.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  action:
    description: C(status) reads everything; C(commits) only lists the commits between O(sha) and O(ref) in O(mirror).
    type: str
    choices: [status, commits]
    default: status
  root:
    description: The app root (absolute). Required with O(action=status).
    type: path
  strategy:
    description: How the app runs.
    type: str
    choices: [systemd, compose]
    default: systemd
  unit:
    description: With O(strategy=systemd), the unit. Empty, C(<basename of root>.service).
    type: str
    default: ""
  project_dir:
    description: With O(strategy=compose), the compose project directory. Empty, O(root).
    type: path
  service:
    description: With O(strategy=compose), the service that runs the release.
    type: str
    default: app
  image:
    description: With O(strategy=compose), the image repository of the release (for its labels). Empty, the service's.
    type: str
    default: ""
  env_file:
    description: The environment file whose variable names are listed. Empty, C(<root>/shared/app.env).
    type: path
  port:
    description: The TCP port the app listens on (0 = do not look).
    type: int
    default: 0
  ref:
    description: A git ref (branch, tag or sha) to compare the running sha with.
    type: str
    default: ""
  mirror:
    description: A git repository (a bare mirror) holding both the running sha and O(ref).
    type: path
  sha:
    description: With O(action=commits), the running sha.
    type: str
    default: ""
  max_commits:
    description: At most this many commits are listed (the newest), 1 to 1000.
    type: int
    default: 50
attributes:
  check_mode:
    support: full
    details: Reads only, the same in check mode.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Reading the environment file (0600 root) and C(.shipshape-running) needs C(become).
"""

EXAMPLES = r"""
- name: What runs here
  become: true
  shipshape.ops.release_status:
    root: /srv/sample_app
    unit: sample_app.service
    port: 8000
  register: status

- name: Commits waiting on main, from the controller's mirror
  shipshape.ops.release_status:
    action: commits
    sha: "{{ status.release.sha }}"
    ref: main
    mirror: ~/.cache/shipshape/git/0123456789abcdef0123456789abcdef01234567.git
  delegate_to: localhost
"""

RETURN = r"""
strategy:
  description: O(strategy).
  returned: action=status
  type: str
current:
  description: The release id C(current) names (systemd) or the deployed tag (compose); '' before the first deploy.
  returned: action=status
  type: str
running:
  description: The release the unit last started (systemd, from C(.shipshape-running)) or the tag of the running
    container's image (compose); '' when none runs.
  returned: action=status
  type: str
release:
  description: The description of the running release (else of C(current)), keys C(id), C(version), C(sha), C(ref),
    C(source), C(built_at), C(built_by) (empty when unknown).
  returned: action=status
  type: dict
service:
  description: The unit (C(name), C(active_state), C(sub_state), C(since), C(main_pid), C(enabled), and C(workers),
    the same of each worker unit C(<app>.worker-*.service) of the app) or, for compose,
    C(name) and C(containers) (each C(name), C(state), C(status), C(health), C(image), C(started_at)), with C(since).
  returned: action=status
  type: dict
releases:
  description: Releases on disk (systemd, oldest build first, each C(id), C(status), C(version), C(sha), C(built_at),
    C(current)) or the tags marked failed and the current one (compose).
  returned: action=status
  type: list
  elements: dict
listening:
  description: The addresses listening on O(port) (C(address:port)); empty when none, or O(port) is 0.
  returned: action=status
  type: list
  elements: str
disk:
  description: Of the file system holding O(root), C(path), C(total_mb), C(free_mb), C(used_percent).
  returned: action=status
  type: dict
memory:
  description: C(total_mb), C(available_mb), C(used_percent) from C(/proc/meminfo).
  returned: action=status
  type: dict
uptime:
  description: C(seconds) since boot and C(text) (for example C(3d 4h 12m)).
  returned: action=status
  type: dict
env_keys:
  description: The names of the variables in the environment file, sorted; never their values.
  returned: action=status
  type: list
  elements: str
commits:
  description: C(checked) (whether they could be listed), C(ref), C(from) (the running sha), C(count), C(list) (each
    C(sha), C(subject)), C(truncated) and C(note) (why not checked, for example no mirror on this host).
  returned: always
  type: dict
report:
  description: The status as display lines.
  returned: always
  type: list
  elements: str
"""

import datetime
import glob
import json
import os
import re
import socket
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import release_files
from ansible_collections.shipshape.ops.plugins.module_utils.names import is_compose_service, is_unit_name
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import (
    RUNNING_MARKER, UNFINISHED_MARKER as UNFINISHED, link_target,
)
from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import without_credentials

FAILED = ".shipshape-failed"
# Where systemd_release installs the units (the service's, its socket's and its workers').
UNIT_DIR = "/etc/systemd/system"
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:-]*$")
SHA = re.compile(r"^[0-9a-f]{7,64}$")
ENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")
# The CLI's rule for a ref: a sha or a name git check-ref-format accepts, of these characters only.
REF_CHARS = re.compile(r"^[A-Za-z0-9._+/@=-]{1,255}$")


class BadInput(Exception):
    pass


def check_ref(ref):
    bad = (not REF_CHARS.match(ref) or ref.startswith(("-", "/")) or ref.endswith(("/", ".", ".lock"))
           or ".." in ref or "@{" in ref or "//" in ref or any(p.startswith(".") for p in ref.split("/")))
    if bad:
        raise BadInput("ref '%s' is not a git ref: expected a branch, tag or sha of A-Z a-z 0-9 . _ + - / @ = (no leading "
                       "'-', no '..', no '@{', no component starting with '.')" % ref)


def check_abs(name, path):
    why = release_files.path_problem(path, allow_root=True)
    if why:
        raise BadInput("%s '%s' is not acceptable: it %s" % (name, path, why))


def read_json(path):
    """A release's JSON record as a dict, or None (absent, unreadable, or not an object)."""
    value = release_files.read_json(path)
    return value if isinstance(value, dict) else None


def describe(meta, rid):
    """release.json as the result's release: the ref is the last word of its source ('git <repo> <ref>')."""
    meta = meta or {}
    source = without_credentials(str(meta.get("source") or ""))  # a record written before they were taken out
    words = source.split()
    ref = words[-1] if len(words) >= 3 and words[0] == "git" else ""
    return {
        "id": rid,
        "version": str(meta.get("version") or ""),
        "sha": str(meta.get("sha") or ""),
        "ref": ref,
        "source": source,
        "built_at": str(meta.get("built_at") or ""),
        "built_by": str(meta.get("built_by") or ""),
    }


# ----------------------------------------------------------------------------------------------
# systemd
# ----------------------------------------------------------------------------------------------
def systemd_show(module, unit):
    props = ["ActiveState", "SubState", "ActiveEnterTimestamp", "MainPID", "UnitFileState", "LoadState"]
    rc, out, err = module.run_command(["systemctl", "show", "--property", ",".join(props), "--", unit])
    values = {}
    if rc == 0:
        for line in out.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key] = value.strip()
    return {
        "name": unit,
        "load_state": values.get("LoadState", "unknown" if rc else ""),
        "active_state": values.get("ActiveState", "unknown"),
        "sub_state": values.get("SubState", ""),
        "since": values.get("ActiveEnterTimestamp", ""),
        "main_pid": int(values.get("MainPID") or 0) if (values.get("MainPID") or "0").isdigit() else 0,
        "enabled": values.get("UnitFileState", ""),
    }


def worker_units(unit):
    """The worker units of UNIT's app on this host (systemd_release_workers): <app>.worker-<name>.service, sorted."""
    stem = unit[:-len(".service")] if unit.endswith(".service") else unit
    pattern = os.path.join(UNIT_DIR, glob.escape(stem) + ".worker-*.service")
    return sorted(os.path.basename(path) for path in glob.glob(pattern))


def systemd_status(module, root, unit):
    releases_dir = os.path.join(root, "releases")
    current = link_target(os.path.join(root, "current"))
    service = systemd_show(module, unit)
    service["workers"] = [systemd_show(module, worker) for worker in worker_units(unit)]
    running = link_target(os.path.join(root, RUNNING_MARKER)) if service["active_state"] in ("active", "reloading") else ""
    releases = []
    for name in sorted(os.listdir(releases_dir)) if os.path.isdir(releases_dir) else []:
        path = os.path.join(releases_dir, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        meta = read_json(os.path.join(path, "release.json"))
        if os.path.exists(os.path.join(path, UNFINISHED)) or not meta:
            status = "unfinished"
        elif os.path.exists(os.path.join(path, FAILED)):
            status = "failed"
        else:
            status = "complete"
        item = describe(meta, name)
        releases.append({"id": name, "status": status, "version": item["version"], "sha": item["sha"],
                         "built_at": item["built_at"], "current": name == current, "running": name == running})
    releases.sort(key=lambda r: (r["built_at"], r["id"]))
    shown = running or current
    release = describe(read_json(os.path.join(releases_dir, shown, "release.json")) if shown else None, shown)
    return current, running, release, service, releases


# ----------------------------------------------------------------------------------------------
# compose
# ----------------------------------------------------------------------------------------------
def docker_json(module, argv):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        return None, ((err or out).strip().splitlines() or ["rc=%s" % rc])[-1]
    out = out.strip()
    if not out:
        return [], ""
    try:
        value = json.loads(out)
        return (value if isinstance(value, list) else [value]), ""
    except ValueError:
        pass
    items = []  # compose >= 2.21 prints one JSON object a line
    for line in out.splitlines():
        try:
            items.append(json.loads(line))
        except ValueError:
            continue
    return items, ""


def compose_status(module, root, project_dir, service_name, image):
    tag_text = ""
    try:
        with open(os.path.join(root, ".env"), encoding="utf-8") as fh:
            tag_text = fh.read()
    except OSError:
        pass
    m = re.search(r"(?m)^APP_TAG=(\S+)$", tag_text)
    current = m.group(1) if m else ""
    cli = ["docker", "compose", "--project-directory", project_dir]
    ps, error = docker_json(module, cli + ["ps", "--all", "--format", "json", "--", service_name])
    containers = []
    for c in ps or []:
        containers.append({"name": c.get("Name", ""), "state": c.get("State", ""), "status": c.get("Status", ""),
                           "health": c.get("Health", ""), "image": c.get("Image", ""), "started_at": ""})
    names = [c["name"] for c in containers if c["name"]]
    if names:
        inspected, dummy = docker_json(module, ["docker", "inspect", "--type", "container", "--"] + names)
        started = dict((str(i.get("Name", "")).lstrip("/"), (i.get("State") or {}).get("StartedAt", ""))
                       for i in inspected or [] if isinstance(i, dict))
        for c in containers:
            c["started_at"] = started.get(c["name"], "")
    up = [c for c in containers if c["state"] == "running"]
    running = ""
    if up and ":" in up[0]["image"].rsplit("/", 1)[-1]:
        running = up[0]["image"].rsplit(":", 1)[1]
    repo = image or (up[0]["image"].rsplit(":", 1)[0] if up and running else "")
    shown = running or current
    labels = {}
    if repo and shown:
        inspected, dummy = docker_json(module, ["docker", "image", "inspect", "--", "%s:%s" % (repo, shown)])
        if inspected and isinstance(inspected[0], dict):
            labels = (inspected[0].get("Config") or {}).get("Labels") or {}
    release = describe({"version": labels.get("org.opencontainers.image.version", ""),
                        "sha": labels.get("org.opencontainers.image.revision", ""),
                        "source": labels.get("org.opencontainers.image.source", ""),
                        "built_at": labels.get("org.opencontainers.image.created", "")}, shown)
    service = {"name": service_name, "containers": containers,
               "active_state": "active" if up else ("unknown" if ps is None else "inactive"),
               "since": min([c["started_at"] for c in up if c["started_at"]] or [""]), "error": error}
    releases = []
    failed_dir = os.path.join(root, "failed")
    for name in sorted(os.listdir(failed_dir)) if os.path.isdir(failed_dir) else []:
        if name.endswith(".json"):
            releases.append({"id": name[:-5], "status": "failed", "current": name[:-5] == current})
    if current and current not in [r["id"] for r in releases]:
        releases.append({"id": current, "status": "complete", "current": True})
    return current, running, release, service, releases


# ----------------------------------------------------------------------------------------------
# The host
# ----------------------------------------------------------------------------------------------
def hex_address(text):
    """An address of /proc/net/tcp{,6} (32-bit words in host order, little-endian here) as text."""
    raw = bytes.fromhex(text)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    if words[:12] == b"\0" * 10 + b"\xff\xff":  # an IPv4-mapped address
        return socket.inet_ntop(socket.AF_INET, words[12:])
    return "[%s]" % socket.inet_ntop(socket.AF_INET6, words)


def listening(port, proc="/proc/net"):
    found = []
    if not port:
        return found
    for name in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, name), encoding="ascii") as fh:
                rows = fh.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) < 4 or cols[3] != "0A":  # 0A: LISTEN
                continue
            addr, dummy, hexport = cols[1].partition(":")
            if int(hexport, 16) == port:
                item = "%s:%d" % (hex_address(addr), port)
                if item not in found:
                    found.append(item)
    return found


def disk(path):
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = total - st.f_bfree * st.f_frsize
    # As df: used of what an unprivileged user could have (used + available), reserved blocks left out.
    return {"path": path, "total_mb": total // 1048576, "free_mb": free // 1048576,
            "used_percent": round(100.0 * used / (used + free), 1) if used + free else 0.0}


def memory(path="/proc/meminfo"):
    values = {}
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                key, dummy, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[key] = int(parts[0])
    except OSError:
        return {}
    total = values.get("MemTotal", 0)
    available = values.get("MemAvailable", values.get("MemFree", 0))
    return {"total_mb": total // 1024, "available_mb": available // 1024,
            "used_percent": round(100.0 * (total - available) / total, 1) if total else 0.0}


def uptime(path="/proc/uptime"):
    try:
        with open(path, encoding="ascii") as fh:
            seconds = int(float(fh.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return {}
    days, rest = divmod(seconds, 86400)
    return {"seconds": seconds, "text": "%dd %dh %dm" % (days, rest // 3600, rest % 3600 // 60)}


def env_keys(path):
    """The variable names of an env file, never a value; None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    keys = set()
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        m = ENV_KEY.match(line)
        if m:
            keys.add(m.group(1))
    return sorted(keys)


def commits(module, mirror, sha, ref, limit):
    result = {"checked": False, "ref": ref, "from": sha, "count": 0, "list": [], "truncated": False, "note": ""}
    if not ref:
        result["note"] = "no ref given"
        return result
    if not mirror:
        result["note"] = "no git mirror given"
        return result
    if not os.path.isdir(mirror):
        result["note"] = "no git mirror at %s" % mirror
        return result
    if not sha:
        result["note"] = "the running release records no sha"
        return result
    git = module.get_bin_path("git")
    if not git:
        result["note"] = "git is not installed on this host"
        return result
    rc, out, err = module.run_command([git, "-C", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                       "%s^{commit}" % ref])
    if rc != 0:
        result["note"] = "ref '%s' names no commit in %s" % (ref, mirror)
        return result
    target = out.strip()
    rc, out, err = module.run_command([git, "-C", mirror, "cat-file", "-e", "--end-of-options", "%s^{commit}" % sha])
    if rc != 0:
        result["note"] = "the running sha %s is not in %s (fetch the mirror)" % (sha[:12], mirror)
        return result
    rc, out, err = module.run_command([git, "-C", mirror, "log", "--format=%H%x09%s", "--max-count=%d" % (limit + 1),
                                       "--end-of-options", "%s..%s" % (sha, target)])
    if rc != 0:
        result["note"] = "git log failed: %s" % ((err or out).strip().splitlines() or ["rc=%s" % rc])[-1]
        return result
    rows = [line.split("\t", 1) for line in out.splitlines() if line.strip()]
    rc, count, err = module.run_command([git, "-C", mirror, "rev-list", "--count", "--end-of-options",
                                         "%s..%s" % (sha, target)])
    result.update({
        "checked": True,
        "to": target,
        "count": int(count.strip()) if rc == 0 and count.strip().isdigit() else len(rows),
        "list": [{"sha": r[0], "subject": r[1] if len(r) > 1 else ""} for r in rows[:limit]],
        "truncated": len(rows) > limit,
    })
    return result


def report_lines(status):
    rel = status["release"]
    svc = status["service"]
    out = []
    current, running = status["current"], status["running"]
    if not running:
        out.append("release: none running (current names %s)" % (current or "nothing"))
    elif current and current != running:
        out.append("release: %s (current names %s: a switch not finished)" % (running, current))
    else:
        out.append("release: %s" % running)
    if rel["id"]:
        out.append("version: %s  sha: %s  ref: %s" % (rel["version"] or "?", rel["sha"][:12] or "?", rel["ref"] or "?"))
        if rel["built_at"]:
            out.append("built: %s by %s" % (rel["built_at"], rel["built_by"] or "?"))
    if status["strategy"] == "systemd":
        for unit in [svc] + svc.get("workers", []):
            out.append("unit: %s %s (%s) since %s, enabled: %s" % (
                unit["name"], unit["active_state"], unit["sub_state"], unit["since"] or "-", unit["enabled"] or "-"))
    else:
        out.append("service: %s %s since %s" % (svc["name"], svc["active_state"], svc["since"] or "-"))
        for c in svc["containers"]:
            out.append("  container %s: %s (%s) %s" % (c["name"], c["state"], c["status"], c["image"]))
    out.append("releases on disk: %s" % (", ".join(
        "%s%s" % (r["id"], "" if r["status"] == "complete" else " [%s]" % r["status"]) for r in status["releases"])
        or "none"))
    if status["port"]:
        out.append("port %d: %s" % (status["port"], ", ".join(status["listening"]) or "nothing listens"))
    d, m, u = status["disk"], status["memory"], status["uptime"]
    out.append("disk %s: %s%% used, %s MB free of %s MB" % (d["path"], d["used_percent"], d["free_mb"], d["total_mb"]))
    if m:
        out.append("memory: %s%% used, %s MB available of %s MB" % (m["used_percent"], m["available_mb"], m["total_mb"]))
    if u:
        out.append("uptime: %s" % u["text"])
    keys = status["env_keys"]
    out.append("env %s: %s" % (status["env_file"], ", ".join(keys) if keys else ("(unreadable)" if keys is None else "(empty)")))
    out.extend(commit_lines(status["commits"]))
    return out


def commit_lines(c):
    if not c["ref"]:
        return []
    if not c["checked"]:
        return ["commits to %s: not checked (%s)" % (c["ref"], c["note"])]
    lines = ["commits from %s to %s: %d" % (c["from"][:12], c["ref"], c["count"])]
    lines += ["  %s %s" % (item["sha"][:8], item["subject"]) for item in c["list"]]
    if c["truncated"]:
        lines.append("  ... (%d more)" % (c["count"] - len(c["list"])))
    return lines


def status(module, p):
    root = (p["root"] or "").rstrip("/")
    if not root:
        raise BadInput("root is required with action=status: the app's root, like /srv/sample_app")
    check_abs("root", root)
    if p["strategy"] == "systemd":
        unit = p["unit"] or "%s.service" % os.path.basename(root)
        if not is_unit_name(unit):
            raise BadInput("unit '%s' is not a systemd unit name" % unit)
        current, running, release, service, releases = systemd_status(module, root, unit)
    else:
        project_dir = (p["project_dir"] or root).rstrip("/")
        check_abs("project_dir", project_dir)
        if not is_compose_service(p["service"]):
            raise BadInput("service '%s' is not a compose service name" % p["service"])
        if p["image"] and not IMAGE.match(p["image"]):
            raise BadInput("image '%s' is not an image repository name" % p["image"])
        current, running, release, service, releases = compose_status(module, root, project_dir, p["service"],
                                                                      p["image"])
    env_file = p["env_file"] or os.path.join(root, "shared", "app.env")
    check_abs("env_file", env_file)
    result = {
        "strategy": p["strategy"],
        "root": root,
        "current": current,
        "running": running,
        "release": release,
        "service": service,
        "releases": releases,
        "port": p["port"],
        "listening": listening(p["port"]),
        "disk": disk(root if os.path.isdir(root) else "/"),
        "memory": memory(),
        "uptime": uptime(),
        "env_file": env_file,
        "env_keys": env_keys(env_file),
        "commits": commits(module, p["mirror"], release["sha"], p["ref"], p["max_commits"]),
        "checked_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    result["report"] = report_lines(result)
    if result["env_keys"] is None:
        result["env_keys"] = []
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["status", "commits"], default="status"),
            root=dict(type="path"),
            strategy=dict(type="str", choices=["systemd", "compose"], default="systemd"),
            unit=dict(type="str", default=""),
            project_dir=dict(type="path"),
            service=dict(type="str", default="app"),
            image=dict(type="str", default=""),
            env_file=dict(type="path"),
            port=dict(type="int", default=0),
            ref=dict(type="str", default=""),
            mirror=dict(type="path"),
            sha=dict(type="str", default=""),
            max_commits=dict(type="int", default=50),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        if not 0 <= p["port"] <= 65535:
            raise BadInput("port is %s; expected 0 (do not look) to 65535" % p["port"])
        if not 1 <= p["max_commits"] <= 1000:
            raise BadInput("max_commits is %s; expected 1 to 1000" % p["max_commits"])
        if p["ref"]:
            check_ref(p["ref"])
        if p["mirror"]:
            check_abs("mirror", p["mirror"])
        if p["action"] == "commits":
            if not SHA.match(p["sha"]):
                raise BadInput("sha '%s' is not a commit sha: expected 7 to 64 lowercase hex digits" % p["sha"])
            found = commits(module, p["mirror"], p["sha"], p["ref"], p["max_commits"])
            module.exit_json(changed=False, commits=found, report=commit_lines(found))
        result = status(module, p)
    except BadInput as exc:
        module.fail_json(msg="release_status: %s" % exc)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="release_status: %s" % exc, exception=traceback.format_exc())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
