"""shipshape.ops.prometheus_textfile: atomic writes, merging by series, kept values, validation and escaping."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.shipshape.ops.plugins.modules import prometheus_textfile as ptf

P = "shipshape_restore_drill_"


def drill(database, success, last_success=None, phases=None):
    metrics = [
        {"name": P + "last_run_timestamp_seconds", "help": "Unix time of the last drill.", "value": 1700000000},
        {"name": P + "last_success_timestamp_seconds", "help": "Unix time of the last drill that passed.",
         "value": last_success, "keep": True, "default": 0},
        {"name": P + "success", "help": "Whether the last drill passed (1) or failed (0).", "value": 1 if success else 0},
    ]
    for phase, seconds in (phases or {}).items():
        metrics.append({"name": P + "phase_seconds", "help": "Phase durations.", "labels": {"phase": phase},
                        "value": seconds})
    return metrics


def samples(path):
    """{(name, labels text): value} of the file, to compare without caring about order or comments."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = value
    return out


def write(run_module, path, labels, metrics, prefix=P, check_mode=False):
    return run_module(ptf, {"path": str(path), "labels": labels, "prefix": prefix, "metrics": metrics},
                      check_mode=check_mode)


def test_writes_a_new_file_0644_atomically(tmp_path, run_module):
    path = tmp_path / "collector" / "drill.prom"
    failed, result = write(run_module, path, {"database": "orders"}, drill("orders", True, 1700000000, {"fetch": 1.5}))
    assert not failed and result["changed"] and result["written"] == 4
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(path.parent)) == ["drill.prom"]  # no temp file left behind
    text = path.read_text()
    assert text.startswith("# Written by shipshape.ops.prometheus_textfile;")
    assert "# TYPE shipshape_restore_drill_success gauge" in text
    assert 'shipshape_restore_drill_phase_seconds{database="orders",phase="fetch"} 1.5' in text
    assert samples(path)['shipshape_restore_drill_last_success_timestamp_seconds{database="orders"}'] == "1700000000"


def test_series_of_other_writers_are_kept(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, {"database": "orders"}, drill("orders", True, 1700000000, {"fetch": 1.5, "restore": 9}))
    write(run_module, path, {"database": "billing"}, drill("billing", True, 1700000100, {"fetch": 2}))
    # orders again, failed, without a restore phase: its own series replaced (restore gone), billing untouched
    failed, result = write(run_module, path, {"database": "orders"}, drill("orders", False, None, {"fetch": 3}))
    assert not failed and result["kept"] == 4 and result["removed"] == 1
    got = samples(path)
    assert got['shipshape_restore_drill_success{database="orders"}'] == "0"
    assert got['shipshape_restore_drill_success{database="billing"}'] == "1"
    assert got['shipshape_restore_drill_phase_seconds{database="orders",phase="fetch"}'] == "3"
    assert 'shipshape_restore_drill_phase_seconds{database="orders",phase="restore"}' not in got
    assert got['shipshape_restore_drill_phase_seconds{database="billing",phase="fetch"}'] == "2"
    # the failed run kept the last success time of orders from the file
    assert got['shipshape_restore_drill_last_success_timestamp_seconds{database="orders"}'] == "1700000000"
    assert text_count(path, "# TYPE shipshape_restore_drill_success gauge") == 1


def text_count(path, line):
    return path.read_text().splitlines().count(line)


def test_a_first_failed_run_takes_the_default(tmp_path, run_module):
    path = tmp_path / "drill.prom"
    write(run_module, path, {"database": "orders"}, drill("orders", False))
    assert samples(path)['shipshape_restore_drill_last_success_timestamp_seconds{database="orders"}'] == "0"


def test_no_value_and_no_default_leaves_the_series_out(tmp_path, run_module):
    path = tmp_path / "x.prom"
    path.write_text("a_total 5\n")
    failed, result = write(run_module, path, {}, [{"name": "a_total", "type": "counter", "value": None}], prefix="")
    assert not failed and result["written"] == 0 and result["removed"] == 1 and samples(path) == {}
    path.write_text("a_total 5\n")
    failed, result = write(run_module, path, {}, [{"name": "a_total", "type": "counter", "keep": True}], prefix="")
    assert not failed and result["written"] == 1 and samples(path) == {"a_total": "5"}


def test_foreign_families_and_unlabelled_lines_are_kept(tmp_path, run_module):
    path = tmp_path / "mixed.prom"
    path.write_text(
        "# HELP node_custom_thing Something else.\n# TYPE node_custom_thing gauge\nnode_custom_thing 42\n"
        "# TYPE req_seconds histogram\nreq_seconds_bucket{le=\"1\"} 3\nreq_seconds_bucket{le=\"+Inf\"} 4\n"
        "req_seconds_sum 2.5\nreq_seconds_count 4\n")
    failed, result = write(run_module, path, {"app": "a"}, [{"name": "shipshape_deploy_success", "value": 1}],
                           prefix="shipshape_deploy_")
    assert not failed and result["kept"] == 5
    text = path.read_text()
    assert "node_custom_thing 42" in text and 'req_seconds_bucket{le="+Inf"} 4' in text
    assert text_count(path, "# TYPE req_seconds histogram") == 1


def test_the_same_content_is_no_change(tmp_path, run_module):
    path = tmp_path / "d.prom"
    metrics = drill("orders", True, 1700000000)
    write(run_module, path, {"database": "orders"}, metrics)
    failed, result = write(run_module, path, {"database": "orders"}, metrics)
    assert not failed and result["changed"] is False


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / "d.prom"
    failed, result = write(run_module, path, {"database": "orders"}, drill("orders", True, 1), check_mode=True)
    assert not failed and result["changed"] and not path.exists()
    assert 'shipshape_restore_drill_success{database="orders"} 1' in result["content"]


