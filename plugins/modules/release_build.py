#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_build
short_description: Build an immutable release directory on a host, marked unfinished until its last step
description:
  - The host-side steps of building a release under C(<root>/releases/<id>), each in one module run, so a release
    whose dependencies did not change costs three runs instead of a dozen. The source is unpacked and the wheels and
    the venv are put in place by the caller (M(ansible.builtin.unarchive), M(ansible.builtin.command)) between them.
  - O(action=start) creates the release directory (C(0755), owned by the user the module runs as) with the marker
    C(.shipshape-unfinished) in it, so a run killed before O(action=finish) leaves a release that
    M(shipshape.ops.release_state) reports as unfinished and removes, never one that looks complete. It also says
    whether the wheelhouse directory O(wheel_dir) is complete on the host (its C(.shipshape-unpacked) marker).
  - O(action=venv) reads the release's requirements file and the interpreter and says where its venv is and whether
    it is built. Releases of the same dependencies share one venv under O(venvs_dir), named by a key of the
    requirements file's content (and that of each local file it reads with C(-r) or C(-c), at any depth), the
    wheelhouse, the interpreter's path and content, pip's extra arguments and pip's configuration on the host (its
    config files, the C(PIP_*) variables that change what it installs, the constraints files they name); it is built
    when its C(.shipshape-complete) marker is there. A requirements file, or a file it reads, that leads outside the
    release is refused. A requirements file that installs a local path (C(.), C(-e), C(/), C(~), C(file:), or a
    direct reference C(name @ file:...)) makes the venv the release's own, and so does O(shared=false).
  - O(action=finish) links the shared directories, the wheelhouse and a shared venv into the release, writes
    C(release.json) (the O(release) fields and C(built_at)) and removes the unfinished marker, last.
version_added: 0.9.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  action:
    description: The step to run.
    type: str
    choices: [start, venv, finish]
    required: true
  root:
    description: The app root (absolute, without C(.) or C(..) components); the release is C(<root>/releases/<id>).
    type: path
    required: true
  id:
    description: The release id (one path component).
    type: str
    required: true
  wheel_dir:
    description:
      - The wheelhouse directory on the host (absolute, inside O(root)). With O(action=start), whether it is complete
        is returned; with O(action=venv), it is part of the venv key; with O(action=finish), the release links to it
        as C(.shipshape-wheelhouse). Empty, pip uses its index.
    type: path
    default: ""
  requirements:
    description: With O(action=venv), the requirements file, relative to the release directory.
    type: str
    default: requirements.txt
  python:
    description: With O(action=venv), the interpreter that builds the venv (absolute).
    type: path
    default: /usr/bin/python3
  pip_extra_args:
    description: With O(action=venv), pip's extra arguments (part of the venv key).
    type: list
    elements: str
    default: []
  shared:
    description: With O(action=venv), share one venv between the releases of the same dependencies.
    type: bool
    default: true
  venvs_dir:
    description: The directory of the shared venvs (absolute, inside O(root)).
    type: path
    required: true
  venv_dir:
    description: The venv's name inside the release (one path component).
    type: str
    default: venv
  venv:
    description:
      - With O(action=finish), the shared venv to link as O(venv_dir) (what O(action=venv) returned in RV(venv) when
        RV(shares) is true). Empty, nothing is linked (the release has its own venv).
    type: path
    default: ""
  shared_dirs:
    description:
      - With O(action=finish), the directories of C(<root>/shared) that the release links to under the same name. An
        entry the source ships as a file, a link or an empty directory is replaced by the link; a directory with files
        is refused, naming it.
    type: list
    elements: str
    default: []
  release:
    description:
      - With O(action=finish), what C(release.json) records (for example C(id), C(app), C(version), C(sha), C(source),
        C(built_by)); C(built_at) is added, the host's UTC time.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    details: O(action=start) and O(action=finish) report what they would change and change nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Create the release directory, marked unfinished
  shipshape.ops.release_build:
    action: start
    root: /srv/sample_app
    id: 2.0.0-1a2b3c4d
    venvs_dir: /srv/sample_app/shared/venvs
    wheel_dir: /srv/sample_app/shared/wheelhouse-54d9b7f8d9a7332c
  register: started

- name: Say where the venv is and whether it is built
  shipshape.ops.release_build:
    action: venv
    root: /srv/sample_app
    id: 2.0.0-1a2b3c4d
    venvs_dir: /srv/sample_app/shared/venvs
    wheel_dir: /srv/sample_app/shared/wheelhouse-54d9b7f8d9a7332c
  register: venv

