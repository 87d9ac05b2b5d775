# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The git source of a release, on the controller: a bare mirror of the repository, the ref resolved to a commit,
what a git archive of it would leave out, and the archive exported once.

Shared by the shipshape.ops.release_source_git module and its action plugin, which runs it in the controller's own
process (the source step runs on the controller on every deploy; a module run there costs a Python start-up and
the module's transfer, about 0.3 s). Every git command gets its values as argv items; nothing reaches a shell.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re

from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import url_secrets, without_credentials

SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
ALLOW_MISSING = ("submodules", "lfs")


def argument_spec():
    return dict(
        repo=dict(type="str", required=True),
        ref=dict(type="str", required=True),
        cache=dict(type="path", required=True),
        ref_variable=dict(type="str", default="ref"),
        allow_missing=dict(type="list", elements="str", choices=list(ALLOW_MISSING), default=[]),
        allow_missing_variable=dict(type="str", default="allow_missing"),
    )


class GitSourceError(Exception):
    """A refusal or a failed git command: its message, and what the result carries beside it."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def mirror_path(cache, repo):
    """One mirror per repository, named by the repository's sha1 (as the role always named it)."""
    return os.path.join(cache, "git", hashlib.sha1(repo.encode("utf-8")).hexdigest() + ".git")


def left_out(entries, read_blob):
    """What `git archive` of a tree leaves out, from its entries ((type, path) of `git ls-tree -r`): the submodules
    (gitlinks, of type commit) and the patterns a .gitattributes of the tree gives `filter=lfs`."""
    submodules, lfs, macros = [], [], set()
    for kind, path in entries:
        if kind == "commit":
            submodules.append(path)
        elif kind == "blob" and posixpath.basename(path) == ".gitattributes":
            where = posixpath.dirname(path)
            for line in read_blob(path).splitlines():
                fields = line.split()
                if len(fields) < 2 or fields[0].startswith("#"):
                    continue
                if fields[0].startswith("[attr]"):  # a macro: "[attr]big filter=lfs diff=lfs", then "*.bin big"
                    if "filter=lfs" in fields[1:]:
                        macros.add(fields[0][len("[attr]"):])
                elif "filter=lfs" in fields[1:] or macros.intersection(fields[1:]):
                    lfs.append(posixpath.join(where, fields[0]) if where else fields[0])
    return dict(submodules=submodules, lfs=lfs)


def refusal(left, allowed, ref_words, allow_variable):
    """The message that refuses what is left out and not allowed, or ''."""
    parts = []
    if left["submodules"] and "submodules" not in allowed:
        parts.append("git submodules (%s), whose files a git archive does not hold" % ", ".join(left["submodules"][:10]))
    if left["lfs"] and "lfs" not in allowed:
        parts.append("files stored in Git LFS (%s), which a git archive holds as pointers, not their content"
                     % ", ".join(left["lfs"][:10]))
    if not parts:
        return ""
    return ("%s has %s: a release built from it would lack them. Deploy an archive that holds them instead "
            "(the archive source), or, if the app runs without them, set %s to %s"
            % (ref_words, " and ".join(parts), allow_variable,
               [kind for kind in ("submodules", "lfs") if left[kind] and kind not in allowed]))


def resolve(params, run, warn):
    """_resolve(), with the repository's credentials out of the result, the messages and the warnings (git quotes
    the URL it was given whole): the result says where the release came from as C(repo), without them."""
    secrets = url_secrets(params["repo"] or "")
    shown = without_credentials(params["repo"] or "")

    def clean(text):
        text = without_credentials(text)
        for secret in secrets:
            text = text.replace(secret, "********")
        return text

    try:
        result = _resolve(params, run, lambda message: warn(clean(message)))
    except GitSourceError as exc:
        exc.msg = clean(exc.msg)
        exc.extra["repo"] = shown
        raise
    result["repo"] = shown
    return result


def _resolve(params, run, warn):
    """The source step for PARAMS (as argument_spec() describes them). RUN(args) runs git with ARGS and returns
    (rc, stdout, stderr) as text; WARN(message) reports a warning. Returns the result; raises GitSourceError."""
    repo, ref, cache, name = (params[k] for k in ("repo", "ref", "cache", "ref_variable"))
    if not repo or repo.startswith("-"):
        raise GitSourceError("the repository %r must be set and must not start with '-'" % repo)
    if not ref:
        raise GitSourceError("%s must be set" % name)

    def checked(*args, **kwargs):
        rc, out, err = run(list(args))
        if rc != 0:
            raise GitSourceError("%s failed (rc %d): %s" % (kwargs["what"], rc, " ".join(err.split())[:500]), rc=rc)
        return out

    for sub in ("git", "artifacts"):
        os.makedirs(os.path.join(cache, sub), mode=0o700, exist_ok=True)
    mirror = mirror_path(cache, repo)
    cloned = not os.path.isdir(mirror)
    if cloned:
        checked("clone", "--quiet", "--mirror", "--", repo, mirror, what="cloning %s" % repo)
    else:
        checked("-C", mirror, "fetch", "--quiet", "--prune", "--tags", "origin", what="fetching %s" % repo)

    rc, out, err = run(["-C", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}"])
    sha = out.strip()
    if rc != 0 or not SHA.match(sha):
        raise GitSourceError("%s '%s' names no commit in %s" % (name, ref, repo))
    describe = checked("-C", mirror, "describe", "--tags", "--always", sha, what="describing %s" % sha).strip()

    listing = checked("-C", mirror, "ls-tree", "-r", "-z", "--full-tree", sha, what="listing the tree of %s" % sha)
    entries = [(entry.split("\t", 1)[0].split(" ")[1], entry.split("\t", 1)[1]) for entry in listing.split("\0") if entry]
    left = left_out(entries, lambda path: run(["-C", mirror, "cat-file", "blob", sha + ":" + path])[1])
    message = refusal(left, params["allow_missing"], "%s '%s' (commit %s)" % (name, ref, sha[:12]),
                      params["allow_missing_variable"])
    if message:
        raise GitSourceError(message, sha=sha, left_out=left)
    for kind, what in (("submodules", "submodules"), ("lfs", "files stored in Git LFS")):
        if left[kind]:
            warn("the release of %s '%s' leaves out its %s: %s" % (name, ref, what, ", ".join(left[kind][:10])))

    artifact = os.path.join(cache, "artifacts", sha + ".tar.gz")
    exported = not os.path.exists(artifact)
    if exported:
        partial = artifact + ".part"
        checked("-C", mirror, "archive", "--format=tar.gz", "--prefix=src/", "-o", partial, sha,
                what="exporting %s" % sha)
        os.replace(partial, artifact)  # a killed export never leaves an archive that looks complete
    return dict(changed=cloned or exported, sha=sha, describe=describe, artifact=artifact, mirror=mirror,
                cloned=cloned, exported=exported, left_out=left)
