# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of shipshape.ops.health_check: validate, summarize and report read nothing on a host, so they
run here with the module's own functions and argument spec; action=run and action=check start the module on the
host.

A module run costs a process on the host (about 0.3 s, measured), and a task about 0.05 s on the controller: the
preflight role checks a host's own checks with one action=check task, four times in a deploy (before, candidate,
gate, smoke), and takes the three steps (validate here, run there and on each delegate, summarize here) only for
checks delegated to other hosts.
"""

from __future__ import annotations

from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase
from ansible_collections.shipshape.ops.plugins.module_utils.health_checks import (
    CONTROLLER_ACTIONS, argument_spec, controller_action, secrets,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        if self._task.args.get("action", "run") not in CONTROLLER_ACTIONS:
            result.update(self._execute_module(module_name="shipshape.ops.health_check",
                                               module_args=self._task.args, task_vars=task_vars))
            return result

        validation, params = self.validate_argument_spec(argument_spec=argument_spec())
        del validation
        failed, outcome = controller_action(params)
        # The module marks passwords and tokens no_log; here they are taken out of everything returned.
        outcome = remove_values(outcome, secrets(params["checks"]))
        result.update(outcome)
        if failed:
            result["failed"] = True
        return result
