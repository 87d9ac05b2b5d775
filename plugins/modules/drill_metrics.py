#!/usr/bin/python
# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: drill_metrics
short_description: Write a restore drill's Prometheus textfile metrics, one labelled series per backup name
description:
  - Writes the metrics of one restore drill into a node_exporter textfile-collector file that holds every backup
    name drilled on the host, each series labelled C(backup="<name>") and C(database="<db>").
  - Only the lines of O(name) are rewritten; the other names' series are kept as they were. Lines without a
    C(backup) label (the one-database format of earlier releases) are dropped.
  - C(<prefix>_last_success_timestamp_seconds) is the time of this run when it passed, else the value of O(name)'s
    own previous line (0 when there is none); it is never taken from another name.
  - The file is written to a temp file in the same directory and renamed over the old one, so a scrape never reads
    half a file.
version_added: 0.1.0
author: shipshape maintainers (@shipshape)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  path:
    description: The C(.prom) file (absolute, without C(..)). Its directory must exist.
    type: path
    required: true
  prefix:
    description: Metric name prefix, a Prometheus metric name.
    type: str
    default: shipshape_restore_drill
  name:
    description:
      - The backup name the drill used (label C(backup)).
      - When empty, the name is taken from O(backup_id) (C(<name>-<YYYYmmddTHHMMSSZ>)), else O(database).
    type: str
    default: ""
  backup_id:
    description: The set drilled (gives the name when O(name) is empty).
    type: str
    default: ""
  database:
    description: The database of the set (label C(database)).
    type: str
    default: ""
  passed:
    description: Whether the drill passed.
    type: bool
    required: true
  now:
    description: Unix time of this run (last run, and last success when it passed); 0 uses the host's clock.
    type: int
    default: 0
  values:
    description:
      - Gauges of this run by metric name without the prefix (C(recovery_seconds), C(backup_age_seconds),
        C(recovery_from_nothing_seconds)); a null value writes no line.
    type: dict
    default: {}
  phases:
    description: Seconds per phase (C(<prefix>_phase_seconds{phase=...})); null phases write no line.
    type: dict
    default: {}
  mode:
    description: The file's mode.
    type: raw
    default: "0644"
attributes:
  check_mode:
    support: full
    details: In check mode the file is not written; the lines are returned.
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

EXAMPLES = r"""
- name: Write the drill's metrics
  shipshape.ops.drill_metrics:
    path: /var/lib/prometheus/node-exporter/shipshape_restore_drill.prom
    name: sample_app
    database: sample_app
    passed: true
    values: {recovery_seconds: 4.2, backup_age_seconds: 3600}
    phases: {fetch: 0.1, checksum: 0.2, restore: 3.1, verify: 0.8, cleanup: 0.3}
"""

RETURN = r"""
name:
  description: The backup name the lines were written for.
  returned: always
  type: str
  sample: sample_app
names:
  description: Every backup name in the file after the write, sorted.
  returned: always
  type: list
  elements: str
last_success:
  description: The last-success time written for O(name).
  returned: always
  type: int
text:
  description: The file's new content.
  returned: always
  type: str
"""

import os
import re
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

METRIC_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}\s+(\S+)\s*$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
STAMP_RE = re.compile(r"-[0-9]{8}T[0-9]{6}Z$")

# The gauges, in the file's order, with their help text.
HELP = (
    ("last_success_timestamp_seconds", "Unix time of the last restore drill of this backup name that passed (0: none yet)."),
    ("last_run_timestamp_seconds", "Unix time of the last restore drill of this backup name."),
    ("success", "Whether the last restore drill of this backup name passed (1) or failed (0)."),
    ("recovery_seconds", "Recovery time of the last drill: fetch + checksum + restore + verify."),
    ("recovery_from_nothing_seconds", "Full-stack drill: the time to recover from nothing."),
    ("backup_age_seconds", "Age of the backup the last drill used, at the drill (the recovery point achieved)."),
    ("phase_seconds", "Duration of each phase of the last drill."),
)


def escape(value):
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(text, prefix):
    """Samples of the file as (metric suffix, labels dict, value string); other lines are dropped."""
    samples = []
    for line in text.splitlines():
        match = SAMPLE_RE.match(line.strip())
        if not match or not match.group(1).startswith(prefix + "_"):
            continue
        labels = dict((k, unescape(v)) for k, v in LABEL_RE.findall(match.group(2)))
        samples.append((match.group(1)[len(prefix) + 1:], labels, match.group(3)))
    return samples


