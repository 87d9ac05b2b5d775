# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The metrics list of the modules that write a node_exporter textfile (module_utils.prometheus_text). Each module
    gives the option its own description."""

    DOCUMENTATION = r"""
options:
  metrics:
    type: list
    elements: dict
    suboptions:
      name:
        description: Metric name (C([a-zA-Z_:][a-zA-Z0-9_:]*)).
        type: str
        required: true
      help:
        description: The C(# HELP) text.
        type: str
        default: ""
      type:
        description: The metric type.
        type: str
        choices: [gauge, counter, untyped]
        default: gauge
      labels:
        description: Labels of this series, besides the labels of every series of the call.
        type: dict
        default: {}
      value:
        description: A number (or C(NaN), C(+Inf), C(-Inf)). Unset or empty (a Jinja C(none)), see O(metrics[].keep).
        type: raw
      keep:
        description: With no O(metrics[].value), keep the value the file has for the same series.
        type: bool
        default: false
      default:
        description: The value when O(metrics[].value) is unset and nothing is kept. Unset too, the series is left out.
        type: raw
      by_label:
        description: With O(metrics[].values), the label whose value is each key.
        type: str
      values:
        description:
          - "Instead of O(metrics[].value), one series per key of this dict, labelled O(metrics[].by_label)=key, for
            example the seconds of each phase as C({restore: 4.2, verify: 0.3}). A null value leaves its series out."
        type: dict
"""
