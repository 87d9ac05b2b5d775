#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: check_vars
short_description: Hold variables to their rules before anything runs, naming each refused value
description:
  - Checks each variable named in O(rules) against its kind, and fails with one message that names the variable,
    its value (never a secret one) and what was expected. Nothing is run or written.
  - Run as a task, it reads the values from the task's variables, templated, on the controller (no module runs on
    the host). Given O(values), it checks those instead; the module itself, run on a host, needs O(values).
  - "The kinds: V(string), V(nonempty), V(list), V(dict), V(bool), V(choice) (with C(choices)), V(int) and V(number)
    (with C(min) and C(max)), V(account) (a system user or group name; C(what) names which), V(app_name),
    V(component) (one path component, at most C(max) characters), V(dir_name), V(dir_names) (a list of
    V(dir_name)), V(abs_path) (letters, digits and
    C(._+-/) only, with an optional C(suffix)), V(path) (any characters but control ones), V(paths) (a non-empty list
    of V(path)), V(rel_path), V(service_name), V(unit_name) (with an optional C(suffix)), V(env_name), V(pg_ident),
    V(pg_database) (an identifier that may also hold C(-) after its first character), V(pg_tables) (a list of
    [schema.]table names), V(docker_tag), V(compose_project), V(line) (one line, no control character), V(env) (a
    mapping of environment variable names to values without a line break or NUL; values never shown), V(unit_settings)
    (a mapping of unit setting names to one-line values), V(git_ref) (git check-ref-format's rules) and
    V(redis_patterns) (a list of non-empty key globs, none matching every key as the Redis modules read it unless
    C(match_all_ok) is true; C(confirm) names the variable that allows it, C(example) a narrower pattern)."
  - "Every rule may also carry C(empty_ok) (an empty value passes), C(note) (why, added to the message), C(about)
    (shown after the value, for example where a default came from), C(expect) (the words of the expectation, where
    the kind's own do not say enough) and C(secret) (the value is never shown)."
version_added: 0.4.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  rules:
    description:
      - The variables to check, in order, each with its rule; a string is the kind alone.
    type: dict
    required: true
  values:
    description:
      - The values to check (variable name to value). Empty, the task's variables of those names.
    type: dict
attributes:
  check_mode:
    support: full
    details: It only reads its arguments.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Check the variables before anything runs
  shipshape.ops.check_vars:
    rules:
      myapp_root: abs_path
      myapp_user: {kind: account, what: user}
      myapp_keep: {kind: int, min: 2, note: current and the one before it}
      myapp_mode: {kind: choice, choices: [fast, safe]}
      myapp_env: {kind: env, note: each variable is one line of the env file}
      myapp_cache_patterns: {kind: redis_patterns, example: "myapp:cache:*", confirm: myapp_flush_all,
                             match_all_ok: "{{ myapp_flush_all }}"}
"""

RETURN = r"""
checked:
  description: The names of the variables checked.
  returned: always
  type: list
  elements: str
  sample: [myapp_root, myapp_user]
problems:
  description: One message per refused variable (empty when every value passed).
  returned: always
  type: list
  elements: str
  sample: ["myapp_keep '1' must be a whole number of at least 2 (current and the one before it)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils.var_rules import check, check_vars_argument_spec


def main():
    module = AnsibleModule(argument_spec=check_vars_argument_spec(), supports_check_mode=True)
    if module.params["values"] is None:
        module.fail_json(msg="check_vars: values is required when the module runs on a host")
    failed, result = check(module.params["rules"], module.params["values"])
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
