# Copyright: shipshape maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus text format of node_exporter's textfile collector: read a file, replace the series one writer owns,
keep every other writer's, write it atomically. Used by shipshape.ops.prometheus_textfile and by the modules that
record a run and its metrics in one call (shipshape.ops.release_history)."""

from __future__ import annotations

import math
import os
import re
import traceback

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


def render(families, writer="shipshape.ops.prometheus_textfile"):
    lines = ["# Written by %s; series of other writers are kept." % writer]
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


# The argument spec of a metrics list (its docs: the doc fragment shipshape.ops.prometheus_metrics).
METRIC_OPTIONS = dict(
    name=dict(type="str", required=True),
    help=dict(type="str", default=""),
    type=dict(type="str", choices=["gauge", "counter", "untyped"], default="gauge"),
    labels=dict(type="dict", default={}),
    value=dict(type="raw"),
    keep=dict(type="bool", default=False),
    default=dict(type="raw"),
    by_label=dict(type="str"),
    values=dict(type="dict"),
)


class Plan(object):
    """What writing METRICS into PATH would do: the file's content before and after, and the counts."""

    def __init__(self, path, before, content, written, removed, kept, dropped):
        self.path, self.before, self.content = path, before, content
        self.written, self.removed, self.kept, self.dropped = written, removed, kept, dropped

    @property
    def changed(self):
        return self.content != self.before

    def result(self):
        return dict(path=self.path, written=self.written, removed=self.removed, kept=self.kept, content=self.content)

    def warning(self):
        """A line for module.warn when lines of the file were not in the text format, else ''."""
        if not self.dropped:
            return ""
        return ("%s: %d line(s) that are not Prometheus text format were dropped, the first: %s"
                % (self.path, len(self.dropped), self.dropped[0][:200]))


def plan(path, labels, prefix, metrics, writer="shipshape.ops.prometheus_textfile"):
    """The Plan of a write, reading the file but writing nothing; Invalid for a bad path, name, label or value,
    OSError when the file cannot be read. WRITER (a module's name) heads the file."""
    if not path.endswith(".prom"):
        raise Invalid("path '%s' does not end in .prom; node_exporter's textfile collector reads only *.prom" % path)
    try:
        with open(path, encoding="utf-8") as fh:
            before = fh.read()
    except FileNotFoundError:
        before = ""
    existing, bad = parse(before)
    families, written, removed, kept = merge(existing, {"labels": labels, "prefix": prefix, "metrics": metrics})
    return Plan(path, before, render(families, writer), written, removed, kept, bad)


def plan_or_fail(module, path, labels, prefix, metrics, writer, what=""):
    """plan() for a module: a bad metric or an unreadable file fails it with one message (WHAT, when given, heads a
    refused metric's), lines of the file that are not in the text format are a warning."""
    try:
        planned = plan(path, labels, prefix, metrics, writer)
    except Invalid as err:
        module.fail_json(msg="%s%s" % (what, err))
    except OSError as err:
        module.fail_json(msg="cannot read %s: %s" % (path, err), exception=traceback.format_exc())
    if planned.warning():
        module.warn(planned.warning())
    return planned


def write(plan_):
    """Write a Plan's content when it changed (the directory created 0755 when missing), atomically, mode 0644."""
    if not plan_.changed:
        return
    directory = os.path.dirname(plan_.path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    files.write_atomically(plan_.path, plan_.content, 0o644)
