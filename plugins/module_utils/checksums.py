# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Checksums of backup sets, in one place: hashlib, streaming, and the ``sha256sum`` file format.

A set is a directory. Each part (a file, or a directory such as a ``pg_dump -Fd`` dump) has a ``<part>.sha256``
file beside it, written exactly as ``find <part> -type f | LC_ALL=C sort | xargs sha256sum`` writes it: one line
``<sha256>  <path relative to the set>`` per regular file, sorted bytewise, so that sets written by the shell
of earlier releases verify here and ``sha256sum --check`` still verifies sets written here.

A part's own sha256 (the manifest's ``sha256``) is that of the file; for a directory part, that of its
listing (the text of the ``.sha256`` file).

Every name read from a set (a manifest's ``file`` or ``sha256_file``, a line of a ``.sha256`` file) is checked
by :func:`member` before it is opened: absolute names, ``..``, characters outside ``[A-Za-z0-9._+-/]`` and names that resolve
(through symlinks) outside the set are refused, so a tampered set can never make anything be read outside it.
Nothing here runs a program.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat

from ansible_collections.shipshape.ops.plugins.module_utils import files

CHUNK = 1024 * 1024
SUFFIX = ".sha256"
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
# What shipshape names the files of a set (parts, their sha256 files, pg_dump's directory entries): nothing else.
_NAME = re.compile(r"^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")


class Refused(ValueError):
    """A name from a set that must not be used (absolute, ``..``, outside the set, unreadable format)."""


def member(set_dir, name):
    """The path of ``name`` inside ``set_dir``, or :class:`Refused` when it could lead outside it."""
    if not isinstance(name, str) or not name:
        raise Refused("an empty file name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or "\\" in name:
        raise Refused("file name %r holds a control character or a backslash" % name)
    if os.path.isabs(name):
        raise Refused("file name %r is absolute" % name)
    if ".." in name.split("/"):
        raise Refused("file name %r contains '..'" % name)
    if not _NAME.match(name):
        raise Refused("file name %r holds characters other than letters, digits, '.', '_', '-', '+' and '/'" % name)
    root = os.path.realpath(set_dir)
    path = os.path.join(root, name)
    resolved = os.path.realpath(path)
    if resolved != root and not resolved.startswith(root + os.sep):
        raise Refused("file name %r resolves outside the set, to %s" % (name, resolved))
    return path


def open_regular(path, mode="rb", follow=True, **kwargs):
    """``open(path)`` for reading, :class:`Refused` when it is not a regular file (a FIFO, a socket, a device,
    reached directly or through a symlink): opening a FIFO would block for ever and a device never ends. With
    ``follow=False`` a symlink is refused too (``OSError`` ELOOP)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Refused("%s is not a regular file" % path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def file_digest(path, algorithm="sha256"):
    """The hex digest of one regular file by a hashlib algorithm, read in chunks (:class:`Refused` otherwise)."""
    digest = hashlib.new(algorithm)
    with open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path):
    """The sha256 of one file, read in chunks."""
    return file_digest(path, "sha256")


def text_sha256(text):
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def walk(path):
    """``os.walk(path)`` (top-down, symlinks not followed, unreadable directories skipped) without recursion: on
    Python before 3.12 ``os.walk`` recurses, and a tree a few thousand directories deep raised RecursionError."""
    stack = [path]
    while stack:
        top = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError:
            continue
        dirs, files_ = [], []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files_).append(entry.name)
        yield top, dirs, files_
        for entry in reversed(dirs):
            sub = os.path.join(top, entry)
            if not os.path.islink(sub):
                stack.append(sub)


def regular_files(set_dir, name):
    """The regular files of part ``name`` (itself, or every one under it), as ``find -type f | LC_ALL=C sort``
    lists them: relative to the set, sorted bytewise, symlinks not followed and not listed."""
    path = member(set_dir, name)
    st = os.lstat(path)
    if stat.S_ISREG(st.st_mode):
        return [name]
    if not stat.S_ISDIR(st.st_mode):
        raise Refused("%s is neither a regular file nor a directory" % name)
    found = []
    for top, dirs, files in walk(path):
        rel_top = name if top == path else os.path.join(name, os.path.relpath(top, path))
        for entry in files + dirs:
            if stat.S_ISREG(os.lstat(os.path.join(top, entry)).st_mode):
                found.append(os.path.join(rel_top, entry))
    return sorted(found, key=lambda n: n.encode("utf-8", "surrogateescape"))


def listing(set_dir, name):
    """The text ``sha256sum`` writes for part ``name`` (one line per regular file)."""
    lines = []
    for rel in regular_files(set_dir, name):
        member(set_dir, rel)
        lines.append("%s  %s\n" % (file_sha256(os.path.join(set_dir, rel)), rel))
    return "".join(lines)


def size(set_dir, name):
    """Bytes of part ``name`` as ``du -sb`` counts them (the directories' own sizes too)."""
    path = member(set_dir, name)
    st = os.lstat(path)
    total = st.st_size
    if stat.S_ISDIR(st.st_mode):
        for top, dirs, files in walk(path):
            for entry in dirs + files:
                total += os.lstat(os.path.join(top, entry)).st_size
    return total


def part_sha256(set_dir, name, text=None):
    """A part's own sha256: the file's, or for a directory that of its listing (``text`` when already read)."""
    path = member(set_dir, name)
    if os.path.isdir(path):
        return text_sha256(listing(set_dir, name) if text is None else text)
    return file_sha256(path)


def parse(text):
    """``[(sha256, name)]`` from the text of a ``.sha256`` file; :class:`Refused` on a line it cannot read."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            raise Refused("line %d is not '<sha256>  <file>': %r" % (number, line[:120]))
        entries.append((match.group(1).lower(), match.group(2)))
    if not entries:
        raise Refused("it lists no file")
    return entries


def write(set_dir, name):
    """Write ``<name>.sha256`` (mode 0600) for part ``name``; return ``{sha256, size, sha256_file}``."""
    text = listing(set_dir, name)
    if not text:
        raise Refused("part %s holds no regular file" % name)
    sha_name = name + SUFFIX
    path = member(set_dir, sha_name)
    # A new file renamed over the old one: an existing <name>.sha256 that is a hard link to a file outside the set is
    # replaced, never written through, and a run killed (or out of space) mid-write leaves no half-written listing.
    files.write_atomically(path, text.encode("utf-8", "surrogateescape"), 0o600)
    return {"sha256": part_sha256(set_dir, name, text), "size": size(set_dir, name), "sha256_file": sha_name}


def check_listed(set_dir, sha_name):
    """Re-read the files ``sha_name`` lists. Returns a list of problems (empty when every sum matches)."""
    try:
        path = member(set_dir, sha_name)
        with open_regular(path, "r", encoding="utf-8", errors="surrogateescape") as fh:
            entries = parse(fh.read())
    except Refused as exc:
        return ["%s: refused, %s" % (sha_name, exc)]
    except OSError as exc:
        return ["%s: cannot be read (%s)" % (sha_name, exc.strerror or exc)]
    problems = []
    for expected, name in entries:
        try:
            actual = file_sha256(member(set_dir, name))
        except Refused as exc:
            problems.append("%s names %r: refused, %s" % (sha_name, name, exc))
            continue
        except OSError as exc:
            problems.append("%s: %s cannot be read (%s)" % (sha_name, name, exc.strerror or exc))
            continue
        if actual != expected:
            problems.append("%s: %s FAILED (sha256 %s, listed %s)" % (sha_name, name, actual, expected))
    return problems


def unlisted(set_dir, name, sha_name):
    """Problems when ``sha_name`` does not list exactly the regular files of part ``name``: a ``.sha256`` file that
    names another file, or only some files of a directory part, would otherwise check nothing of the rest."""
    with open_regular(member(set_dir, sha_name), "r", encoding="utf-8", errors="surrogateescape") as fh:
        listed = set(os.path.normpath(n) for dummy, n in parse(fh.read()))
    present = set(regular_files(set_dir, name))
    problems = ["%s does not list %s" % (sha_name, n) for n in sorted(present - listed)]
    problems += ["%s lists %s, which is not part of %s" % (sha_name, n, name) for n in sorted(listed - present)]
    return problems


def verify_part(set_dir, label, entry):
    """Check one part (or the deploy history) as a manifest records it: ``entry`` has ``file``, optionally
    ``sha256_file`` (default ``file`` + ``.sha256``) and ``sha256`` (compared when given).

    Returns ``{name, file, sha256_file, actual, listed_ok, ok, problems}``; ``actual`` is ``missing`` when the
    part is gone and ``refused`` when its name may not be used.
    """
    entry = entry if isinstance(entry, dict) else {}
    name = entry.get("file")
    sha_name = entry.get("sha256_file") or ("%s%s" % (name, SUFFIX) if name else "")
    result = dict(name=label, file=name, sha256_file=sha_name, actual="missing", listed_ok=False, ok=False, problems=[])
    try:
        path = member(set_dir, name)
        member(set_dir, sha_name)
    except Refused as exc:
        result["actual"] = "refused"
        result["problems"].append("refused, %s" % exc)
        return result
    if os.path.lexists(path):
        try:
            result["actual"] = part_sha256(set_dir, name)
        except Refused as exc:
            result["actual"] = "refused"
            result["problems"].append("refused, %s" % exc)
        except OSError as exc:
            result["problems"].append("%s cannot be read (%s)" % (name, exc.strerror or exc))
    else:
        result["problems"].append("%s is missing" % name)
    listed = check_listed(set_dir, sha_name)
    result["listed_ok"] = not listed
    result["problems"].extend(listed)
    if not listed and result["actual"] not in ("missing", "refused") and not result["problems"]:
        result["problems"].extend(unlisted(set_dir, name, sha_name))
    expected = entry.get("sha256")
    if expected and result["actual"] not in ("missing", "refused") and result["actual"] != expected:
        result["problems"].append("%s has sha256 %s, the manifest records %s" % (name, result["actual"], expected))
    result["ok"] = not result["problems"]
    return result


def verify_manifest(set_dir, manifest):
    """Check every part of ``manifest`` and its deploy history; a list of :func:`verify_part` results."""
    parts = manifest.get("parts") if isinstance(manifest, dict) else None
    if not isinstance(parts, dict) or not parts:
        raise Refused("the manifest lists no parts")
    results = [verify_part(set_dir, label, parts[label]) for label in sorted(parts)]
    history = manifest.get("deploy_history")
    if isinstance(history, dict) and history:
        results.append(verify_part(set_dir, "deploy_history", history))
    return results


def make_private(path, uid=-1, gid=-1, check_mode=False):
    """``chown -R uid:gid`` (-1 keeps) and ``chmod -R u=rwX,go=`` without following symlinks; the paths changed.

    Files and directories are changed through a descriptor opened without following a symlink, so an entry
    swapped for a link during the walk (the set's owner may write in it) never has the link's target changed.
    A regular file with more than one hard link is refused (:class:`Refused`) and left as it is: a link to a file
    outside the set (``/etc/shadow``) would otherwise be given to the backup user."""
    changed = []

    def want_of(st, is_dir):
        mode = stat.S_IMODE(st.st_mode)
        return 0o700 if is_dir or mode & 0o111 else 0o600

    def needs(st, is_dir):
        own = (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)
        return own, stat.S_IMODE(st.st_mode) != want_of(st, is_dir)

    def fix(p, is_dir):
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            raise Refused("%s has %d hard links (one may be a file outside the set); it was not changed"
                          % (p, st.st_nlink))
        own, mode = needs(st, stat.S_ISDIR(st.st_mode))
        if not own and not mode:
            return
        changed.append(p)
        if check_mode:
            return
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            # A FIFO, socket or device: never opened (a device may act on open); changed by name, not followed.
            if own:
                os.lchown(p, uid, gid)
            try:
                os.chmod(p, 0o600, follow_symlinks=False)
            except (NotImplementedError, OSError):
                pass
            return
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)
        try:
            fd = os.open(p, flags | (os.O_DIRECTORY if stat.S_ISDIR(st.st_mode) else 0))
        except PermissionError:
            if os.geteuid() == 0 or own:
                raise
            os.chmod(p, want_of(st, stat.S_ISDIR(st.st_mode)))  # a user's own unreadable file (no root to abuse)
            return
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a symlink since os.lstat
                raise Refused("%s changed while the set was made private; it was not changed" % p) from exc
            raise
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or (stat.S_ISREG(now.st_mode) and now.st_nlink > 1):
                raise Refused("%s changed while the set was made private; it was not changed" % p)
            if own:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, want_of(now, stat.S_ISDIR(now.st_mode)))  # after fchown, which may clear set-id bits
        finally:
            os.close(fd)

    fix(path, True)
    for top, dirs, files_ in walk(path):
        for entry in dirs:
            fix(os.path.join(top, entry), True)
        for entry in files_:
            fix(os.path.join(top, entry), False)
    return changed
