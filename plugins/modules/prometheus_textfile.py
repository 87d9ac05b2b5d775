#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prometheus_textfile
short_description: Write metrics into a node_exporter textfile-collector file, keeping other writers' series
description:
  - Writes O(metrics) into O(path) (a C(*.prom) file node_exporter's textfile collector reads) in the Prometheus text
    format, atomically (a temp file in the same directory, then a rename), mode 0644.
  - 'Merges by series: the series this call owns are replaced, every other series in the file is kept. A call owns
    the series that carry all of O(labels) (its identity, e.g. C({app: sample_app}) or C({database: orders})) in the
    families it writes, plus every family whose name starts with O(prefix) when set. So one file can hold, say,
    every database''s drill series, each labelled, each database''s run replacing only its own.'
  - A metric with no O(metrics[].value) is left out (and its old series removed), unless O(metrics[].keep) keeps the
    value the same series has in the file (a last-success time kept through a failed run) or O(metrics[].default)
    gives one.
  - Names and labels are checked against Prometheus' rules; label values and help texts are escaped.
  - Reports C(changed) when the file's content changes (timestamps in the values change it on every run, so callers that
    record a run usually set C(changed_when=false)).
version_added: 0.2.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - shipshape.ops.prometheus_metrics
options:
  path:
    description: The textfile (must end in C(.prom)). Its directory is created (0755) when missing.
    type: path
    required: true
  labels:
    description: Labels added to every metric of this call; they identify the series this call replaces.
    type: dict
    default: {}
  prefix:
    description: When set, every metric of this call must start with it, and every family in the file that starts
      with it is owned by this call (its series with O(labels) are removed unless written again).
    type: str
    default: ""
  metrics:
    description: The metrics to write.
    type: list
    elements: dict
    required: true
attributes:
  check_mode:
    support: full
    details: Reads the file and returns the content it would write; writes nothing.
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Record the deploy for Prometheus
  shipshape.ops.prometheus_textfile:
    path: /var/lib/prometheus/node-exporter/shipshape_deploy.prom
    prefix: shipshape_deploy_
    labels:
      app: sample_app
    metrics:
      - name: shipshape_deploy_last_run_timestamp_seconds
        help: Unix time of the last deploy.
        value: "{{ now().timestamp() | int }}"
      - name: shipshape_deploy_last_success_timestamp_seconds
        help: Unix time of the last deploy that succeeded (0 none yet).
        value: "{{ (now().timestamp() | int) if deploy_result.result in ['success', 'unchanged'] else none }}"
        keep: true
        default: 0
      - name: shipshape_deploy_success
        help: Whether the last deploy succeeded (1) or failed (0).
        value: "{{ 1 if deploy_result.result in ['success', 'unchanged'] else 0 }}"
  changed_when: false
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
written:
  description: Series written by this call (kept values included).
  returned: always
  type: int
removed:
  description: Series of this call's identity that were in the file and are not written again.
  returned: always
  type: int
kept:
  description: Series of other writers kept as they were.
  returned: always
  type: int
content:
  description: The file's new content.
  returned: always
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import prometheus_text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            labels=dict(type="dict", default={}),
            prefix=dict(type="str", default=""),
            metrics=dict(type="list", elements="dict", required=True, options=prometheus_text.METRIC_OPTIONS),
        ),
        supports_check_mode=True,
    )
    p = module.params
    plan = prometheus_text.plan_or_fail(module, p["path"], p["labels"], p["prefix"], p["metrics"],
                                        writer="shipshape.ops.prometheus_textfile")
    result = dict(changed=plan.changed, **plan.result())
    if module._diff:
        result["diff"] = {"before": plan.before, "after": plan.content, "before_header": plan.path,
                          "after_header": plan.path}
    if not module.check_mode:
        try:
            prometheus_text.write(plan)
        except OSError as err:
            module.fail_json(msg="cannot write %s: %s" % (p["path"], err), exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
