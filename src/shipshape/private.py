"""Files that may hold what a run saw (reports, history, artifacts) are the user's alone: 0600 files in
0700 directories, whatever the umask. Never written through a symbolic link: a link planted where a report or
the history goes (a shared --report-dir, a CI workspace) must not make shipshape overwrite, or chmod, its target."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from shipshape.config import UsageError


def private_dir(path: Path, adopt: bool = False) -> Path:
    """Create ``path`` and whatever parents are missing, each 0700 whatever the umask.

    A directory that was already there keeps its mode unless ``adopt`` (shipshape's own: ``runs/``, a run's directory,
    its work directory): ``--report-dir /tmp`` or ``--state-dir .`` must not chmod /tmp or a CI workspace 0700 (as
    root, /tmp then breaks every other user). The files written into it are 0600 whatever its mode."""
    path = Path(path)
    missing = []
    here = path
    while not os.path.lexists(here) and here != here.parent:
        missing.append(here)
        here = here.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:  # made meanwhile (another run): not ours to chmod
            continue
        os.chmod(directory, 0o700)
    if adopt and os.path.islink(path):
        # Ours to make 0700 and fill: through a planted link the chmod and the runs would land in its target.
        raise OSError(errno.ELOOP, "it is a symbolic link (not followed: remove it)", str(path))
    if not path.is_dir():
        raise NotADirectoryError(20, "Not a directory", str(path))
    if adopt and path not in missing:
        os.chmod(path, 0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing, and make it 0600; a symbolic link there is refused."""
    if os.path.islink(path):
        raise UsageError(f"{path} is a symbolic link: refusing to write through it (remove it, or choose another "
                         "--state-dir)")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` as a 0600 file, replacing what was there: written to a new file beside it and
    renamed over the name, so a symbolic link at ``path`` is replaced itself, never followed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
