"""shipshape.ops.prefork: what it loads must be there for a process forked after it, and nothing may stop a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

# A fresh interpreter per check: this test process may already have loaded the plugins being looked for.
PROBE = r"""
import json, os, sys
from ansible import constants as C
from ansible.plugins.loader import init_plugin_loader

# As ansible-playbook starts: the collection finder, over the collections this process imports from.
init_plugin_loader([entry for entry in sys.path if os.path.isdir(os.path.join(entry, "ansible_collections"))])
from ansible_collections.shipshape.ops.plugins.callback import prefork

def defined():
    # Workers ask by the name the host's variables spell: the short one, or the FQCN (kept apart).
    return {"ssh": C.config.has_configuration_definition("connection", "ssh"),
            "fqcn ssh": C.config.has_configuration_definition(
                "connection", "ansible_collections.ansible.builtin.plugins.connection.ssh"),
            "sh": C.config.has_configuration_definition("shell", "sh"),
            "sudo": C.config.has_configuration_definition("become", "sudo")}

before = defined()
warmed = prefork.warm(json.loads(sys.argv[1]), json.loads(sys.argv[2]))
read, write = os.pipe()
pid = os.fork()
if pid == 0:
    # A worker forked after the warm-up finds every definition without reading a plugin's documentation.
    os.write(write, json.dumps(defined()).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(read, 4096))
print(json.dumps({"before": before, "child": child, "warmed": warmed,
                  "profiles": sorted(m for m in sys.modules if "_json._profiles._module_" in m)}))
"""


ACTIONS = r"""
import json, os, sys
from ansible.plugins.loader import action_loader, init_plugin_loader

init_plugin_loader([entry for entry in sys.path if os.path.isdir(os.path.join(entry, "ansible_collections"))])
from ansible_collections.shipshape.ops.plugins.callback import prefork

chosen = {action: prefork.warm_action(action, None) for action in json.loads(sys.argv[1])}
read, write = os.pipe()
if os.fork() == 0:
    # What a worker forked after the task started finds already imported.
    imported = sorted(name for name in sys.modules if name.startswith("ansible_collections.shipshape.ops.plugins"))
    cached = sorted(os.path.basename(path) for path in action_loader._module_cache)
    os.write(write, json.dumps({"imported": imported, "cached": cached}).encode())
    os._exit(0)
os.wait()
print(json.dumps({"chosen": chosen, **json.loads(os.read(read, 65536))}))
"""


def run_probe(script, *args):
    # The child imports the collection the way this process does.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(entry for entry in sys.path if entry))
    out = subprocess.run([sys.executable, "-c", script, *map(json.dumps, args)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def probe(connections, become_methods):
    return run_probe(PROBE, connections, become_methods)


def test_a_forked_worker_inherits_the_plugins_options_and_the_message_profiles():
    result = probe(["ansible.builtin.ssh"], ["sudo"])
    assert result["before"] == {"ssh": False, "fqcn ssh": False, "sh": False, "sudo": False}
    assert result["child"] == {"ssh": True, "fqcn ssh": True, "sh": True, "sudo": True}
    assert "connection/ansible.builtin.ssh" in result["warmed"]["loaded"]
    assert "become/sudo" in result["warmed"]["loaded"]
    # The module profiles each worker would import: arguments out and results back, both generations.
    assert len(result["profiles"]) >= 4


def test_a_plugin_that_is_not_installed_is_skipped_and_the_rest_still_loaded():
    result = probe(["no_such.collection.conn", "ssh"], ["no_such.collection.become"])
    assert "connection/no_such.collection.conn" in result["warmed"]["skipped"]
    assert "become/no_such.collection.become" in result["warmed"]["skipped"]
    assert result["child"]["ssh"] is True


def test_a_builtin_plugin_is_loaded_under_both_of_its_names_and_each_name_once():
    from ansible_collections.shipshape.ops.plugins.callback.prefork import _names

    assert _names("ssh", ["ansible.builtin.ssh", "local", "community.docker.docker"]) == [
        "ssh", "ansible.builtin.ssh", "local", "ansible.builtin.local", "community.docker.docker"]
    assert _names(None, []) == []


def test_a_tasks_action_plugin_and_its_module_utils_are_imported_before_the_workers_fork():
    result = run_probe(ACTIONS, ["shipshape.ops.check_vars", "ansible.builtin.ping", "ansible.builtin.set_fact"])
    # As the task executor chooses: an action plugin of the module's name, else normal.
    assert result["chosen"] == {"shipshape.ops.check_vars": "shipshape.ops.check_vars",
                                "ansible.builtin.ping": "ansible.legacy.normal",
                                "ansible.builtin.set_fact": "ansible.builtin.set_fact"}
    assert {"check_vars.py", "normal.py", "set_fact.py"} <= set(result["cached"])
    assert "ansible_collections.shipshape.ops.plugins.module_utils.var_rules" in result["imported"]
