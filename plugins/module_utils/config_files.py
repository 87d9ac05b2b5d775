# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Small files rendered on the controller, written on the host: every entry checked before any is written, only
what differs written, atomically. Used by the config_files module and by release_state's switch (the units)."""

from __future__ import annotations

import glob
import grp
import os
import pwd
import stat

from ansible_collections.shipshape.ops.plugins.module_utils.files import parse_mode, write_atomically

# The suboptions of one file, for a module's argument_spec.
FILE_OPTIONS = dict(
    path=dict(type="path", required=True),
    content=dict(type="str", required=True, no_log=True),
    mode=dict(type="raw", required=True),
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
)


class Invalid(Exception):
    """An entry that cannot be written; nothing has been written."""


class ReadFailed(Exception):
    """A file could not be read to compare it; nothing has been written."""


class WriteFailed(Exception):
    """A write failed; ``results`` holds the files before it (written) and ``path`` names the one that failed."""

    def __init__(self, path, error, results):
        super().__init__("cannot write %s: %s" % (path, error))
        self.path = path
        self.results = results


def resolve_ids(entry, what):
    try:
        uid = pwd.getpwnam(entry["owner"]).pw_uid
    except (KeyError, TypeError):
        raise Invalid("%s: owner '%s' is not a user on this host; expected an existing user name"
                      % (what, entry["owner"]))
    try:
        gid = grp.getgrnam(entry["group"]).gr_gid
    except (KeyError, TypeError):
        raise Invalid("%s: group '%s' is not a group on this host; expected an existing group name"
                      % (what, entry["group"]))
    return uid, gid


def validate(files, name="files"):
    """Each entry as {path, data, mode, uid, gid}; Invalid naming the first bad entry (as NAME[index]), before
    anything is written."""
    wanted, seen = [], set()
    for index, entry in enumerate(files):
        path, mode = entry["path"], entry["mode"]
        what = "%s[%d] (%s)" % (name, index, path)
        if not os.path.isabs(path) or path.endswith("/"):
            raise Invalid("%s: path '%s' is not an absolute path to a file; expected one such as /etc/app.env"
                          % (what, path))
        # One file under two spellings ('/etc//app.env', '/etc/./app.env') is listed twice too.
        if os.path.normpath(path) in seen:
            raise Invalid("%s: path '%s' is listed twice; expected each path once" % (what, path))
        seen.add(os.path.normpath(path))
        # Only a string: YAML reads an unquoted 0640 as the number 416, which would pass as mode 0416.
        if not isinstance(mode, str):
            raise Invalid("%s: mode %r is not a string (YAML reads an unquoted 0640 as the number 416); expected a "
                          "quoted octal string such as '0644' or '0600'" % (what, mode))
        bits = parse_mode(mode)
        if bits is None:
            raise Invalid("%s: mode %r is not valid; expected an octal string such as '0644' or '0600'" % (what, mode))
        if not isinstance(entry["content"], str):
            raise Invalid("%s: content is %s; expected a string" % (what, type(entry["content"]).__name__))
        uid, gid = resolve_ids(entry, what)
        if not os.path.isdir(os.path.dirname(path)):
            raise Invalid("%s: directory '%s' does not exist; expected an existing directory (none is created)"
                          % (what, os.path.dirname(path)))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        except OSError as err:
            raise Invalid("%s: cannot stat '%s': %s" % (what, path, err))
        if st is not None and not stat.S_ISREG(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
            raise Invalid("%s: '%s' is %s; expected a regular file or no file (symlinks are never followed)"
                          % (what, path, kind))
        wanted.append(dict(path=path, data=entry["content"].encode("utf-8"), mode=bits, uid=uid, gid=gid))
    return wanted


def find_others(pattern, paths, name="others"):
    """The paths matching PATTERN (a glob of absolute paths) that are not in PATHS (however each is spelled), sorted."""
    if not pattern:
        return []
    if not os.path.isabs(pattern) or "\x00" in pattern:
        raise Invalid("%s: '%s' is not an absolute path pattern; expected one such as /etc/app.d/*.conf"
                      % (name, pattern))
    listed = set(os.path.normpath(path) for path in paths)
    return sorted(path for path in set(glob.glob(pattern)) if os.path.normpath(path) not in listed)


def compare(want):
    """(created, content_changed, attributes_changed) of the file as it stands."""
    try:
        fd = os.open(want["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return True, True, False
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        data = fh.read(len(want["data"]) + 1)  # one byte more tells a longer file apart
    attributes = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (want["mode"], want["uid"], want["gid"])
    return False, data != want["data"], attributes


def fix_attributes(want):
    fd = os.open(want["path"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchown(fd, want["uid"], want["gid"])
        os.fchmod(fd, want["mode"])
    finally:
        os.close(fd)


def plan(wanted):
    """Every file compared before any is written (ReadFailed naming one that cannot be read): [(want, comparison)]."""
    plans = []
    for want in wanted:
        try:
            plans.append((want, compare(want)))
        except OSError as err:
            raise ReadFailed("cannot read %s: %s" % (want["path"], err))
    return plans


def apply(plans, check_mode=False):
    """Write what differs (nothing in check mode); one result per file, never its content. WriteFailed names the
    file that could not be written; the files before it stay written."""
    results = []
    for want, (created, content_changed, attributes_changed) in plans:
        if not check_mode:
            try:
                if content_changed:
                    write_atomically(want["path"], want["data"], want["mode"], (want["uid"], want["gid"]))
                elif attributes_changed:
                    fix_attributes(want)
            except Exception as err:  # any failure names the file
                raise WriteFailed(want["path"], err, results)
        results.append(dict(path=want["path"], changed=content_changed or attributes_changed, created=created,
                            content_changed=content_changed, attributes_changed=attributes_changed))
    return results


def changed_paths(results):
    return [r["path"] for r in results if r["changed"]]