- name: Link, describe and finish the release
  shipshape.ops.release_build:
    action: finish
    root: /srv/sample_app
    id: 2.0.0-1a2b3c4d
    venvs_dir: /srv/sample_app/shared/venvs
    wheel_dir: /srv/sample_app/shared/wheelhouse-54d9b7f8d9a7332c
    venv: "{{ venv.venv if venv.shares else '' }}"
    shared_dirs: [log, uploads]
    release: {id: 2.0.0-1a2b3c4d, app: sample_app, version: 2.0.0, sha: 1a2b3c4d5e6f}
"""

RETURN = r"""
path:
  description: The release directory.
  returned: always
  type: str
  sample: /srv/sample_app/releases/2.0.0-1a2b3c4d
wheels_present:
  description: With O(action=start), whether O(wheel_dir) holds a complete wheelhouse (false when O(wheel_dir) is empty).
  returned: action=start
  type: bool
venv:
  description: With O(action=venv), the venv's directory (shared, or inside the release).
  returned: action=venv
  type: str
  sample: /srv/sample_app/shared/venvs/3f9a0c2b7d1e4a65
shares:
  description: With O(action=venv), whether the venv is a shared one (linked into the release by O(action=finish)).
  returned: action=venv
  type: bool
built:
  description: With O(action=venv), whether a shared venv was built to its end (its C(.shipshape-complete) marker).
  returned: action=venv
  type: bool
key:
  description: With O(action=venv), the shared venv's key ('' when the venv is the release's own).
  returned: action=venv
  type: str
