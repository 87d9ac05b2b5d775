"""Every role's README carries the variables table generated from its argument specs, and it is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_role_readmes_are_current():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "role_docs.py"), "--check"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


def test_every_role_has_a_readme_with_its_variables():
    for role in (ROOT / "roles").iterdir():
        if not (role / "meta" / "argument_specs.yml").is_file():
            continue
        text = (role / "README.md").read_text()
        assert "<!-- BEGIN VARIABLES" in text, f"{role.name}: README.md has no generated variables table"
        assert f"`{role.name}_" in text, f"{role.name}: the table lists none of its variables"
