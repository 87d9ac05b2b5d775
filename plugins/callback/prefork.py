# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Warm, in ansible-playbook's own process, what each forked worker would otherwise load again."""

from __future__ import annotations

DOCUMENTATION = r"""
name: prefork
type: aggregate
short_description: Load once per run what every task's worker process would load again
description:
  - C(ansible-playbook) runs each task on each host in a worker process forked from itself. A worker that
    uses a connection, shell or become plugin first reads that plugin's documentation (YAML) to learn its
    options, imports the task's action plugin (and the module_utils that imports), and, to run a module, the
    JSON profiles of the module's messages. The worker exits after its one task, and the next one does all of
    it again.
  - This callback does that work once, in the main process, when the playbook starts (an action plugin when
    its task starts, before the task's first worker forks), so that every worker inherits it through the fork.
    It prints nothing and changes nothing else; a plugin it cannot load (a collection that is not installed) is
    skipped, and the worker loads it as it would have.
  - Measured with C(bench/fleet) (bench/README.md), the workers of a deploy cost about a fifth less controller
    CPU.
  - The C(shipshape) CLI, the collection's C(ansible.cfg) and its Molecule base enable it; with plain
    C(ansible-playbook) add C(shipshape.ops.prefork) to C(callbacks_enabled).
version_added: 0.4.0
requirements:
  - enabled in C(callbacks_enabled) (C(ANSIBLE_CALLBACKS_ENABLED))
options:
  connections:
    description:
      - Connection plugins whose options are read before the first task, besides the configured default
        transport (C(DEFAULT_TRANSPORT)).
    type: list
    elements: str
    default: [ansible.builtin.ssh, ansible.builtin.local, community.docker.docker]
    env:
      - name: SHIPSHAPE_PREFORK_CONNECTIONS
    ini:
      - section: shipshape_prefork
        key: connections
  become_methods:
    description:
      - Become plugins read before the first task, besides the configured default (C(DEFAULT_BECOME_METHOD)).
    type: list
    elements: str
    default: [ansible.builtin.sudo, ansible.builtin.su]
    env:
      - name: SHIPSHAPE_PREFORK_BECOME_METHODS
    ini:
      - section: shipshape_prefork
        key: become_methods
"""

from ansible import constants as C
from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import action_loader, become_loader, connection_loader, module_loader, shell_loader
from ansible.utils.display import Display

display = Display()

SHELLS = ("sh",)
MESSAGE_PROFILES = ("legacy", "modern")


def _names(default: str | None, listed: list[str]) -> list[str]:
    """The configured default first, then the listed plugins, each once. A built-in plugin under both of its
    names: ansible-core records the options of ``ssh`` and of ``ansible.builtin.ssh`` apart, and a worker
    asks for the one its host's variables spell."""
    out: list[str] = []
    for name in ([default] if default else []) + list(listed or []):
        short = name.removeprefix("ansible.builtin.")
        for spelling in ((short, f"ansible.builtin.{short}") if "." not in short else (name,)):
            if spelling and spelling not in out:
                out.append(spelling)
    return out


def warm(connections: list[str], become_methods: list[str]) -> dict[str, list[str]]:
    """Load the plugins' option definitions and the message profiles into this process.

    A plugin's first load parses its documentation and records its options in the configuration manager;
    a later load in this process, or in a process forked after this, finds them there. Returns what was
    loaded and what was not, for the debug output."""
    loaded: list[str] = []
    skipped: list[str] = []
    groups = (
        (connection_loader, _names(C.DEFAULT_TRANSPORT, connections)),
        (shell_loader, _names(None, list(SHELLS))),
        (become_loader, _names(C.DEFAULT_BECOME_METHOD, become_methods)),
    )
    for loader, names in groups:
        for name in names:
            try:
                found = loader.get(name, class_only=True)
            except Exception:  # pylint: disable=broad-except
                # Only a warm-up: a plugin that fails here fails in the worker with its own error, as without us.
                found = None
            (loaded if found is not None else skipped).append(f"{loader.type}/{name}")
    try:
        # Each worker imports these profiles (the module's arguments out, its result back) on first use.
        from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder

        for profile in MESSAGE_PROFILES:
            for direction in Direction:
                get_module_encoder(profile, direction)
                get_module_decoder(profile, direction)
        loaded.append("module message profiles")
    except Exception:  # pylint: disable=broad-except
        skipped.append("module message profiles")
    return {"loaded": loaded, "skipped": skipped}


def warm_action(action: str, collections: list[str] | None) -> str | None:
    """Import the action plugin a worker will run a task with, chosen as ansible-core's task executor chooses it
    (the module's own action plugin, else one of the task's name, else ``normal``); returns its name."""
    module = module_loader.find_plugin_with_context(action, collection_list=collections)
    if module.resolved and module.action_plugin:
        name = module.action_plugin
    elif action_loader.has_plugin(action, collection_list=collections):
        name = action
    else:
        name, collections = "ansible.legacy.normal", None
    return name if action_loader.get(name, class_only=True, collection_list=collections) is not None else None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "shipshape.ops.prefork"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.warmed: dict[str, list[str]] | None = None
        self.actions: set[str] = set()

    def v2_playbook_on_start(self, playbook):
        # Callbacks run in the main process; the first play's workers are forked after this event.
        if self.warmed is not None:
            return
        self.warmed = warm(self.get_option("connections"), self.get_option("become_methods"))
        display.vvvv(f"shipshape.ops.prefork: loaded {', '.join(self.warmed['loaded']) or 'nothing'}; "
                     f"not found {', '.join(self.warmed['skipped']) or 'none'}")

    def v2_playbook_on_task_start(self, task, is_conditional):
        # Sent before the first host's worker for this task forks: the task's action plugin (with what it
        # imports, such as the collection's module_utils) is imported once here instead of in every worker.
        if task.action in self.actions:
            return
        self.actions.add(task.action)
        try:
            warm_action(task.action, task.collections)
        except Exception:  # pylint: disable=broad-except
            pass  # the worker loads it, or reports why it cannot, as without this callback

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)
