# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Writing a file so that a reader sees the old content or the new, never half of it."""

from __future__ import annotations

import os
import re
import tempfile

MODE = re.compile(r"0?[0-7]{3}")


def parse_mode(value):
    """The permission bits an octal mode string names (such as '0644' or '750'), or None when it is not one: only
    a string, so an unquoted YAML 0640 (read as the number 416) is never taken for a mode."""
    if not isinstance(value, str) or not MODE.fullmatch(value):
        return None
    return int(value, 8)


def write_atomically(path, content, mode, owner=None):
    """Replace ``path`` with ``content`` (text or bytes) and give it ``mode`` and, when given, ``owner`` (uid, gid):
    a temp file in the same directory, given its owner and mode before any content is written (a secret is never
    readable by others), flushed to disk, then renamed over it. The temp file ends in ``.tmp`` (never a name a
    collector reads, such as ``*.prom``) and is removed when anything fails."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".shipshape-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            if owner is not None:
                os.fchown(fh.fileno(), *owner)
            os.fchmod(fh.fileno(), mode)  # after fchown, which may clear the set-id bits
            fh.write(content.encode("utf-8") if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
