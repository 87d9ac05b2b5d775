"""module_utils/files: the one parser of octal mode strings (config_files, app_layout, release_lock) and the atomic
writer."""

from __future__ import annotations

import os

import pytest

from ansible_collections.shipshape.ops.plugins.module_utils import files


@pytest.mark.parametrize("value, bits", [("0644", 0o644), ("0600", 0o600), ("750", 0o750)])
def test_an_octal_mode_string_is_its_bits(value, bits):
    assert files.parse_mode(value) == bits


@pytest.mark.parametrize("value", [416, "0644\n", "0800", "06440", "644 ", "rwx", "", None, "0o644"])
def test_anything_else_is_not_a_mode(value):
    assert files.parse_mode(value) is None


def test_write_atomically_sets_the_mode_before_the_content_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "app.env"
    files.write_atomically(str(path), "SECRET=x\n", 0o600, (os.getuid(), os.getgid()))
    assert path.read_text() == "SECRET=x\n" and (path.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.env"]