"""

import datetime
import hashlib
import json
import os
import pwd
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.checksums import Refused, file_digest, open_regular
from ansible_collections.shipshape.ops.plugins.module_utils.files import write_atomically
from ansible_collections.shipshape.ops.plugins.module_utils.release_files import (
    UNFINISHED_MARKER as UNFINISHED, component_problem, lies_under, path_problem, replace_symlink,
)
from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import without_credentials

WHEELS_UNPACKED = ".shipshape-unpacked"
WHEEL_LINK = ".shipshape-wheelhouse"
VENV_COMPLETE = ".shipshape-complete"
# A requirements line that installs a local path, also as a direct reference (name @ file:...), whose content may
# change under the same text: the venv then holds the release's own code.
LOCAL_INSTALL = re.compile(r"(?m)^\s*(-e\b|--editable\b|[.]|/|~|file:)|^[^#\n]*@\s*file:")
# A requirements line that reads another file (pip resolves it from the file that names it): its text is part of the key.
INCLUDE = re.compile(r"(?m)^\s*(?:-[rc]\s*|--(?:requirement|constraint)(?:\s+|\s*=\s*))(\S+)")


class BuildError(Exception):
    """A refusal, with the message the task fails with."""


# pip's own configuration on the host decides what it installs too (a constraints file, another index, more
# find-links): the files pip reads (besides PIP_CONFIG_FILE) and the environment variables that change what it picks.
PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")  # ~: $HOME
PIP_CHOICE_ENV = ("PIP_CONFIG_FILE", "PIP_CONSTRAINT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS",
                  "PIP_NO_INDEX", "PIP_PRE", "PIP_ONLY_BINARY", "PIP_NO_BINARY", "PIP_UPGRADE_STRATEGY", "PIP_NO_DEPS")


def _home():
    """pip's home, as pip finds it: $HOME, else the account's."""
    if os.environ.get("HOME"):
        return os.environ["HOME"]
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:  # a uid without an account: no home, no file there
        return ""


def _text_of(path):
    if path.startswith("~/"):
        home = _home()
        if not home:
            return None
        path = os.path.join(home, path[2:])
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None


def pip_configuration():
    """The text of pip's configuration on this host: its config files, the variables of PIP_CHOICE_ENV, and the
    content of each constraints file they name ('' when there is none)."""
    environ = os.environ
    parts, constraints = [], environ.get("PIP_CONSTRAINT", "").split()
    files = list(PIP_CONFIG_FILES) + ([environ["PIP_CONFIG_FILE"]] if environ.get("PIP_CONFIG_FILE") else [])
    for path in files:
        text = _text_of(path)
        if text is None:
            continue
        parts.append("-- %s --\n%s" % (path, text))
        constraints += re.findall(r"(?m)^\s*constraint\s*[=:]\s*(\S+)", text)
    parts += ["%s=%s" % (name, environ[name]) for name in PIP_CHOICE_ENV if name in environ]
    for path in constraints:
        parts.append("-- constraints %s --\n%s" % (path, _text_of(path) or ""))
    return "\n".join(parts)


def venv_key(requirements_text, wheel_dir, python, python_sha1, pip_extra_args, pip_config=""):
    """The shared venv's name: what decides its content, hashed. The parts are joined by the two characters '\\' and
    'n', as the role's Jinja joined them before this module, so the venvs already on hosts keep their key; pip's
    configuration is a part only where there is one (a host without any keeps the key it had)."""
    parts = [requirements_text, wheel_dir or "index", python, python_sha1, json.dumps(list(pip_extra_args))]
    if pip_config:
        parts.append(pip_config)
    return hashlib.sha256("\\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def read_inside(release, path, what):
    """The text of PATH, a file that must lie inside the release (a link out of it is refused)."""
    real, real_release = os.path.realpath(path), os.path.realpath(release)
    if real != real_release and not lies_under(real, real_release):
        raise BuildError("%s leads outside the release (to %s)" % (what, real))
    try:
        # Without waiting: a FIFO shipped in the source would otherwise hold the run until a writer came.
        with open_regular(path) as fh:
            return fh.read().decode("utf-8", "surrogateescape")
    except Refused:
        raise BuildError("cannot read %s (%s): it is not a regular file; expected a requirements file" % (what, path))
    except OSError as exc:
        raise BuildError("cannot read %s (%s): %s" % (what, path, exc.strerror or exc))


def read_requirements(release, relative):
    """The requirements file's text, followed by the text of each local file it reads with -r or -c (at any depth),
    so an edit to an included file keys another venv. Files outside the release are refused."""
    if not relative or os.path.isabs(relative) or ".." in relative.split("/"):
        raise BuildError("requirements '%s' must be a path inside the release, relative to it, without '..'" % relative)
    top = os.path.join(release, relative)
    text = read_inside(release, top, "requirements '%s'" % relative)
    included, seen, queue = [], {os.path.realpath(top)}, [(top, text)]
    while queue:
        path, content = queue.pop(0)
        for name in INCLUDE.findall(content):
            if "://" in name:
                continue  # a URL: its name is in the text already, and nothing here can read it
            child = os.path.normpath(os.path.join(os.path.dirname(path), name))
            if os.path.realpath(child) in seen:
                continue
            seen.add(os.path.realpath(child))
            child_text = read_inside(release, child, "'%s', included by %s" % (name, os.path.relpath(path, release)))
            included.append("\n-- %s --\n%s" % (os.path.relpath(child, release), child_text))
            queue.append((child, child_text))
    # Without includes, the text alone: the key of a plain requirements file is the one it always had.
    return text + "".join(included)


def plan_venv(params, release):
    """Where the release's venv is, whether it is shared, built, and its key."""
    own = {"venv": os.path.join(release, params["venv_dir"]), "shares": False, "built": False, "key": ""}
    if not params["shared"]:
        return own
    text = read_requirements(release, params["requirements"])
    if LOCAL_INSTALL.search(text):
        return own
    python = params["python"]
    try:
        python_sha1 = file_digest(os.path.realpath(python), "sha1")
    except OSError as exc:
        raise BuildError("cannot read the interpreter %s: %s" % (python, exc.strerror or exc))
    key = venv_key(text, params["wheel_dir"], python, python_sha1, params["pip_extra_args"], pip_configuration())
    venv = os.path.join(params["venvs_dir"], key)
    return {"venv": venv, "shares": True, "built": os.path.isfile(os.path.join(venv, VENV_COMPLETE)), "key": key}


def start(module, release):
    """Create the release directory with its unfinished marker; True when anything was (or would be) made."""
    if os.path.isfile(os.path.join(release, UNFINISHED)):
        return False
    if module.check_mode:
        return True
    os.makedirs(os.path.dirname(release), mode=0o755, exist_ok=True)
    os.makedirs(release, mode=0o755, exist_ok=True)
    os.chmod(release, 0o755)  # the umask may have narrowed it
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    write_atomically(os.path.join(release, UNFINISHED), "building since %s\n" % stamp, 0o644)
    return True


def ensure_link(module, link, target, replace_empty_dir=False):
    """Point LINK at TARGET; True when it changed (or would). A directory with files at LINK is refused."""
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    if os.path.isdir(link) and not os.path.islink(link):
        if os.listdir(link) or not replace_empty_dir:
            raise BuildError("%s is a directory in the release; expected nothing there (it becomes a link to %s)"
                             % (link, target))
        if not module.check_mode:
            os.rmdir(link)
    if module.check_mode:
        return True
    replace_symlink(link, target)
    return True


