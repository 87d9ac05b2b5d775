#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_source_git
short_description: Resolve a git ref to a commit and export it as an archive, in a bare mirror on the controller
description:
  - The source step of a release, run once per run on the controller (C(run_once)), so that hosts need neither
    repository access nor credentials and every host gets the same commit. Its action plugin runs it in the
    controller's own process, whatever host the task names; the module itself, on a host, works the same.
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
repo:
  description: O(repo) as a record may show it, without the user information of a URL (C(https://ci:token@host/app.git)
    reads C(https://host/app.git)). The password of such a URL is never returned, in a message or anywhere else.
  type: str
  returned: always
  sample: https://git.example.com/acme/app.git
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.git_source import GitSourceError, argument_spec, resolve
from ansible_collections.shipshape.ops.plugins.module_utils.url_credentials import url_secrets


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    # The invocation echoes the module's arguments: the URL's secret is masked there too.
    for secret in url_secrets(module.params["repo"]):
        module.no_log_values.add(secret)
    git = module.get_bin_path("git", required=True)

    def run(args):
        return module.run_command([git] + args, environ_update={"GIT_TERMINAL_PROMPT": "0"})

    try:
        result = resolve(module.params, run, module.warn)
    except GitSourceError as exc:
        module.fail_json(msg=exc.msg, **exc.extra)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