def test_label_values_and_help_are_escaped_and_read_back(tmp_path, run_module):
    path = tmp_path / "e.prom"
    nasty = 'a "quoted" back\\slash\nnewline'
    metrics = [{"name": "shipshape_deploy_success", "help": "line one\nline two \\ end", "value": 1}]
    write(run_module, path, {"app": nasty}, metrics, prefix="shipshape_deploy_")
    assert 'shipshape_deploy_success{app="a \\"quoted\\" back\\\\slash\\nnewline"} 1' in path.read_text()
    assert "# HELP shipshape_deploy_success line one\\nline two \\\\ end" in path.read_text()
    # a second writer with another app keeps the escaped series intact; the same app replaces it
    write(run_module, path, {"app": "other"}, metrics, prefix="shipshape_deploy_")
    failed, result = write(run_module, path, {"app": nasty}, [dict(metrics[0], value=0)], prefix="shipshape_deploy_")
    assert not failed and result["removed"] == 0 and result["kept"] == 1
    got = samples(path)
    assert got['shipshape_deploy_success{app="a \\"quoted\\" back\\\\slash\\nnewline"}'] == "0"
    assert len(got) == 2


@pytest.mark.parametrize("value, shown", [(1, "1"), (1.25, "1.25"), ("7", "7"), ("2.5e3", "2500.0"), ("NaN", "NaN"),
                                          ("+Inf", "+Inf"), (True, "1")])
def test_values(tmp_path, run_module, value, shown):
    path = tmp_path / "v.prom"
    failed, result = write(run_module, path, {}, [{"name": "m", "value": value}], prefix="")
    assert not failed and samples(path)["m"] == shown


@pytest.mark.parametrize(
    "args, expected",
    [
        ({"metrics": [{"name": "9bad", "value": 1}]}, "metrics[0]: name '9bad' is not a valid metric name"),
        ({"metrics": [{"name": "m-x", "value": 1}]}, "name 'm-x' is not a valid metric name"),
        ({"metrics": [{"name": "m", "labels": {"bad-label": "x"}, "value": 1}]}, "label name 'bad-label' is not valid"),
        ({"metrics": [{"name": "m", "labels": {"__name__": "x"}, "value": 1}]}, "label name '__name__' is not valid"),
        ({"labels": {"0x": "y"}, "metrics": [{"name": "m", "value": 1}]}, "labels: label name '0x' is not valid"),
        ({"metrics": [{"name": "m", "value": "fast"}]}, "metrics[0] (m): value 'fast' is not a number"),
        ({"metrics": [{"name": "m", "value": 1}, {"name": "m", "value": 2}]}, "the same series (name and labels) is listed twice"),
        ({"metrics": [{"name": "m", "value": 1}, {"name": "m", "type": "counter", "labels": {"a": "b"}, "value": 2}]},
         "type counter, but an earlier entry of m says gauge"),
        ({"labels": {"app": "x"}, "metrics": [{"name": "m", "labels": {"app": "y"}, "value": 1}]}, "label(s) app also in labels"),
        ({"prefix": "shipshape_deploy_", "metrics": [{"name": "shipshape_backup_success", "value": 1}]},
         "does not start with prefix 'shipshape_deploy_'"),
        ({"path_suffix": "metrics.txt", "metrics": [{"name": "m", "value": 1}]}, "does not end in .prom"),
    ],
    ids=["digit", "dash", "label-dash", "reserved-label", "common-label", "value", "duplicate", "type-clash",
         "label-twice", "prefix", "suffix"],
)
def test_bad_input_is_refused_and_the_file_is_untouched(tmp_path, run_module, args, expected):
    path = tmp_path / args.pop("path_suffix", "keep.prom")
    path.write_text("other_metric 1\n")
    failed, result = run_module(ptf, dict({"path": str(path)}, **args))
    assert failed and expected in result["msg"], result["msg"]
    assert path.read_text() == "other_metric 1\n"


def test_unreadable_lines_are_dropped_with_a_warning(tmp_path, run_module):
    path = tmp_path / "w.prom"
    path.write_text("good 1\nthis is { not prometheus\n")
    failed, result = write(run_module, path, {}, [{"name": "m", "value": 1}], prefix="")
    assert not failed and "not Prometheus text format" in str(result.get("warnings"))
    assert samples(path) == {"good": "1", "m": "1"}


def test_values_by_label_write_one_series_per_key_and_leave_out_nulls(run_module, tmp_path):
    path = tmp_path / "drill.prom"
    failed, result = run_module(ptf, {
        "path": str(path), "labels": {"backup": "shop"},
        "metrics": [{"name": "shipshape_restore_drill_phase_seconds", "by_label": "phase",
                     "values": {"restore": 4.25, "verify": 1, "fetch": None}}]})
    assert not failed, result
    text = path.read_text()
    assert 'shipshape_restore_drill_phase_seconds{backup="shop",phase="restore"} 4.25' in text
    assert 'shipshape_restore_drill_phase_seconds{backup="shop",phase="verify"} 1' in text
    assert 'phase="fetch"' not in text


def test_values_without_by_label_is_refused(run_module, tmp_path):
    failed, result = run_module(ptf, {
        "path": str(tmp_path / "x.prom"), "metrics": [{"name": "x_seconds", "values": {"a": 1}}]})
    assert failed and "values needs by_label" in result["msg"]
