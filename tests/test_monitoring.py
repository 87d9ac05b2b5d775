"""The alerting rules (promtool check + promtool test) and the Grafana dashboard: every expression uses only
metric names docs/monitoring.md lists, and the drill's textfile writes those names."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "shipshape-rules.yml"
RULES_TEST = ROOT / "monitoring" / "prometheus" / "shipshape-rules.test.yml"
DASHBOARD = ROOT / "monitoring" / "grafana" / "shipshape.json"
DOC = ROOT / "docs" / "monitoring.md"
DRILL_METRICS = ROOT / "roles" / "restore_drill" / "tasks" / "metrics.yml"
DRILL_VARS = ROOT / "roles" / "restore_drill" / "vars" / "main.yml"

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
            "inf", "nan", "Inf", "NaN"}


def promtool():
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    cached = ROOT / ".cache" / "promtool" / "root" / "usr" / "bin" / "promtool"
    if not found and cached.is_file():
        found = str(cached)
    if not found:
        pytest.skip("promtool not found (PATH, $PROMTOOL or .cache/promtool; docs/monitoring.md says how to get it)")
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (functions, label matchers, keywords and durations left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    names = re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", expr)
    return {n for n in names if n not in KEYWORDS}


def documented() -> set[str]:
    return set(re.findall(r"^\| `([a-zA-Z_:][\w:]*)` \|", DOC.read_text(), re.M))


def rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(r.get("alert") or r.get("record"), r["expr"]) for g in groups for r in g["rules"]]


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


@pytest.mark.parametrize(
    "expr, names",
    [
        ("time() - shipshape_backup_last_success_timestamp_seconds > 26 * 3600",
         {"shipshape_backup_last_success_timestamp_seconds"}),
        ('sum by (app) (rate(http_requests_total{status=~"5..", job="x"}[5m])) / on(app) group_left foo_total',
         {"http_requests_total", "foo_total"}),
        ('shipshape_deploy_success{app=~"$app"} == 0 unless bar offset 1h', {"shipshape_deploy_success", "bar"}),
        ("1e3 + nan", set()),
    ],
)
def test_metric_names_are_found(expr, names):
    assert metric_names(expr) == names


def test_the_doc_lists_metrics():
    assert "shipshape_backup_last_success_timestamp_seconds" in documented()
    assert len(documented()) >= 20


def test_rules_use_only_documented_metrics():
    known = documented()
    for alert, expr in rule_exprs():
        assert metric_names(expr), "%s: no metric found in %r" % (alert, expr)
        unknown = metric_names(expr) - known
        assert not unknown, "%s reads %s, not listed in docs/monitoring.md" % (alert, sorted(unknown))


def test_every_alert_is_documented_and_tested():
    doc, tests = DOC.read_text(), RULES_TEST.read_text()
    for alert, _expr in rule_exprs():
        assert "`%s`" % alert in doc, "%s is not in docs/monitoring.md" % alert
        assert "alertname: %s" % alert in tests, "%s has no promtool test" % alert


def test_dashboard_panels_use_only_documented_metrics():
    known = documented()
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for title, expr in exprs:
        unknown = metric_names(expr) - known
        assert not unknown, "panel %r reads %s, not listed in docs/monitoring.md" % (title, sorted(unknown))
    used = set().union(*(metric_names(e) for _t, e in exprs))
    assert {"shipshape_deploy_success", "shipshape_backup_last_success_timestamp_seconds",
            "shipshape_restore_drill_success"} <= used


def test_dashboard_is_importable():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["__inputs"][0]["pluginId"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {v["name"] for v in dash["templating"]["list"]}
    for _title, expr in dashboard_exprs():
        for var in re.findall(r"\$(\w+)", expr):
            assert var in variables, "%r uses $%s, which the dashboard does not define" % (expr, var)


def test_the_drill_writes_the_documented_names():
    prefix = yaml.safe_load(DRILL_VARS.read_text())["__restore_drill_metric_prefix"]
    # The series the drill's metrics task writes through prometheus_textfile.
    names = [m["name"] for m in yaml.safe_load(DRILL_METRICS.read_text())[-1]["vars"]["__restore_drill_series"]]
    written = {n.replace("{{ __restore_drill_metric_prefix }}", prefix) for n in names}
    assert written and all(n.startswith(prefix + "_") for n in written), written
    assert written <= documented(), sorted(written - documented())
    used = set().union(*(metric_names(e) for _a, e in rule_exprs()))
    assert {prefix + "_success", prefix + "_last_success_timestamp_seconds"} <= used & written


def test_promtool_check_rules():
    out = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % len(rule_exprs()) in out.stdout


def test_promtool_test_rules():
    out = subprocess.run([promtool(), "test", "rules", str(RULES_TEST)], capture_output=True, text=True, check=False,
                         cwd=str(RULES_TEST.parent))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@pytest.mark.parametrize("role, prefix", [("deploy", "shipshape_deploy"), ("rollback", "shipshape_rollback"),
                                          ("backup", "shipshape_backup")])
def test_the_roles_write_the_documented_names_that_the_rules_read(role, prefix):
    task = yaml.safe_load((ROOT / "roles" / role / "tasks" / "metrics.yml").read_text())[-1]
    args = dict(task["shipshape.ops.prometheus_textfile"])
    role_vars = yaml.safe_load((ROOT / "roles" / role / "vars" / "main.yml").read_text()) or {}

    def var(text):  # "{{ __role_x }}" -> the role var's value; anything else as it is
        match = re.fullmatch(r"\{\{ (\w+) \}\}", text) if isinstance(text, str) else None
        return role_vars[match.group(1)] if match and match.group(1) in role_vars else text

    args["prefix"] = var(args["prefix"])
    metrics = args["metrics"]
    if isinstance(metrics, str):  # the role's list, in its vars, that its history record also writes
        name = re.fullmatch(r"\{\{ (\w+) \}\}", metrics).group(1)
        metrics = role_vars[name]
        # Every history record of the role that carries metrics writes the same list under the same prefix.
        recorders = [t for f in sorted((ROOT / "roles" / role / "tasks").glob("*.yml"))
                     for t in yaml.safe_load(f.read_text()) or []
                     if "metrics_file" in (t.get("shipshape.ops.release_history") or {})]
        assert recorders, "the metrics of %s are in its vars, but no history record writes them" % role
        for rec in recorders:
            hist = rec["shipshape.ops.release_history"]
            assert var(hist["metrics_prefix"]) == args["prefix"] and hist["metrics_labels"] == args["labels"], rec["name"]
            assert hist["metrics"] == "{{ %s if %s_metrics_file else [] }}" % (name, role), rec["name"]
    written = {m["name"] for m in metrics}
    assert args["prefix"] == prefix + "_" and all(n.startswith(prefix + "_") for n in written), written
    assert written <= documented(), sorted(written - documented())
    read = {n for _a, e in rule_exprs() for n in metric_names(e) if n.startswith(prefix + "_")}
    read |= {n for _t, e in dashboard_exprs() for n in metric_names(e) if n.startswith(prefix + "_")}
    assert read and read <= written, "read by the rules or the dashboard but written by no role: %s" % sorted(read - written)