def finish(module, params, release, shared_root):
    """Link the shared directories, wheels and venv, write release.json, remove the marker; whether anything changed."""
    if not os.path.isdir(release):
        if module.check_mode:
            return True
        raise BuildError("release %s does not exist: action=start creates it" % release)
    changed = False
    for name in params["shared_dirs"]:
        changed |= ensure_link(module, os.path.join(release, name), os.path.join(shared_root, name),
                               replace_empty_dir=True)
    if params["wheel_dir"]:
        changed |= ensure_link(module, os.path.join(release, WHEEL_LINK), params["wheel_dir"])
    if params["venv"]:
        changed |= ensure_link(module, os.path.join(release, params["venv_dir"]), params["venv"])
    marker = os.path.join(release, UNFINISHED)
    if os.path.lexists(marker):
        # A repository URL's token (git https://ci:<token>@host/app.git main) never reaches the 0644 record.
        meta = dict((k, without_credentials(v) if isinstance(v, str) else v) for k, v in params["release"].items())
        meta["built_at"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not module.check_mode:
            write_atomically(os.path.join(release, "release.json"), json.dumps(meta, indent=4, sort_keys=True) + "\n",
                             0o644)
            os.unlink(marker)  # last: until here the release is unfinished
        changed = True
    return changed


def check_params(params):
    why = path_problem(params["root"])
    if why:
        raise BuildError("root '%s' %s" % (params["root"], why))
    root = os.path.normpath(params["root"])
    why = component_problem(params["id"])
    if why:
        raise BuildError("id '%s' %s" % (params["id"], why))
    for name in ("venvs_dir", "wheel_dir", "venv"):
        value = params[name]
        if not value and name != "venvs_dir":
            continue
        why = path_problem(value)
        if why:
            raise BuildError("%s '%s' %s" % (name, value, why))
        if not lies_under(os.path.normpath(value), root):
            raise BuildError("%s '%s' must lie inside the app root %s" % (name, value, root))
    entries = [("venv_dir", params["venv_dir"])] + [("shared_dirs", name) for name in params["shared_dirs"]]
    for option, name in entries:
        if not name or name in (".", "..") or "/" in name or "\x00" in name or name in (UNFINISHED, "release.json"):
            raise BuildError("%s '%s' must be one path component naming an entry of the release" % (option, name))
        # Two links of one name: the last would win, and every run would move it back and forth.
        if name == WHEEL_LINK or (option == "shared_dirs" and name == params["venv_dir"]):
            raise BuildError("%s '%s' is also the name of the release's %s; expected another name" % (
                option, name, "wheelhouse link" if name == WHEEL_LINK else "venv (venv_dir)"))
    if not os.path.isabs(params["python"]):
        raise BuildError("python '%s' must be an absolute path" % params["python"])
    return root


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", required=True, choices=["start", "venv", "finish"]),
            root=dict(type="path", required=True),
            id=dict(type="str", required=True),
            wheel_dir=dict(type="path", default=""),
            requirements=dict(type="str", default="requirements.txt"),
            python=dict(type="path", default="/usr/bin/python3"),
            pip_extra_args=dict(type="list", elements="str", default=[]),
            shared=dict(type="bool", default=True),
            venvs_dir=dict(type="path", required=True),
            venv_dir=dict(type="str", default="venv"),
            venv=dict(type="path", default=""),
            shared_dirs=dict(type="list", elements="str", default=[]),
            release=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        root = check_params(params)
        release = os.path.join(root, "releases", params["id"])
        action = params["action"]
        if action == "start":
            changed = start(module, release)
            wheels = bool(params["wheel_dir"]) and os.path.isfile(os.path.join(params["wheel_dir"], WHEELS_UNPACKED))
            module.exit_json(changed=changed, path=release, wheels_present=wheels)
        if action == "venv":
            if module.check_mode and not os.path.isdir(release):
                # A check run of a release that is not built: nothing to read, so nothing counts as built.
                module.exit_json(changed=False, path=release, venv="", shares=params["shared"], built=False, key="")
            module.exit_json(changed=False, path=release, **plan_venv(params, release))
        changed = finish(module, params, release, os.path.join(root, "shared"))
        module.exit_json(changed=changed, path=release)
    except BuildError as exc:
        module.fail_json(msg="release_build (%s): %s" % (params["action"], exc))
    except OSError as exc:
        module.fail_json(msg="release_build (%s): %s: %s" % (params["action"], exc.filename or "", exc.strerror or exc))


if __name__ == "__main__":
    main()
