# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of shipshape.ops.release_source_git: the source step only ever works on the controller (its
mirror and archives live in the controller's cache), so it runs here, in this process, with the module's own
argument spec and functions (module_utils/git_source.py), instead of starting the module as a process of its own
on every deploy (about 0.3 s)."""

from __future__ import annotations

import os
import shutil
import subprocess

from ansible.plugins.action import ActionBase
from ansible_collections.shipshape.ops.plugins.module_utils.git_source import GitSourceError, argument_spec, resolve


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        validation, params = self.validate_argument_spec(argument_spec=argument_spec())
        del validation
        git = shutil.which("git")
        if not git:
            return dict(result, failed=True, msg="git is not installed on the controller: the git source needs it")
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
        warnings = []

        def run(args):
            proc = subprocess.run([git] + args, capture_output=True, env=env, check=False)
            return (proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
                    proc.stderr.decode("utf-8", "replace"))

        try:
            result.update(resolve(params, run, warnings.append))
        except GitSourceError as exc:
            result.update(exc.extra, failed=True, msg=exc.msg)
        if warnings:
            result["warnings"] = warnings
        return result
