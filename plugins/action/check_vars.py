# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of shipshape.ops.check_vars: the values are the task's own variables, so they are read and
checked here, as ansible.builtin.validate_argument_spec does, and no module runs on the host (a run costs about
0.3 s there; a role's checks used to be one assert task each, about 0.03 s apiece on the controller)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.shipshape.ops.plugins.module_utils.var_rules import check, check_vars_argument_spec


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        validation, params = self.validate_argument_spec(argument_spec=check_vars_argument_spec())
        del validation
        values = params["values"]
        if values is None:
            values = self._templar.template({name: task_vars[name] for name in params["rules"] if name in task_vars})
        failed, outcome = check(params["rules"], values)
        result.update(outcome)
        if failed:
            result["failed"] = True
        return result
