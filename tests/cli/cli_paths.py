"""Paths the CLI tests share. A module of its own: `from conftest import` is ambiguous when pytest collects
tests/, tests/cli and tests/unit together (each has a conftest)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLAYBOOKS = HERE / "playbooks"
LOCAL_INVENTORY = HERE / "inventories" / "local.yml"
PRODUCTION_INVENTORY = HERE / "inventories" / "production.yml"
DATA = HERE / "data"