def backup_name(name, backup_id, database):
    if name:
        return name
    if backup_id and STAMP_RE.search(backup_id):
        return STAMP_RE.sub("", backup_id)
    return database or "unknown"


def number(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    as_float = float(value)
    return str(int(as_float)) if as_float == int(as_float) and abs(as_float) < 1e15 else repr(round(as_float, 6))


def merge(previous, prefix, name, database, passed, now, values, phases):
    """(text, last_success, names): the file with name's lines replaced and every other name's kept."""
    old = parse(previous, prefix)
    last_success = 0
    for metric, labels, value in old:
        if metric == "last_success_timestamp_seconds" and labels.get("backup") == name:
            try:
                last_success = int(float(value))
            except ValueError:
                last_success = 0
    if passed:
        last_success = now
    kept = [s for s in old if "backup" in s[1] and s[1]["backup"] != name]
    own = {"backup": name, "database": database}
    new = [
        ("last_success_timestamp_seconds", own, number(last_success)),
        ("last_run_timestamp_seconds", own, number(now)),
        ("success", own, "1" if passed else "0"),
    ]
    for metric, value in sorted(values.items()):
        if value is not None and value != "":
            new.append((metric, own, number(value)))
    for phase, value in phases.items():
        if value is not None and value != "":
            new.append(("phase_seconds", dict(own, phase=phase), number(value)))
    samples = kept + new
    order = [m for m, dummy in HELP] + sorted(set(m for m, dummy, dummy2 in samples) - set(m for m, dummy in HELP))
    helps = dict(HELP)
    lines = ["# Written by shipshape.ops.drill_metrics: one series per backup name (label backup)."]
    for metric in order:
        rows = [s for s in samples if s[0] == metric]
        if not rows:
            continue
        full = "%s_%s" % (prefix, metric)
        lines.append("# HELP %s %s" % (full, helps.get(metric, "Restore drill metric.")))
        lines.append("# TYPE %s gauge" % full)
        rows.sort(key=lambda s: (s[1].get("backup", ""), sorted(s[1].items())))
        for dummy, labels, value in rows:
            body = ",".join('%s="%s"' % (k, escape(v)) for k, v in
                            sorted(labels.items(), key=lambda kv: (kv[0] != "backup", kv[0] != "database", kv[0])))
            lines.append("%s{%s} %s" % (full, body, value))
    names = sorted(set(s[1]["backup"] for s in samples))
    return "\n".join(lines) + "\n", last_success, names


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            prefix=dict(type="str", default="shipshape_restore_drill"),
            name=dict(type="str", default=""),
            backup_id=dict(type="str", default=""),
            database=dict(type="str", default=""),
            passed=dict(type="bool", required=True),
            now=dict(type="int", default=0),
            values=dict(type="dict", default={}),
            phases=dict(type="dict", default={}),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    if not os.path.isabs(path) or ".." in path.split("/"):
        module.fail_json(msg="path must be an absolute path without '..', got %r" % path)
    if not METRIC_RE.match(p["prefix"]):
        module.fail_json(msg="prefix must be a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got %r" % p["prefix"])
    for key in ("values", "phases"):
        for metric, value in p[key].items():
            try:
                if value is not None and value != "":
                    float(value)
            except (TypeError, ValueError):
                module.fail_json(msg="%s.%s must be a number or null, got %r" % (key, metric, value))
    for metric in p["values"]:
        if not METRIC_RE.match(metric):
            module.fail_json(msg="values: %r is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)" % metric)
    name = backup_name(p["name"], p["backup_id"], p["database"])
    try:
        with open(path, encoding="utf-8") as fh:
            previous = fh.read()
    except FileNotFoundError:
        previous = ""
    except (OSError, UnicodeDecodeError) as exc:
        module.fail_json(msg="cannot read the metrics file %s: %s" % (path, exc))
    now = p["now"] or int(time.time())
    text, last_success, names = merge(previous, p["prefix"], name, p["database"], p["passed"], now, p["values"],
                                      p["phases"])
    changed = text != previous
    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            mode = int(p["mode"], 8) if isinstance(p["mode"], str) else int(p["mode"])
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except (OSError, ValueError) as exc:
            if "tmp" in locals() and os.path.exists(tmp):
                os.unlink(tmp)
            module.fail_json(msg="cannot write the metrics file %s: %s" % (path, exc))
    module.exit_json(changed=changed, name=name, names=names, last_success=last_success, text=text)


if __name__ == "__main__":
    main()
