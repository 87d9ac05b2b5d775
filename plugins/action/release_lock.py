# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of shipshape.ops.release_lock: who holds a lock, and is that run still alive?

The module runs on the host and cannot see the controller's processes. This plugin records the controller's host
name and its ansible-playbook process in the lock, and when a lock taken from this same controller refuses a run,
checks that process: gone (or its pid reused by another process) means the holder is provably dead. Then the run
is told so, and with break_stale=true the module is called again to break that holder's lock, and only that one.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible.plugins.action import ActionBase


def process_start(pid):
    """The start time of a process in clock ticks since boot (Linux), or '' where /proc cannot tell."""
    try:
        with open("/proc/%d/stat" % int(pid), encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (OSError, ValueError):
        return ""
    # Field 22 (starttime), counted after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid, start=""):
    """Whether the process ``pid`` (started at ``start``, when known) still runs on this machine."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return True  # nothing to check: never claim a holder dead without proof
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return True
    if start:
        now_start = process_start(pid)
        if now_start and now_start != str(start):
            return False  # the pid now belongs to another process
    return True


def controller_user():
    """Who runs this: the CLI's SHIPSHAPE_USER (a CI job names its user), else the login."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):
        login = "unknown"
    return os.environ.get("SHIPSHAPE_USER") or os.environ.get("USER") or login


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    _supports_check_mode = True  # the lock is taken in check mode too (the module documents it)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            result.update(self._take_or_release(dict(self._task.args), task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _take_or_release(self, args, task_vars):
        if args.get("state", "present") == "present":
            # Workers are forked from the ansible-playbook process: it lives as long as the run.
            pid = os.getppid()
            args.setdefault("controller", socket.gethostname())
            args.setdefault("controller_pid", pid)
            args.setdefault("controller_pid_start", process_start(pid))
            if not args.get("owner") or args.get("owner") == "unknown":
                args["owner"] = "%s@%s" % (controller_user(), args["controller"])
        result = self._execute_module(module_name="shipshape.ops.release_lock", module_args=args, task_vars=task_vars)
        holder = result.get("holder") or {}
        if not (result.get("failed") and result.get("lock_held")):
            return result
        if holder.get("controller") != args.get("controller") or not holder.get("controller_pid"):
            return result  # taken from another machine: only its age can tell
        # Ask the module again, telling it what was proved, so that the failure it reports (which is what
        # ansible-core prints as the task's error) says so; with break_stale, the module breaks a dead holder's lock.
        alive = process_alive(holder["controller_pid"], holder.get("controller_pid_start", ""))
        again = dict(args, holder_state="alive" if alive else "dead", holder_token=holder.get("token") or "")
        final = self._execute_module(module_name="shipshape.ops.release_lock", module_args=again, task_vars=task_vars)
        if final.get("failed") and final.get("lock_held"):
            final["holder_dead"] = not alive
        elif not alive:
            final["dead_holder"] = holder
        return final
