#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_source_git
short_description: Resolve a git ref to a commit and export it as an archive, in a bare mirror on the controller
description:
  - The source step of a release, run once per run on the controller (C(delegate_to=localhost), C(run_once)), so
    that hosts need neither repository access nor credentials and every host gets the same commit.
  - Keeps a bare mirror of O(repo) under O(cache) (cloned once, fetched every run), resolves O(ref) to a commit,
    describes it (C(git describe --tags --always)) and exports it once as C(<cache>/artifacts/<sha>.tar.gz) with
    every path under C(src/).
  - Every git command gets its values as argv items, the repository after C(--) and the ref after
    C(--end-of-options), so neither can be taken for an option. Nothing reaches a shell. (The
    shipshape.ops.systemd_release role checks a ref against git's rules for ref names before its lock.)
  - A commit whose tree has what C(git archive) leaves out is refused before anything is exported, naming what
    would be missing - submodules (the archive holds none of their files) and files stored in Git LFS (the archive
    holds their pointers, not their content, where a C(.gitattributes) of the tree gives them C(filter=lfs)) -
    unless O(allow_missing) says the app runs without them.
  - The cache only belongs to the controller, so the module works the same in check mode.
version_added: 0.4.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  repo:
    description: The repository (a URL or a path), as C(git clone) takes it. It may not start with C(-).
    type: str
    required: true
  ref:
    description: A tag, branch or commit of O(repo).
    type: str
    required: true
  cache:
    description: The controller's cache directory; C(git/) and C(artifacts/) are made in it, mode 0700.
    type: path
    required: true
  ref_variable:
    description: The variable O(ref) came from, named in every message about it.
    type: str
    default: ref
  allow_missing:
    description:
      - What the archive may leave out, V(submodules) and V(lfs) (files stored in Git LFS, which come as
        pointers). Each one left out is then a warning instead of a refusal.
    type: list
    elements: str
    choices: [submodules, lfs]
    default: []
  allow_missing_variable:
    description: The variable O(allow_missing) came from, named in the refusal.
    type: str
    default: allow_missing
attributes:
  check_mode:
    support: full
    details: Only the controller's cache is written, never a host.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Resolve the release's source once, on the controller
  shipshape.ops.release_source_git:
    repo: https://git.example.com/acme/app.git
    ref: v2.0.0
    cache: "{{ lookup('ansible.builtin.env', 'HOME') }}/.cache/shipshape"
    ref_variable: systemd_release_git_ref
  delegate_to: localhost
  run_once: true
  register: source
"""

RETURN = r"""
sha:
  description: The commit O(ref) names.
  type: str
  returned: success
  sample: 3f2c1a7e9b0d4c5e6f708192a3b4c5d6e7f80912
describe:
  description: C(git describe --tags --always) of the commit.
  type: str
  returned: success
  sample: v2.0.0
artifact:
  description: The commit's archive (tar.gz, paths under C(src/)).
  type: str
  returned: success
  sample: /home/alice/.cache/shipshape/artifacts/3f2c1a7e9b0d4c5e6f708192a3b4c5d6e7f80912.tar.gz
mirror:
  description: The bare mirror of O(repo).
  type: str
  returned: success
  sample: /home/alice/.cache/shipshape/git/0b4e7f0e1c2d3a4b5c6d7e8f9a0b1c2d3e4f5a6b.git
cloned:
  description: Whether this run made the mirror.
  type: bool
  returned: success
exported:
  description: Whether this run wrote the archive (an archive of the same commit is reused).
  type: bool
  returned: success
left_out:
  description: What the archive leaves out (allowed by O(allow_missing), else the module failed), each list empty
    when nothing is.
  type: dict
  returned: success
  contains:
    submodules:
      description: The paths of the commit's submodules.
      type: list
      elements: str
    lfs:
      description: The patterns of files stored in Git LFS, with the directory of the C(.gitattributes) that names them.
      type: list
      elements: str
  sample: {"submodules": ["vendor/theme"], "lfs": ["assets/*.psd"]}
"""

import hashlib
import os
import posixpath
import re

from ansible.module_utils.basic import AnsibleModule

SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repo=dict(type="str", required=True),
            ref=dict(type="str", required=True),
            cache=dict(type="path", required=True),
            ref_variable=dict(type="str", default="ref"),
            allow_missing=dict(type="list", elements="str", choices=["submodules", "lfs"], default=[]),
            allow_missing_variable=dict(type="str", default="allow_missing"),
        ),
        supports_check_mode=True,
    )
    repo, ref, cache, name = (module.params[k] for k in ("repo", "ref", "cache", "ref_variable"))
    if not repo or repo.startswith("-"):
        module.fail_json(msg="the repository %r must be set and must not start with '-'" % repo)
    if not ref:
        module.fail_json(msg="%s must be set" % name)

    git = module.get_bin_path("git", required=True)

    def run(*args, what):
        rc, out, err = module.run_command([git] + list(args), environ_update={"GIT_TERMINAL_PROMPT": "0"})
        if rc != 0:
            module.fail_json(msg="%s failed (rc %d): %s" % (what, rc, " ".join(err.split())[:500]), rc=rc)
        return out.strip()

    for sub in ("git", "artifacts"):
        os.makedirs(os.path.join(cache, sub), mode=0o700, exist_ok=True)
    mirror = mirror_path(cache, repo)
    cloned = not os.path.isdir(mirror)
    if cloned:
        run("clone", "--quiet", "--mirror", "--", repo, mirror, what="cloning %s" % repo)
    else:
        run("-C", mirror, "fetch", "--quiet", "--prune", "--tags", "origin", what="fetching %s" % repo)

    rc, out, err = module.run_command([git, "-C", mirror, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                       ref + "^{commit}"])
    sha = out.strip()
    if rc != 0 or not SHA.match(sha):
        module.fail_json(msg="%s '%s' names no commit in %s" % (name, ref, repo))
    describe = run("-C", mirror, "describe", "--tags", "--always", sha, what="describing %s" % sha)

    rc, out, err = module.run_command([git, "-C", mirror, "ls-tree", "-r", "-z", "--full-tree", sha])
    if rc != 0:
        module.fail_json(msg="listing the tree of %s failed (rc %d): %s" % (sha, rc, " ".join(err.split())[:500]))
    entries = [(entry.split("\t", 1)[0].split(" ")[1], entry.split("\t", 1)[1]) for entry in out.split("\0") if entry]
    left = left_out(entries, lambda path: module.run_command([git, "-C", mirror, "cat-file", "blob", sha + ":" + path])[1])
    message = refusal(left, module.params["allow_missing"], "%s '%s' (commit %s)" % (name, ref, sha[:12]),
                      module.params["allow_missing_variable"])
    if message:
        module.fail_json(msg=message, sha=sha, left_out=left)
    for kind, what in (("submodules", "submodules"), ("lfs", "files stored in Git LFS")):
        if left[kind]:
            module.warn("the release of %s '%s' leaves out its %s: %s" % (name, ref, what, ", ".join(left[kind][:10])))

    artifact = os.path.join(cache, "artifacts", sha + ".tar.gz")
    exported = not os.path.exists(artifact)
    if exported:
        partial = artifact + ".part"
        run("-C", mirror, "archive", "--format=tar.gz", "--prefix=src/", "-o", partial, sha,
            what="exporting %s" % sha)
        os.replace(partial, artifact)  # a killed export never leaves an archive that looks complete

    module.exit_json(changed=cloned or exported, sha=sha, describe=describe, artifact=artifact, mirror=mirror,
                     cloned=cloned, exported=exported, left_out=left)


if __name__ == "__main__":
    main()
