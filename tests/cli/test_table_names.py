"""The CLI's --table and the collection read a table name the same way: every name the CLI accepts, the modules
(module_utils/postgres.split_table_name) split into the same parts, so what a user typed is the table reported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shipshape import validate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".collections"))
from ansible_collections.shipshape.ops.plugins.module_utils import postgres  # noqa: E402

NAMES = ["users", "crm.Customers", "bot-events", 'crm."order.items"', '"Order Items"', '"say ""hi"""', '"a.b"."c.d"',
         '"x".y', 'x."y"', "_t$1.a-b", "a.b.c", '"unclosed', 'a."b', '""', '"a"b', "a.", ".a", "x;drop", '"tab\there"']


@pytest.mark.parametrize("name", NAMES)
def test_a_name_the_cli_accepts_is_split_the_same_by_the_collection(name):
    try:
        validate.table("db-report", "--table", name)
    except validate.InvalidValue:
        return  # refused at the boundary: nothing reaches the collection
    assert postgres.split_table_name(name) == tuple(validate._table_parts(name))


def test_the_cli_accepts_the_quoted_forms():
    accepted = [n for n in NAMES if validate._table_parts(n)]
    assert {'crm."order.items"', '"Order Items"', '"say ""hi"""', '"a.b"."c.d"'} <= set(accepted)
