# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a release root holds, read the same way by every module: the release links and the JSON records.

``<root>/current`` and ``<root>/previous`` link to ``releases/<id>``; ``<root>/.shipshape-running`` is the copy of
``current`` that the unit's ExecStartPre makes at every start (systemd_release), so it names what the service runs.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.shipshape.ops.plugins.module_utils.checksums import open_regular

RUNNING_MARKER = ".shipshape-running"
# In a release that has not finished building: never switched to, never counted, removed first.
UNFINISHED_MARKER = ".shipshape-unfinished"
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def component_problem(name, max_len=128):
    """Why NAME is not one path component of at most MAX_LEN characters (a letter or digit, then letters, digits,
    '.', '_', '+' or '-', without '..'), or None: a release id, a backup name, a tag a rollback names."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,%d}" % (max_len - 1), name):
        return ("must be one path component: a letter or digit, then at most %d letters, digits, '.', '_', '+' or "
                "'-'" % (max_len - 1))
    if ".." in name:
        return "must not contain '..'"
    return None


def path_problem(path, allow_root=False):
    """Why PATH is not an acceptable absolute path, or None: every module that takes an app root or a file of
    one checks it here. A trailing '/' is allowed; '.' and '..' components and control characters are not."""
    if not isinstance(path, str) or not os.path.isabs(path):
        return "must be an absolute path"
    if not allow_root and path.rstrip("/") == "":
        return "must be an absolute path other than /"
    if any(part in (".", "..") for part in path.split("/")):
        return "must be an absolute path without '.' or '..' components"
    if CONTROL_CHARS.search(path):
        return "must not contain control characters"
    return None


def lies_under(path, root):
    """Whether the normalised absolute PATH lies under ROOT (ROOT itself excluded)."""
    return path.startswith(root.rstrip("/") + "/")


def replace_symlink(link, target):
    """Point LINK at TARGET atomically: a new link under a temporary name beside it, renamed over the old one
    (rename(2) replaces a link or a file; a reader sees the old target or the new, never none)."""
    tmp = os.path.join(os.path.dirname(link), ".%s.new" % os.path.basename(link))
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, link)


def link_target(path):
    """The release id a link names (the last component of its target, '.' and '..' taken away as they read), or ''
    when it is absent or not a link: 'releases/<id>/.' names <id>, never '.', so keep-N never takes it for another."""
    try:
        name = os.path.basename(os.path.normpath(os.readlink(path)))
    except OSError:
        return ""
    return "" if name in (".", "..") else name


def read_json(path):
    """The JSON value of a regular file, or None when it is not one or cannot be read or parsed (a FIFO is opened
    without waiting for a writer, and never read)."""
    try:
        with open_regular(path) as fh:
            return json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):  # Refused (not a regular file) and UnicodeDecodeError are ValueErrors
        return None
