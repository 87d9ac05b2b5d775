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
        description: Labels of this series, besides O(labels).
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

import math
import os
import re
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.shipshape.ops.plugins.module_utils import files

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+-?\d+)?\s*$")
LABEL_PAIR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
SPECIAL = {"nan": "NaN", "+inf": "+Inf", "inf": "+Inf", "-inf": "-Inf"}
SUFFIXES = ("_bucket", "_sum", "_count", "_created")


class Invalid(Exception):
    pass


def escape_label(value):
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def unescape_label(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def escape_help(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value, what):
    """The value as the text format writes it; Invalid for anything but a number or NaN/+Inf/-Inf."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in SPECIAL:
            return SPECIAL[text.lower()]
        try:
            value = float(text) if re.search(r"[.eE]", text) else int(text)
        except ValueError:
            raise Invalid("%s: value '%s' is not a number (expected a number, NaN, +Inf or -Inf)" % (what, value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    raise Invalid("%s: value %r is not a number (expected a number, NaN, +Inf or -Inf)" % (what, value))


def check_labels(labels, what):
    out = {}
    for key, value in labels.items():
        key = str(key)
        if not LABEL_RE.match(key) or key.startswith("__"):
            raise Invalid("%s: label name '%s' is not valid (expected [a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                          % (what, key))
        if value is None or isinstance(value, (dict, list)):
            raise Invalid("%s: label %s has value %r; expected a string or a number" % (what, key, value))
        out[key] = str(value)
    return out


def parse_labels(text):
    labels, pos, inner = {}, 0, text[1:-1]
    while pos < len(inner):
        match = LABEL_PAIR_RE.match(inner, pos)
        if not match:
            raise ValueError("bad labels")
        labels[match.group(1)] = unescape_label(match.group(2))
        pos = match.end()
    return labels


def family_of(name, families):
    if name in families:
        return name
    for suffix in SUFFIXES:
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and families.get(base, {}).get("type") in ("histogram", "summary"):
            return base
    return name


def parse(text):
    """{family: {help, type, samples: [(name, labels, value_text)]}} and the lines that could not be read."""
    families, bad = {}, []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            parts = stripped.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                fam = families.setdefault(parts[2], {"help": None, "type": None, "samples": []})
                rest = parts[3] if len(parts) > 3 else ""
                if parts[1] == "HELP":
                    fam["help"] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), rest)
                else:
                    fam["type"] = rest.strip()
            continue  # other comments (a writer's header) are not kept: each write puts its own
        match = SAMPLE_RE.match(stripped)
        try:
            if not match:
                raise ValueError("not a sample")
            labels = parse_labels(match.group(2)) if match.group(2) else {}
        except ValueError:
            bad.append(line)
            continue
        name = match.group(1)
        fam = families.setdefault(family_of(name, families), {"help": None, "type": None, "samples": []})
        fam["samples"].append((name, labels, match.group(3)))
    return families, bad


def render(families):
    lines = ["# Written by shipshape.ops.prometheus_textfile; series of other writers are kept."]
    for fam_name in sorted(families):
        fam = families[fam_name]
        if not fam["samples"]:
            continue
        if fam["help"]:
            lines.append("# HELP %s %s" % (fam_name, escape_help(fam["help"])))
        if fam["type"]:
            lines.append("# TYPE %s %s" % (fam_name, fam["type"]))
        for name, labels, value in sorted(fam["samples"], key=lambda s: (s[0], sorted(s[1].items()))):
            text = ",".join('%s="%s"' % (k, escape_label(v)) for k, v in sorted(labels.items()))
            lines.append("%s%s %s" % (name, "{%s}" % text if text else "", value))
    return "\n".join(lines) + "\n"


def expand(metrics):
    """Each entry with O(values) becomes one series per key, labelled O(by_label)=key."""
    out = []
    for index, metric in enumerate(metrics):
        if metric.get("values") is None:
            out.append(metric)
            continue
        if not metric.get("by_label") or metric.get("value") is not None:
            raise Invalid("metrics[%d] (%s): values needs by_label, and no value" % (index, metric["name"]))
        if not isinstance(metric["values"], dict):
            raise Invalid("metrics[%d] (%s): values must be a dict of label value: number" % (index, metric["name"]))
        for key, value in sorted(metric["values"].items()):
            out.append(dict(metric, labels=dict(metric.get("labels") or {}, **{metric["by_label"]: str(key)}),
                            value=value, values=None))
    return out


def merge(existing, params):
    """(families, written, removed, kept): the file's families with this call's series replaced."""
    common = check_labels(params["labels"], "labels")
    prefix = params["prefix"]
    if prefix and not NAME_RE.match(prefix):
        raise Invalid("prefix '%s' is not the start of a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)" % prefix)
    new, seen = {}, set()
    for index, metric in enumerate(expand(params["metrics"])):
        name = metric["name"]
        what = "metrics[%d] (%s)" % (index, name)
        if not NAME_RE.match(name):
            raise Invalid("metrics[%d]: name '%s' is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)" % (index, name))
        if prefix and not name.startswith(prefix):
            raise Invalid("%s: the name does not start with prefix '%s'" % (what, prefix))
        own = check_labels(metric.get("labels") or {}, what)
        clash = sorted(set(own) & set(common))
        if clash:
            raise Invalid("%s: label(s) %s also in labels; set each once" % (what, ", ".join(clash)))
        labels = dict(common, **own)
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise Invalid("%s: the same series (name and labels) is listed twice" % what)
        seen.add(key)
        fam = new.setdefault(name, {"help": metric.get("help") or "", "type": metric.get("type") or "gauge", "samples": []})
        if fam["type"] != (metric.get("type") or "gauge"):
            raise Invalid("%s: type %s, but an earlier entry of %s says %s" % (what, metric.get("type"), name, fam["type"]))
        fam["samples"].append((name, labels, metric.get("value"), metric.get("default"), bool(metric.get("keep")), what))

    def owned(fam_name, labels):
        ours = fam_name in new or (prefix and fam_name.startswith(prefix))
        return ours and all(labels.get(k) == v for k, v in common.items())

    previous = {}  # this call's series found in the file: the values a metric with keep takes
    kept = 0
    for fam_name, fam in existing.items():
        remaining = []
        for name, labels, value in fam["samples"]:
            if owned(fam_name, labels):
                previous[(name, tuple(sorted(labels.items())))] = value
            else:
                remaining.append((name, labels, value))
                kept += 1
        fam["samples"] = remaining

    written = 0
    for fam_name, fam in new.items():
        target = existing.setdefault(fam_name, {"help": None, "type": None, "samples": []})
        target["help"] = fam["help"] or target["help"]
        target["type"] = fam["type"]
        for name, labels, value, default, keep, what in fam["samples"]:
            key = (name, tuple(sorted(labels.items())))
            if value is not None and value != "":
                text = format_value(value, what)
            elif keep and key in previous:
                text = previous[key]
            elif default is not None and default != "":
                text = format_value(default, what + " default")
            else:
                continue
            target["samples"].append((name, labels, text))
            previous.pop(key, None)
            written += 1
    return existing, written, len(previous), kept


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            labels=dict(type="dict", default={}),
            prefix=dict(type="str", default=""),
            metrics=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True),
                help=dict(type="str", default=""),
                type=dict(type="str", choices=["gauge", "counter", "untyped"], default="gauge"),
                labels=dict(type="dict", default={}),
                value=dict(type="raw"),
                keep=dict(type="bool", default=False),
                default=dict(type="raw"),
                by_label=dict(type="str"),
                values=dict(type="dict"),
            )),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    if not path.endswith(".prom"):
        module.fail_json(msg="path '%s' does not end in .prom; node_exporter's textfile collector reads only *.prom" % path)
    try:
        with open(path, encoding="utf-8") as fh:
            before = fh.read()
    except FileNotFoundError:
        before = ""
    except OSError as err:
        module.fail_json(msg="cannot read %s: %s" % (path, err), exception=traceback.format_exc())
    existing, bad = parse(before)
    if bad:
        module.warn("%s: %d line(s) that are not Prometheus text format were dropped, the first: %s"
                    % (path, len(bad), bad[0][:200]))
    try:
        families, written, removed, kept = merge(existing, module.params)
    except Invalid as err:
        module.fail_json(msg=str(err))
    content = render(families)
    changed = content != before
    result = dict(changed=changed, path=path, written=written, removed=removed, kept=kept, content=content)
    if module._diff:
        result["diff"] = {"before": before, "after": content, "before_header": path, "after_header": path}
    if changed and not module.check_mode:
        try:
            directory = os.path.dirname(path)
            if directory and not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            files.write_atomically(path, content, 0o644)
        except OSError as err:
            module.fail_json(msg="cannot write %s: %s" % (path, err), exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
