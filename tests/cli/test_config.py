"""Extra vars parsing, run ids, locations."""

from __future__ import annotations

import re

import pytest
from cli_paths import ROOT

from shipshape.config import UsageError, collection_root, default_state_dir, new_run_id, parse_extra_vars


def test_extra_vars_forms(tmp_path):
    varfile = tmp_path / "vars.yml"
    varfile.write_text("from_file: 1\nlist: [a, b]\n")
    got = parse_extra_vars(["a=1 b='two words'", '{"c": {"d": true}}', "e: [1, 2]", f"@{varfile}", "a=override"])
    assert got == {"a": "override", "b": "two words", "c": {"d": True}, "e": [1, 2], "from_file": 1,
                   "list": ["a", "b"]}


@pytest.mark.parametrize("bad", ["{not json", "a=1 b", "=1", "[1, 2]", "@/no/such/file.yml", "", "a: [1"])
def test_unparseable_extra_vars(bad):
    with pytest.raises(UsageError) as info:
        parse_extra_vars([bad])
    assert "\n" not in str(info.value)


def test_run_id_and_locations(monkeypatch, tmp_path):
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", new_run_id())
    monkeypatch.delenv("SHIPSHAPE_COLLECTION_ROOT", raising=False)
    assert collection_root() == ROOT
    monkeypatch.setenv("SHIPSHAPE_COLLECTION_ROOT", str(tmp_path))
    with pytest.raises(UsageError):
        collection_root()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_state_dir() == tmp_path / "shipshape"
