"""Issue 14: the values the CLI sets (--ref, --to, --backup, --confirm) reach the playbook as data only:
ansible-core 2.19 templates extra vars, so a `{{ lookup('pipe', ...) }}` would otherwise run on the controller."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_paths import PLAYBOOKS, ROOT

from shipshape.events import EventCollector
from shipshape.runner import PlaybookRunner, RunSpec, extravars_yaml

INVENTORY = "localhost ansible_python_interpreter={python}\n"


def run_literal(tmp_path: Path, variables: dict, literal: frozenset) -> Path:
    import sys

    inventory = tmp_path / "hosts.ini"
    inventory.write_text(INVENTORY.format(python=sys.executable))
    out = tmp_path / "out"
    out.mkdir()
    runner = PlaybookRunner(ROOT, playbook_dir=PLAYBOOKS)
    spec = RunSpec(command="playbook", playbook="literal.yml", inventory=inventory,
                   extravars={"out_dir": str(out), **variables}, literal=literal)
    outcome = runner.run(spec, tmp_path / "run", EventCollector())
    assert outcome.status == "successful", outcome.collector.failure_messages()
    return out


def test_cli_values_are_not_templated(tmp_path):
    marker = tmp_path / "MARKER"
    hostile = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    out = run_literal(tmp_path, {"value": hostile}, frozenset({"value"}))
    assert not marker.exists()
    assert (out / "value.txt").read_text() == hostile


def test_nested_cli_values_are_not_templated(tmp_path):
    marker = tmp_path / "MARKER"
    hostile = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    text = extravars_yaml({"value": {"a": [hostile]}, "plain": "{{ x }}"}, frozenset({"value"}))
    assert text.count("!unsafe") == 1 and "plain: '{{ x }}'" in text


def test_user_extra_vars_stay_templated(tmp_path):
    """The user's own -e values are the user's templating (documented in docs/cli.md); this also shows that
    the test above can fail: the same value, not marked literal, runs its lookup."""
    marker = tmp_path / "MARKER"
    hostile = f"{{{{ lookup('pipe', 'touch {marker}') }}}}"
    out = run_literal(tmp_path, {"value": "plain", "user_value": hostile}, frozenset({"value"}))
    assert marker.exists()
    assert (out / "value.txt").read_text() == "plain"


@pytest.mark.parametrize("value", ["a'b", 'a"b', "multi\nline", "ünïcode", "!unsafe x", "{% raw %}"])
def test_awkward_strings_arrive_unchanged(tmp_path, value):
    out = run_literal(tmp_path, {"value": value}, frozenset({"value"}))
    assert (out / "value.txt").read_text() == value
